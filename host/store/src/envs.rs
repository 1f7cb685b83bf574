//! Environment types and environments.

use crate::Tx;
use crate::column::{json, parsed};
use crate::{Error, is_conflict};
use rusqlite::{OptionalExtension, params};
use wharf_core::Id;

/// An environment type: a class of environments, with the target they deploy to.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvType {
    /// Its id (`development`, `production`).
    pub id: Id,
    /// What it is for.
    pub description: String,
    /// Where its environments run, as JSON (`{"kind": "process"}`).
    pub target: serde_json::Value,
    /// The transformer installations every deployment's objects go through, in order.
    pub transformers: Vec<String>,
    /// Resources provisioned in every environment of the type, whether or not a workload
    /// declares them.
    pub resources: Vec<wharf_core::graph::Implicit>,
    /// When it was created (Unix seconds).
    pub created_at: i64,
}

/// An environment of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// The app.
    pub app: Id,
    /// Its id within the app (`pr-42`).
    pub id: Id,
    /// Its type.
    pub env_type: Id,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// True once its deletion was asked for: it takes no more deployments, and is gone
    /// when its resources are deprovisioned.
    pub deleting: bool,
}

fn conflict(what: String) -> impl FnOnce(rusqlite::Error) -> Error {
    move |e| {
        if is_conflict(&e) {
            Error::Conflict(what)
        } else {
            e.into()
        }
    }
}

/// Creates an environment type; [`Error::Conflict`] when the id is taken.
pub fn create_type(tx: &Tx<'_>, t: &EnvType) -> Result<(), Error> {
    let conn = tx.conn();
    conn.execute(
        "INSERT INTO env_types (id, description, target, transformers, resources, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            t.id.as_str(),
            t.description,
            t.target.to_string(),
            serde_json::to_string(&t.transformers).expect("strings serialize"),
            serde_json::to_string(&t.resources).expect("resources serialize"),
            t.created_at
        ],
    )
    .map_err(conflict(format!("environment type {}", t.id)))?;
    Ok(())
}

/// Replaces the settings of an environment type (all but its id and creation time);
/// true when it exists.
pub fn update_type(tx: &Tx<'_>, t: &EnvType) -> Result<bool, Error> {
    let conn = tx.conn();
    Ok(conn.execute(
        "UPDATE env_types SET description = ?2, target = ?3, transformers = ?4, resources = ?5
          WHERE id = ?1",
        params![
            t.id.as_str(),
            t.description,
            t.target.to_string(),
            serde_json::to_string(&t.transformers).expect("strings serialize"),
            serde_json::to_string(&t.resources).expect("resources serialize"),
        ],
    )? == 1)
}

const TYPE_COLUMNS: &str = "id, description, target, transformers, resources, created_at";

fn env_type(r: &rusqlite::Row<'_>) -> rusqlite::Result<EnvType> {
    Ok(EnvType {
        id: parsed(r, "id")?,
        description: r.get("description")?,
        target: json(r, "target")?,
        transformers: json(r, "transformers")?,
        resources: json(r, "resources")?,
        created_at: r.get("created_at")?,
    })
}

/// The environment type with `id`, if any.
pub fn get_type(tx: &Tx<'_>, id: &str) -> Result<Option<EnvType>, Error> {
    let conn = tx.conn();
    Ok(conn
        .query_row(
            &format!("SELECT {TYPE_COLUMNS} FROM env_types WHERE id = ?1"),
            [id],
            env_type,
        )
        .optional()?)
}

/// Every environment type, by id.
pub fn list_types(tx: &Tx<'_>) -> Result<Vec<EnvType>, Error> {
    let conn = tx.conn();
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {TYPE_COLUMNS} FROM env_types ORDER BY id"))?;
    let rows = stmt.query_map([], env_type)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes an environment type; true when it existed. [`Error::Conflict`] while
/// environments of the type exist.
pub fn delete_type(tx: &Tx<'_>, id: &str) -> Result<bool, Error> {
    let conn = tx.conn();
    let in_use: i64 = conn.query_row(
        "SELECT count(*) AS count FROM environments WHERE env_type = ?1",
        [id],
        |r| r.get("count"),
    )?;
    if in_use > 0 {
        return Err(Error::InUse {
            what: format!("environment type {id}"),
            by: format!("{in_use} environment(s); delete them first"),
        });
    }
    conn.execute(
        "DELETE FROM role_bindings WHERE scope_kind = 'env-type' AND scope_id = ?1",
        [id],
    )?;
    Ok(conn.execute("DELETE FROM env_types WHERE id = ?1", [id])? == 1)
}

/// Creates an environment; [`Error::Conflict`] when the app has one with that id.
pub fn create(tx: &Tx<'_>, e: &Environment) -> Result<(), Error> {
    let conn = tx.conn();
    conn.execute(
        "INSERT INTO environments (app, id, env_type, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            e.app.as_str(),
            e.id.as_str(),
            e.env_type.as_str(),
            e.created_at,
            e.created_by
        ],
    )
    .map_err(conflict(format!("environment {}/{}", e.app, e.id)))?;
    Ok(())
}

const ENV_COLUMNS: &str = "app, id, env_type, created_at, created_by, status";

fn environment(r: &rusqlite::Row<'_>) -> rusqlite::Result<Environment> {
    Ok(Environment {
        app: parsed(r, "app")?,
        id: parsed(r, "id")?,
        env_type: parsed(r, "env_type")?,
        created_at: r.get("created_at")?,
        created_by: r.get("created_by")?,
        deleting: r.get::<_, String>("status")? == "deleting",
    })
}

/// The environment `app/id`, if any.
pub fn get(tx: &Tx<'_>, app: &str, env: &str) -> Result<Option<Environment>, Error> {
    let conn = tx.conn();
    Ok(conn
        .query_row(
            &format!("SELECT {ENV_COLUMNS} FROM environments WHERE app = ?1 AND id = ?2"),
            [app, env],
            environment,
        )
        .optional()?)
}

/// The environments of `app`, by id.
pub fn list(tx: &Tx<'_>, app: &str) -> Result<Vec<Environment>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENV_COLUMNS} FROM environments WHERE app = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([app], environment)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks the environment `app/id` as being deleted; true when it exists.
pub fn mark_deleting(tx: &Tx<'_>, app: &str, env: &str) -> Result<bool, Error> {
    let conn = tx.conn();
    Ok(conn.execute(
        "UPDATE environments SET status = 'deleting' WHERE app = ?1 AND id = ?2",
        [app, env],
    )? == 1)
}

/// Deletes the environment `app/id` with its deployments and resource records; true when
/// it existed.
pub fn delete(tx: &Tx<'_>, app: &str, env: &str) -> Result<bool, Error> {
    let conn = tx.conn();
    Ok(conn.execute(
        "DELETE FROM environments WHERE app = ?1 AND id = ?2",
        [app, env],
    )? == 1)
}
