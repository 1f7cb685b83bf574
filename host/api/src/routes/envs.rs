//! `/apps/{app}/envs`: environments of an application.

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::{Body, Page, PageQuery, audit, id, page};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::clock::{now, now_ms};
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
    /// True while it is being deleted.
    deleting: bool,
    /// The deployment that clones it, when it was created from another environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment: Option<i64>,
    /// `active`, `paused` or `deleting`.
    state: String,
    /// A preview's time to live (`48h`), renewed by each deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<String>,
    /// When a preview expires and is deleted (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    /// Seconds until then (0 once it expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<i64>,
    /// When it was paused (Unix seconds), while it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    paused_at: Option<i64>,
    /// Who paused it, while it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    paused_by: Option<String>,
}

impl From<envs::Environment> for EnvView {
    fn from(e: envs::Environment) -> Self {
        Self {
            app: e.app.to_string(),
            id: e.id.to_string(),
            env_type: e.env_type.to_string(),
            created_at: e.created_at,
            created_by: e.created_by,
            state: if e.deleting {
                "deleting"
            } else if e.lifecycle.paused_at.is_some() {
                "paused"
            } else {
                "active"
            }
            .into(),
            deleting: e.deleting,
            deployment: None,
            ttl: e.lifecycle.ttl.map(wharf_core::duration::format_duration),
            expires_at: e.lifecycle.expires_at,
            expires_in: e.lifecycle.expires_at.map(|at| (at - now()).max(0)),
            paused_at: e.lifecycle.paused_at,
            paused_by: e.lifecycle.paused_by,
        }
    }
}

/// The body of `POST /apps/{app}/envs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewEnv {
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    id: String,
    /// Its type; with `from`, the source's type when absent.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    env_type: Option<String>,
    /// Clone this environment of the app: the new one is deployed with its current set
    /// and images.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    from: Option<String>,
    /// A time to live (`48h`, `30m`): the environment is a preview, deleted when it runs
    /// out; each deployment renews it. The environment type may cap it.
    #[serde(default)]
    ttl: Option<String>,
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
#[utoipa::path(get, path = "/apps/{app}/envs", operation_id = "listEnvironments", tag = "environments",
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
#[utoipa::path(post, path = "/apps/{app}/envs", operation_id = "createEnvironment", tag = "environments", request_body = NewEnv,
    params(("app" = String, Path, description = "The app's id")),
    responses((status = 201, description = "Created", body = EnvView)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Body(new): Body<NewEnv>,
) -> Result<(StatusCode, Json<EnvView>), ApiError> {
    let app_id = id(&app, "app")?;
    let env_id = id(&new.id, "id")?;
    let ttl = match &new.ttl {
        Some(t) => Some(
            wharf_core::duration::parse_duration(t)
                .map_err(|e| ApiError::BadRequest(format!("ttl: {e}")))?,
        ),
        None => None,
    };
    let type_id = match (&new.env_type, &new.from) {
        (Some(t), _) => id(t, "env_type")?,
        (None, Some(from)) => {
            crate::routes::deployments::environment(&state, &caller, &app, from)
                .await?
                .env_type
        }
        (None, None) => {
            return Err(ApiError::BadRequest(
                "env_type: give the environment's type (or `from`, to take the type of the \
                 environment it clones)"
                    .into(),
            ));
        }
    };
    let decided = target(&app, Some(env_id.as_str()), Some(type_id.as_str()));
    state
        .policies
        .authorize(&caller, "environments.create", decided.clone())
        .await?;
    // A clone deploys the source's current set: read it (and check that the caller may
    // see the source) before anything is stored.
    let clone = match &new.from {
        Some(from) => Some(clone_source(&state, &caller, &app, from, decided).await?),
        None => None,
    };
    let env = envs::Environment {
        app: app_id,
        id: env_id,
        env_type: type_id,
        created_at: now(),
        created_by: caller.id.clone(),
        deleting: false,
        lifecycle: envs::Lifecycle {
            ttl,
            expires_at: ttl.map(|t| now() + t),
            ..envs::Lifecycle::default()
        },
    };
    store_new(&state, env.clone()).await?;
    let mut view = EnvView::from(env.clone());
    if let Some(clone) = clone {
        view.deployment = Some(queue_clone(&state, &caller, &env, clone).await?);
    }
    Ok((StatusCode::CREATED, Json(view)))
}

/// What a clone deploys: the source's current set and images.
struct CloneSource {
    set: wharf_core::set::Set,
    images: std::collections::BTreeMap<String, String>,
    started: i64,
    from: String,
}

/// Reads what environment `from` of `app` runs, for a clone the caller may make: a clone
/// is a deployment to the new environment, decided as one, with what it deploys, so that
/// a freeze on the type stops clones too.
async fn clone_source(
    state: &AppState,
    caller: &Caller,
    app: &str,
    from: &str,
    decided: crate::authz::Target,
) -> Result<CloneSource, ApiError> {
    crate::routes::deployments::environment(state, caller, app, from).await?;
    state
        .policies
        .authorize(caller, "environments.clone", decided.clone())
        .await?;
    let started = now_ms();
    let source = crate::routes::deployments::Source {
        rollback_to: None,
        delta: Some(json_patch::Patch(Vec::new())),
        ..Default::default()
    };
    let (set, images, _) = crate::routes::deployments::accept(state, app, from, source).await?;
    let attributes = crate::routes::deployments::content_attributes(&set, &images);
    state
        .policies
        .authorize(
            caller,
            "deployments.create",
            crate::authz::Target {
                attributes,
                ..decided
            },
        )
        .await?;
    Ok(CloneSource {
        set,
        images,
        started,
        from: from.to_string(),
    })
}

/// Stores a new environment, if its app takes environments, its type exists and (for a
/// preview) allows its time to live and one more preview of the app.
pub(crate) async fn store_new(state: &AppState, stored: envs::Environment) -> Result<(), ApiError> {
    state
        .store
        .transaction(move |tx| {
            match apps::get(tx, stored.app.as_str())? {
                None => return Ok(Err(ApiError::NotFound(format!("app {}", stored.app)))),
                Some(a) if a.deleting => {
                    return Ok(Err(ApiError::Clash(format!(
                        "app {} is being deleted; it takes no new environments",
                        stored.app
                    ))));
                }
                Some(_) => {}
            }
            let Some(env_type) = envs::get_type(tx, stored.env_type.as_str())? else {
                return Ok(Err(ApiError::BadRequest(format!(
                    "env_type: there is no environment type {}",
                    stored.env_type
                ))));
            };
            if let Some(ttl) = stored.lifecycle.ttl
                && let Some(refused) = preview_refused(tx, &stored, &env_type, ttl)?
            {
                return Ok(Err(refused));
            }
            envs::create(tx, &stored)?;
            let detail = serde_json::json!({ "env_type": stored.env_type.as_str(),
                                             "ttl": stored.lifecycle.ttl });
            audit(
                tx,
                &stored.created_by,
                "environments.create",
                format!("env:{}/{}", stored.app, stored.id),
                detail.clone(),
            )?;
            crate::outbound::emit(
                tx,
                "environment.created",
                stored.app.as_str(),
                Some(stored.id.as_str()),
                detail,
            )?;
            Ok(Ok(()))
        })
        .await?
}

/// Why the environment type refuses a new preview of `ttl` seconds, if it does.
fn preview_refused(
    tx: &wharf_store::Tx<'_>,
    stored: &envs::Environment,
    env_type: &envs::EnvType,
    ttl: i64,
) -> Result<Option<ApiError>, wharf_store::Error> {
    use wharf_core::duration::format_duration;
    let limits = &env_type.previews;
    if let Some(max) = limits.max_ttl
        && ttl > max
    {
        return Ok(Some(ApiError::BadRequest(format!(
            "ttl: {} is longer than environment type {} allows its previews ({}); ask for less",
            format_duration(ttl),
            env_type.id,
            format_duration(max)
        ))));
    }
    if let Some(max) = limits.max_per_app {
        let count = envs::count_previews(tx, stored.app.as_str(), env_type.id.as_str())?;
        if count >= i64::from(max) {
            return Ok(Some(ApiError::Clash(format!(
                "app {} has {count} preview environments of type {}, the most the type allows; \
                 delete one first",
                stored.app, env_type.id
            ))));
        }
    }
    Ok(None)
}

/// Queues the deployment of a clone to the new environment `env`; gives its number.
async fn queue_clone(
    state: &AppState,
    caller: &Caller,
    env: &envs::Environment,
    clone: CloneSource,
) -> Result<i64, ApiError> {
    use crate::routes::deployments::{done_step, queue, steps};
    use wharf_core::status::{DeploymentKind, DeploymentStatus, Step};
    use wharf_store::deployments::Deployment;
    let CloneSource {
        set,
        images,
        started,
        from,
    } = clone;
    let source = serde_json::json!({ "set": set.id(), "source": format!("clone of {from}") });
    let accept = done_step(Step::Accept, started, source);
    let action = serde_json::json!({ "action": "environments.clone" });
    let authorize = done_step(Step::Authorize, started, action);
    let deployment = Deployment {
        app: env.app.to_string(),
        env: env.id.to_string(),
        id: 0,
        kind: DeploymentKind::Deploy,
        set_id: set.id(),
        images: serde_json::json!(images),
        comment: format!("cloned from {from}"),
        status: DeploymentStatus::Queued,
        error: None,
        created_at_ms: now_ms(),
        created_by: caller.id.clone(),
        started_at_ms: None,
        finished_at_ms: None,
        steps: steps(DeploymentKind::Deploy, accept, authorize),
    };
    Ok(queue(state, caller, deployment, Some(set)).await?.id)
}

/// Loads `app/env`, or a 404 that names which of the two is missing.
pub(crate) async fn load(
    state: &AppState,
    app: &str,
    env: &str,
) -> Result<envs::Environment, ApiError> {
    let (app_id, env_id) = (id(app, "app")?, id(env, "env")?);
    let found = state
        .store
        .call(move |conn| envs::get(conn, app_id.as_str(), env_id.as_str()))
        .await?;
    found.ok_or_else(|| ApiError::NotFound(format!("environment {app}/{env}")))
}

/// Shows an environment.
#[utoipa::path(get, path = "/apps/{app}/envs/{env}", operation_id = "getEnvironment", tag = "environments",
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

/// Deletes an environment: its workloads are stopped and its resources deprovisioned (in
/// reverse dependency order) by a deletion the engine carries out, 202 with it; an
/// environment that was never deployed is deleted at once, 204.
#[utoipa::path(delete, path = "/apps/{app}/envs/{env}", operation_id = "deleteEnvironment", tag = "environments",
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id")),
    responses((status = 202, description = "Being deleted; follow the deletion"),
              (status = 204, description = "Deleted (nothing was deployed)")))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    // Deleting needs `deployer` on the environment's type, so it is read first; a
    // principal without access to the app is refused before learning whether it exists.
    id(&app, "app")?;
    state
        .policies
        .authorize(&caller, "environments.get", target(&app, Some(&env), None))
        .await?;
    let started = now_ms();
    let found = load(&state, &app, &env).await?;
    state
        .policies
        .authorize(
            &caller,
            "environments.delete",
            target(&app, Some(&env), Some(found.env_type.as_str())),
        )
        .await?;
    Ok(
        match delete_environment(&state, &caller, &found, started).await? {
            Deletion::Done => StatusCode::NO_CONTENT.into_response(),
            Deletion::Queued(d) => crate::routes::deployments::accepted(*d),
        },
    )
}

/// How an environment's deletion went.
pub(crate) enum Deletion {
    /// It was never deployed nor provisioned anything: it is gone.
    Done,
    /// Its deletion deployment (new, or one already waiting) will stop its workloads,
    /// deprovision its resources and remove it.
    Queued(Box<wharf_store::deployments::Deployment>),
}

/// Deletes an environment the caller was authorized to delete (`environments.delete`): at
/// once when nothing was ever deployed or provisioned in it, else by a deletion
/// deployment, which the engine carries out.
pub(crate) async fn delete_environment(
    state: &AppState,
    caller: &Caller,
    found: &envs::Environment,
    started: i64,
) -> Result<Deletion, ApiError> {
    use crate::routes::deployments::done_step;
    use wharf_core::status::{DeploymentKind, DeploymentStatus, Step};
    use wharf_store::deployments::{self, Deployment};
    let (app_id, env_id) = (found.app.to_string(), found.id.to_string());
    let principal = caller.id.clone();
    let at_once = state
        .store
        .transaction(move |tx| {
            let deployed = !deployments::list(tx, &app_id, &env_id)?.is_empty();
            if deployed || wharf_store::provisioned::any(tx, &app_id, &env_id)? {
                envs::mark_deleting(tx, &app_id, &env_id)?;
                return Ok(false);
            }
            if envs::delete(tx, &app_id, &env_id)? {
                audit(
                    tx,
                    &principal,
                    "environments.delete",
                    format!("env:{app_id}/{env_id}"),
                    serde_json::Value::Null,
                )?;
                crate::outbound::emit(
                    tx,
                    "environment.deleted",
                    &app_id,
                    Some(&env_id),
                    serde_json::json!({ "by": principal }),
                )?;
                apps::delete_if_done(tx, &app_id)?;
            }
            Ok(true)
        })
        .await?;
    if at_once {
        return Ok(Deletion::Done);
    }
    // A deletion already waiting or running is the answer to asking again.
    let (a, e) = (found.app.to_string(), found.id.to_string());
    let pending = state
        .store
        .call(move |conn| {
            Ok(deployments::next(conn, &a, &e)?.filter(|d| d.kind == DeploymentKind::Delete))
        })
        .await?;
    if let Some(d) = pending {
        return Ok(Deletion::Queued(Box::new(d)));
    }
    let queued = crate::routes::deployments::queue(
        state,
        caller,
        Deployment {
            app: found.app.to_string(),
            env: found.id.to_string(),
            id: 0,
            kind: DeploymentKind::Delete,
            set_id: String::new(),
            images: serde_json::json!({}),
            comment: "delete the environment".into(),
            status: DeploymentStatus::Queued,
            error: None,
            created_at_ms: now_ms(),
            created_by: caller.id.clone(),
            started_at_ms: None,
            finished_at_ms: None,
            steps: crate::routes::deployments::steps(
                DeploymentKind::Delete,
                done_step(Step::Accept, started, serde_json::json!({})),
                done_step(
                    Step::Authorize,
                    started,
                    serde_json::json!({ "action": "environments.delete" }),
                ),
            ),
        },
        None,
    )
    .await?;
    Ok(Deletion::Queued(Box::new(queued)))
}
