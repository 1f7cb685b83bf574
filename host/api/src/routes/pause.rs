//! `POST /apps/{app}/envs/{env}/pause` and `/resume`: stopping an environment's workloads
//! while keeping its resources (and their credentials), and starting them again.
//!
//! A paused environment refuses deployments (409, saying how to resume it) rather than
//! queueing them: what it would run when resumed is what it ran when paused. Resuming
//! deploys that set and those images again.

use crate::auth::Caller;
use crate::routes::audit;
use crate::routes::deployments::{accepted, authorized, done_step, queue, steps};
use crate::routes::envs::{EnvView, load};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::clock::{now, now_ms};
use wharf_core::status::{DeploymentKind, DeploymentStatus, Step};
use wharf_store::deployments::{self, Deployment};
use wharf_store::envs;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pause))
        .routes(routes!(resume))
}

/// Pauses an environment: its target stops the workloads (the process target ends the
/// processes, the kubernetes target scales them to zero) and keeps its resources. It
/// takes no deployment until it is resumed. Refused while a deployment of it is queued or
/// running.
#[utoipa::path(post, path = "/apps/{app}/envs/{env}/pause", operation_id = "pauseEnvironment", tag = "environments",
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id")),
    responses((status = 200, description = "Paused", body = EnvView)))]
async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
) -> Result<Json<EnvView>, ApiError> {
    let found = authorized(&state, &caller, &app, &env, "environments.pause").await?;
    if found.lifecycle.paused_at.is_some() {
        return Ok(Json(found.into()));
    }
    let (a, e, by) = (app.clone(), env.clone(), caller.id.clone());
    let paused = state
        .store
        .transaction(move |tx| {
            let Some(current) = envs::get(tx, &a, &e)? else {
                return Ok(Err(ApiError::NotFound(format!("environment {a}/{e}"))));
            };
            if current.deleting {
                return Ok(Err(ApiError::Clash(format!(
                    "environment {a}/{e} is being deleted"
                ))));
            }
            if let Some(d) = deployments::next(tx, &a, &e)? {
                return Ok(Err(ApiError::Clash(format!(
                    "deployment {} of {a}/{e} is {}; pause the environment once it is over",
                    d.id, d.status
                ))));
            }
            // Paused by a request that came in meanwhile: nothing more to do.
            if current.lifecycle.paused_at.is_some() {
                return Ok(Ok(false));
            }
            envs::set_paused(tx, &a, &e, Some((now(), &by)))?;
            audit(
                tx,
                &by,
                "environments.pause",
                format!("env:{a}/{e}"),
                json!({}),
            )?;
            Ok(Ok(true))
        })
        .await??;
    if !paused {
        return Ok(Json(load(&state, &app, &env).await?.into()));
    }
    if let Err(e) = state.engine.pause(&app, &env).await {
        // The workloads may still run: the environment is not paused.
        let (a, en) = (app.clone(), env.clone());
        state
            .store
            .call(move |tx| envs::set_paused(tx, &a, &en, None))
            .await?;
        return Err(ApiError::Clash(format!(
            "environment {app}/{env} could not be paused: {}",
            wharf_core::error_chain(&e)
        )));
    }
    // Told once the workloads are stopped.
    let (a, e, by) = (app.clone(), env.clone(), caller.id.clone());
    state
        .store
        .transaction(move |tx| {
            crate::outbound::emit(tx, "environment.paused", &a, Some(&e), json!({ "by": by }))
        })
        .await?;
    Ok(Json(load(&state, &app, &env).await?.into()))
}

/// Resumes a paused environment: deploys again the set and images it ran when it was
/// paused (202 with that deployment; 200 when it had never run anything or was not
/// paused).
#[utoipa::path(post, path = "/apps/{app}/envs/{env}/resume", operation_id = "resumeEnvironment", tag = "environments",
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id")),
    responses((status = 202, description = "Resuming: the deployment that starts the workloads again", body = crate::routes::deployments::DeploymentView),
              (status = 200, description = "Not paused, or nothing to start", body = EnvView)))]
async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let started = now_ms();
    let found = authorized(&state, &caller, &app, &env, "environments.resume").await?;
    if found.lifecycle.paused_at.is_none() {
        return Ok(Json(EnvView::from(found)).into_response());
    }
    // The target lets go first: the environment stays paused when it cannot.
    state.engine.resume(&app, &env).await.map_err(|e| {
        ApiError::Clash(format!(
            "environment {app}/{env} could not be resumed: {}",
            wharf_core::error_chain(&e)
        ))
    })?;
    let (a, e, by) = (app.clone(), env.clone(), caller.id.clone());
    let resumed = state
        .store
        .transaction(move |tx| {
            // Resumed by a request that came in meanwhile: that one deploys.
            if envs::get(tx, &a, &e)?.is_none_or(|f| f.lifecycle.paused_at.is_none()) {
                return Ok(None);
            }
            envs::set_paused(tx, &a, &e, None)?;
            audit(
                tx,
                &by,
                "environments.resume",
                format!("env:{a}/{e}"),
                json!({}),
            )?;
            crate::outbound::emit(tx, "environment.resumed", &a, Some(&e), json!({ "by": by }))?;
            Ok(Some(deployments::current(tx, &a, &e)?))
        })
        .await?;
    let Some(current) = resumed.flatten() else {
        return Ok(Json(EnvView::from(load(&state, &app, &env).await?)).into_response());
    };
    let source = json!({ "set": current.set_id, "source": format!("resume: deployment {} again", current.id) });
    let action = json!({ "action": "environments.resume" });
    let deployment = Deployment {
        app: app.clone(),
        env: env.clone(),
        id: 0,
        kind: DeploymentKind::Deploy,
        set_id: current.set_id,
        images: current.images,
        comment: format!("resume (deployment {} again)", current.id),
        status: DeploymentStatus::Queued,
        error: None,
        created_at_ms: now_ms(),
        created_by: caller.id.clone(),
        started_at_ms: None,
        finished_at_ms: None,
        steps: steps(
            DeploymentKind::Deploy,
            done_step(Step::Accept, started, source),
            done_step(Step::Authorize, started, action),
        ),
    };
    Ok(accepted(queue(&state, &caller, deployment, None).await?))
}
