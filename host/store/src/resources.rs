//! Resource types and resource definitions (every version kept).

use crate::Tx;
use crate::column::json;
use crate::{Error, is_conflict};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

/// A resource type (`postgres`, `dns`, `s3`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// Its id.
    pub id: String,
    /// What it is.
    pub description: String,
    /// The JSON Schema of the outputs a driver must produce for it.
    pub outputs: Value,
    /// When it was created (Unix seconds).
    pub created_at: i64,
}

/// A resource definition: which driver installation provisions a resource type, with what
/// inputs, where (its criteria).
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// Its id.
    pub id: String,
    /// The resource type it provisions.
    pub res_type: String,
    /// The driver installation that provisions it.
    pub driver: String,
    /// Everything else (description, driver inputs, criteria), as JSON.
    pub body: Value,
    /// Its version: 1 when created, bumped by every update.
    pub version: i64,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When this version was written (Unix seconds).
    pub updated_at: i64,
    /// Who wrote this version.
    pub updated_by: String,
}

/// Whether what `d` provisioned is forgotten rather than deprovisioned when it is no
/// longer used (its `deletion_policy` is `orphan`).
pub fn orphans_on_deletion(d: &Definition) -> bool {
    d.body["deletion_policy"] == "orphan"
}

/// Where a definition's sealed secrets are bound.
pub fn secrets_context(definition: &str) -> String {
    format!("resource-definition/secrets:{definition}")
}

/// The driver inputs of a definition, `{"values": {...}, "secrets": {...}}`, with its
/// secrets unsealed.
pub fn driver_inputs(sealer: &crate::secrets::Sealer, d: &Definition) -> Result<Value, Error> {
    let inputs = &d.body["driver_inputs"];
    let secrets = match inputs["secrets_sealed"].as_str() {
        Some(text) => {
            use base64::Engine as _;
            let sealed = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| Error::Corrupt(format!("sealed secrets of {}: {e}", d.id)))?;
            let bytes = sealer.open(&sealed, &secrets_context(&d.id))?;
            serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(e.to_string()))?
        }
        None => Value::Object(Default::default()),
    };
    let values = match &inputs["values"] {
        Value::Null => Value::Object(Default::default()),
        v => v.clone(),
    };
    Ok(serde_json::json!({ "values": values, "secrets": secrets }))
}

/// Creates a resource type; [`Error::Conflict`] when the id is taken.
pub fn create_type(tx: &Tx<'_>, t: &ResourceType) -> Result<(), Error> {
    let conn = tx.conn();
    conn.execute(
        "INSERT INTO resource_types (id, description, outputs, created_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![t.id, t.description, t.outputs.to_string(), t.created_at],
    )
    .map_err(|e| {
        if is_conflict(&e) {
            Error::Conflict(format!("resource type {}", t.id))
        } else {
            e.into()
        }
    })?;
    Ok(())
}

fn res_type(r: &rusqlite::Row<'_>) -> rusqlite::Result<ResourceType> {
    Ok(ResourceType {
        id: r.get("id")?,
        description: r.get("description")?,
        outputs: json(r, "outputs")?,
        created_at: r.get("created_at")?,
    })
}

/// The resource type with `id`, if any.
pub fn get_type(tx: &Tx<'_>, id: &str) -> Result<Option<ResourceType>, Error> {
    let conn = tx.conn();
    Ok(conn
        .query_row(
            "SELECT id, description, outputs, created_at FROM resource_types WHERE id = ?1",
            [id],
            res_type,
        )
        .optional()?)
}

/// Every resource type, by id.
pub fn list_types(tx: &Tx<'_>) -> Result<Vec<ResourceType>, Error> {
    let conn = tx.conn();
    let mut stmt = conn
        .prepare("SELECT id, description, outputs, created_at FROM resource_types ORDER BY id")?;
    let rows = stmt.query_map([], res_type)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes a resource type; [`Error::InUse`] while definitions provision it. False when
/// there was none.
pub fn delete_type(tx: &Tx<'_>, id: &str) -> Result<bool, Error> {
    let conn = tx.conn();
    let users = ids(
        conn,
        "SELECT id FROM resource_definitions WHERE type = ?1 ORDER BY id",
        id,
    )?;
    if !users.is_empty() {
        return Err(Error::InUse {
            what: format!("resource type {id}"),
            by: format!("resource definition(s) {}", users.join(", ")),
        });
    }
    Ok(conn.execute("DELETE FROM resource_types WHERE id = ?1", [id])? > 0)
}

/// The `id` column of the rows `sql` selects with `key` as its parameter.
fn ids(conn: &Connection, sql: &str, key: &str) -> Result<Vec<String>, Error> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([key], |r| r.get("id"))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const DEFINITION_COLUMNS: &str =
    "id, type, driver, body, version, created_at, updated_at, updated_by";

fn definition(r: &rusqlite::Row<'_>) -> rusqlite::Result<Definition> {
    Ok(Definition {
        id: r.get("id")?,
        res_type: r.get("type")?,
        driver: r.get("driver")?,
        body: json(r, "body")?,
        version: r.get("version")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        updated_by: r.get("updated_by")?,
    })
}

/// Writes `d` as a new version: inserts it when `d.version` is 1, else replaces the current
/// row. Every version is also kept in the history. [`Error::Conflict`] when a definition
/// with the id exists and `d.version` is 1.
pub fn put_definition(tx: &Tx<'_>, d: &Definition) -> Result<(), Error> {
    let conn = tx.conn();
    let body = d.body.to_string();
    if d.version == 1 {
        conn.execute(
            &format!(
                "INSERT INTO resource_definitions ({DEFINITION_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ),
            params![
                d.id,
                d.res_type,
                d.driver,
                body,
                d.version,
                d.created_at,
                d.updated_at,
                d.updated_by
            ],
        )
        .map_err(|e| {
            if is_conflict(&e) {
                Error::Conflict(format!("resource definition {}", d.id))
            } else {
                e.into()
            }
        })?;
    } else {
        conn.execute(
            "UPDATE resource_definitions SET driver = ?2, body = ?3, version = ?4,
                    updated_at = ?5, updated_by = ?6
             WHERE id = ?1",
            params![d.id, d.driver, body, d.version, d.updated_at, d.updated_by],
        )?;
    }
    let full = serde_json::json!({ "type": d.res_type, "driver": d.driver, "body": d.body });
    conn.execute(
        "INSERT INTO resource_definition_versions (id, version, body, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            d.id,
            d.version,
            full.to_string(),
            d.updated_at,
            d.updated_by
        ],
    )?;
    Ok(())
}

/// The current version of the definition with `id`, if any.
pub fn get_definition(tx: &Tx<'_>, id: &str) -> Result<Option<Definition>, Error> {
    let conn = tx.conn();
    Ok(conn
        .query_row(
            &format!("SELECT {DEFINITION_COLUMNS} FROM resource_definitions WHERE id = ?1"),
            [id],
            definition,
        )
        .optional()?)
}

/// Every definition (current versions), by id.
pub fn list_definitions(tx: &Tx<'_>) -> Result<Vec<Definition>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare(&format!(
        "SELECT {DEFINITION_COLUMNS} FROM resource_definitions ORDER BY id"
    ))?;
    let rows = stmt.query_map([], definition)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One past version of a definition, as written then.
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionVersion {
    /// The version.
    pub version: i64,
    /// `{"type", "driver", "body"}` as they were.
    pub content: Value,
    /// When it was written (Unix seconds).
    pub created_at: i64,
    /// Who wrote it.
    pub created_by: String,
}

/// Every version of the definition with `id`, oldest first.
pub fn definition_versions(tx: &Tx<'_>, id: &str) -> Result<Vec<DefinitionVersion>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare(
        "SELECT version, body, created_at, created_by FROM resource_definition_versions
         WHERE id = ?1 ORDER BY version",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(DefinitionVersion {
            version: r.get("version")?,
            content: json(r, "body")?,
            created_at: r.get("created_at")?,
            created_by: r.get("created_by")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes a definition and its history. False when there was none.
pub fn delete_definition(tx: &Tx<'_>, id: &str) -> Result<bool, Error> {
    let conn = tx.conn();
    Ok(conn.execute("DELETE FROM resource_definitions WHERE id = ?1", [id])? > 0)
}
