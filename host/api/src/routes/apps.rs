//! `/apps`: applications.

use crate::auth::Caller;
use crate::authz::{Target, Verdict};
use crate::routes::{Body, Page, PageQuery, audit, delete_audited, id, page};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::clock::now;
use wharf_core::roles::Scope;
use wharf_store::apps::{self, App};
use wharf_store::auth;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, remove))
}

/// An application.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AppView {
    id: String,
    name: String,
    created_at: i64,
    created_by: String,
    /// True while its environments are being deleted; it goes with the last of them.
    deleting: bool,
}

impl From<App> for AppView {
    fn from(a: App) -> Self {
        Self {
            id: a.id.to_string(),
            name: a.name,
            created_at: a.created_at,
            created_by: a.created_by,
            deleting: a.deleting,
        }
    }
}

/// The body of `POST /apps`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewApp {
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    id: String,
    #[serde(default)]
    name: Option<String>,
}

fn app_target(app: &str) -> Target {
    Target {
        app: Some(app.to_string()),
        ..Target::default()
    }
}

/// Lists the apps the caller may see (one batch decision for all of them).
#[utoipa::path(get, path = "/apps", operation_id = "listApps", tag = "apps", params(PageQuery),
    responses((status = 200, description = "The apps the caller may see", body = [AppView])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Page<AppView>, ApiError> {
    state
        .policies
        .authorize(&caller, "apps.list", Target::default())
        .await?;
    let all = state.store.call(apps::list).await?;
    let requests: Vec<(&str, Target)> = all
        .iter()
        .map(|a| ("apps.get", app_target(a.id.as_str())))
        .collect();
    let verdicts = state.policies.decide(&caller, &requests).await?;
    let visible: Vec<AppView> = all
        .into_iter()
        .zip(verdicts)
        .filter(|(_, v)| *v == Verdict::Allow)
        .map(|(a, _)| a.into())
        .collect();
    page(visible, |a| a.id.clone(), &query, "/api/v1/apps")
}

/// Creates an app; its creator becomes its owner.
#[utoipa::path(post, path = "/apps", operation_id = "createApp", tag = "apps", request_body = NewApp,
    responses((status = 201, description = "Created", body = AppView)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewApp>,
) -> Result<(StatusCode, Json<AppView>), ApiError> {
    let app_id = id(&body.id, "id")?;
    state
        .policies
        .authorize(&caller, "apps.create", app_target(app_id.as_str()))
        .await?;
    let app = App {
        name: body.name.unwrap_or_else(|| app_id.to_string()),
        id: app_id,
        created_at: now(),
        created_by: caller.id.clone(),
        deleting: false,
    };
    let stored = app.clone();
    let owner = caller.id.clone();
    state
        .store
        .transaction(move |tx| {
            apps::create(tx, &stored)?;
            auth::bind_role(tx, &owner, &Scope::App(stored.id.clone()), "owner")?;
            audit(
                tx,
                &owner,
                "apps.create",
                format!("app:{}", stored.id),
                serde_json::json!({ "name": stored.name }),
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(app.into())))
}

/// Shows an app.
#[utoipa::path(get, path = "/apps/{app}", operation_id = "getApp", tag = "apps",
    params(("app" = String, Path, description = "The app's id")),
    responses((status = 200, description = "The app", body = AppView)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> Result<Json<AppView>, ApiError> {
    let app_id = id(&app, "app")?;
    state
        .policies
        .authorize(&caller, "apps.get", app_target(&app))
        .await?;
    let found = state
        .store
        .call(move |conn| apps::get(conn, app_id.as_str()))
        .await?;
    found
        .map(|a| Json(a.into()))
        .ok_or_else(|| ApiError::NotFound(format!("app {app}")))
}

/// What `DELETE /apps/{app}` started: the deletions of its environments.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AppDeletion {
    app: String,
    /// The deletion deployments under way, one per environment that had something
    /// deployed or provisioned; the app goes with the last of them.
    deletions: Vec<crate::routes::deployments::DeploymentView>,
}

/// Deletes an app. Its environments are deleted first, each as `DELETE
/// /apps/{app}/envs/{env}` would (workloads stopped, resources deprovisioned) and
/// authorized as such (`environments.delete` on each): 204 when nothing was left to
/// undo, else 202 with the deletions under way, the app going with the last of them.
#[utoipa::path(delete, path = "/apps/{app}", operation_id = "deleteApp", tag = "apps",
    params(("app" = String, Path, description = "The app's id")),
    responses((status = 204, description = "Deleted"),
              (status = 202, description = "Its environments are being deleted; it goes with the last", body = AppDeletion)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use crate::routes::envs::{Deletion, delete_environment};
    use axum::response::IntoResponse;
    let started = wharf_core::clock::now_ms();
    let app_id = id(&app, "app")?;
    state
        .policies
        .authorize(&caller, "apps.delete", app_target(&app))
        .await?;
    let a = app_id.clone();
    let (found, environments) = state
        .store
        .call(move |conn| {
            Ok((
                apps::get(conn, a.as_str())?,
                wharf_store::envs::list(conn, a.as_str())?,
            ))
        })
        .await?;
    if found.is_none() {
        return Err(ApiError::NotFound(format!("app {app}")));
    }
    // Every environment's deletion is decided before any starts: all or nothing.
    let requests: Vec<(&str, Target)> = environments
        .iter()
        .map(|e| {
            (
                "environments.delete",
                Target {
                    app: Some(app.clone()),
                    env: Some(e.id.to_string()),
                    env_type: Some(e.env_type.to_string()),
                    ..Target::default()
                },
            )
        })
        .collect();
    let verdicts = state.policies.decide(&caller, &requests).await?;
    if let Some((e, Verdict::Deny { policy, reason })) = environments
        .iter()
        .zip(verdicts)
        .find(|(_, v)| *v != Verdict::Allow)
    {
        return Err(ApiError::Forbidden {
            action: format!("apps.delete (environments.delete on {app}/{})", e.id),
            policy,
            reason,
        });
    }
    if environments.is_empty() {
        return delete_audited(
            &state,
            &caller.id,
            "apps.delete",
            format!("app:{app_id}"),
            format!("app {app}"),
            move |tx| apps::delete(tx, app_id.as_str()),
        )
        .await
        .map(IntoResponse::into_response);
    }
    let (a, by) = (app_id.clone(), caller.id.clone());
    state
        .store
        .transaction(move |tx| {
            apps::mark_deleting(tx, a.as_str())?;
            audit(
                tx,
                &by,
                "apps.delete",
                format!("app:{a}"),
                serde_json::json!({ "environments": true }),
            )
        })
        .await?;
    let mut deletions = Vec::new();
    for e in &environments {
        if let Deletion::Queued(d) = delete_environment(&state, &caller, e, started).await? {
            deletions.push(crate::routes::deployments::view(*d));
        }
    }
    if deletions.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(AppDeletion {
            app: app.clone(),
            deletions,
        }),
    )
        .into_response())
}
