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
    /// What the type allows its preview environments (those with a time to live).
    pub previews: Previews,
    /// When it was created (Unix seconds).
    pub created_at: i64,
}

/// What an environment type allows its preview environments: the environments created
/// with a time to live, which the server deletes when it runs out.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Previews {
    /// The longest time to live a preview may be given (seconds); none when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttl: Option<i64>,
    /// How many previews of the type one app may have at once; no limit when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_app: Option<u32>,
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
    /// Its time to live and whether it is paused.
    pub lifecycle: Lifecycle,
}

/// What happens to an environment over time: a preview's time to live, a pause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// Its time to live (seconds): each deployment moves its expiry that far ahead.
    pub ttl: Option<i64>,
    /// When it expires and is deleted (Unix seconds).
    pub expires_at: Option<i64>,
    /// When the warning that it expires was given (Unix seconds).
    pub warned_at: Option<i64>,
    /// When it was paused (Unix seconds), while it is.
    pub paused_at: Option<i64>,
    /// Who paused it, while it is.
    pub paused_by: Option<String>,
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
        "INSERT INTO env_types (id, description, target, transformers, resources, previews,
                                created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            t.id.as_str(),
            t.description,
            t.target.to_string(),
            serde_json::to_string(&t.transformers).expect("strings serialize"),
            serde_json::to_string(&t.resources).expect("resources serialize"),
            serde_json::to_string(&t.previews).expect("limits serialize"),
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
        "UPDATE env_types SET description = ?2, target = ?3, transformers = ?4, resources = ?5,
                              previews = ?6
          WHERE id = ?1",
        params![
            t.id.as_str(),
            t.description,
            t.target.to_string(),
            serde_json::to_string(&t.transformers).expect("strings serialize"),
            serde_json::to_string(&t.resources).expect("resources serialize"),
            serde_json::to_string(&t.previews).expect("limits serialize"),
        ],
    )? == 1)
}

const TYPE_COLUMNS: &str = "id, description, target, transformers, resources, previews, created_at";

fn env_type(r: &rusqlite::Row<'_>) -> rusqlite::Result<EnvType> {
    Ok(EnvType {
        id: parsed(r, "id")?,
        description: r.get("description")?,
        target: json(r, "target")?,
        transformers: json(r, "transformers")?,
        resources: json(r, "resources")?,
        previews: json(r, "previews")?,
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
        "INSERT INTO environments (app, id, env_type, created_at, created_by, ttl, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            e.app.as_str(),
            e.id.as_str(),
            e.env_type.as_str(),
            e.created_at,
            e.created_by,
            e.lifecycle.ttl,
            e.lifecycle.expires_at,
        ],
    )
    .map_err(conflict(format!("environment {}/{}", e.app, e.id)))?;
    Ok(())
}

const ENV_COLUMNS: &str = "app, id, env_type, created_at, created_by, status, ttl, expires_at, \
                           warned_at, paused_at, paused_by";

fn environment(r: &rusqlite::Row<'_>) -> rusqlite::Result<Environment> {
    Ok(Environment {
        app: parsed(r, "app")?,
        id: parsed(r, "id")?,
        env_type: parsed(r, "env_type")?,
        created_at: r.get("created_at")?,
        created_by: r.get("created_by")?,
        deleting: r.get::<_, String>("status")? == "deleting",
        lifecycle: Lifecycle {
            ttl: r.get("ttl")?,
            expires_at: r.get("expires_at")?,
            warned_at: r.get("warned_at")?,
            paused_at: r.get("paused_at")?,
            paused_by: r.get("paused_by")?,
        },
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

/// Moves the expiry of `app/env` its time to live past `now` (never earlier than it was),
/// and takes back the warning that it expires; environments without a time to live are
/// left alone. Each deployment calls it.
pub fn extend(tx: &Tx<'_>, app: &str, env: &str, now: i64) -> Result<(), Error> {
    tx.conn().execute(
        "UPDATE environments SET expires_at = max(coalesce(expires_at, 0), ?3 + ttl),
                                 warned_at = NULL
          WHERE app = ?1 AND id = ?2 AND ttl IS NOT NULL",
        params![app, env, now],
    )?;
    Ok(())
}

/// Gives `app/env` a time to live of `ttl` seconds from `now`; `None` takes it away.
pub fn set_ttl(
    tx: &Tx<'_>,
    app: &str,
    env: &str,
    ttl: Option<i64>,
    now: i64,
) -> Result<bool, Error> {
    Ok(tx.conn().execute(
        "UPDATE environments SET ttl = ?3, expires_at = ?3 + ?4, warned_at = NULL
          WHERE app = ?1 AND id = ?2",
        params![app, env, ttl, now],
    )? == 1)
}

/// Marks `app/env` paused by `by` at `at`, or (with `None`) running again; true when it
/// exists.
pub fn set_paused(
    tx: &Tx<'_>,
    app: &str,
    env: &str,
    paused: Option<(i64, &str)>,
) -> Result<bool, Error> {
    let (at, by) = paused.map_or((None, None), |(at, by)| (Some(at), Some(by)));
    Ok(tx.conn().execute(
        "UPDATE environments SET paused_at = ?3, paused_by = ?4 WHERE app = ?1 AND id = ?2",
        params![app, env, at, by],
    )? == 1)
}

/// The environments (not being deleted) that expire at or before `at`, not yet warned
/// when `unwarned`.
pub fn expiring(tx: &Tx<'_>, at: i64, unwarned: bool) -> Result<Vec<Environment>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENV_COLUMNS} FROM environments
          WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at <= ?1
            AND (?2 = 0 OR warned_at IS NULL)
          ORDER BY expires_at LIMIT 100"
    ))?;
    let rows = stmt.query_map(params![at, unwarned], environment)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records that the warning that `app/env` expires was given at `at`.
pub fn mark_warned(tx: &Tx<'_>, app: &str, env: &str, at: i64) -> Result<(), Error> {
    tx.conn().execute(
        "UPDATE environments SET warned_at = ?3 WHERE app = ?1 AND id = ?2",
        params![app, env, at],
    )?;
    Ok(())
}

/// How many preview environments (those with a time to live) `app` has of `env_type`.
pub fn count_previews(tx: &Tx<'_>, app: &str, env_type: &str) -> Result<i64, Error> {
    Ok(tx.conn().query_row(
        "SELECT count(*) FROM environments WHERE app = ?1 AND env_type = ?2 AND ttl IS NOT NULL",
        [app, env_type],
        |r| r.get(0),
    )?)
}

/// The environments marked paused, as `(app, env)`.
pub fn paused(tx: &Tx<'_>) -> Result<Vec<(String, String)>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(
        "SELECT app, id FROM environments WHERE paused_at IS NOT NULL AND status = 'active'",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
