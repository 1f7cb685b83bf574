//! `POST /apps/{app}/envs/{env}/plan`: what a deployment would change, before it is made
//! (the set's changes, the images, the resources to create and to remove), and what a
//! deployment request deploys, a promotion's included.

use crate::auth::Caller;
use crate::routes::deployments::{
    NewDeployment, accept, authorized, env_target, environment, images_of,
};
use crate::routes::{MAX_DOCUMENTS_BODY, Unread, blocking};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::set::Set;
use wharf_core::status::{DeploymentKind, DeploymentStatus};
use wharf_store::{deployments, sets};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(plan))
}

/// What a deployment request deploys: the set, the images, where they came from, and
/// (for a promotion) the environment and deployment they ran in, as policies see it.
pub(crate) struct Chosen {
    pub(crate) set: Set,
    pub(crate) images: BTreeMap<String, String>,
    pub(crate) source: String,
    pub(crate) promotion: Value,
}

/// Reads what a deployment request deploys to `app/env`: its set (a promotion's is what
/// the source environment runs), with the images it inherits and those it gives.
pub(crate) async fn choose(
    state: &AppState,
    caller: &Caller,
    app: &str,
    env: &str,
    new: &NewDeployment,
) -> Result<Chosen, ApiError> {
    if let Some(from) = &new.promote_from {
        if new.set.is_some() || new.workloads.is_some() || new.delta.is_some() {
            return Err(ApiError::BadRequest(
                "promote_from deploys what the source environment runs: give no set, \
                 workloads or delta with it"
                    .into(),
            ));
        }
        if !new.images.is_empty() {
            return Err(ApiError::BadRequest(
                "promote_from deploys the source's images exactly: give no images with it".into(),
            ));
        }
        return promotion(state, caller, app, env, from, new.rollback_to).await;
    }
    if new.rollback_to.is_some() && !new.images.is_empty() {
        return Err(ApiError::BadRequest(
            "rollback_to deploys the earlier deployment's images exactly: give no images with \
             it"
            .into(),
        ));
    }
    let (set, mut images, source) = accept(state, app, env, new.clone_source()).await?;
    images.extend(new.images.clone());
    for (container, image) in &images {
        if container.is_empty() || image.trim().is_empty() {
            return Err(ApiError::BadRequest(format!(
                "images: {container:?}={image:?}; give CONTAINER=IMAGE with both non-empty"
            )));
        }
    }
    Ok(Chosen {
        set,
        images,
        source,
        promotion: Value::Null,
    })
}

/// What a promotion from `from` to `app/env` deploys: exactly the set and images of the
/// source's current deployment (or of its deployment `pinned`, which must have
/// succeeded), read with the caller's right to see them.
async fn promotion(
    state: &AppState,
    caller: &Caller,
    app: &str,
    env: &str,
    from: &str,
    pinned: Option<i64>,
) -> Result<Chosen, ApiError> {
    if from == env {
        return Err(ApiError::BadRequest(format!(
            "promote_from: {from} is the environment deployed to; promote from another one"
        )));
    }
    let source_env = environment(state, caller, app, from).await?;
    state
        .policies
        .authorize(
            caller,
            "deployments.list",
            env_target(app, from, Some(source_env.env_type.as_str())),
        )
        .await?;
    let (a, e) = (app.to_string(), from.to_string());
    let running = state
        .store
        .call(move |conn| match pinned {
            Some(n) => Ok(deployments::get(conn, &a, &e, n)?.filter(|d| {
                d.kind == DeploymentKind::Deploy && d.status == DeploymentStatus::Succeeded
            })),
            None => deployments::current(conn, &a, &e),
        })
        .await?
        .ok_or_else(|| match pinned {
            Some(n) => ApiError::NotFound(format!(
                "deployment {n} of {app}/{from} that applied a set and succeeded"
            )),
            None => ApiError::Clash(format!(
                "environment {app}/{from} runs nothing yet: no deployment of it succeeded, so \
                 there is nothing to promote"
            )),
        })?;
    let (a, set_id) = (app.to_string(), running.set_id.clone());
    let found = state
        .store
        .call(move |conn| sets::get(conn, &a, &set_id))
        .await?
        .ok_or_else(|| ApiError::internal("a deployed set is not stored"))?;
    let set = blocking(move || {
        Set::from_json(found.body)
            .map_err(|p| ApiError::internal(format!("a stored set does not validate: {p:?}")))
    })
    .await?;
    let images = serde_json::from_value(running.images.clone()).unwrap_or_default();
    Ok(Chosen {
        set,
        images,
        source: format!("promotion of deployment {} of {from}", running.id),
        promotion: json!({
            "from": from,
            "from_env_type": source_env.env_type.as_str(),
            "deployment": running.id,
            "set": running.set_id,
        }),
    })
}

/// A container's image now and in the plan.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImageChange {
    /// `WORKLOAD/CONTAINER`.
    container: String,
    /// What runs now.
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    /// What would run.
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
}

/// A resource of the plan.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlannedResource {
    uid: String,
    /// The definition that would provision it (the one that did, for one to remove).
    definition: String,
}

/// What the resources would do.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct ResourcePlan {
    /// New: their drivers would provision them (the target environment's own
    /// definitions, by its type).
    create: Vec<PlannedResource>,
    /// Provisioned already: their drivers would be called again with the same identity.
    keep: Vec<PlannedResource>,
    /// Provisioned and no longer used: deprovisioned once the new set serves.
    remove: Vec<PlannedResource>,
    /// Resources no definition matches: the deployment would fail at `resolve`.
    unresolved: Vec<String>,
}

/// What a deployment would change.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlanView {
    /// The set it would apply.
    set: String,
    /// The set the environment runs now.
    #[serde(skip_serializing_if = "Option::is_none")]
    current_set: Option<String>,
    /// The changes to the environment's set, as a JSON Patch (empty: the same set).
    #[schema(value_type = Vec<Object>)]
    set_diff: Value,
    /// Every container whose image would change, or that would come or go.
    images: Vec<ImageChange>,
    resources: ResourcePlan,
    /// Where the set comes from.
    source: String,
    /// For a promotion: where it ran.
    #[schema(value_type = Object)]
    promotion: Value,
}

/// Shows what a deployment (a promotion, a rollback, a set) would change in an
/// environment, without deploying: the body is that of a deployment.
#[utoipa::path(post, path = "/apps/{app}/envs/{env}/plan", operation_id = "planDeployment", tag = "deployments",
    request_body = NewDeployment,
    params(("app" = String, Path, description = "The app's id"),
           ("env" = String, Path, description = "The environment's id")),
    responses((status = 200, description = "What it would change", body = PlanView)))]
async fn plan(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
    request: Unread,
) -> Result<Json<PlanView>, ApiError> {
    let found = authorized(&state, &caller, &app, &env, "deployments.list").await?;
    let new: NewDeployment = request.json(MAX_DOCUMENTS_BODY).await?;
    let chosen = choose(&state, &caller, &app, &env, &new).await?;
    let (a, e, t) = (app.clone(), env.clone(), found.env_type.to_string());
    let sealer = state.sealer.clone();
    let (current, env_type, definitions, records) = state
        .store
        .call(move |conn| {
            let current = match deployments::current(conn, &a, &e)? {
                Some(d) => sets::get(conn, &a, &d.set_id)?.map(|s| (d, s.body)),
                None => None,
            };
            let env_type = wharf_store::envs::get_type(conn, &t)?;
            let definitions = wharf_store::resources::list_definitions(conn)?
                .into_iter()
                .map(|d| {
                    let inputs = wharf_store::resources::driver_inputs(&sealer, &d)?;
                    Ok((d, inputs))
                })
                .collect::<Result<Vec<_>, wharf_store::Error>>()?;
            let records = wharf_store::provisioned::list(conn, &sealer, &a, &e)?;
            Ok((current, env_type, definitions, records))
        })
        .await?;
    let env_type = env_type.ok_or_else(|| ApiError::internal("the environment's type is gone"))?;
    let (current, current_images) = match current {
        Some((d, body)) => {
            let set = blocking(move || {
                Set::from_json(body).map_err(|p| {
                    ApiError::internal(format!("a stored set does not validate: {p:?}"))
                })
            })
            .await?;
            let images: BTreeMap<String, String> =
                serde_json::from_value(d.images).unwrap_or_default();
            (Some(set), images)
        }
        None => (None, BTreeMap::new()),
    };
    let base = current.clone().unwrap_or_default();
    let set_diff = serde_json::to_value(base.diff(&chosen.set)).unwrap_or(json!([]));
    let images = image_changes(&base, &current_images, &chosen.set, &chosen.images);
    let resources = resource_plan(&chosen.set, &env_type, &definitions, &records, &app, &env);
    Ok(Json(PlanView {
        set: chosen.set.id(),
        current_set: current.map(|s| s.id()),
        set_diff,
        images,
        resources,
        source: chosen.source,
        promotion: chosen.promotion,
    }))
}

fn image_changes(
    now: &Set,
    now_images: &BTreeMap<String, String>,
    next: &Set,
    next_images: &BTreeMap<String, String>,
) -> Vec<ImageChange> {
    let (before, after) = (images_of(now, now_images), images_of(next, next_images));
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter(|n| before.get(*n) != after.get(*n))
        .map(|n| ImageChange {
            container: n.clone(),
            from: before.get(n).cloned(),
            to: after.get(n).cloned(),
        })
        .collect()
}

/// Which resources the set would need in the environment, each with the definition the
/// environment's type matches, against what is provisioned there.
fn resource_plan(
    set: &Set,
    env_type: &wharf_store::envs::EnvType,
    definitions: &[(wharf_store::resources::Definition, Value)],
    records: &[wharf_store::provisioned::Record],
    app: &str,
    env: &str,
) -> ResourcePlan {
    use wharf_core::graph;
    let mut plan = ResourcePlan::default();
    let workloads: Vec<_> = set.workloads.values().cloned().collect();
    let mut g = match graph::build_with(&workloads, &env_type.resources) {
        Ok(g) => g,
        Err(e) => {
            plan.unresolved.push(e.to_string());
            return plan;
        }
    };
    let refs: Vec<graph::DefinitionRef> = definitions
        .iter()
        .map(|(d, inputs)| graph::DefinitionRef {
            id: d.id.clone(),
            res_type: d.res_type.clone(),
            criteria: serde_json::from_value(d.body["criteria"].clone()).unwrap_or_default(),
            inputs: inputs.clone(),
        })
        .collect();
    let chosen = match graph::match_definitions(&mut g, &refs, app, env, env_type.id.as_str()) {
        Ok(chosen) => chosen,
        Err(errors) => {
            plan.unresolved = errors.iter().map(|e| e.to_string()).collect();
            return plan;
        }
    };
    let held: BTreeMap<&str, &str> = records
        .iter()
        .map(|r| (r.uid.as_str(), r.definition.as_str()))
        .collect();
    for (uid, definition) in &chosen {
        let planned = PlannedResource {
            uid: uid.clone(),
            definition: definition.clone(),
        };
        if held.contains_key(uid.as_str()) {
            plan.keep.push(planned);
        } else {
            plan.create.push(planned);
        }
    }
    for (uid, definition) in held {
        if !chosen.contains_key(uid) {
            plan.remove.push(PlannedResource {
                uid: uid.to_string(),
                definition: definition.to_string(),
            });
        }
    }
    plan
}
