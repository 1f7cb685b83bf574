//! Deployment sets: immutable, content-addressed, per app.

use crate::Error;
use crate::Tx;
use crate::column::json;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

/// A stored set.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSet {
    /// The app.
    pub app: String,
    /// Its content address.
    pub id: String,
    /// Its canonical JSON.
    pub body: Value,
    /// When it was first stored (Unix seconds).
    pub created_at: i64,
    /// Who stored it first.
    pub created_by: String,
}

/// Stores a set unless the app has it already; true when it was new.
pub fn put(tx: &Tx<'_>, s: &StoredSet) -> Result<bool, Error> {
    let conn = tx.conn();
    Ok(conn.execute(
        "INSERT OR IGNORE INTO sets (app, id, body, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![s.app, s.id, s.body.to_string(), s.created_at, s.created_by],
    )? > 0)
}

const COLUMNS: &str = "app, id, body, created_at, created_by";

fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSet> {
    Ok(StoredSet {
        app: r.get("app")?,
        id: r.get("id")?,
        body: json(r, "body")?,
        created_at: r.get("created_at")?,
        created_by: r.get("created_by")?,
    })
}

/// The set `id` of `app`, if any.
pub fn get(tx: &Tx<'_>, app: &str, id: &str) -> Result<Option<StoredSet>, Error> {
    let conn = tx.conn();
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM sets WHERE app = ?1 AND id = ?2"),
            [app, id],
            stored,
        )
        .optional()?)
}

/// Every set of `app`, oldest first.
pub fn list(tx: &Tx<'_>, app: &str) -> Result<Vec<StoredSet>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM sets WHERE app = ?1 ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([app], stored)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
