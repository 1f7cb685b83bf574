//! The store against real SQLite files (inside the crate: these tests speak SQL).

use crate::{Error, Store};

mod rows;
mod webhooks;

#[tokio::test]
async fn a_new_database_is_migrated_and_a_reopen_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wharf.db");
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 13);
    let mode: String = store
        .call(|c| {
            Ok(c.conn()
                .query_row("PRAGMA journal_mode", [], |r| r.get("journal_mode"))?)
        })
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    store
        .call(|c| {
            c.conn()
                .execute("INSERT INTO meta (key, value) VALUES ('id', 'abc')", [])?;
            Ok(())
        })
        .await
        .unwrap();
    store.close().await;

    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 13);
    let id: String = store
        .call(|c| {
            Ok(c.conn()
                .query_row("SELECT value FROM meta WHERE key = 'id'", [], |r| {
                    r.get("value")
                })?)
        })
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
                known: 13,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("newer than this Wharf knows (13)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failed_transaction_changes_nothing() {
    let store = Store::open_in_memory().await.unwrap();
    let err = store
        .transaction(|tx| {
            tx.conn()
                .execute("INSERT INTO meta (key, value) VALUES ('a', '1')", [])?;
            tx.conn()
                .execute("INSERT INTO meta (key, value) VALUES ('a', '2')", [])?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Query(_)), "{err}");
    let rows: i64 = store
        .call(|c| {
            Ok(c.conn()
                .query_row("SELECT count(*) AS count FROM meta", [], |r| r.get("count"))?)
        })
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
                    c.conn().execute(
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
        .call(|c| {
            Ok(c.conn()
                .query_row("SELECT count(*) AS count FROM meta", [], |r| r.get("count"))?)
        })
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
            c.conn()
                .execute("INSERT INTO meta (key, value) VALUES ('k', 'v')", [])?;
            Ok(())
        })
        .await
        .unwrap();
    let copy = dir.path().join("backup.db");
    store.backup(&copy).await.unwrap();
    let restored = Store::open(&copy).await.unwrap();
    let value: String = restored
        .call(|c| {
            Ok(c.conn()
                .query_row("SELECT value FROM meta WHERE key = 'k'", [], |r| {
                    r.get("value")
                })?)
        })
        .await
        .unwrap();
    assert_eq!(value, "v");
    assert_eq!(restored.schema_version().await.unwrap(), 13);
}

#[tokio::test]
async fn a_closed_store_says_so() {
    let store = Store::open_in_memory().await.unwrap();
    let other = store.clone();
    store.close().await;
    let err = other.schema_version().await.unwrap_err();
    assert!(matches!(err, Error::Closed), "{err}");
}

#[tokio::test]
async fn tokens_are_found_by_hash_and_revocation_and_expiry_are_seen() {
    use crate::auth::{self, TokenStatus};
    let store = Store::open_in_memory().await.unwrap();
    let status = store
        .transaction(|tx| {
            auth::create_principal(tx, "alice@example.com", "user", 100)?;
            auth::create_token(tx, "t1", "alice@example.com", "h1", 100, None)?;
            auth::create_token(tx, "t2", "alice@example.com", "h2", 100, Some(200))?;
            auth::create_token(tx, "t3", "alice@example.com", "h3", 100, None)?;
            assert!(auth::revoke_token(tx, "alice@example.com", "t3", 150)?);
            assert_eq!(auth::list_tokens(tx, "alice@example.com")?.len(), 3);
            assert!(!auth::revoke_token(tx, "alice@example.com", "t3", 160)?);
            assert!(!auth::revoke_token(tx, "bob", "t1", 160)?);
            Ok([
                auth::token_status(tx, "h1", 300)?,
                auth::token_status(tx, "h2", 199)?,
                auth::token_status(tx, "h2", 200)?,
                auth::token_status(tx, "h3", 300)?,
                auth::token_status(tx, "nope", 300)?,
            ])
        })
        .await
        .unwrap();
    let alice = |expires_at| TokenStatus::Valid {
        principal: "alice@example.com".into(),
        kind: "user".into(),
        expires_at,
    };
    assert_eq!(
        status,
        [
            alice(None),
            alice(Some(200)),
            TokenStatus::Expired,
            TokenStatus::Revoked,
            TokenStatus::Unknown
        ]
    );
    let dup = store
        .call(|c| auth::create_principal(c, "alice@example.com", "user", 1))
        .await
        .unwrap_err();
    assert_eq!(
        dup.to_string(),
        "principal alice@example.com already exists"
    );
}

#[tokio::test]
async fn apps_are_created_listed_and_deleted() {
    use crate::apps::{self, App};
    use wharf_core::Id;
    let store = Store::open_in_memory().await.unwrap();
    let app = |id: &str| App {
        id: Id::new(id).unwrap(),
        name: id.to_uppercase(),
        created_at: 1,
        created_by: "alice".into(),
        deleting: false,
    };
    let (a, b) = (app("shop"), app("bank"));
    store
        .call(move |c| {
            apps::create(c, &a)?;
            apps::create(c, &b)
        })
        .await
        .unwrap();
    let err = store
        .call(move |c| apps::create(c, &app("shop")))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "app shop already exists");
    let ids: Vec<String> = store
        .call(|c| {
            Ok(apps::list(c)?
                .into_iter()
                .map(|a| a.id.to_string())
                .collect())
        })
        .await
        .unwrap();
    assert_eq!(ids, ["bank", "shop"]);
    assert!(store.call(|c| apps::delete(c, "shop")).await.unwrap());
    assert!(
        store
            .call(|c| apps::get(c, "shop"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_value_that_does_not_parse_is_corrupt_and_names_its_column() {
    use crate::{apps, envs};
    let store = Store::open_in_memory().await.unwrap();
    store
        .call(|c| {
            c.conn().execute_batch(
                "INSERT INTO apps (id, name, created_at, created_by)
                      VALUES ('Not An Id', 'x', 1, 'alice');
                 INSERT INTO env_types (id, target, created_at) VALUES ('dev', '{oops', 1);",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let bad_id = store.call(apps::list).await.unwrap_err();
    let bad_json = store.call(|c| envs::get_type(c, "dev")).await.unwrap_err();
    for (err, column) in [(bad_id, "(column id)"), (bad_json, "(column target)")] {
        assert!(matches!(err, Error::Corrupt(_)), "{err}");
        assert!(err.to_string().contains(column), "{err}");
    }
}
