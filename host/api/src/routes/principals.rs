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

async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UserView>>, ApiError> {
    state
        .policies
        .authorize(&caller, "users.list", Target::default())
        .await?;
    let users = state
        .store
        .call(|conn| auth::list_principals(conn, "user"))
        .await?;
    Ok(Json(
        users
            .into_iter()
            .map(|u| UserView {
                id: u.id,
                created_at: u.created_at,
            })
            .collect(),
    ))
}

async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let id = principal_id(&body(request)?.id)?;
    let target = Target {
        object: Some(id.clone()),
        ..Target::default()
    };
    state
        .policies
        .authorize(&caller, "users.create", target)
        .await?;
    let created_at = now();
    let stored = id.clone();
    state
        .store
        .call(move |conn| auth::create_principal(conn, &stored, "user", created_at))
        .await?;
    Ok((StatusCode::CREATED, Json(UserView { id, created_at })))
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
