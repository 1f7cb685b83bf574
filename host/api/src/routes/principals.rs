//! `/users` and `/role-bindings`: who may use Wharf, and with which roles.

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::body;
use crate::{ApiError, AppState, now};
use axum::extract::Query;
use axum::extract::rejection::JsonRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use wharf_core::roles::{self, Scope};
use wharf_store::auth;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{user}", get(show_user))
        .route("/users/{user}/role-bindings", get(list_bindings))
        .route("/role-bindings", post(bind).delete(unbind))
        .route(
            "/service-accounts",
            get(list_service_accounts).post(create_service_account),
        )
        .route(
            "/principals/{principal}/tokens",
            get(list_tokens).post(create_token),
        )
        .route(
            "/principals/{principal}/tokens/{token}",
            axum::routing::delete(revoke_token),
        )
}

/// A principal id: an e-mail address or another name, without spaces or control
/// characters, at most 254 characters.
fn principal_id(text: &str) -> Result<String, ApiError> {
    if text.is_empty()
        || text.len() > 254
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::BadRequest(format!(
            "id: {text:?} is not a valid principal id (1 to 254 characters, no spaces)"
        )));
    }
    Ok(text.to_string())
}

#[derive(Debug, Serialize)]
struct UserView {
    id: String,
    created_at: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    id: String,
}

/// Lists the principals of `kind` (`user`, `service-account`) if `action` is allowed.
async fn list_principals(
    state: &AppState,
    caller: &Caller,
    kind: &'static str,
    action: &str,
) -> Result<Json<Vec<UserView>>, ApiError> {
    state
        .policies
        .authorize(caller, action, Target::default())
        .await?;
    let principals = state
        .store
        .call(move |conn| auth::list_principals(conn, kind))
        .await?;
    Ok(Json(
        principals
            .into_iter()
            .map(|p| UserView {
                id: p.id,
                created_at: p.created_at,
            })
            .collect(),
    ))
}

/// Creates a principal of `kind` if `action` is allowed.
async fn create_principal(
    state: &AppState,
    caller: &Caller,
    request: Result<Json<NewUser>, JsonRejection>,
    kind: &'static str,
    action: &str,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let id = principal_id(&body(request)?.id)?;
    let target = Target {
        object: Some(id.clone()),
        ..Target::default()
    };
    state.policies.authorize(caller, action, target).await?;
    let created_at = now();
    let stored = id.clone();
    state
        .store
        .call(move |conn| auth::create_principal(conn, &stored, kind, created_at))
        .await?;
    Ok((StatusCode::CREATED, Json(UserView { id, created_at })))
}

async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UserView>>, ApiError> {
    list_principals(&state, &caller, "user", "users.list").await
}

async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    create_principal(&state, &caller, request, "user", "users.create").await
}

async fn list_service_accounts(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UserView>>, ApiError> {
    list_principals(&state, &caller, "service-account", "service-accounts.list").await
}

async fn create_service_account(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    create_principal(
        &state,
        &caller,
        request,
        "service-account",
        "service-accounts.create",
    )
    .await
}

async fn show_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let target = Target {
        object: Some(user.clone()),
        ..Target::default()
    };
    state
        .policies
        .authorize(&caller, "users.get", target)
        .await?;
    let id = user.clone();
    state
        .store
        .call(move |conn| auth::get_principal(conn, &id))
        .await?
        .filter(|p| p.kind == "user")
        .map(|p| {
            Json(UserView {
                id: p.id,
                created_at: p.created_at,
            })
        })
        .ok_or_else(|| ApiError::NotFound(format!("user {user}")))
}

/// A role binding, in requests and responses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Binding {
    principal: String,
    scope: Scope,
    role: String,
}

/// The action a change to `binding` is, and its target: role bindings on an app are the
/// app owner's to manage (`app-members.*`); the others are the org's (`role-bindings.*`).
fn action(binding: &Binding, verb: &str) -> (String, Target) {
    let attributes = json!({ "principal": binding.principal, "role": binding.role });
    match &binding.scope {
        Scope::App(app) => (
            format!("app-members.{verb}"),
            Target {
                app: Some(app.to_string()),
                object: Some(binding.principal.clone()),
                attributes,
                ..Target::default()
            },
        ),
        Scope::EnvType(t) => (
            format!("role-bindings.{verb}"),
            Target {
                env_type: Some(t.to_string()),
                object: Some(binding.principal.clone()),
                attributes,
                ..Target::default()
            },
        ),
        Scope::Org => (
            format!("role-bindings.{verb}"),
            Target {
                object: Some(binding.principal.clone()),
                attributes,
                ..Target::default()
            },
        ),
    }
}

async fn list_bindings(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Json<Vec<Binding>>, ApiError> {
    let target = Target {
        object: Some(user.clone()),
        ..Target::default()
    };
    state
        .policies
        .authorize(&caller, "role-bindings.list", target)
        .await?;
    let id = user.clone();
    let bindings = state
        .store
        .call(move |conn| {
            Ok(match auth::get_principal(conn, &id)? {
                Some(_) => Some(auth::role_bindings(conn, &id)?),
                None => None,
            })
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("principal {user}")))?;
    Ok(Json(
        bindings
            .into_iter()
            .map(|(scope, role)| Binding {
                principal: user.clone(),
                scope,
                role,
            })
            .collect(),
    ))
}

async fn bind(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<Json<Binding>, JsonRejection>,
) -> Result<(StatusCode, Json<Binding>), ApiError> {
    let binding = body(request)?;
    roles::check(&binding.scope, &binding.role)
        .map_err(|e| ApiError::BadRequest(format!("role: {e}")))?;
    let (action, target) = action(&binding, "create");
    state.policies.authorize(&caller, &action, target).await?;
    let stored = binding.clone();
    state
        .store
        .call(move |conn| {
            if auth::get_principal(conn, &stored.principal)?.is_none() {
                return Ok(Err(ApiError::BadRequest(format!(
                    "principal: there is no principal {}",
                    stored.principal
                ))));
            }
            auth::bind_role(conn, &stored.principal, &stored.scope, &stored.role)?;
            Ok(Ok(()))
        })
        .await??;
    Ok((StatusCode::CREATED, Json(binding)))
}

/// The query of `DELETE /role-bindings`: `principal`, `scope` (`org`, `app:ID` or
/// `env-type:ID`) and `role`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingQuery {
    principal: String,
    scope: String,
    role: String,
}

fn parse_scope(text: &str) -> Result<Scope, ApiError> {
    let id =
        |t: &str| wharf_core::Id::new(t).map_err(|e| ApiError::BadRequest(format!("scope: {e}")));
    match text.split_once(':') {
        None if text == "org" => Ok(Scope::Org),
        Some(("app", app)) => Ok(Scope::App(id(app)?)),
        Some(("env-type", t)) => Ok(Scope::EnvType(id(t)?)),
        _ => Err(ApiError::BadRequest(format!(
            "scope: {text:?} is not org, app:ID or env-type:ID"
        ))),
    }
}

async fn unbind(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<BindingQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let binding = Binding {
        scope: parse_scope(&query.scope)?,
        principal: query.principal,
        role: query.role,
    };
    let (action, target) = action(&binding, "delete");
    state.policies.authorize(&caller, &action, target).await?;
    let removed = binding.clone();
    let held = state
        .store
        .call(move |conn| {
            auth::unbind_role(conn, &removed.principal, &removed.scope, &removed.role)
        })
        .await?;
    if held {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "role binding {} at {} for {}",
            binding.role,
            query_scope(&binding.scope),
            binding.principal
        )))
    }
}

fn query_scope(scope: &Scope) -> String {
    match scope {
        Scope::Org => "org".into(),
        Scope::App(app) => format!("app:{app}"),
        Scope::EnvType(t) => format!("env-type:{t}"),
    }
}

/// Authorizes `action` on the tokens of `principal` (which must exist): the target says
/// whose tokens they are and whether that principal is an org admin.
async fn authorize_tokens(
    state: &AppState,
    caller: &Caller,
    action: &str,
    principal: &str,
) -> Result<(), ApiError> {
    let id = principal.to_string();
    let target_is_admin = state
        .store
        .call(move |conn| {
            Ok(match auth::get_principal(conn, &id)? {
                Some(_) => Some(
                    auth::role_bindings(conn, &id)?
                        .iter()
                        .any(|(scope, role)| *scope == Scope::Org && role == "admin"),
                ),
                None => None,
            })
        })
        .await?;
    let target = Target {
        object: Some(principal.to_string()),
        attributes: json!({ "target_is_admin": target_is_admin.unwrap_or(false) }),
        ..Target::default()
    };
    state.policies.authorize(caller, action, target).await?;
    match target_is_admin {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!("principal {principal}"))),
    }
}

#[derive(Debug, Serialize)]
struct TokenView {
    id: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path(principal): Path<String>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    authorize_tokens(&state, &caller, "tokens.list", &principal).await?;
    let tokens = state
        .store
        .call(move |conn| auth::list_tokens(conn, &principal))
        .await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                created_at: t.created_at,
                expires_at: t.expires_at,
                revoked_at: t.revoked_at,
            })
            .collect(),
    ))
}

/// The body of `POST /principals/{principal}/tokens`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    /// Days until the token expires; never when absent.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// A new token: the only time its secret is shown.
#[derive(Debug, Serialize)]
struct CreatedToken {
    id: String,
    token: String,
    expires_at: Option<i64>,
}

async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(principal): Path<String>,
    request: Result<Option<Json<NewToken>>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let new = request
        .map_err(crate::routes::rejection)?
        .map(|Json(n)| n)
        .unwrap_or_default();
    if new.expires_in_days == Some(0) {
        return Err(ApiError::BadRequest(
            "expires_in_days: must be at least 1 (leave it out for a token that does not expire)"
                .into(),
        ));
    }
    authorize_tokens(&state, &caller, "tokens.create", &principal).await?;
    let token = crate::auth::new_token();
    let created_at = now();
    let expires_at = new
        .expires_in_days
        .map(|days| created_at + i64::from(days) * 86_400);
    let (id, hash) = (token.id.clone(), token.hash.clone());
    state
        .store
        .call(move |conn| auth::create_token(conn, &id, &principal, &hash, created_at, expires_at))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: token.id,
            token: token.secret,
            expires_at,
        }),
    ))
}

async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((principal, token)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    authorize_tokens(&state, &caller, "tokens.delete", &principal).await?;
    let (owner, id) = (principal.clone(), token.clone());
    let revoked = state
        .store
        .call(move |conn| auth::revoke_token(conn, &owner, &id, now()))
        .await?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "active token {token} of {principal}"
        )))
    }
}
