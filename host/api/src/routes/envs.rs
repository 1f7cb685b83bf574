//! `/apps/{app}/envs`: environments of an application.

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::{Page, PageQuery, audit, body, id, page};
use crate::{ApiError, AppState, now};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_store::{apps, envs};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, remove))
}

/// An environment of an app.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EnvView {
    app: String,
    id: String,
    env_type: String,
    created_at: i64,
    created_by: String,
}

impl From<envs::Environment> for EnvView {
    fn from(e: envs::Environment) -> Self {
        Self {
            app: e.app.to_string(),
            id: e.id.to_string(),
            env_type: e.env_type.to_string(),
            created_at: e.created_at,
            created_by: e.created_by,
        }
    }
}

/// The body of `POST /apps/{app}/envs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewEnv {
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    id: String,
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    env_type: String,
}

fn target(app: &str, env: Option<&str>, env_type: Option<&str>) -> Target {
    Target {
        app: Some(app.to_string()),
        env: env.map(str::to_string),
        env_type: env_type.map(str::to_string),
        ..Target::default()
    }
}

/// Lists the environments of an app.
#[utoipa::path(get, path = "/apps/{app}/envs", tag = "environments",
    params(("app" = String, Path, description = "The app's id"), PageQuery),
    responses((status = 200, description = "The app's environments", body = [EnvView])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Page<EnvView>, ApiError> {
    let app_id = id(&app, "app")?;
    state
        .policies
        .authorize(&caller, "environments.list", target(&app, None, None))
        .await?;
    let found = state
        .store
        .call(move |conn| {
            Ok(match apps::get(conn, app_id.as_str())? {
                Some(_) => Some(envs::list(conn, app_id.as_str())?),
                None => None,
            })
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("app {app}")))?;
    let path = format!("/api/v1/apps/{app}/envs");
    page(
        found.into_iter().map(Into::into).collect(),
        |e: &EnvView| e.id.clone(),
        &query,
        &path,
    )
}

/// Creates an environment of an existing type.
#[utoipa::path(post, path = "/apps/{app}/envs", tag = "environments", request_body = NewEnv,
    params(("app" = String, Path, description = "The app's id")),
    responses((status = 201, description = "Created", body = EnvView)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    request: Result<Json<NewEnv>, JsonRejection>,
) -> Result<(StatusCode, Json<EnvView>), ApiError> {
    let app_id = id(&app, "app")?;
    let new = body(request)?;
    let env_id = id(&new.id, "id")?;
    let type_id = id(&new.env_type, "env_type")?;
    state
        .policies
        .authorize(
            &caller,
            "environments.create",
            target(&app, Some(env_id.as_str()), Some(type_id.as_str())),
        )
        .await?;
    let env = envs::Environment {
        app: app_id,
        id: env_id,
        env_type: type_id,
        created_at: now(),
        created_by: caller.id.clone(),
    };
    let stored = env.clone();
    state
        .store
        .transaction(move |tx| {
            if apps::get(tx, stored.app.as_str())?.is_none() {
                return Ok(Err(ApiError::NotFound(format!("app {}", stored.app))));
            }
            if envs::get_type(tx, stored.env_type.as_str())?.is_none() {
                return Ok(Err(ApiError::BadRequest(format!(
                    "env_type: there is no environment type {}",
                    stored.env_type
                ))));
            }
            envs::create(tx, &stored)?;
            audit(
                tx,
                &stored.created_by,
                "environments.create",
                format!("env:{}/{}", stored.app, stored.id),
                serde_json::json!({ "env_type": stored.env_type.as_str() }),
            )?;
            Ok(Ok(()))
        })
        .await??;
    Ok((StatusCode::CREATED, Json(env.into())))
}

/// Loads `app/env`, or a 404 that names which of the two is missing.
async fn load(state: &AppState, app: &str, env: &str) -> Result<envs::Environment, ApiError> {
    let (app_id, env_id) = (id(app, "app")?, id(env, "env")?);
    let found = state
        .store
        .call(move |conn| envs::get(conn, app_id.as_str(), env_id.as_str()))
        .await?;
    found.ok_or_else(|| ApiError::NotFound(format!("environment {app}/{env}")))
}

/// Shows an environment.
#[utoipa::path(get, path = "/apps/{app}/envs/{env}", tag = "environments",
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id")),
    responses((status = 200, description = "The environment", body = EnvView)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
) -> Result<Json<EnvView>, ApiError> {
    id(&app, "app")?;
    state
        .policies
        .authorize(&caller, "environments.get", target(&app, Some(&env), None))
        .await?;
    Ok(Json(load(&state, &app, &env).await?.into()))
}

/// Deletes an environment.
#[utoipa::path(delete, path = "/apps/{app}/envs/{env}", tag = "environments",
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id")),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    // Deleting needs `deployer` on the environment's type, so it is read first; a
    // principal without access to the app is refused before learning whether it exists.
    id(&app, "app")?;
    state
        .policies
        .authorize(&caller, "environments.get", target(&app, Some(&env), None))
        .await?;
    let found = load(&state, &app, &env).await?;
    state
        .policies
        .authorize(
            &caller,
            "environments.delete",
            target(&app, Some(&env), Some(found.env_type.as_str())),
        )
        .await?;
    let (app_id, env_id) = (found.app.clone(), found.id.clone());
    let principal = caller.id.clone();
    state
        .store
        .transaction(move |tx| {
            if envs::delete(tx, app_id.as_str(), env_id.as_str())? {
                audit(
                    tx,
                    &principal,
                    "environments.delete",
                    format!("env:{app_id}/{env_id}"),
                    serde_json::Value::Null,
                )?;
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
