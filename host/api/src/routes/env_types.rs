//! `/env-types`: environment types, defined by ops.

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::{Page, PageQuery, audit, body, delete_audited, id, page};
use crate::{ApiError, AppState, now};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_store::envs::{self, EnvType};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, remove))
}

/// An environment type: a class of environments, with the target they run on.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EnvTypeView {
    id: String,
    description: String,
    /// Where environments of this type run (`{"kind": "process"}`).
    target: Value,
    created_at: i64,
}

impl From<EnvType> for EnvTypeView {
    fn from(t: EnvType) -> Self {
        Self {
            id: t.id.to_string(),
            description: t.description,
            target: t.target,
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
    #[serde(default)]
    target: Option<Value>,
}

/// Checks a target: the process target is the one this version runs.
fn target(target: Option<Value>) -> Result<Value, ApiError> {
    let target = target.unwrap_or_else(|| json!({ "kind": "process" }));
    match target.get("kind").and_then(Value::as_str) {
        Some("process") if target.as_object().is_some_and(|o| o.len() == 1) => Ok(target),
        Some("process") => Err(ApiError::BadRequest(
            "target: the process target takes no settings besides \"kind\"".into(),
        )),
        Some(other) => Err(ApiError::BadRequest(format!(
            "target.kind: unknown target {other:?}; expected \"process\""
        ))),
        None => Err(ApiError::BadRequest(
            "target: expected an object with \"kind\", like {\"kind\": \"process\"}".into(),
        )),
    }
}

fn type_target(env_type: &str) -> Target {
    Target {
        env_type: Some(env_type.to_string()),
        ..Target::default()
    }
}

/// Lists the environment types.
#[utoipa::path(get, path = "/env-types", tag = "env-types", params(PageQuery),
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
    let all = state.store.call(|conn| envs::list_types(conn)).await?;
    page(
        all.into_iter().map(Into::into).collect(),
        |t: &EnvTypeView| t.id.clone(),
        &query,
        "/api/v1/env-types",
    )
}

/// Creates an environment type.
#[utoipa::path(post, path = "/env-types", tag = "env-types", request_body = NewEnvType,
    responses((status = 201, description = "Created", body = EnvTypeView)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<Json<NewEnvType>, JsonRejection>,
) -> Result<(StatusCode, Json<EnvTypeView>), ApiError> {
    let new = body(request)?;
    let type_id = id(&new.id, "id")?;
    state
        .policies
        .authorize(&caller, "env-types.create", type_target(type_id.as_str()))
        .await?;
    let env_type = EnvType {
        id: type_id,
        description: new.description,
        target: target(new.target)?,
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
#[utoipa::path(get, path = "/env-types/{env_type}", tag = "env-types",
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

/// Deletes an environment type no environment uses.
#[utoipa::path(delete, path = "/env-types/{env_type}", tag = "env-types",
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
