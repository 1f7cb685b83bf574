//! `/resource-types`: the kinds of resource workloads may ask for, with the schema of
//! their outputs.

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
use wharf_store::resources::{self as stored, ResourceType};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_types, create_type))
        .routes(routes!(show_type, delete_type))
}

/// The target of an action on the `what` with id `id`.
pub(crate) fn object(what: &str, id: &str) -> Target {
    Target {
        object: Some(format!("{what}:{id}")),
        ..Target::default()
    }
}

/// A resource type.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResourceTypeView {
    /// Its id (`postgres`).
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    id: String,
    /// What it is.
    #[serde(default)]
    description: String,
    /// The JSON Schema of the outputs a driver produces for it (`{}`: anything).
    #[serde(default = "empty_object")]
    outputs_schema: Value,
    /// When it was created (ignored in requests).
    #[serde(default)]
    created_at: i64,
}

pub(crate) fn empty_object() -> Value {
    json!({})
}

impl From<ResourceType> for ResourceTypeView {
    fn from(t: ResourceType) -> Self {
        Self {
            id: t.id,
            description: t.description,
            outputs_schema: t.outputs,
            created_at: t.created_at,
        }
    }
}

/// Lists the resource types.
#[utoipa::path(get, path = "/resource-types", operation_id = "listResourceTypes", tag = "resources", params(PageQuery),
    responses((status = 200, description = "The resource types", body = [ResourceTypeView])))]
async fn list_types(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Page<ResourceTypeView>, ApiError> {
    state
        .policies
        .authorize(&caller, "resource-types.list", Target::default())
        .await?;
    let all = state.store.call(stored::list_types).await?;
    page(
        all.into_iter().map(Into::into).collect(),
        |t: &ResourceTypeView| t.id.clone(),
        &query,
        "/api/v1/resource-types",
    )
}

/// Creates a resource type.
#[utoipa::path(post, path = "/resource-types", operation_id = "createResourceType", tag = "resources", request_body = ResourceTypeView,
    responses((status = 201, description = "Created", body = ResourceTypeView)))]
async fn create_type(
    State(state): State<AppState>,
    caller: Caller,
    Body(new): Body<ResourceTypeView>,
) -> Result<(StatusCode, Json<ResourceTypeView>), ApiError> {
    let type_id = id(&new.id, "id")?;
    if !new.outputs_schema.is_object() {
        return Err(ApiError::BadRequest(
            "outputs_schema: must be a JSON Schema object".into(),
        ));
    }
    state
        .policies
        .authorize(
            &caller,
            "resource-types.create",
            object("resource-type", type_id.as_str()),
        )
        .await?;
    let t = ResourceType {
        id: type_id.to_string(),
        description: new.description,
        outputs: new.outputs_schema,
        created_at: now(),
    };
    let (row, by) = (t.clone(), caller.id.clone());
    state
        .store
        .transaction(move |tx| {
            stored::create_type(tx, &row)?;
            audit(
                tx,
                &by,
                "resource-types.create",
                format!("resource-type:{}", row.id),
                Value::Null,
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(t.into())))
}

/// Shows a resource type.
#[utoipa::path(get, path = "/resource-types/{resource_type}", operation_id = "getResourceType", tag = "resources",
    params(("resource_type" = String, Path, description = "The resource type's id")),
    responses((status = 200, description = "The resource type", body = ResourceTypeView)))]
async fn show_type(
    State(state): State<AppState>,
    caller: Caller,
    Path(resource_type): Path<String>,
) -> Result<Json<ResourceTypeView>, ApiError> {
    state
        .policies
        .authorize(
            &caller,
            "resource-types.get",
            object("resource-type", &resource_type),
        )
        .await?;
    let key = resource_type.clone();
    state
        .store
        .call(move |conn| stored::get_type(conn, &key))
        .await?
        .map(|t| Json(t.into()))
        .ok_or_else(|| ApiError::NotFound(format!("resource type {resource_type}")))
}

/// Deletes a resource type no definition provisions.
#[utoipa::path(delete, path = "/resource-types/{resource_type}", operation_id = "deleteResourceType", tag = "resources",
    params(("resource_type" = String, Path, description = "The resource type's id")),
    responses((status = 204, description = "Deleted")))]
async fn delete_type(
    State(state): State<AppState>,
    caller: Caller,
    Path(resource_type): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .policies
        .authorize(
            &caller,
            "resource-types.delete",
            object("resource-type", &resource_type),
        )
        .await?;
    let key = resource_type.clone();
    delete_audited(
        &state,
        &caller.id,
        "resource-types.delete",
        format!("resource-type:{resource_type}"),
        format!("resource type {resource_type}"),
        move |tx| stored::delete_type(tx, &key),
    )
    .await
}
