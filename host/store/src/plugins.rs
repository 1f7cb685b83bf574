//! Plugins (uploaded components with their manifest) and their installations.

use crate::Tx;
use crate::column::{json, parsed};
use crate::{Error, is_conflict};
use rusqlite::{OptionalExtension, params};
use serde_json::Value;
use wharf_core::Kind;

/// An uploaded component.
#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    /// Its id.
    pub id: String,
    /// What it is.
    pub kind: Kind,
    /// The version it reports.
    pub version: String,
    /// The sha256 of the component, hex.
    pub digest: String,
    /// The manifest it was uploaded with (capabilities it requests, limits), as JSON.
    pub manifest: Value,
    /// What the component says about itself (`describe`), as JSON.
    pub info: Value,
    /// Whether it ships with Wharf.
    pub bundled: bool,
    /// When it was uploaded (Unix seconds).
    pub created_at: i64,
    /// Who uploaded it.
    pub created_by: String,
}

/// An installation: a plugin with its configuration and the capabilities granted to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Installation {
    /// Its id.
    pub id: String,
    /// The plugin it runs.
    pub plugin: String,
    /// The configuration, as the plugin validated it.
    pub config: Value,
    /// The capabilities granted (a subset of those the manifest requests), as JSON.
    pub grants: Value,
    /// Whether it takes part (in the policy chain, in matching, in transformations).
    pub enabled: bool,
    /// Its place in its chain: lower runs first.
    pub position: i64,
    /// Bumped by every change; the API's `ETag`.
    pub revision: i64,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it was last changed (Unix seconds).
    pub updated_at: i64,
    /// Who changed it last.
    pub updated_by: String,
}

const PLUGIN_COLUMNS: &str =
    "id, kind, version, digest, manifest, info, bundled, created_at, created_by";

fn plugin(r: &rusqlite::Row<'_>) -> rusqlite::Result<Plugin> {
    Ok(Plugin {
        id: r.get("id")?,
        kind: parsed(r, "kind")?,
        version: r.get("version")?,
        digest: r.get("digest")?,
        manifest: json(r, "manifest")?,
        info: json(r, "info")?,
        bundled: r.get("bundled")?,
        created_at: r.get("created_at")?,
        created_by: r.get("created_by")?,
    })
}

/// Stores a plugin and its component; [`Error::Conflict`] when the id is taken.
pub fn create(tx: &Tx<'_>, p: &Plugin, component: &[u8]) -> Result<(), Error> {
    let conn = tx.conn();
    conn.execute(
        "INSERT INTO plugins (id, kind, version, digest, component, manifest, info, bundled,
                              created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            p.id,
            p.kind.as_str(),
            p.version,
            p.digest,
            component,
            p.manifest.to_string(),
            p.info.to_string(),
            p.bundled,
            p.created_at,
            p.created_by
        ],
    )
    .map_err(|e| {
        if is_conflict(&e) {
            Error::Conflict(format!("plugin {}", p.id))
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// Replaces a bundled plugin's component (after an upgrade of Wharf).
pub fn replace_bundled(tx: &Tx<'_>, p: &Plugin, component: &[u8]) -> Result<(), Error> {
    let conn = tx.conn();
    conn.execute(
        "UPDATE plugins SET version = ?2, digest = ?3, component = ?4, manifest = ?5, info = ?6
         WHERE id = ?1 AND bundled = 1",
        params![
            p.id,
            p.version,
            p.digest,
            component,
            p.manifest.to_string(),
            p.info.to_string()
        ],
    )?;
    Ok(())
}

/// The plugin with `id`, if any.
pub fn get(tx: &Tx<'_>, id: &str) -> Result<Option<Plugin>, Error> {
    let conn = tx.conn();
    Ok(conn
        .query_row(
            &format!("SELECT {PLUGIN_COLUMNS} FROM plugins WHERE id = ?1"),
            [id],
            plugin,
        )
        .optional()?)
}

/// The component of the plugin with `id`, if any.
pub fn component(tx: &Tx<'_>, id: &str) -> Result<Option<Vec<u8>>, Error> {
    let conn = tx.conn();
    Ok(conn
        .query_row("SELECT component FROM plugins WHERE id = ?1", [id], |r| {
            r.get("component")
        })
        .optional()?)
}

/// Every plugin, by id.
pub fn list(tx: &Tx<'_>) -> Result<Vec<Plugin>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare(&format!("SELECT {PLUGIN_COLUMNS} FROM plugins ORDER BY id"))?;
    let rows = stmt.query_map([], plugin)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes a plugin; [`Error::InUse`] while an installation runs it. False when there was
/// none.
pub fn delete(tx: &Tx<'_>, id: &str) -> Result<bool, Error> {
    let conn = tx.conn();
    let users: Vec<String> = {
        let mut stmt =
            conn.prepare("SELECT id FROM installations WHERE plugin = ?1 ORDER BY id")?;
        stmt.query_map([id], |r| r.get("id"))?
            .collect::<Result<_, _>>()?
    };
    if !users.is_empty() {
        return Err(Error::InUse {
            what: format!("plugin {id}"),
            by: format!("installation(s) {}", users.join(", ")),
        });
    }
    Ok(conn.execute("DELETE FROM plugins WHERE id = ?1", [id])? > 0)
}

const INSTALLATION_COLUMNS: &str = "id, plugin, config, grants, enabled, position, revision, \
                                    created_at, updated_at, updated_by";

fn installation(r: &rusqlite::Row<'_>) -> rusqlite::Result<Installation> {
    Ok(Installation {
        id: r.get("id")?,
        plugin: r.get("plugin")?,
        config: json(r, "config")?,
        grants: json(r, "grants")?,
        enabled: r.get("enabled")?,
        position: r.get("position")?,
        revision: r.get("revision")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        updated_by: r.get("updated_by")?,
    })
}

/// Stores an installation; [`Error::Conflict`] when the id is taken.
pub fn install(tx: &Tx<'_>, i: &Installation) -> Result<(), Error> {
    let conn = tx.conn();
    conn.execute(
        &format!(
            "INSERT INTO installations ({INSTALLATION_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            i.id,
            i.plugin,
            i.config.to_string(),
            i.grants.to_string(),
            i.enabled,
            i.position,
            i.revision,
            i.created_at,
            i.updated_at,
            i.updated_by
        ],
    )
    .map_err(|e| {
        if is_conflict(&e) {
            Error::Conflict(format!("installation {}", i.id))
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// Writes the changeable fields of an installation (config, grants, enabled, position),
/// stamping the new revision.
pub fn update(tx: &Tx<'_>, i: &Installation) -> Result<(), Error> {
    let conn = tx.conn();
    conn.execute(
        "UPDATE installations SET config = ?2, grants = ?3, enabled = ?4, position = ?5,
                revision = ?6, updated_at = ?7, updated_by = ?8
         WHERE id = ?1",
        params![
            i.id,
            i.config.to_string(),
            i.grants.to_string(),
            i.enabled,
            i.position,
            i.revision,
            i.updated_at,
            i.updated_by
        ],
    )?;
    Ok(())
}

/// The installation with `id`, if any.
pub fn installation_by_id(tx: &Tx<'_>, id: &str) -> Result<Option<Installation>, Error> {
    let conn = tx.conn();
    Ok(conn
        .query_row(
            &format!("SELECT {INSTALLATION_COLUMNS} FROM installations WHERE id = ?1"),
            [id],
            installation,
        )
        .optional()?)
}

/// Every installation, in chain order (position, then id).
pub fn installations(tx: &Tx<'_>) -> Result<Vec<Installation>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare(&format!(
        "SELECT {INSTALLATION_COLUMNS} FROM installations ORDER BY position, id"
    ))?;
    let rows = stmt.query_map([], installation)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The enabled installations of plugins of `kind`, in chain order, with their plugin.
pub fn enabled_of_kind(tx: &Tx<'_>, kind: Kind) -> Result<Vec<Installation>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare(
        "SELECT i.id, i.plugin, i.config, i.grants, i.enabled, i.position, i.revision,
                i.created_at, i.updated_at, i.updated_by
         FROM installations i JOIN plugins p ON p.id = i.plugin
         WHERE i.enabled = 1 AND p.kind = ?1 ORDER BY i.position, i.id",
    )?;
    let rows = stmt.query_map([kind.as_str()], installation)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes an installation; [`Error::InUse`] while a resource definition names it as its
/// driver. False when there was none.
pub fn uninstall(tx: &Tx<'_>, id: &str) -> Result<bool, Error> {
    let conn = tx.conn();
    let users: Vec<String> = {
        let mut stmt =
            conn.prepare("SELECT id FROM resource_definitions WHERE driver = ?1 ORDER BY id")?;
        stmt.query_map([id], |r| r.get("id"))?
            .collect::<Result<_, _>>()?
    };
    if !users.is_empty() {
        return Err(Error::InUse {
            what: format!("installation {id}"),
            by: format!("resource definition(s) {}", users.join(", ")),
        });
    }
    Ok(conn.execute("DELETE FROM installations WHERE id = ?1", [id])? > 0)
}
