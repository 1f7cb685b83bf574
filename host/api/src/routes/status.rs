//! `/apps/{app}/envs/{env}/status` and `/logs`: what runs, and what it says.

use crate::auth::Caller;
use crate::routes::deployments::{env_target, environment, view};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_engine::pipeline::EngineError;
use wharf_store::deployments;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(logs))
}

/// How the environment is doing: its current deployment, each workload on its target
/// (and why it is not ready), each resource (and why it is not done).
#[utoipa::path(get, path = "/apps/{app}/envs/{env}/status", operation_id = "getEnvironmentStatus", tag = "deployments",
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id")),
    responses((status = 200, description = "The environment's status", body = Object)))]
async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let found = environment(&state, &caller, &app, &env).await?;
    let status = state
        .engine
        .status(&app, &env)
        .await
        .map_err(engine_error)?;
    let (a, e) = (app.clone(), env.clone());
    let latest = state
        .store
        .call(move |conn| Ok(deployments::list(conn, &a, &e)?.into_iter().next()))
        .await?;
    let mut body = json!(status);
    body["app"] = json!(app);
    body["env"] = json!(env);
    body["env_type"] = json!(found.env_type.as_str());
    body["deleting"] = json!(found.deleting);
    let life = &found.lifecycle;
    body["state"] = json!(if found.deleting {
        "deleting"
    } else if life.paused_at.is_some() {
        "paused"
    } else {
        "active"
    });
    body["paused_by"] = json!(life.paused_by);
    body["expires_at"] = json!(life.expires_at);
    body["latest"] = latest.map(|d| json!(view(d))).unwrap_or(Value::Null);
    Ok(Json(body))
}

/// What `GET .../logs` reads.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogsQuery {
    /// Only this workload's containers.
    workload: Option<String>,
    /// Keep the response open and send new lines as they are written.
    #[serde(default)]
    follow: bool,
    /// Lines to start with, per container (100 when absent; at most 100000).
    tail: Option<usize>,
}

/// The environment's logs, as plain text, one line per line (prefixed with
/// `[workload/container]` when several containers are read).
#[utoipa::path(get, path = "/apps/{app}/envs/{env}/logs", operation_id = "getEnvironmentLogs", tag = "deployments",
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id"), LogsQuery),
    responses((status = 200, description = "Log lines", body = String, content_type = "text/plain"),
              (status = 429, description = "The caller follows as many streams as one principal may (with `follow`)", body = Object, content_type = "application/problem+json")))]
async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
    Query(query): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    environment(&state, &caller, &app, &env).await?;
    state
        .policies
        .authorize(&caller, "logs.read", env_target(&app, &env, None))
        .await?;
    let tail = query.tail.unwrap_or(100);
    if tail > 100_000 {
        return Err(ApiError::BadRequest("tail: at most 100000 lines".into()));
    }
    let slot = if query.follow {
        Some(
            state
                .streams
                .open(&caller.id, state.limits.streams_per_principal)?,
        )
    } else {
        None
    };
    let lines = state
        .engine
        .logs(
            &app,
            &env,
            wharf_engine::target::LogQuery {
                workload: query.workload,
                tail,
                follow: query.follow,
            },
        )
        .await
        .map_err(engine_error)?;
    let body = futures_util::StreamExt::map(lines, move |line| {
        let _held = &slot;
        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(line + "\n"))
    });
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

pub(crate) fn engine_error(e: EngineError) -> ApiError {
    use wharf_engine::target::TargetError;
    match e {
        EngineError::NoEnvironment(what) => ApiError::NotFound(format!("environment {what}")),
        EngineError::Target(invalid) => ApiError::Clash(invalid.to_string()),
        EngineError::TargetFailed(TargetError::Missing(m)) => ApiError::NoMatch(m),
        EngineError::TargetFailed(TargetError::Unsupported(m)) => ApiError::Clash(m),
        other => ApiError::internal(other),
    }
}
