//! Principals, API tokens and role bindings.

use crate::Tx;
use crate::column::{invalid, parsed};
use crate::{Error, is_conflict};
use rusqlite::{OptionalExtension, params};
use wharf_core::roles::Scope;

/// What a presented token turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenStatus {
    /// Valid: it belongs to this principal.
    Valid {
        /// The principal's id.
        principal: String,
        /// `user` or `service-account`.
        kind: String,
        /// When the token expires (Unix seconds), if ever.
        expires_at: Option<i64>,
    },
    /// It was revoked.
    Revoked,
    /// It expired.
    Expired,
    /// No such token.
    Unknown,
}

/// How many principals exist (none means the store is new: time for the bootstrap token).
pub fn count_principals(tx: &Tx<'_>) -> Result<i64, Error> {
    let conn = tx.conn();
    let principals = conn.query_row("SELECT count(*) AS count FROM principals", [], |r| {
        r.get("count")
    })?;
    Ok(principals)
}

/// Creates a principal.
pub fn create_principal(tx: &Tx<'_>, id: &str, kind: &str, now: i64) -> Result<(), Error> {
    let conn = tx.conn();
    conn.execute(
        "INSERT INTO principals (id, kind, created_at) VALUES (?1, ?2, ?3)",
        params![id, kind, now],
    )
    .map_err(|e| {
        if is_conflict(&e) {
            Error::Conflict(format!("principal {id}"))
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// Stores a token by the sha256 of its secret; the secret itself is never stored.
pub fn create_token(
    tx: &Tx<'_>,
    id: &str,
    principal: &str,
    hash: &str,
    now: i64,
    expires_at: Option<i64>,
) -> Result<(), Error> {
    let conn = tx.conn();
    conn.execute(
        "INSERT INTO tokens (id, principal, hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, principal, hash, now, expires_at],
    )?;
    Ok(())
}

/// Revokes a token of `principal`; true when it existed and was not revoked yet.
pub fn revoke_token(tx: &Tx<'_>, principal: &str, id: &str, now: i64) -> Result<bool, Error> {
    let conn = tx.conn();
    let changed = conn.execute(
        "UPDATE tokens SET revoked_at = ?3
          WHERE principal = ?1 AND id = ?2 AND revoked_at IS NULL",
        params![principal, id, now],
    )?;
    Ok(changed == 1)
}

/// A token, without its secret (which is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Its id.
    pub id: String,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it expires, if ever.
    pub expires_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// The tokens of `principal`, newest first.
pub fn list_tokens(tx: &Tx<'_>, principal: &str) -> Result<Vec<TokenRow>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(
        "SELECT id, created_at, expires_at, revoked_at FROM tokens
          WHERE principal = ?1 ORDER BY created_at DESC, id",
    )?;
    let rows = stmt.query_map([principal], |r| {
        Ok(TokenRow {
            id: r.get("id")?,
            created_at: r.get("created_at")?,
            expires_at: r.get("expires_at")?,
            revoked_at: r.get("revoked_at")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Looks up a token by the sha256 of its secret.
pub fn token_status(tx: &Tx<'_>, hash: &str, now: i64) -> Result<TokenStatus, Error> {
    let conn = tx.conn();
    let status = conn
        .query_row(
            "SELECT t.principal, p.kind, t.expires_at, t.revoked_at
               FROM tokens t JOIN principals p ON p.id = t.principal
              WHERE t.hash = ?1",
            [hash],
            |r| {
                let principal: String = r.get("principal")?;
                let kind: String = r.get("kind")?;
                let expires_at: Option<i64> = r.get("expires_at")?;
                let revoked_at: Option<i64> = r.get("revoked_at")?;
                Ok(match (expires_at, revoked_at) {
                    (_, Some(_)) => TokenStatus::Revoked,
                    (Some(expires), None) if expires <= now => TokenStatus::Expired,
                    (expires_at, None) => TokenStatus::Valid {
                        principal,
                        kind,
                        expires_at,
                    },
                })
            },
        )
        .optional()?;
    Ok(status.unwrap_or(TokenStatus::Unknown))
}

/// Grants `role` at `scope` to a principal (granting it twice is not an error).
pub fn bind_role(tx: &Tx<'_>, principal: &str, scope: &Scope, role: &str) -> Result<(), Error> {
    let conn = tx.conn();
    let (kind, id) = scope_columns(scope);
    conn.execute(
        "INSERT OR IGNORE INTO role_bindings (principal, scope_kind, scope_id, role)
         VALUES (?1, ?2, ?3, ?4)",
        params![principal, kind, id, role],
    )?;
    Ok(())
}

/// Every role binding of a principal.
pub fn role_bindings(tx: &Tx<'_>, principal: &str) -> Result<Vec<(Scope, String)>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(
        "SELECT scope_kind, scope_id, role FROM role_bindings WHERE principal = ?1
         ORDER BY scope_kind, scope_id, role",
    )?;
    let rows = stmt.query_map([principal], |r| Ok((scope(r)?, r.get("role")?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The scope a role binding's `scope_kind` and `scope_id` name.
fn scope(r: &rusqlite::Row<'_>) -> rusqlite::Result<Scope> {
    let kind: String = r.get("scope_kind")?;
    Ok(match kind.as_str() {
        "org" => Scope::Org,
        "app" => Scope::App(parsed(r, "scope_id")?),
        "env-type" => Scope::EnvType(parsed(r, "scope_id")?),
        other => {
            return Err(invalid(
                r,
                "scope_kind",
                format_args!("unknown scope kind {other:?}"),
            ));
        }
    })
}

fn scope_columns(scope: &Scope) -> (&'static str, &str) {
    match scope {
        Scope::Org => ("org", ""),
        Scope::App(id) => ("app", id.as_str()),
        Scope::EnvType(id) => ("env-type", id.as_str()),
    }
}

/// A principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRow {
    /// Its id.
    pub id: String,
    /// `user` or `service-account`.
    pub kind: String,
    /// When it was created (Unix seconds).
    pub created_at: i64,
}

fn principal_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PrincipalRow> {
    Ok(PrincipalRow {
        id: r.get("id")?,
        kind: r.get("kind")?,
        created_at: r.get("created_at")?,
    })
}

/// The principals of `kind`, by id.
pub fn list_principals(tx: &Tx<'_>, kind: &str) -> Result<Vec<PrincipalRow>, Error> {
    let conn = tx.conn();
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, created_at FROM principals WHERE kind = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([kind], principal_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The principal with `id`, if any.
pub fn get_principal(tx: &Tx<'_>, id: &str) -> Result<Option<PrincipalRow>, Error> {
    let conn = tx.conn();
    Ok(conn
        .query_row(
            "SELECT id, kind, created_at FROM principals WHERE id = ?1",
            [id],
            principal_row,
        )
        .optional()?)
}

/// Revokes `role` at `scope` from a principal; true when it was held.
pub fn unbind_role(tx: &Tx<'_>, principal: &str, scope: &Scope, role: &str) -> Result<bool, Error> {
    let conn = tx.conn();
    let (kind, id) = scope_columns(scope);
    Ok(conn.execute(
        "DELETE FROM role_bindings
          WHERE principal = ?1 AND scope_kind = ?2 AND scope_id = ?3 AND role = ?4",
        params![principal, kind, id, role],
    )? == 1)
}
