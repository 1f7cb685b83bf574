//! Authentication: bearer tokens.
//!
//! A token is `wharf_` followed by 32 random bytes in hex. The store keeps only its
//! sha256, so a leaked database does not leak usable tokens; the token itself is shown
//! once, when it is created.

use crate::{ApiError, AppState};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use wharf_core::clock::now;
use wharf_core::roles::Scope;
use wharf_store::auth::{self, TokenStatus};

/// The prefix of every token, so that secret scanners can recognize one.
pub const TOKEN_PREFIX: &str = "wharf_";

/// A new token: its public id, its secret (shown once) and the hash to store.
pub struct NewToken {
    /// The token's id (used to list and revoke it).
    pub id: String,
    /// The secret the client presents.
    pub secret: String,
    /// What the store keeps.
    pub hash: String,
}

/// Makes a new random token. Its id is random too, drawn apart from the secret: the id is
/// shown in lists and the audit log, and must tell nothing of the secret.
pub fn new_token() -> NewToken {
    let bytes: [u8; 32] = rand::random();
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    NewToken {
        id: hex::encode(rand::random::<[u8; 6]>()),
        hash: hash(&secret),
        secret,
    }
}

/// The sha256 of a token's secret, hex.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The authenticated caller, with every role binding it holds.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Its id.
    pub id: String,
    /// `user` or `service-account`.
    pub kind: String,
    /// Its role bindings.
    pub bindings: Vec<(Scope, String)>,
    /// When the token it presented expires (Unix seconds), if ever: a token it makes may
    /// not live longer.
    pub token_expires_at: Option<i64>,
}

/// A caller the host itself authenticated for this request: the web UI's pages call the
/// API in-process as their viewer, whose session token was checked (revoked and expired
/// tokens refused) when the page's request came in. It is a request extension, which only
/// code in this process can set: nothing on the wire becomes one.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

/// The caller whose token has hash `hash`, with its role bindings; refused as a bearer
/// token would be when the token is revoked, expired or unknown.
pub async fn caller(state: &AppState, hash: String) -> Result<Caller, ApiError> {
    let now = now();
    let (status, bindings) = state
        .store
        .call(move |conn| {
            let status = auth::token_status(conn, &hash, now)?;
            let bindings = match &status {
                TokenStatus::Valid { principal, .. } => auth::role_bindings(conn, principal)?,
                _ => Vec::new(),
            };
            Ok((status, bindings))
        })
        .await?;
    match status {
        TokenStatus::Valid {
            principal,
            kind,
            expires_at,
        } => Ok(Caller {
            id: principal,
            kind,
            bindings,
            token_expires_at: expires_at,
        }),
        TokenStatus::Revoked => Err(ApiError::Unauthenticated("the token was revoked".into())),
        TokenStatus::Expired => Err(ApiError::Unauthenticated("the token has expired".into())),
        TokenStatus::Unknown => Err(ApiError::Unauthenticated("the token is not valid".into())),
    }
}

/// Principal `principal` as a caller, with the role bindings it holds now: what the
/// server acts as when it carries out what a principal set up earlier (an automation
/// rule deploys with its owner's rights). Refused when the principal no longer exists.
pub async fn principal_caller(state: &AppState, principal: &str) -> Result<Caller, ApiError> {
    let id = principal.to_string();
    let found = state
        .store
        .call(move |conn| {
            Ok(match auth::get_principal(conn, &id)? {
                Some(p) => Some((p.kind, auth::role_bindings(conn, &id)?)),
                None => None,
            })
        })
        .await?;
    let (kind, bindings) = found.ok_or_else(|| {
        ApiError::Unauthenticated(format!("principal {principal} no longer exists"))
    })?;
    Ok(Caller {
        id: principal.to_string(),
        kind,
        bindings,
        token_expires_at: None,
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(Authenticated(caller)) = parts.extensions.get::<Authenticated>() {
            return Ok(caller.clone());
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::Unauthenticated(
                    "no credentials: send `Authorization: Bearer <token>`".into(),
                )
            })?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthenticated(
                    "the Authorization header must be `Bearer <token>`".into(),
                )
            })?;
        caller(state, hash(secret)).await
    }
}

/// The principal created on first start, with the org `admin` role.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// On a store with no principal (a new Wharf), creates the bootstrap admin and a token for
/// it, and the default `development` environment type bound to the local process target;
/// returns the token's secret (to be shown once). The token is `given` when there is one
/// (automation provisions it from a file), else random. On any other store, does nothing.
pub async fn bootstrap(
    store: &wharf_store::Store,
    given: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let mut token = new_token();
    if let Some(secret) = given {
        let secret = secret.trim();
        if secret.len() < 32 || secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ApiError::BadRequest(
                "the bootstrap token must be at least 32 visible characters".into(),
            ));
        }
        token.secret = secret.to_string();
        token.hash = hash(secret);
    }
    let now = now();
    let created = store
        .transaction(move |tx| {
            if auth::count_principals(tx)? > 0 {
                return Ok(false);
            }
            auth::create_principal(tx, BOOTSTRAP_ADMIN, "user", now)?;
            auth::bind_role(tx, BOOTSTRAP_ADMIN, &Scope::Org, "admin")?;
            auth::create_token(tx, &token.id, BOOTSTRAP_ADMIN, &token.hash, now, None)?;
            if wharf_store::envs::get_type(tx, "development")?.is_none() {
                wharf_store::envs::create_type(
                    tx,
                    &wharf_store::envs::EnvType {
                        id: wharf_core::Id::new("development").expect("a valid id"),
                        description: "Local processes on the Wharf host".into(),
                        target: serde_json::json!({ "kind": "process" }),
                        transformers: Vec::new(),
                        resources: Vec::new(),
                        previews: Default::default(),
                        created_at: now,
                    },
                )?;
            }
            Ok(true)
        })
        .await?;
    Ok(created.then_some(token.secret))
}
