//! The store against real SQLite files.

use wharf_store::{Error, Store};

#[tokio::test]
async fn a_new_database_is_migrated_and_a_reopen_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wharf.db");
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 1);
    let mode: String = store
        .call(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    store
        .call(|c| {
            c.execute("INSERT INTO meta (key, value) VALUES ('id', 'abc')", [])?;
            Ok(())
        })
        .await
        .unwrap();
    store.close().await;

    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 1);
    let id: String = store
        .call(|c| Ok(c.query_row("SELECT value FROM meta WHERE key = 'id'", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(id, "abc");
}

#[tokio::test]
async fn a_database_from_a_newer_wharf_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wharf.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = Store::open(&path)
        .await
        .err()
        .expect("opened a newer database");
    assert!(
        matches!(
            err,
            Error::TooNew {
                found: 99,
                known: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("newer than this Wharf knows (1)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failed_transaction_changes_nothing() {
    let store = Store::open_in_memory().await.unwrap();
    let err = store
        .transaction(|tx| {
            tx.execute("INSERT INTO meta (key, value) VALUES ('a', '1')", [])?;
            tx.execute("INSERT INTO meta (key, value) VALUES ('a', '2')", [])?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Query(_)), "{err}");
    let rows: i64 = store
        .call(|c| Ok(c.query_row("SELECT count(*) FROM meta", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_one_store() {
    let store = Store::open_in_memory().await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .call(move |c| {
                    c.execute(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                        (format!("k{i}"), i.to_string()),
                    )?;
                    Ok(())
                })
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    let rows: i64 = store
        .call(|c| Ok(c.query_row("SELECT count(*) FROM meta", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(rows, 64);
}

#[tokio::test]
async fn an_online_backup_is_a_complete_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("wharf.db")).await.unwrap();
    store
        .call(|c| {
            c.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')", [])?;
            Ok(())
        })
        .await
        .unwrap();
    let copy = dir.path().join("backup.db");
    store.backup(&copy).await.unwrap();
    let restored = Store::open(&copy).await.unwrap();
    let value: String = restored
        .call(|c| Ok(c.query_row("SELECT value FROM meta WHERE key = 'k'", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(value, "v");
    assert_eq!(restored.schema_version().await.unwrap(), 1);
}

#[tokio::test]
async fn a_closed_store_says_so() {
    let store = Store::open_in_memory().await.unwrap();
    let other = store.clone();
    store.close().await;
    let err = other.schema_version().await.unwrap_err();
    assert!(matches!(err, Error::Closed), "{err}");
}
