//! `/users` and `/role-bindings`: who may use Wharf, and with which roles.

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::{Body, Page, PageQuery, audit, page};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::clock::now;
use wharf_core::roles::{self, Scope};
use wharf_store::auth;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(show_user))
        .routes(routes!(list_bindings))
        .routes(routes!(bind, unbind))
        .routes(routes!(list_service_accounts, create_service_account))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
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

/// A user or a service account.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    id: String,
    created_at: i64,
}

/// The body of `POST /users` and `POST /service-accounts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    id: String,
}

/// Lists the principals of `kind` (`user`, `service-account`) if `action` is allowed.
async fn list_principals(
    state: &AppState,
    caller: &Caller,
    kind: &'static str,
    action: &str,
    query: &PageQuery,
    path: &str,
) -> Result<Page<UserView>, ApiError> {
    state
        .policies
        .authorize(caller, action, Target::default())
        .await?;
    let principals = state
        .store
        .call(move |conn| auth::list_principals(conn, kind))
        .await?;
    let views = principals
        .into_iter()
        .map(|p| UserView {
            id: p.id,
            created_at: p.created_at,
        })
        .collect();
    page(views, |u: &UserView| u.id.clone(), query, path)
}

/// Creates a principal of `kind` if `action` is allowed.
async fn create_principal(
    state: &AppState,
    caller: &Caller,
    new: NewUser,
    kind: &'static str,
    action: &str,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let id = principal_id(&new.id)?;
    let target = Target {
        object: Some(id.clone()),
        ..Target::default()
    };
    state.policies.authorize(caller, action, target).await?;
    let created_at = now();
    let stored = id.clone();
    let (principal, action) = (caller.id.clone(), action.to_string());
    state
        .store
        .transaction(move |tx| {
            auth::create_principal(tx, &stored, kind, created_at)?;
            audit(
                tx,
                &principal,
                &action,
                format!("principal:{stored}"),
                json!({ "kind": kind }),
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(UserView { id, created_at })))
}

/// Lists the users.
#[utoipa::path(get, path = "/users", operation_id = "listUsers", tag = "principals", params(PageQuery),
    responses((status = 200, description = "The users", body = [UserView])))]
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Page<UserView>, ApiError> {
    list_principals(
        &state,
        &caller,
        "user",
        "users.list",
        &query,
        "/api/v1/users",
    )
    .await
}

/// Creates a user (with no roles; bind some next).
#[utoipa::path(post, path = "/users", operation_id = "createUser", tag = "principals", request_body = NewUser,
    responses((status = 201, description = "Created", body = UserView)))]
async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Body(new): Body<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    create_principal(&state, &caller, new, "user", "users.create").await
}

/// Lists the service accounts.
#[utoipa::path(get, path = "/service-accounts", operation_id = "listServiceAccounts", tag = "principals", params(PageQuery),
    responses((status = 200, description = "The service accounts", body = [UserView])))]
async fn list_service_accounts(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Page<UserView>, ApiError> {
    list_principals(
        &state,
        &caller,
        "service-account",
        "service-accounts.list",
        &query,
        "/api/v1/service-accounts",
    )
    .await
}

/// Creates a service account (for CI jobs; give it a token and roles next).
#[utoipa::path(post, path = "/service-accounts", operation_id = "createServiceAccount", tag = "principals", request_body = NewUser,
    responses((status = 201, description = "Created", body = UserView)))]
async fn create_service_account(
    State(state): State<AppState>,
    caller: Caller,
    Body(new): Body<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    create_principal(
        &state,
        &caller,
        new,
        "service-account",
        "service-accounts.create",
    )
    .await
}

/// Shows a user.
#[utoipa::path(get, path = "/users/{user}", operation_id = "getUser", tag = "principals",
    params(("user" = String, Path, description = "The user's id")),
    responses((status = 200, description = "The user", body = UserView)))]
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

/// A role binding: `principal` holds `role` at `scope`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Binding {
    principal: String,
    /// `{"kind": "org"}`, `{"kind": "app", "id": "shop"}` or
    /// `{"kind": "env-type", "id": "production"}`.
    #[schema(value_type = ScopeSchema)]
    scope: Scope,
    /// `admin`, `manager`, `member` (org); `owner`, `developer`, `viewer` (app);
    /// `deployer` (env-type).
    role: String,
}

/// Where a role applies.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ScopeSchema {
    /// `org`, `app` or `env-type`.
    kind: ScopeKind,
    /// The app or environment type (not for `org`).
    id: Option<String>,
}

/// The kinds of scope.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "kebab-case")]
pub(crate) enum ScopeKind {
    Org,
    App,
    EnvType,
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

/// Lists the role bindings of a principal.
#[utoipa::path(get, path = "/users/{user}/role-bindings", operation_id = "listRoleBindings", tag = "principals",
    params(("user" = String, Path, description = "The principal's id (user or service account)")),
    responses((status = 200, description = "Its role bindings", body = [Binding])))]
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

/// Grants a role.
#[utoipa::path(post, path = "/role-bindings", operation_id = "createRoleBinding", tag = "principals", request_body = Binding,
    responses((status = 201, description = "Granted", body = Binding)))]
async fn bind(
    State(state): State<AppState>,
    caller: Caller,
    Body(binding): Body<Binding>,
) -> Result<(StatusCode, Json<Binding>), ApiError> {
    roles::check(&binding.scope, &binding.role)
        .map_err(|e| ApiError::BadRequest(format!("role: {e}")))?;
    let (action, target) = action(&binding, "create");
    state.policies.authorize(&caller, &action, target).await?;
    let stored = binding.clone();
    let by = caller.id.clone();
    state
        .store
        .transaction(move |tx| {
            if auth::get_principal(tx, &stored.principal)?.is_none() {
                return Ok(Err(ApiError::BadRequest(format!(
                    "principal: there is no principal {}",
                    stored.principal
                ))));
            }
            auth::bind_role(tx, &stored.principal, &stored.scope, &stored.role)?;
            audit(
                tx,
                &by,
                "role-bindings.create",
                format!("principal:{}", stored.principal),
                json!({ "scope": query_scope(&stored.scope), "role": stored.role }),
            )?;
            Ok(Ok(()))
        })
        .await??;
    Ok((StatusCode::CREATED, Json(binding)))
}

/// The query of `DELETE /role-bindings`: `principal`, `scope` (`org`, `app:ID` or
/// `env-type:ID`) and `role`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct BindingQuery {
    /// The principal.
    principal: String,
    /// `org`, `app:ID` or `env-type:ID`.
    scope: String,
    /// The role.
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

/// Revokes a role.
#[utoipa::path(delete, path = "/role-bindings", operation_id = "deleteRoleBinding", tag = "principals", params(BindingQuery),
    responses((status = 204, description = "Revoked")))]
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
    let by = caller.id.clone();
    let held = state
        .store
        .transaction(move |tx| {
            let held = auth::unbind_role(tx, &removed.principal, &removed.scope, &removed.role)?;
            if held {
                audit(
                    tx,
                    &by,
                    "role-bindings.delete",
                    format!("principal:{}", removed.principal),
                    json!({ "scope": query_scope(&removed.scope), "role": removed.role }),
                )?;
            }
            Ok(held)
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

/// An API token, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenView {
    id: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

/// Lists a principal's tokens.
#[utoipa::path(get, path = "/principals/{principal}/tokens", operation_id = "listTokens", tag = "principals",
    params(("principal" = String, Path, description = "The principal's id")),
    responses((status = 200, description = "Its tokens", body = [TokenView])))]
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
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    /// Days until the token expires. When absent: the server's longest lifetime (90 days
    /// unless its operator set another), and never later than the token that asks.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// A new token: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    id: String,
    token: String,
    expires_at: Option<i64>,
}

/// When a token made now by `caller` expires: what was asked (or the longest allowed),
/// refused when it would outlive the server's longest lifetime or the caller's own token.
fn token_expiry(
    asked_days: Option<u32>,
    max_days: Option<u32>,
    parent_expires_at: Option<i64>,
    now: i64,
) -> Result<Option<i64>, ApiError> {
    const DAY: i64 = 86_400;
    if asked_days == Some(0) {
        return Err(ApiError::BadRequest(
            "expires_in_days: must be at least 1".into(),
        ));
    }
    if let (Some(asked), Some(max)) = (asked_days, max_days)
        && asked > max
    {
        return Err(ApiError::BadRequest(format!(
            "expires_in_days: {asked} is longer than this server lets a token live ({max} days)"
        )));
    }
    let wanted = asked_days.or(max_days).map(|d| now + i64::from(d) * DAY);
    match (wanted, parent_expires_at) {
        (Some(w), Some(p)) if w > p && asked_days.is_some() => Err(ApiError::BadRequest(format!(
            "expires_in_days: the token would outlive the one that makes it, which expires in \
             {} days; ask for {} days or fewer",
            (p - now).max(0) / DAY,
            (p - now).max(0) / DAY
        ))),
        (Some(w), Some(p)) => Ok(Some(w.min(p))),
        (None, p) => Ok(p),
        (w, None) => Ok(w),
    }
}

/// Creates a token; its secret is in this response only. It never outlives the token that
/// makes it, nor the server's longest lifetime.
#[utoipa::path(post, path = "/principals/{principal}/tokens", operation_id = "createToken", tag = "principals",
    params(("principal" = String, Path, description = "The principal's id")),
    request_body(content = Option<NewToken>, description = "Leave it out for the longest lifetime allowed"),
    responses((status = 201, description = "Created", body = CreatedToken)))]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(principal): Path<String>,
    new: Option<Body<NewToken>>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let new = new.map(|Body(n)| n).unwrap_or_default();
    authorize_tokens(&state, &caller, "tokens.create", &principal).await?;
    let created_at = now();
    let expires_at = token_expiry(
        new.expires_in_days,
        state.limits.token_max_lifetime_days,
        caller.token_expires_at,
        created_at,
    )?;
    let token = crate::auth::new_token();
    let (id, hash) = (token.id.clone(), token.hash.clone());
    let by = caller.id.clone();
    state
        .store
        .transaction(move |tx| {
            auth::create_token(tx, &id, &principal, &hash, created_at, expires_at)?;
            audit(
                tx,
                &by,
                "tokens.create",
                format!("principal:{principal}"),
                json!({ "token": id, "expires_at": expires_at }),
            )
        })
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

/// Revokes a token.
#[utoipa::path(delete, path = "/principals/{principal}/tokens/{token}", operation_id = "revokeToken", tag = "principals",
    params(("principal" = String, Path, description = "The principal's id"),
           ("token" = String, Path, description = "The token's id")),
    responses((status = 204, description = "Revoked")))]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((principal, token)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    authorize_tokens(&state, &caller, "tokens.delete", &principal).await?;
    let (owner, id) = (principal.clone(), token.clone());
    let by = caller.id.clone();
    let revoked = state
        .store
        .transaction(move |tx| {
            let revoked = auth::revoke_token(tx, &owner, &id, now())?;
            if revoked {
                audit(
                    tx,
                    &by,
                    "tokens.delete",
                    format!("principal:{owner}"),
                    json!({ "token": id }),
                )?;
            }
            Ok(revoked)
        })
        .await?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "active token {token} of {principal}"
        )))
    }
}
