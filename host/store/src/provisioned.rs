//! Resources as provisioned in each environment. Driver state and secret outputs are
//! sealed ([`Sealer`]), bound to their row.

use crate::Error;
use crate::secrets::Sealer;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

/// Where a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The driver is working.
    InProgress,
    /// A retryable failure; being retried.
    Retrying,
    /// Ready.
    Done,
    /// Failed for good.
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in-progress",
            Self::Retrying => "retrying",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self, Error> {
        Ok(match text {
            "in-progress" => Self::InProgress,
            "retrying" => Self::Retrying,
            "done" => Self::Done,
            "failed" => Self::Failed,
            other => return Err(Error::Corrupt(format!("resource status {other:?}"))),
        })
    }
}

/// One resource's record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its uid.
    pub uid: String,
    /// Its status.
    pub status: Status,
    /// The driver's last message (or the failure).
    pub message: String,
    /// The driver's state, to pass to its next call.
    pub state: Option<Value>,
    /// Non-secret outputs (a JSON object).
    pub outputs: Value,
    /// Secret outputs (a JSON object).
    pub secrets: Value,
    /// When it was written (Unix seconds).
    pub updated_at: i64,
}

fn context(app: &str, env: &str, uid: &str, what: &str) -> String {
    format!("provisioned/{what}:{app}/{env}/{uid}")
}

/// Writes the record of `uid` in `app/env`. A record without state or outputs keeps
/// those of the previous one (a retry does not forget what the driver said before).
pub fn record(
    conn: &Connection,
    sealer: &Sealer,
    app: &str,
    env: &str,
    r: &Record,
) -> Result<(), Error> {
    let state = r.state.as_ref().map(|s| {
        sealer.seal(
            s.to_string().as_bytes(),
            &context(app, env, &r.uid, "state"),
        )
    });
    let secrets = sealer.seal(
        r.secrets.to_string().as_bytes(),
        &context(app, env, &r.uid, "secrets"),
    );
    let keep_outputs = r.outputs.as_object().is_none_or(|o| o.is_empty())
        && r.secrets.as_object().is_none_or(|o| o.is_empty());
    conn.execute(
        "INSERT INTO provisioned (app, env, uid, status, message, state, outputs, secrets, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (app, env, uid) DO UPDATE SET
            status = excluded.status,
            message = excluded.message,
            state = COALESCE(excluded.state, provisioned.state),
            outputs = CASE WHEN ?10 THEN provisioned.outputs ELSE excluded.outputs END,
            secrets = CASE WHEN ?10 THEN provisioned.secrets ELSE excluded.secrets END,
            updated_at = excluded.updated_at",
        params![
            app,
            env,
            r.uid,
            r.status.as_str(),
            r.message,
            state,
            r.outputs.to_string(),
            secrets,
            r.updated_at,
            keep_outputs
        ],
    )?;
    Ok(())
}

type Row = (
    String,
    String,
    String,
    Option<Vec<u8>>,
    String,
    Option<Vec<u8>>,
    i64,
);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn open_row(sealer: &Sealer, app: &str, env: &str, row: Row) -> Result<Record, Error> {
    let (uid, status, message, state, outputs, secrets, updated_at) = row;
    let json = |bytes: Vec<u8>| -> Result<Value, Error> {
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(e.to_string()))
    };
    Ok(Record {
        status: Status::parse(&status)?,
        message,
        state: match state {
            Some(s) => Some(json(sealer.open(&s, &context(app, env, &uid, "state"))?)?),
            None => None,
        },
        outputs: serde_json::from_str(&outputs).map_err(|e| Error::Corrupt(e.to_string()))?,
        secrets: match secrets {
            Some(s) => json(sealer.open(&s, &context(app, env, &uid, "secrets"))?)?,
            None => Value::Object(Default::default()),
        },
        updated_at,
        uid,
    })
}

/// The record of `uid` in `app/env`, if any.
pub fn get(
    conn: &Connection,
    sealer: &Sealer,
    app: &str,
    env: &str,
    uid: &str,
) -> Result<Option<Record>, Error> {
    conn.query_row(
        "SELECT uid, status, message, state, outputs, secrets, updated_at FROM provisioned
         WHERE app = ?1 AND env = ?2 AND uid = ?3",
        [app, env, uid],
        row,
    )
    .optional()?
    .map(|r| open_row(sealer, app, env, r))
    .transpose()
}

/// Every record of `app/env`, by uid.
pub fn list(
    conn: &Connection,
    sealer: &Sealer,
    app: &str,
    env: &str,
) -> Result<Vec<Record>, Error> {
    let mut stmt = conn.prepare(
        "SELECT uid, status, message, state, outputs, secrets, updated_at FROM provisioned
         WHERE app = ?1 AND env = ?2 ORDER BY uid",
    )?;
    let rows = stmt.query_map([app, env], row)?;
    rows.map(|r| open_row(sealer, app, env, r?)).collect()
}
