//! Applications.

use crate::Tx;
use crate::column::parsed;
use crate::{Error, is_conflict};
use rusqlite::{OptionalExtension, params};
use wharf_core::Id;

/// An application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Its id.
    pub id: Id,
    /// Its display name.
    pub name: String,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Its environments are being deleted, and it goes with the last of them.
    pub deleting: bool,
}

const COLUMNS: &str = "id, name, created_at, created_by, status";

fn app(r: &rusqlite::Row<'_>) -> rusqlite::Result<App> {
    Ok(App {
        id: parsed(r, "id")?,
        name: r.get("name")?,
        created_at: r.get("created_at")?,
        created_by: r.get("created_by")?,
        deleting: r.get::<_, String>("status")? == "deleting",
    })
}

/// Creates an app; [`Error::Conflict`] when the id is taken.
pub fn create(tx: &Tx<'_>, app: &App) -> Result<(), Error> {
    let conn = tx.conn();
    conn.execute(
        "INSERT INTO apps (id, name, created_at, created_by) VALUES (?1, ?2, ?3, ?4)",
        params![app.id.as_str(), app.name, app.created_at, app.created_by],
    )
    .map_err(|e| {
        if is_conflict(&e) {
            Error::Conflict(format!("app {}", app.id))
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// The app with `id`, if any.
pub fn get(tx: &Tx<'_>, id: &str) -> Result<Option<App>, Error> {
    let conn = tx.conn();
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM apps WHERE id = ?1"),
            [id],
            app,
        )
        .optional()?)
}

/// Every app, by id.
pub fn list(tx: &Tx<'_>) -> Result<Vec<App>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM apps ORDER BY id"))?;
    let rows = stmt.query_map([], app)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks an app as being deleted; true when it exists.
pub fn mark_deleting(tx: &Tx<'_>, id: &str) -> Result<bool, Error> {
    let conn = tx.conn();
    Ok(conn.execute("UPDATE apps SET status = 'deleting' WHERE id = ?1", [id])? == 1)
}

/// Deletes an app that is being deleted once it has no environment left; true when it
/// went. Run it in the transaction that deleted its last environment.
pub fn delete_if_done(tx: &Tx<'_>, id: &str) -> Result<bool, Error> {
    let conn = tx.conn();
    let left: i64 = conn.query_row(
        "SELECT count(*) AS count FROM environments WHERE app = ?1",
        [id],
        |r| r.get("count"),
    )?;
    let deleting = get(tx, id)?.is_some_and(|a| a.deleting);
    if left > 0 || !deleting {
        return Ok(false);
    }
    delete(tx, id)
}

/// Deletes an app and the role bindings on it; true when it existed. Run it in a
/// transaction.
pub fn delete(tx: &Tx<'_>, id: &str) -> Result<bool, Error> {
    let conn = tx.conn();
    conn.execute(
        "DELETE FROM role_bindings WHERE scope_kind = 'app' AND scope_id = ?1",
        [id],
    )?;
    Ok(conn.execute("DELETE FROM apps WHERE id = ?1", [id])? == 1)
}
