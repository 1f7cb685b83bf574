//! The audit log: who did what to what, and when. Append-only.

use crate::Error;
use crate::Tx;
use crate::column::json;
use rusqlite::params;
use serde_json::Value;

/// One audited action.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its place in the log (assigned when recorded).
    pub seq: i64,
    /// When (Unix seconds).
    pub at: i64,
    /// Who.
    pub principal: String,
    /// The action (`apps.create`).
    pub action: String,
    /// What it was done to (`app:shop`, `installation:freeze`).
    pub target: String,
    /// More about it (never secrets), as JSON.
    pub detail: Value,
}

/// Appends an event; call it in the transaction that makes the change, so that the log and
/// the state cannot disagree.
pub fn record(tx: &Tx<'_>, e: &Event) -> Result<i64, Error> {
    let conn = tx.conn();
    conn.execute(
        "INSERT INTO audit (at, principal, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![e.at, e.principal, e.action, e.target, e.detail.to_string()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this principal's.
    pub principal: Option<String>,
    /// Only this action, or (ending in `.`) actions with this prefix (`apps.`).
    pub action: Option<String>,
    /// Only this target, or (ending in `:` or `/`) targets with this prefix.
    pub target: Option<String>,
    /// Only at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Only before this time (Unix seconds).
    pub until: Option<i64>,
    /// Only events after this sequence number (for paging).
    pub after: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

fn like_prefix(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("{escaped}%")
}

/// The events matching `f`, oldest first.
pub fn list(tx: &Tx<'_>, f: &Filter) -> Result<Vec<Event>, Error> {
    let conn = tx.conn();
    let pattern = |value: &Option<String>, prefix: &[char]| {
        value.as_ref().map(|v| {
            if v.ends_with(prefix) {
                like_prefix(v)
            } else {
                v.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            }
        })
    };
    let mut stmt = conn.prepare(
        "SELECT seq, at, principal, action, target, detail FROM audit
         WHERE (?1 IS NULL OR principal = ?1)
           AND (?2 IS NULL OR action LIKE ?2 ESCAPE '\\')
           AND (?3 IS NULL OR target LIKE ?3 ESCAPE '\\')
           AND (?4 IS NULL OR at >= ?4)
           AND (?5 IS NULL OR at < ?5)
           AND (?6 IS NULL OR seq > ?6)
         ORDER BY seq LIMIT ?7",
    )?;
    let rows = stmt.query_map(
        params![
            f.principal,
            pattern(&f.action, &['.']),
            pattern(&f.target, &[':', '/']),
            f.since,
            f.until,
            f.after,
            f.limit
        ],
        event,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn event(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        seq: r.get("seq")?,
        at: r.get("at")?,
        principal: r.get("principal")?,
        action: r.get("action")?,
        target: r.get("target")?,
        detail: json(r, "detail")?,
    })
}
