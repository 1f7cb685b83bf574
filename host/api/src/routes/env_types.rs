//! `/env-types`: environment types, defined by ops.

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::{Body, Page, PageQuery, audit, delete_audited, id, page};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::clock::now;
use wharf_store::envs::{self, EnvType};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, replace, remove))
}

/// An environment type: a class of environments, with the target they run on.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EnvTypeView {
    id: String,
    description: String,
    /// Where environments of this type run (`{"kind": "process"}`).
    target: Value,
    /// The transformer installations every deployment's objects go through, in order.
    transformers: Vec<String>,
    /// Resources provisioned in every environment of this type.
    #[schema(value_type = Vec<Object>)]
    resources: Vec<wharf_core::graph::Implicit>,
    /// What the type allows its preview environments (those with a time to live).
    previews: PreviewLimits,
    created_at: i64,
}

/// What an environment type allows its preview environments.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewLimits {
    /// The longest time to live a preview may have (`7d`); no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_ttl: Option<String>,
    /// How many previews of the type one app may have at once; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_per_app: Option<u32>,
}

impl From<envs::Previews> for PreviewLimits {
    fn from(p: envs::Previews) -> Self {
        Self {
            max_ttl: p.max_ttl.map(wharf_core::duration::format_duration),
            max_per_app: p.max_per_app,
        }
    }
}

/// The limits as stored, or a 400 naming what is wrong.
fn previews(limits: PreviewLimits) -> Result<envs::Previews, ApiError> {
    let max_ttl = match &limits.max_ttl {
        Some(t) => Some(
            wharf_core::duration::parse_duration(t)
                .map_err(|e| ApiError::Invalid(vec![("/previews/max_ttl".into(), e)]))?,
        ),
        None => None,
    };
    Ok(envs::Previews {
        max_ttl,
        max_per_app: limits.max_per_app,
    })
}

impl From<EnvType> for EnvTypeView {
    fn from(t: EnvType) -> Self {
        Self {
            id: t.id.to_string(),
            description: t.description,
            target: t.target,
            transformers: t.transformers,
            resources: t.resources,
            previews: t.previews.into(),
            created_at: t.created_at,
        }
    }
}

/// The body of `POST /env-types`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewEnvType {
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    id: String,
    #[serde(default)]
    description: String,
    /// Where environments of this type run; the local process target by default.
    /// `{"kind": "process", "ready_timeout_seconds": 60}` or
    /// `{"kind": "gitops", "path": "/srv/manifests"}` (one directory per app and
    /// environment under it; a git commit per deployment when it is a work tree; with
    /// `"prune": true`, resources a new set no longer uses are deprovisioned once it is
    /// written, without waiting for the cluster to stop running the old set), or
    /// `{"kind": "kubernetes", "cluster": "prod-eu", "namespace": "{app}-{env}"}` (a
    /// cluster of `/clusters`; `"force_conflicts": true` takes over fields another field
    /// manager owns).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    target: Option<Value>,
    /// Transformer installations, applied in order to every deployment's objects.
    #[serde(default)]
    transformers: Vec<String>,
    /// Resources provisioned in every environment of the type:
    /// `[{"type": "namespace", "id": "env"}]`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    resources: Vec<wharf_core::graph::Implicit>,
    /// What the type allows its preview environments: `{"max_ttl": "7d",
    /// "max_per_app": 5}`.
    #[serde(default)]
    previews: PreviewLimits,
}

/// The body of `PUT /env-types/{env_type}`: every setting but the id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvTypeSettings {
    #[serde(default)]
    description: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    target: Option<Value>,
    #[serde(default)]
    transformers: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    resources: Vec<wharf_core::graph::Implicit>,
    /// What the type allows its preview environments: `{"max_ttl": "7d",
    /// "max_per_app": 5}`.
    #[serde(default)]
    previews: PreviewLimits,
}

/// Checks a target (the local process target when absent): a 400 lists every problem,
/// with its path under `/target`; a kubernetes target must name a known cluster.
async fn target(state: &AppState, target: Option<Value>) -> Result<Value, ApiError> {
    let target = target.unwrap_or_else(|| json!({ "kind": "process" }));
    let spec = wharf_core::target::TargetSpec::parse(&target).map_err(|problems| {
        ApiError::Invalid(
            problems
                .into_iter()
                .map(|(path, message)| (format!("/target{path}"), message))
                .collect(),
        )
    })?;
    if let Some(cluster) = spec.cluster() {
        let id = cluster.to_string();
        let known = state
            .store
            .call(move |tx| wharf_store::clusters::exists(tx, &id))
            .await?;
        if !known {
            return Err(ApiError::Invalid(vec![(
                "/target/cluster".into(),
                format!("no cluster {cluster:?}: add it first with `wharf clusters create`"),
            )]));
        }
    }
    Ok(target)
}

/// Checks implicit resources: types and ids that make uids, no two the same, and params
/// without placeholders (there is no workload to resolve them against).
fn implicit(resources: &[wharf_core::graph::Implicit]) -> Result<(), ApiError> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, r) in resources.iter().enumerate() {
        let label = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !label(&r.res_type) || !r.class.as_deref().is_none_or(label) {
            return Err(ApiError::BadRequest(format!(
                "resources[{i}]: type and class must be names of letters, digits and dashes"
            )));
        }
        if r.id.is_empty() || r.id.contains('#') || r.id.len() > 63 {
            return Err(ApiError::BadRequest(format!(
                "resources[{i}].id: must be 1 to 63 characters, without #"
            )));
        }
        if r.params
            .as_ref()
            .is_some_and(|p| p.to_string().contains("${"))
        {
            return Err(ApiError::BadRequest(format!(
                "resources[{i}].params: placeholders cannot be resolved here; give literal values"
            )));
        }
        if !seen.insert(r.uid()) {
            return Err(ApiError::BadRequest(format!(
                "resources[{i}]: {} is listed twice",
                r.uid()
            )));
        }
    }
    Ok(())
}

/// Checks that every named transformer is an installation of a transformer.
async fn transformers(state: &AppState, names: &[String]) -> Result<(), ApiError> {
    let names = names.to_vec();
    let missing = state
        .store
        .call(move |conn| {
            let installed =
                wharf_store::plugins::enabled_of_kind(conn, wharf_core::Kind::Transformer)?;
            Ok(names
                .iter()
                .enumerate()
                .find(|(_, n)| !installed.iter().any(|i| &i.id == *n))
                .map(|(i, n)| (i, n.clone())))
        })
        .await?;
    match missing {
        Some((i, name)) => Err(ApiError::BadRequest(format!(
            "transformers[{i}]: {name:?} is not an enabled transformer installation"
        ))),
        None => Ok(()),
    }
}

fn type_target(env_type: &str) -> Target {
    Target {
        env_type: Some(env_type.to_string()),
        ..Target::default()
    }
}

/// Lists the environment types.
#[utoipa::path(get, path = "/env-types", operation_id = "listEnvironmentTypes", tag = "env-types", params(PageQuery),
    responses((status = 200, description = "The environment types", body = [EnvTypeView])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Page<EnvTypeView>, ApiError> {
    state
        .policies
        .authorize(&caller, "env-types.list", Target::default())
        .await?;
    let all = state.store.call(envs::list_types).await?;
    page(
        all.into_iter().map(Into::into).collect(),
        |t: &EnvTypeView| t.id.clone(),
        &query,
        "/api/v1/env-types",
    )
}

/// Creates an environment type.
#[utoipa::path(post, path = "/env-types", operation_id = "createEnvironmentType", tag = "env-types", request_body = NewEnvType,
    responses((status = 201, description = "Created", body = EnvTypeView)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(new): Body<NewEnvType>,
) -> Result<(StatusCode, Json<EnvTypeView>), ApiError> {
    let type_id = id(&new.id, "id")?;
    state
        .policies
        .authorize(&caller, "env-types.create", type_target(type_id.as_str()))
        .await?;
    implicit(&new.resources)?;
    transformers(&state, &new.transformers).await?;
    let env_type = EnvType {
        id: type_id,
        description: new.description,
        target: target(&state, new.target).await?,
        transformers: new.transformers,
        resources: new.resources,
        previews: previews(new.previews)?,
        created_at: now(),
    };
    let stored = env_type.clone();
    let principal = caller.id.clone();
    state
        .store
        .transaction(move |tx| {
            envs::create_type(tx, &stored)?;
            audit(
                tx,
                &principal,
                "env-types.create",
                format!("env-type:{}", stored.id),
                json!({ "target": stored.target }),
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(env_type.into())))
}

/// Shows an environment type.
#[utoipa::path(get, path = "/env-types/{env_type}", operation_id = "getEnvironmentType", tag = "env-types",
    params(("env_type" = String, Path, description = "The environment type's id")),
    responses((status = 200, description = "The environment type", body = EnvTypeView)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(env_type): Path<String>,
) -> Result<Json<EnvTypeView>, ApiError> {
    let type_id = id(&env_type, "env-type")?;
    state
        .policies
        .authorize(&caller, "env-types.get", type_target(&env_type))
        .await?;
    state
        .store
        .call(move |conn| envs::get_type(conn, type_id.as_str()))
        .await?
        .map(|t| Json(t.into()))
        .ok_or_else(|| ApiError::NotFound(format!("environment type {env_type}")))
}

/// Replaces the settings of an environment type; its environments' next deployments use
/// them.
#[utoipa::path(put, path = "/env-types/{env_type}", operation_id = "replaceEnvironmentType", tag = "env-types", request_body = EnvTypeSettings,
    params(("env_type" = String, Path, description = "The environment type's id")),
    responses((status = 200, description = "The environment type", body = EnvTypeView)))]
async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(env_type): Path<String>,
    Body(new): Body<EnvTypeSettings>,
) -> Result<Json<EnvTypeView>, ApiError> {
    let type_id = id(&env_type, "env-type")?;
    state
        .policies
        .authorize(&caller, "env-types.update", type_target(&env_type))
        .await?;
    implicit(&new.resources)?;
    transformers(&state, &new.transformers).await?;
    let target = target(&state, new.target).await?;
    let limits = previews(new.previews)?;
    let principal = caller.id.clone();
    let updated = state
        .store
        .transaction(move |tx| {
            let Some(old) = envs::get_type(tx, type_id.as_str())? else {
                return Ok(None);
            };
            let t = EnvType {
                description: new.description,
                target,
                transformers: new.transformers,
                resources: new.resources,
                previews: limits,
                ..old
            };
            envs::update_type(tx, &t)?;
            audit(
                tx,
                &principal,
                "env-types.update",
                format!("env-type:{}", t.id),
                json!({ "target": t.target, "transformers": t.transformers }),
            )?;
            Ok(Some(t))
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("environment type {env_type}")))?;
    Ok(Json(updated.into()))
}

/// Deletes an environment type no environment uses.
#[utoipa::path(delete, path = "/env-types/{env_type}", operation_id = "deleteEnvironmentType", tag = "env-types",
    params(("env_type" = String, Path, description = "The environment type's id")),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(env_type): Path<String>,
) -> Result<StatusCode, ApiError> {
    let type_id = id(&env_type, "env-type")?;
    state
        .policies
        .authorize(&caller, "env-types.delete", type_target(&env_type))
        .await?;
    delete_audited(
        &state,
        &caller.id,
        "env-types.delete",
        format!("env-type:{type_id}"),
        format!("environment type {env_type}"),
        move |tx| envs::delete_type(tx, type_id.as_str()),
    )
    .await
}
