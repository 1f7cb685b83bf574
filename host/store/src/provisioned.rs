//! Resources as provisioned in each environment. Driver state and secret outputs are
//! sealed ([`Sealer`]), bound to their row.

use crate::Error;
use crate::Tx;
use crate::column::{json, parsed};
use crate::secrets::Sealer;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;
use wharf_core::status::ResourceState;

/// One resource's record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its uid.
    pub uid: String,
    /// Its status.
    pub status: ResourceState,
    /// The driver's last message (or the failure).
    pub message: String,
    /// The driver's state, to pass to its next call.
    pub state: Option<Value>,
    /// Non-secret outputs (a JSON object).
    pub outputs: Value,
    /// Secret outputs (a JSON object).
    pub secrets: Value,
    /// Kubernetes objects the driver returned with it, deployed with the workloads.
    pub objects: Vec<Value>,
    /// When it was written (Unix seconds).
    pub updated_at: i64,
    /// The deployment that wrote it (its number in the environment).
    pub deployment: i64,
    /// The resource definition that provisions it.
    pub definition: String,
    /// The driver installation that provisions it.
    pub driver: String,
    /// The uids it depends on (deprovisioned after it).
    pub depends_on: Vec<String>,
    /// Its params as resolved for the driver (sealed at rest: they may hold secrets).
    pub params: Value,
}

fn context(app: &str, env: &str, uid: &str, what: &str) -> String {
    format!("provisioned/{what}:{app}/{env}/{uid}")
}

/// Writes the record of `uid` in `app/env`. A record without state keeps the previous
/// one's, and only a `done` record replaces the outputs and objects (a retry does not
/// forget what the driver said before).
pub fn record(tx: &Tx<'_>, sealer: &Sealer, app: &str, env: &str, r: &Record) -> Result<(), Error> {
    let conn = tx.conn();
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
    let params = sealer.seal(
        r.params.to_string().as_bytes(),
        &context(app, env, &r.uid, "params"),
    );
    let keep_outputs = r.status != ResourceState::Done;
    conn.prepare_cached(
        "INSERT INTO provisioned (app, env, uid, status, message, state, outputs, secrets,
                                  updated_at, deployment, definition, driver, depends_on, params,
                                  objects)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (app, env, uid) DO UPDATE SET
            status = excluded.status,
            message = excluded.message,
            state = COALESCE(excluded.state, provisioned.state),
            outputs = CASE WHEN ?10 THEN provisioned.outputs ELSE excluded.outputs END,
            secrets = CASE WHEN ?10 THEN provisioned.secrets ELSE excluded.secrets END,
            objects = CASE WHEN ?10 THEN provisioned.objects ELSE excluded.objects END,
            updated_at = excluded.updated_at,
            deployment = excluded.deployment,
            definition = excluded.definition,
            driver = excluded.driver,
            depends_on = excluded.depends_on,
            params = excluded.params",
    )?
    .execute(params![
        app,
        env,
        r.uid,
        r.status.as_str(),
        r.message,
        state,
        r.outputs.to_string(),
        secrets,
        r.updated_at,
        keep_outputs,
        r.deployment,
        r.definition,
        r.driver,
        serde_json::to_string(&r.depends_on).expect("strings serialize"),
        params,
        serde_json::to_string(&r.objects).expect("values serialize"),
    ])?;
    Ok(())
}

/// Forgets the record of `uid` in `app/env` (it was deprovisioned); true when it existed.
pub fn delete(tx: &Tx<'_>, app: &str, env: &str, uid: &str) -> Result<bool, Error> {
    let conn = tx.conn();
    Ok(conn.execute(
        "DELETE FROM provisioned WHERE app = ?1 AND env = ?2 AND uid = ?3",
        [app, env, uid],
    )? == 1)
}

const COLUMNS: &str = "uid, status, message, state, outputs, secrets, updated_at, \
                       deployment, definition, driver, depends_on, params, objects";

/// A record as stored: its sealed columns not yet opened (opening needs the [`Sealer`],
/// and fails with its own error, which a row mapper cannot return).
struct Row {
    uid: String,
    status: ResourceState,
    message: String,
    state: Option<Vec<u8>>,
    outputs: Value,
    secrets: Option<Vec<u8>>,
    updated_at: i64,
    deployment: i64,
    definition: String,
    driver: String,
    depends_on: Vec<String>,
    params: Option<Vec<u8>>,
    objects: Vec<Value>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        uid: r.get("uid")?,
        status: parsed(r, "status")?,
        message: r.get("message")?,
        state: r.get("state")?,
        outputs: json(r, "outputs")?,
        secrets: r.get("secrets")?,
        updated_at: r.get("updated_at")?,
        deployment: r.get("deployment")?,
        definition: r.get("definition")?,
        driver: r.get("driver")?,
        depends_on: json(r, "depends_on")?,
        params: r.get("params")?,
        objects: json(r, "objects")?,
    })
}

fn open_row(sealer: &Sealer, app: &str, env: &str, row: Row) -> Result<Record, Error> {
    let Row {
        uid,
        status,
        message,
        state,
        outputs,
        secrets,
        updated_at,
        deployment,
        definition,
        driver,
        depends_on,
        params,
        objects,
    } = row;
    let json = |bytes: Vec<u8>| -> Result<Value, Error> {
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(e.to_string()))
    };
    Ok(Record {
        deployment,
        definition,
        driver,
        depends_on,
        params: match params {
            Some(p) => json(sealer.open(&p, &context(app, env, &uid, "params"))?)?,
            None => Value::Object(Default::default()),
        },
        status,
        message,
        state: match state {
            Some(s) => Some(json(sealer.open(&s, &context(app, env, &uid, "state"))?)?),
            None => None,
        },
        outputs,
        secrets: match secrets {
            Some(s) => json(sealer.open(&s, &context(app, env, &uid, "secrets"))?)?,
            None => Value::Object(Default::default()),
        },
        updated_at,
        objects,
        uid,
    })
}

/// The record of `uid` in `app/env`, if any.
pub fn get(
    tx: &Tx<'_>,
    sealer: &Sealer,
    app: &str,
    env: &str,
    uid: &str,
) -> Result<Option<Record>, Error> {
    let conn = tx.conn();
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM provisioned WHERE app = ?1 AND env = ?2 AND uid = ?3"),
        [app, env, uid],
        row,
    )
    .optional()?
    .map(|r| open_row(sealer, app, env, r))
    .transpose()
}

/// Every record of `app/env`, by uid.
pub fn list(tx: &Tx<'_>, sealer: &Sealer, app: &str, env: &str) -> Result<Vec<Record>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM provisioned WHERE app = ?1 AND env = ?2 ORDER BY uid"
    ))?;
    let rows = stmt.query_map([app, env], row)?;
    rows.map(|r| open_row(sealer, app, env, r?)).collect()
}

/// Where a resource a deployment touched is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    /// The resource.
    pub uid: String,
    /// Where it is.
    pub status: ResourceState,
    /// The driver's last message (or the failure).
    pub message: String,
}

/// Where each resource deployment `deployment` of `app/env` touched is, by uid.
pub fn progress(tx: &Tx<'_>, app: &str, env: &str, deployment: i64) -> Result<Vec<Touched>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(
        "SELECT uid, status, message FROM provisioned
         WHERE app = ?1 AND env = ?2 AND deployment = ?3 ORDER BY uid",
    )?;
    let rows = stmt.query_map(rusqlite::params![app, env, deployment], |r| {
        Ok(Touched {
            uid: r.get("uid")?,
            status: parsed(r, "status")?,
            message: r.get("message")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The secrets column of `app/env`'s resource `uid` as it is stored: sealed bytes, for the
/// checks that nothing is kept in clear.
pub fn stored_secrets(
    tx: &Tx<'_>,
    app: &str,
    env: &str,
    uid: &str,
) -> Result<Option<Vec<u8>>, Error> {
    let conn = tx.conn();
    Ok(conn
        .query_row(
            "SELECT secrets FROM provisioned WHERE app = ?1 AND env = ?2 AND uid = ?3",
            [app, env, uid],
            |r| r.get("secrets"),
        )
        .optional()?)
}

/// Whether anything was ever provisioned in `app/env` (and is still recorded).
pub fn any(tx: &Tx<'_>, app: &str, env: &str) -> Result<bool, Error> {
    let conn = tx.conn();
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM provisioned WHERE app = ?1 AND env = ?2) AS found",
        [app, env],
        |r| r.get("found"),
    )?)
}
