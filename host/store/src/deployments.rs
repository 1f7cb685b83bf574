//! Deployments: each run that applies a set to an environment (or deletes the
//! environment), with its steps. Numbered from 1 in each environment; times are Unix
//! milliseconds.
//!
//! A deployment is written `queued` with all its steps, in one transaction, before the
//! engine is told about it; the engine then writes each step `running` before acting on
//! it and `done` or `failed` after. So after a crash, what was queued or running is read
//! back by [`pending`] and resumed.

use crate::Error;
use crate::Tx;
use crate::column::{json, optional_json, parsed};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use wharf_core::status::{DeploymentKind, DeploymentStatus, Step as StepName, StepStatus};

/// One step of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Which step it is.
    pub name: StepName,
    /// Where it is.
    pub status: StepStatus,
    /// When it started.
    pub started_at_ms: Option<i64>,
    /// When it finished.
    pub finished_at_ms: Option<i64>,
    /// What it did (a JSON object).
    pub detail: Value,
    /// Why it failed: `{scope, object, message}`.
    pub error: Option<Value>,
}

impl Step {
    /// A step not yet started.
    pub fn pending(name: StepName) -> Self {
        Self {
            name,
            status: StepStatus::Pending,
            started_at_ms: None,
            finished_at_ms: None,
            detail: Value::Object(Default::default()),
            error: None,
        }
    }
}

/// A deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// The app.
    pub app: String,
    /// The environment.
    pub env: String,
    /// Its number in the environment, from 1.
    pub id: i64,
    /// What it does.
    pub kind: DeploymentKind,
    /// The set it applies (empty for a deletion).
    pub set_id: String,
    /// Images given at deploy time, by container (`*` for any): `{"web": "nginx:1"}`.
    pub images: Value,
    /// Why it was made.
    pub comment: String,
    /// Where it is.
    pub status: DeploymentStatus,
    /// Why it failed: `{step, scope, object, message}`.
    pub error: Option<Value>,
    /// When it was asked for.
    pub created_at_ms: i64,
    /// Who asked.
    pub created_by: String,
    /// When the engine started it.
    pub started_at_ms: Option<i64>,
    /// When it finished.
    pub finished_at_ms: Option<i64>,
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

const COLUMNS: &str = "app, env, id, kind, set_id, images, comment, status, error, \
                       created_at_ms, created_by, started_at_ms, finished_at_ms";

fn deployment(r: &rusqlite::Row<'_>) -> rusqlite::Result<Deployment> {
    Ok(Deployment {
        app: r.get("app")?,
        env: r.get("env")?,
        id: r.get("id")?,
        kind: parsed(r, "kind")?,
        set_id: r.get("set_id")?,
        images: json(r, "images")?,
        comment: r.get("comment")?,
        status: parsed(r, "status")?,
        error: optional_json(r, "error")?,
        created_at_ms: r.get("created_at_ms")?,
        created_by: r.get("created_by")?,
        started_at_ms: r.get("started_at_ms")?,
        finished_at_ms: r.get("finished_at_ms")?,
        steps: Vec::new(),
    })
}

/// Writes a new deployment of `app/env` with `steps` and returns its number. The
/// deployment's `id` and `status` fields are ignored: it is numbered after the
/// environment's last one and written `queued`.
pub fn create(tx: &Tx<'_>, d: &Deployment) -> Result<i64, Error> {
    let conn = tx.conn();
    let id: i64 = conn.query_row(
        "SELECT COALESCE(MAX(id), 0) + 1 AS next_id FROM deployments
          WHERE app = ?1 AND env = ?2",
        [&d.app, &d.env],
        |r| r.get("next_id"),
    )?;
    conn.execute(
        &format!("INSERT INTO deployments ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', NULL, ?8, ?9, NULL, NULL)"),
        params![
            d.app,
            d.env,
            id,
            d.kind.as_str(),
            d.set_id,
            d.images.to_string(),
            d.comment,
            d.created_at_ms,
            d.created_by
        ],
    )?;
    for (position, step) in d.steps.iter().enumerate() {
        conn.execute(
            "INSERT INTO deployment_steps
                (app, env, deployment, position, name, status, started_at_ms, finished_at_ms, detail, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                d.app,
                d.env,
                id,
                position as i64,
                step.name.as_str(),
                step.status.as_str(),
                step.started_at_ms,
                step.finished_at_ms,
                step.detail.to_string(),
                step.error.as_ref().map(Value::to_string),
            ],
        )?;
    }
    Ok(id)
}

fn steps(conn: &Connection, app: &str, env: &str, id: i64) -> Result<Vec<Step>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, status, started_at_ms, finished_at_ms, detail, error
           FROM deployment_steps WHERE app = ?1 AND env = ?2 AND deployment = ?3
          ORDER BY position",
    )?;
    let rows = stmt.query_map(params![app, env, id], step)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn step(r: &rusqlite::Row<'_>) -> rusqlite::Result<Step> {
    Ok(Step {
        name: parsed(r, "name")?,
        status: parsed(r, "status")?,
        started_at_ms: r.get("started_at_ms")?,
        finished_at_ms: r.get("finished_at_ms")?,
        detail: json(r, "detail")?,
        error: optional_json(r, "error")?,
    })
}

/// The deployment `id` of `app/env` with its steps, if any.
pub fn get(tx: &Tx<'_>, app: &str, env: &str, id: i64) -> Result<Option<Deployment>, Error> {
    let conn = tx.conn();
    let found = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM deployments WHERE app = ?1 AND env = ?2 AND id = ?3"),
            params![app, env, id],
            deployment,
        )
        .optional()?;
    match found {
        Some(mut d) => {
            d.steps = steps(conn, app, env, id)?;
            Ok(Some(d))
        }
        None => Ok(None),
    }
}

/// The deployments of `app/env`, newest first, without their steps.
pub fn list(tx: &Tx<'_>, app: &str, env: &str) -> Result<Vec<Deployment>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM deployments WHERE app = ?1 AND env = ?2 ORDER BY id DESC"
    ))?;
    let rows = stmt.query_map([app, env], deployment)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every environment with a deployment queued or running, as `(app, env)`, oldest
/// deployment first.
pub fn pending(tx: &Tx<'_>) -> Result<Vec<(String, String)>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(
        "SELECT app, env FROM deployments WHERE status IN ('queued', 'running')
          GROUP BY app, env ORDER BY MIN(created_at_ms), app, env",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get("app")?, r.get("env")?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The next deployment of `app/env` to carry out (the oldest queued or running), with its
/// steps.
pub fn next(tx: &Tx<'_>, app: &str, env: &str) -> Result<Option<Deployment>, Error> {
    let conn = tx.conn();
    let id: Option<i64> = conn
        .query_row(
            "SELECT MIN(id) AS oldest FROM deployments
              WHERE app = ?1 AND env = ?2 AND status IN ('queued', 'running')",
            [app, env],
            |r| r.get("oldest"),
        )
        .optional()?
        .flatten();
    match id {
        Some(id) => get(tx, app, env, id),
        None => Ok(None),
    }
}

/// The last deployment of `app/env` that applied a set and succeeded.
pub fn current(tx: &Tx<'_>, app: &str, env: &str) -> Result<Option<Deployment>, Error> {
    let conn = tx.conn();
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM deployments
              WHERE app = ?1 AND env = ?2 AND kind = 'deploy' AND status = 'succeeded'
              ORDER BY id DESC LIMIT 1"
            ),
            [app, env],
            deployment,
        )
        .optional()?)
}

/// Sets the status of deployment `id` (and its start or finish time, `now_ms`); `error`
/// for a failure.
pub fn set_status(
    tx: &Tx<'_>,
    app: &str,
    env: &str,
    id: i64,
    status: DeploymentStatus,
    error: Option<&Value>,
    now_ms: i64,
) -> Result<(), Error> {
    let conn = tx.conn();
    conn.execute(
        "UPDATE deployments SET status = ?4, error = ?5,
            started_at_ms = CASE WHEN ?4 = 'running' THEN COALESCE(started_at_ms, ?6) ELSE started_at_ms END,
            finished_at_ms = CASE WHEN ?4 IN ('succeeded', 'failed') THEN ?6 ELSE NULL END
          WHERE app = ?1 AND env = ?2 AND id = ?3",
        params![
            app,
            env,
            id,
            status.as_str(),
            error.map(Value::to_string),
            now_ms
        ],
    )?;
    Ok(())
}

/// Writes step `position` of deployment `id`. A step that starts keeps the time it first
/// started (a resumed step was started before the crash).
pub fn set_step(
    tx: &Tx<'_>,
    app: &str,
    env: &str,
    id: i64,
    position: usize,
    step: &Step,
) -> Result<(), Error> {
    let conn = tx.conn();
    conn.prepare_cached(
        "UPDATE deployment_steps SET status = ?5,
            started_at_ms = COALESCE(started_at_ms, ?6), finished_at_ms = ?7,
            detail = ?8, error = ?9
          WHERE app = ?1 AND env = ?2 AND deployment = ?3 AND position = ?4",
    )?
    .execute(params![
        app,
        env,
        id,
        position as i64,
        step.status.as_str(),
        step.started_at_ms,
        step.finished_at_ms,
        step.detail.to_string(),
        step.error.as_ref().map(Value::to_string),
    ])?;
    Ok(())
}
