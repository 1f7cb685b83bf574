//! `/apps/{app}/envs/{env}/deployments`, `/status` and `/logs`: deploying a set to an
//! environment, following the deployment, and seeing what runs.
//!
//! A deployment is accepted (its Score documents or delta validated, its set stored),
//! authorized (`deployments.create` on the environment's type, with its workloads and
//! images as attributes) and queued here, in one transaction; the engine carries it out
//! and the client follows it (`GET .../deployments/{id}`, or its server-sent events).

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::plan::{Chosen, choose};
use crate::routes::sets::{invalid, parse};
use crate::routes::{MAX_DOCUMENTS_BODY, Page, PageQuery, Unread, audit, blocking, id, page};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::clock::{now, now_ms};
use wharf_core::set::Set;
use wharf_core::status::{DeploymentKind, DeploymentStatus, Step as StepName, StepStatus};
use wharf_store::deployments::{self, Deployment, Step};
use wharf_store::{envs, sets};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show))
}

/// One step of a deployment.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StepView {
    name: StepName,
    status: StepStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<i64>,
    /// What it did.
    #[schema(value_type = Object)]
    detail: Value,
    /// Why it failed: `{scope, object, message}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    error: Option<Value>,
}

/// A deployment.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeploymentView {
    app: String,
    env: String,
    /// Its number in the environment, from 1.
    id: i64,
    /// A set's deployment, or the environment's deletion.
    kind: DeploymentKind,
    /// The set it applies.
    #[serde(skip_serializing_if = "String::is_empty")]
    set: String,
    /// Images given at deploy time, by container.
    #[schema(value_type = Object)]
    images: Value,
    comment: String,
    status: DeploymentStatus,
    /// Why it failed: `{step, scope, object, message}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    error: Option<Value>,
    created_at_ms: i64,
    created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at_ms: Option<i64>,
    /// Its steps (not in lists).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    steps: Vec<StepView>,
}

pub(crate) fn view(d: Deployment) -> DeploymentView {
    DeploymentView {
        app: d.app,
        env: d.env,
        id: d.id,
        kind: d.kind,
        set: d.set_id,
        images: d.images,
        comment: d.comment,
        status: d.status,
        error: d.error,
        created_at_ms: d.created_at_ms,
        created_by: d.created_by,
        started_at_ms: d.started_at_ms,
        finished_at_ms: d.finished_at_ms,
        steps: d
            .steps
            .into_iter()
            .map(|s| StepView {
                duration_ms: s.started_at_ms.zip(s.finished_at_ms).map(|(a, b)| b - a),
                name: s.name,
                status: s.status,
                started_at_ms: s.started_at_ms,
                finished_at_ms: s.finished_at_ms,
                detail: s.detail,
                error: s.error,
            })
            .collect(),
    }
}

pub(crate) fn env_target(app: &str, env: &str, env_type: Option<&str>) -> Target {
    Target {
        app: Some(app.to_string()),
        env: Some(env.to_string()),
        env_type: env_type.map(str::to_string),
        ..Target::default()
    }
}

/// Authorizes `environments.get` (so that a caller without access to the app learns
/// nothing), then loads the environment.
pub(crate) async fn environment(
    state: &AppState,
    caller: &Caller,
    app: &str,
    env: &str,
) -> Result<envs::Environment, ApiError> {
    let (app_id, env_id) = (id(app, "app")?, id(env, "env")?);
    state
        .policies
        .authorize(caller, "environments.get", env_target(app, env, None))
        .await?;
    state
        .store
        .call(move |conn| envs::get(conn, app_id.as_str(), env_id.as_str()))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("environment {app}/{env}")))
}

/// Loads environment `app/env` (see [`environment`]) once the caller is allowed
/// `action` on it, decided with its type.
pub(crate) async fn authorized(
    state: &AppState,
    caller: &Caller,
    app: &str,
    env: &str,
    action: &str,
) -> Result<envs::Environment, ApiError> {
    let found = environment(state, caller, app, env).await?;
    let target = env_target(app, env, Some(found.env_type.as_str()));
    state.policies.authorize(caller, action, target).await?;
    Ok(found)
}

/// A step that is done, with its times.
pub(crate) fn done_step(name: StepName, started_at_ms: i64, detail: Value) -> Step {
    Step {
        name,
        status: StepStatus::Done,
        started_at_ms: Some(started_at_ms),
        finished_at_ms: Some(now_ms()),
        detail,
        error: None,
    }
}

/// The steps of a new deployment of `kind`: `accept` and `authorize` done, the rest to do.
pub(crate) fn steps(kind: DeploymentKind, accept: Step, authorize: Step) -> Vec<Step> {
    let mut steps = vec![accept, authorize];
    steps.extend(kind.steps()[2..].iter().map(|n| Step::pending(*n)));
    steps
}

/// The body of `POST /apps/{app}/envs/{env}/deployments`: exactly one of `set`,
/// `workloads`, `delta` and `rollback_to`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDeployment {
    /// Deploy this stored set of the app.
    #[serde(default)]
    pub(crate) set: Option<String>,
    /// Deploy these Score documents (JSON objects or YAML text), stored as a set.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub(crate) workloads: Option<Vec<Value>>,
    /// Deploy the environment's current set changed by this JSON Patch.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub(crate) delta: Option<json_patch::Patch>,
    /// Deploy the set (and images) of this earlier deployment again; with
    /// `promote_from`, the deployment of the source environment to promote.
    #[serde(default)]
    pub(crate) rollback_to: Option<i64>,
    /// Promote: deploy exactly the set and images that this environment of the app runs
    /// (its current deployment, or `rollback_to` of it). Policies see it as the
    /// `promotion` attribute (`from`, `from_env_type`, `deployment`, `set`).
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    pub(crate) promote_from: Option<String>,
    /// Images by container (`CONTAINER`, or `WORKLOAD/CONTAINER` for one workload's): a
    /// container named here runs this image instead of its own; `*` gives one to every
    /// container whose image is `.`. Not with `rollback_to` or `promote_from`, which
    /// deploy the images that ran.
    #[serde(default)]
    pub(crate) images: BTreeMap<String, String>,
    /// Why.
    #[serde(default)]
    pub(crate) comment: String,
}

/// Lists an environment's deployments, newest first.
#[utoipa::path(get, path = "/apps/{app}/envs/{env}/deployments", operation_id = "listDeployments", tag = "deployments",
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id"), PageQuery),
    responses((status = 200, description = "The deployments, newest first", body = [DeploymentView])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> Result<Page<DeploymentView>, ApiError> {
    authorized(&state, &caller, &app, &env, "deployments.list").await?;
    let (a, e) = (app.clone(), env.clone());
    let all = state
        .store
        .call(move |conn| deployments::list(conn, &a, &e))
        .await?;
    // Newest first: the cursor counts down.
    page(
        all.into_iter().map(view).collect(),
        |d| format!("{:020}", i64::MAX - d.id),
        &query,
        &format!("/api/v1/apps/{app}/envs/{env}/deployments"),
    )
}

/// Deploys a set to an environment: accepted, authorized and queued (202); the engine
/// carries it out. Follow it at its `Location`, or at `.../events`.
#[utoipa::path(post, path = "/apps/{app}/envs/{env}/deployments", operation_id = "createDeployment", tag = "deployments",
    request_body = NewDeployment,
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id")),
    responses((status = 202, description = "Queued", body = DeploymentView)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
    request: Unread,
) -> Result<Response, ApiError> {
    let accept_started = now_ms();
    let found = environment(&state, &caller, &app, &env).await?;
    // Decided on what the path says before the body is read: a caller who may not deploy
    // here costs nothing more. Decided again below with what the body holds.
    state
        .policies
        .authorize(
            &caller,
            "deployments.create",
            Target {
                attributes: json!({ "stage": "request" }),
                ..env_target(&app, &env, Some(found.env_type.as_str()))
            },
        )
        .await?;
    let new: NewDeployment = request.json(MAX_DOCUMENTS_BODY).await?;
    let Chosen {
        set,
        images,
        source,
        promotion,
    } = choose(&state, &caller, &app, &env, &new).await?;
    let accept = done_step(
        StepName::Accept,
        accept_started,
        json!({ "set": set.id(), "source": source, "workloads": set.workloads.keys().collect::<Vec<_>>(),
                "promotion": promotion }),
    );
    let authorize_started = now_ms();
    let mut attributes = content_attributes(&set, &images);
    attributes["promotion"] = promotion;
    attributes["source"] = json!(source);
    state
        .policies
        .authorize(
            &caller,
            "deployments.create",
            Target {
                attributes,
                ..env_target(&app, &env, Some(found.env_type.as_str()))
            },
        )
        .await?;
    if found.deleting {
        return Err(ApiError::Clash(format!(
            "environment {app}/{env} is being deleted; it takes no more deployments"
        )));
    }
    let authorize = done_step(
        StepName::Authorize,
        authorize_started,
        json!({ "action": "deployments.create" }),
    );
    let queued = queue(
        &state,
        &caller,
        Deployment {
            app: app.clone(),
            env: env.clone(),
            id: 0,
            kind: DeploymentKind::Deploy,
            set_id: set.id(),
            images: json!(images),
            comment: new.comment,
            status: DeploymentStatus::Queued,
            error: None,
            created_at_ms: now_ms(),
            created_by: caller.id.clone(),
            started_at_ms: None,
            finished_at_ms: None,
            steps: steps(DeploymentKind::Deploy, accept, authorize),
        },
        Some(set),
    )
    .await?;
    Ok(accepted(queued))
}

impl NewDeployment {
    pub(crate) fn clone_source(&self) -> Source {
        Source {
            set: self.set.clone(),
            workloads: self.workloads.clone(),
            delta: self.delta.clone(),
            rollback_to: self.rollback_to,
        }
    }
}

/// Where a deployment's set comes from.
#[derive(Debug, Default)]
pub(crate) struct Source {
    pub(crate) set: Option<String>,
    pub(crate) workloads: Option<Vec<Value>>,
    pub(crate) delta: Option<json_patch::Patch>,
    pub(crate) rollback_to: Option<i64>,
}

/// Accept: the set a deployment applies, validated, with the images it inherits and a
/// word on where it came from.
pub(crate) async fn accept(
    state: &AppState,
    app: &str,
    env: &str,
    source: Source,
) -> Result<(Set, BTreeMap<String, String>, String), ApiError> {
    let given = [
        source.set.is_some(),
        source.workloads.is_some(),
        source.delta.is_some(),
        source.rollback_to.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given != 1 {
        return Err(ApiError::BadRequest(
            "give exactly one of set, workloads, delta and rollback_to".into(),
        ));
    }
    let stored = |set_id: String| async move {
        let (a, s) = (app.to_string(), set_id.clone());
        let found = state
            .store
            .call(move |conn| sets::get(conn, &a, &s))
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("set {set_id} of app {app}")))?;
        blocking(move || {
            Set::from_json(found.body).map_err(|p| {
                ApiError::internal(format!("stored set {set_id} does not validate: {p:?}"))
            })
        })
        .await
    };
    if let Some(documents) = source.workloads {
        let set = blocking(move || parse(documents)).await?;
        return Ok((set, BTreeMap::new(), "workloads".into()));
    }
    if let Some(set_id) = source.set {
        return Ok((
            stored(set_id.clone()).await?,
            BTreeMap::new(),
            format!("set {set_id}"),
        ));
    }
    let (a, e) = (app.to_string(), env.to_string());
    if let Some(n) = source.rollback_to {
        let earlier = state
            .store
            .call(move |conn| deployments::get(conn, &a, &e, n))
            .await?
            .filter(|d| d.kind == DeploymentKind::Deploy)
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "deployment {n} of {app}/{env} (one that applied a set)"
                ))
            })?;
        let images = serde_json::from_value(earlier.images).unwrap_or_default();
        return Ok((
            stored(earlier.set_id).await?,
            images,
            format!("rollback to deployment {n}"),
        ));
    }
    let patch = source.delta.expect("one source is given");
    let current = state
        .store
        .call(move |conn| deployments::current(conn, &a, &e))
        .await?
        .ok_or_else(|| {
            ApiError::Clash(format!(
                "environment {app}/{env} has no deployed set for a delta to change; deploy a set first"
            ))
        })?;
    let mut images: BTreeMap<String, String> =
        serde_json::from_value(current.images.clone()).unwrap_or_default();
    let base = stored(current.set_id.clone()).await?;
    let (base, next) = blocking(move || {
        let next = base.apply(&patch).map_err(invalid)?;
        Ok((base, next))
    })
    .await?;
    // A container whose image the delta changes runs that image, not one given earlier.
    for (w, workload) in &next.workloads {
        for (c, container) in &workload.containers {
            let before = base.workloads.get(w).and_then(|b| b.containers.get(c));
            if before.is_some_and(|b| b.image != container.image) {
                images.remove(&format!("{w}/{c}"));
                images.remove(c);
            }
        }
    }
    Ok((next, images, format!("delta on set {}", current.set_id)))
}

/// What a policy deciding `deployments.create` sees of what is deployed: the workloads,
/// every image, the images given at deploy time, and each workload's annotations (so that
/// ops can forbid some, like `container.apparmor.security.beta.kubernetes.io/*`).
pub(crate) fn content_attributes(set: &Set, images: &BTreeMap<String, String>) -> Value {
    let all_images: Vec<String> = images_of(set, images).into_values().collect();
    let annotations: serde_json::Map<String, Value> = set
        .workloads
        .iter()
        .map(|(name, w)| {
            (
                name.clone(),
                w.metadata
                    .get("annotations")
                    .cloned()
                    .unwrap_or_else(|| json!({})),
            )
        })
        .collect();
    json!({
        "stage": "content",
        "workloads": set.workloads.keys().collect::<Vec<_>>(),
        "images": all_images,
        "deploy_images": images,
        "annotations": annotations,
    })
}

/// The image every container of `set` runs with the images given at deploy time, by
/// `WORKLOAD/CONTAINER` (as the renderer chooses: by workload and container, by
/// container, its own, `*` for `.`).
pub(crate) fn images_of(set: &Set, images: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (w, workload) in &set.workloads {
        for (c, container) in &workload.containers {
            let key = format!("{w}/{c}");
            let image = match images.get(&key).or_else(|| images.get(c)) {
                Some(given) => given.clone(),
                None if container.image == "." => images.get("*").cloned().unwrap_or_default(),
                None => container.image.clone(),
            };
            out.insert(key, image);
        }
    }
    out
}

/// Stores the deployment (and its set, when new) in one transaction, with the audit
/// event, and wakes the engine.
pub(crate) async fn queue(
    state: &AppState,
    caller: &Caller,
    deployment: Deployment,
    set: Option<Set>,
) -> Result<Deployment, ApiError> {
    let (app, env) = (deployment.app.clone(), deployment.env.clone());
    let principal = caller.id.clone();
    let id = state
        .store
        .transaction(move |tx| {
            if deployment.kind == DeploymentKind::Deploy {
                if let Some(refused) = refuse_deploy(tx, &deployment.app, &deployment.env)? {
                    return Ok(Err(refused));
                }
                envs::extend(tx, &deployment.app, &deployment.env, now())?;
            }
            if let Some(set) = set {
                let row = sets::StoredSet {
                    app: deployment.app.clone(),
                    id: set.id(),
                    body: set.to_json(),
                    created_at: now(),
                    created_by: principal.clone(),
                };
                if sets::put(tx, &row)? {
                    audit(
                        tx,
                        &principal,
                        "sets.create",
                        format!("set:{}/{}", row.app, row.id),
                        json!({ "workloads": set.workloads.keys().collect::<Vec<_>>() }),
                    )?;
                }
            }
            let id = deployments::create(tx, &deployment)?;
            let action = match deployment.kind {
                DeploymentKind::Deploy => "deployments.create",
                DeploymentKind::Delete => "environments.delete",
            };
            audit(
                tx,
                &principal,
                action,
                format!("deployment:{}/{}/{id}", deployment.app, deployment.env),
                json!({ "set": deployment.set_id, "comment": deployment.comment }),
            )?;
            Ok(Ok(id))
        })
        .await??;
    state.engine.wake(&app, &env);
    let (a, e) = (app.clone(), env.clone());
    state
        .store
        .call(move |conn| deployments::get(conn, &a, &e, id))
        .await?
        .ok_or_else(|| ApiError::internal("a deployment vanished after it was stored"))
}

/// Why environment `app/env` takes no deployment now, if it does not: it is being
/// deleted, or it is paused. Read in the transaction that stores the deployment, so a
/// pause or a deletion cannot slip in between.
fn refuse_deploy(
    tx: &wharf_store::Tx<'_>,
    app: &str,
    env: &str,
) -> Result<Option<ApiError>, wharf_store::Error> {
    let Some(found) = envs::get(tx, app, env)? else {
        return Ok(Some(ApiError::NotFound(format!("environment {app}/{env}"))));
    };
    if found.deleting {
        return Ok(Some(ApiError::Clash(format!(
            "environment {app}/{env} is being deleted; it takes no more deployments"
        ))));
    }
    if let (Some(at), Some(by)) = (found.lifecycle.paused_at, &found.lifecycle.paused_by) {
        return Ok(Some(ApiError::Clash(format!(
            "environment {app}/{env} is paused (by {by} at {}); it takes no deployment until \
             it is resumed: wharf envs resume {app} {env}",
            wharf_core::clock::rfc3339(at)
        ))));
    }
    Ok(None)
}

/// 202 with the deployment and its `Location`.
pub(crate) fn accepted(d: Deployment) -> Response {
    let location = format!("/api/v1/apps/{}/envs/{}/deployments/{}", d.app, d.env, d.id);
    let mut response = (StatusCode::ACCEPTED, Json(view(d))).into_response();
    if let Ok(value) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

pub(crate) async fn load(
    state: &AppState,
    caller: &Caller,
    app: &str,
    env: &str,
    n: i64,
) -> Result<Deployment, ApiError> {
    authorized(state, caller, app, env, "deployments.get").await?;
    let (a, e) = (app.to_string(), env.to_string());
    state
        .store
        .call(move |conn| deployments::get(conn, &a, &e, n))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("deployment {n} of {app}/{env}")))
}

/// Shows a deployment with its steps.
#[utoipa::path(get, path = "/apps/{app}/envs/{env}/deployments/{id}", operation_id = "getDeployment", tag = "deployments",
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id"),
           ("id" = i64, Path, description = "The deployment's number")),
    responses((status = 200, description = "The deployment", body = DeploymentView)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env, n)): Path<(String, String, String)>,
) -> Result<Json<DeploymentView>, ApiError> {
    let n = number(&n)?;
    Ok(Json(view(load(&state, &caller, &app, &env, n).await?)))
}

pub(crate) fn number(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "id: {text:?} is not a deployment number (1, 2, ...)"
        ))
    })
}
