//! `/resource-types` and `/resource-definitions`: what resources exist, and which driver
//! installation provisions each, with which inputs, where (the definitions' criteria).
//! `POST /resource-definitions/match` says which definition a context would use, and why.

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::{
    Page, PageQuery, audit, body, check_version, delete_audited, id, if_match, page, tagged,
};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::clock::now;
use wharf_core::matching::{self, Candidate, Criterion, MatchError};
use wharf_store::resources::{self as stored, Definition, ResourceType, secrets_context};
use wharf_store::secrets::Sealer;
use wharf_store::{envs, plugins};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_types, create_type))
        .routes(routes!(show_type, delete_type))
        .routes(routes!(list_definitions, create_definition))
        .routes(routes!(
            show_definition,
            replace_definition,
            delete_definition
        ))
        .routes(routes!(definition_versions))
        .routes(routes!(match_definition))
}

fn object(what: &str, id: &str) -> Target {
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

fn empty_object() -> Value {
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
    request: Result<Json<ResourceTypeView>, JsonRejection>,
) -> Result<(StatusCode, Json<ResourceTypeView>), ApiError> {
    let new = body(request)?;
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

/// The inputs a definition gives its driver.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DriverInputs {
    /// Values passed to the driver.
    #[serde(default = "empty_object")]
    values: Value,
    /// Secrets passed to the driver. Write-only: responses name their keys, never their
    /// values; an update that leaves them out keeps the current ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secrets: Option<Map<String, Value>>,
}

/// The body of `POST /resource-definitions` and `PUT /resource-definitions/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefinitionRequest {
    /// Its id (must equal the path's on PUT).
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    id: String,
    /// The resource type it provisions.
    #[serde(rename = "type")]
    res_type: String,
    /// The driver installation that provisions it.
    driver: String,
    /// What it is for.
    #[serde(default)]
    description: String,
    /// What the driver is given.
    #[serde(default)]
    driver_inputs: DriverInputs,
    /// Where it applies; the most specific matching criterion of all definitions of the
    /// type wins (env_type < app < env < res_id).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    criteria: Vec<Criterion>,
    /// What happens to what it provisioned when an environment no longer uses it (a
    /// deployment prunes it, or the environment is deleted): `delete` (the driver
    /// deprovisions it, the default) or `orphan` (Wharf forgets it and the thing stays in
    /// the system that holds it, for a production database, say).
    #[serde(default)]
    deletion_policy: DeletionPolicy,
    /// The Score params workloads may give the driver. When absent, every param but
    /// `name`: a name picks a real thing on a shared system (a database, a bucket, a
    /// record), so workloads choose it only where ops list it here (the driver then
    /// checks it, and adopts only what it made for the same resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_params: Option<Vec<String>>,
}

/// What happens to a resource no longer used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DeletionPolicy {
    /// The driver deprovisions it.
    #[default]
    Delete,
    /// Wharf forgets it; it stays where it is.
    Orphan,
}

/// A resource definition.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DefinitionView {
    id: String,
    #[serde(rename = "type")]
    res_type: String,
    driver: String,
    description: String,
    /// The driver's values.
    driver_values: Value,
    /// The names of the driver's secrets (their values are never shown).
    driver_secret_keys: Vec<String>,
    #[schema(value_type = Vec<Object>)]
    criteria: Vec<Criterion>,
    /// `delete` or `orphan`.
    deletion_policy: DeletionPolicy,
    /// The Score params workloads may give the driver (every param but `name` when
    /// absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_params: Option<Vec<String>>,
    /// 1 when created, bumped by every update; also the `ETag`.
    version: i64,
    created_at: i64,
    updated_at: i64,
    updated_by: String,
}

fn definition_view(d: &Definition) -> DefinitionView {
    DefinitionView {
        id: d.id.clone(),
        res_type: d.res_type.clone(),
        driver: d.driver.clone(),
        description: d.body["description"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        driver_values: d.body["driver_inputs"]["values"].clone(),
        driver_secret_keys: d.body["driver_inputs"]["secret_keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        criteria: criteria(d),
        allow_params: serde_json::from_value(d.body["allow_params"].clone()).ok(),
        deletion_policy: if d.body["deletion_policy"] == "orphan" {
            DeletionPolicy::Orphan
        } else {
            DeletionPolicy::Delete
        },
        version: d.version,
        created_at: d.created_at,
        updated_at: d.updated_at,
        updated_by: d.updated_by.clone(),
    }
}

fn criteria(d: &Definition) -> Vec<Criterion> {
    serde_json::from_value(d.body["criteria"].clone()).unwrap_or_default()
}

/// Lists the resource definitions.
#[utoipa::path(get, path = "/resource-definitions", operation_id = "listResourceDefinitions", tag = "resources", params(PageQuery),
    responses((status = 200, description = "The definitions", body = [DefinitionView])))]
async fn list_definitions(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Page<DefinitionView>, ApiError> {
    state
        .policies
        .authorize(&caller, "resource-definitions.list", Target::default())
        .await?;
    let all = state.store.call(stored::list_definitions).await?;
    page(
        all.iter().map(definition_view).collect(),
        |d| d.id.clone(),
        &query,
        "/api/v1/resource-definitions",
    )
}

/// Checks a definition against the store: its type exists, its driver is an installed
/// driver that serves the type, its criteria are valid and no other definition of the
/// type has one of them. Returns it ready to write (secrets kept from `previous` when the
/// request has none).
fn check_definition(
    conn: &wharf_store::Tx<'_>,
    sealer: &Sealer,
    mut request: DefinitionRequest,
    previous: Option<&Definition>,
    by: &str,
) -> Result<Result<Definition, ApiError>, wharf_store::Error> {
    let bad = |text: String| Ok(Err(ApiError::BadRequest(text)));
    if stored::get_type(conn, &request.res_type)?.is_none() {
        return bad(format!(
            "type: there is no resource type {:?}; create it first",
            request.res_type
        ));
    }
    let Some(installation) = plugins::installation_by_id(conn, &request.driver)? else {
        return bad(format!(
            "driver: there is no plugin installation {:?}",
            request.driver
        ));
    };
    let plugin = plugins::get(conn, &installation.plugin)?;
    let Some(plugin) = plugin.filter(|p| p.kind == wharf_core::Kind::Driver) else {
        return bad(format!(
            "driver: installation {} does not run a driver plugin",
            request.driver
        ));
    };
    let served: Vec<&str> = plugin.info["resource_types"]
        .as_array()
        .map(|types| types.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    if !served.is_empty() && !served.iter().any(|t| *t == "*" || *t == request.res_type) {
        return bad(format!(
            "driver: plugin {} provisions {}, not {}",
            plugin.id,
            served.join(", "),
            request.res_type
        ));
    }
    for (i, c) in request.criteria.iter().enumerate() {
        if c.class.is_empty() {
            return bad(format!("criteria[{i}].class: must not be empty"));
        }
        for (name, value) in [("env_type", &c.env_type), ("app", &c.app), ("env", &c.env)] {
            if let Some(v) = value
                && let Err(e) = wharf_core::Id::new(v.as_str())
            {
                return bad(format!("criteria[{i}].{name}: {e}"));
            }
        }
        if request.criteria[..i].contains(c) {
            return bad(format!("criteria[{i}]: {c} is listed twice"));
        }
    }
    let others = stored::list_definitions(conn)?;
    let others_criteria: Vec<Vec<Criterion>> = others.iter().map(criteria).collect();
    let candidates: Vec<Candidate<'_>> = others
        .iter()
        .zip(&others_criteria)
        .map(|(d, c)| Candidate {
            id: &d.id,
            res_type: &d.res_type,
            criteria: c,
        })
        .collect();
    for c in &request.criteria {
        if let Err(e) =
            matching::check_new_criterion(&candidates, &request.id, &request.res_type, c)
        {
            return Ok(Err(ApiError::Clash(format!("criteria: {e}"))));
        }
    }
    if let Some(allowed) = &request.allow_params
        && let Some((i, p)) = allowed.iter().enumerate().find(|(_, p)| {
            p.is_empty()
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
    {
        return bad(format!(
            "allow_params[{i}]: {p:?} is not a param name (letters, digits, - and _)"
        ));
    }
    if request.driver_inputs.values.is_null() {
        request.driver_inputs.values = json!({});
    }
    if !request.driver_inputs.values.is_object() {
        return bad("driver_inputs.values: must be a JSON object".into());
    }
    // Secrets are sealed at rest, bound to this definition; their names stay readable.
    let (secret_keys, sealed) = match (&request.driver_inputs.secrets, previous) {
        (Some(s), _) => {
            let sealed = sealer.seal(
                Value::Object(s.clone()).to_string().as_bytes(),
                &secrets_context(&request.id),
            );
            (
                json!(s.keys().collect::<Vec<_>>()),
                json!(base64::engine::general_purpose::STANDARD.encode(sealed)),
            )
        }
        (None, Some(p)) => (
            p.body["driver_inputs"]["secret_keys"].clone(),
            p.body["driver_inputs"]["secrets_sealed"].clone(),
        ),
        (None, None) => (json!([]), Value::Null),
    };
    let at = now();
    Ok(Ok(Definition {
        id: request.id,
        res_type: request.res_type,
        driver: request.driver,
        body: json!({
            "description": request.description,
            "driver_inputs": {
                "values": request.driver_inputs.values,
                "secret_keys": secret_keys,
                "secrets_sealed": sealed,
            },
            "criteria": request.criteria,
            "deletion_policy": request.deletion_policy,
            "allow_params": request.allow_params,
        }),
        version: previous.map_or(1, |p| p.version + 1),
        created_at: previous.map_or(at, |p| p.created_at),
        updated_at: at,
        updated_by: by.to_string(),
    }))
}

/// Creates a resource definition (version 1).
#[utoipa::path(post, path = "/resource-definitions", operation_id = "createResourceDefinition", tag = "resources",
    request_body = DefinitionRequest,
    responses((status = 201, description = "Created", body = DefinitionView,
               headers(("ETag" = String, description = "The version")))))]
async fn create_definition(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<Json<DefinitionRequest>, JsonRejection>,
) -> Result<(StatusCode, Response), ApiError> {
    let request = body(request)?;
    let def_id = id(&request.id, "id")?;
    id(&request.res_type, "type")?;
    id(&request.driver, "driver")?;
    state
        .policies
        .authorize(
            &caller,
            "resource-definitions.create",
            object("resource-definition", def_id.as_str()),
        )
        .await?;
    let by = caller.id.clone();
    let sealer = state.sealer.clone();
    let written = state
        .store
        .transaction(move |tx| {
            if stored::get_definition(tx, def_id.as_str())?.is_some() {
                return Ok(Err(ApiError::Conflict(format!(
                    "resource definition {def_id}"
                ))));
            }
            let d = match check_definition(tx, &sealer, request, None, &by)? {
                Ok(d) => d,
                Err(e) => return Ok(Err(e)),
            };
            stored::put_definition(tx, &d)?;
            audit(
                tx,
                &by,
                "resource-definitions.create",
                format!("resource-definition:{}", d.id),
                json!({ "version": d.version, "type": d.res_type, "driver": d.driver }),
            )?;
            Ok(Ok(d))
        })
        .await??;
    Ok((
        StatusCode::CREATED,
        tagged(written.version, Json(definition_view(&written))),
    ))
}

/// Shows a resource definition; its `ETag` is its version.
#[utoipa::path(get, path = "/resource-definitions/{definition}", operation_id = "getResourceDefinition", tag = "resources",
    params(("definition" = String, Path, description = "The definition's id")),
    responses((status = 200, description = "The definition", body = DefinitionView,
               headers(("ETag" = String, description = "The version, for If-Match")))))]
async fn show_definition(
    State(state): State<AppState>,
    caller: Caller,
    Path(definition): Path<String>,
) -> Result<Response, ApiError> {
    state
        .policies
        .authorize(
            &caller,
            "resource-definitions.get",
            object("resource-definition", &definition),
        )
        .await?;
    let key = definition.clone();
    let d = state
        .store
        .call(move |conn| stored::get_definition(conn, &key))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("resource definition {definition}")))?;
    Ok(tagged(d.version, Json(definition_view(&d))))
}

/// Replaces a resource definition with a new version. Send the `ETag` you read as
/// `If-Match` so that a concurrent change is not overwritten.
#[utoipa::path(put, path = "/resource-definitions/{definition}", operation_id = "replaceResourceDefinition", tag = "resources",
    params(("definition" = String, Path, description = "The definition's id"),
           ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    request_body = DefinitionRequest,
    responses((status = 200, description = "The new version", body = DefinitionView,
               headers(("ETag" = String, description = "The new version")))))]
async fn replace_definition(
    State(state): State<AppState>,
    caller: Caller,
    Path(definition): Path<String>,
    headers: HeaderMap,
    request: Result<Json<DefinitionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(request)?;
    let accepted = if_match(&headers)?;
    if request.id != definition {
        return Err(ApiError::BadRequest(format!(
            "id: {:?} differs from the path's {definition:?}",
            request.id
        )));
    }
    state
        .policies
        .authorize(
            &caller,
            "resource-definitions.update",
            object("resource-definition", &definition),
        )
        .await?;
    let (key, by) = (definition.clone(), caller.id.clone());
    let sealer = state.sealer.clone();
    let written = state
        .store
        .transaction(move |tx| {
            let Some(current) = stored::get_definition(tx, &key)? else {
                return Ok(Err(ApiError::NotFound(format!(
                    "resource definition {key}"
                ))));
            };
            if let Err(e) = check_version(
                &accepted,
                current.version,
                &format!("resource definition {key}"),
            ) {
                return Ok(Err(e));
            }
            if request.res_type != current.res_type {
                return Ok(Err(ApiError::BadRequest(format!(
                    "type: a definition's type cannot change (it is {}); create a new definition",
                    current.res_type
                ))));
            }
            let d = match check_definition(tx, &sealer, request, Some(&current), &by)? {
                Ok(d) => d,
                Err(e) => return Ok(Err(e)),
            };
            stored::put_definition(tx, &d)?;
            audit(
                tx,
                &by,
                "resource-definitions.update",
                format!("resource-definition:{}", d.id),
                json!({ "version": d.version, "driver": d.driver }),
            )?;
            Ok(Ok(d))
        })
        .await??;
    Ok(tagged(written.version, Json(definition_view(&written))))
}

/// Deletes a resource definition and its history.
#[utoipa::path(delete, path = "/resource-definitions/{definition}", operation_id = "deleteResourceDefinition", tag = "resources",
    params(("definition" = String, Path, description = "The definition's id")),
    responses((status = 204, description = "Deleted")))]
async fn delete_definition(
    State(state): State<AppState>,
    caller: Caller,
    Path(definition): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .policies
        .authorize(
            &caller,
            "resource-definitions.delete",
            object("resource-definition", &definition),
        )
        .await?;
    let key = definition.clone();
    delete_audited(
        &state,
        &caller.id,
        "resource-definitions.delete",
        format!("resource-definition:{definition}"),
        format!("resource definition {definition}"),
        move |tx| stored::delete_definition(tx, &key),
    )
    .await
}

/// One version of a definition.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionView {
    version: i64,
    driver: String,
    description: String,
    driver_values: Value,
    #[schema(value_type = Vec<Object>)]
    criteria: Value,
    created_at: i64,
    created_by: String,
}

/// Lists every version of a definition, oldest first.
#[utoipa::path(get, path = "/resource-definitions/{definition}/versions", operation_id = "listResourceDefinitionVersions", tag = "resources",
    params(("definition" = String, Path, description = "The definition's id")),
    responses((status = 200, description = "Its versions", body = [VersionView])))]
async fn definition_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(definition): Path<String>,
) -> Result<Json<Vec<VersionView>>, ApiError> {
    state
        .policies
        .authorize(
            &caller,
            "resource-definitions.get",
            object("resource-definition", &definition),
        )
        .await?;
    let key = definition.clone();
    let versions = state
        .store
        .call(move |conn| stored::definition_versions(conn, &key))
        .await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound(format!(
            "resource definition {definition}"
        )));
    }
    Ok(Json(
        versions
            .into_iter()
            .map(|v| {
                let c = &v.content;
                VersionView {
                    version: v.version,
                    driver: c["driver"].as_str().unwrap_or_default().to_string(),
                    description: c["body"]["description"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    driver_values: c["body"]["driver_inputs"]["values"].clone(),
                    criteria: c["body"]["criteria"].clone(),
                    created_at: v.created_at,
                    created_by: v.created_by,
                }
            })
            .collect(),
    ))
}

/// The body of `POST /resource-definitions/match`: what would be provisioned, and where.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchRequest {
    /// The resource type.
    #[serde(rename = "type")]
    res_type: String,
    /// The resource class (`default` when absent).
    #[serde(default)]
    class: Option<String>,
    /// The resource id (empty when absent).
    #[serde(default)]
    res_id: Option<String>,
    /// The app.
    app: String,
    /// The environment.
    env: String,
    /// The environment type (the environment's, when it exists and this is absent).
    #[serde(default)]
    env_type: Option<String>,
}

/// Which definition a context matches, and why.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MatchView {
    /// The definition chosen.
    definition: String,
    /// Its current version.
    version: i64,
    /// The winning criterion.
    #[schema(value_type = Object)]
    criterion: Criterion,
    /// Why it won.
    reason: String,
    /// The context matched.
    #[schema(value_type = Object)]
    context: matching::Context,
}

/// Says which definition a context would use and why; no match and ambiguous matches
/// are errors that name the candidates.
#[utoipa::path(post, path = "/resource-definitions/match", operation_id = "matchResourceDefinition", tag = "resources",
    request_body = MatchRequest,
    responses((status = 200, description = "The definition chosen", body = MatchView)))]
async fn match_definition(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<Json<MatchRequest>, JsonRejection>,
) -> Result<Json<MatchView>, ApiError> {
    let request = body(request)?;
    let app = id(&request.app, "app")?;
    let env = id(&request.env, "env")?;
    id(&request.res_type, "type")?;
    if let Some(t) = &request.env_type {
        id(t, "env_type")?;
    }
    state
        .policies
        .authorize(&caller, "resource-definitions.list", Target::default())
        .await?;
    // The answer tells whether the environment exists and its type: only for those who
    // may see it.
    state
        .policies
        .authorize(
            &caller,
            "environments.get",
            Target {
                app: Some(app.to_string()),
                env: Some(env.to_string()),
                ..Target::default()
            },
        )
        .await?;
    let (app_id, env_id) = (app.to_string(), env.to_string());
    let (env_type, definitions) = state
        .store
        .call(move |conn| {
            let found = envs::get(conn, &app_id, &env_id)?.map(|e| e.env_type.to_string());
            Ok((found, stored::list_definitions(conn)?))
        })
        .await?;
    let env_type = match (request.env_type, env_type) {
        (Some(t), _) => t,
        (None, Some(t)) => t,
        (None, None) => {
            return Err(ApiError::BadRequest(format!(
                "env_type: environment {app}/{env} does not exist; name its type"
            )));
        }
    };
    let context = matching::Context {
        res_type: request.res_type,
        class: request
            .class
            .unwrap_or_else(|| matching::DEFAULT_CLASS.to_string()),
        res_id: request.res_id.unwrap_or_default(),
        app: app.to_string(),
        env: env.to_string(),
        env_type,
    };
    let all_criteria: Vec<Vec<Criterion>> = definitions.iter().map(criteria).collect();
    let candidates: Vec<Candidate<'_>> = definitions
        .iter()
        .zip(&all_criteria)
        .map(|(d, c)| Candidate {
            id: &d.id,
            res_type: &d.res_type,
            criteria: c,
        })
        .collect();
    match matching::best(&candidates, &context) {
        Ok(m) => {
            let version = definitions
                .iter()
                .find(|d| d.id == m.definition)
                .map_or(0, |d| d.version);
            let named: Vec<&str> = [
                ("env_type", &m.criterion.env_type),
                ("app", &m.criterion.app),
                ("env", &m.criterion.env),
                ("res_id", &m.criterion.res_id),
            ]
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| *n)
            .collect();
            let reason = if named.is_empty() {
                format!(
                    "criterion {} matches any {} of class {}; no more specific criterion matches",
                    m.criterion, context.res_type, context.class
                )
            } else {
                format!(
                    "criterion {} names {}; no criterion of another definition that matches is \
                     as specific (env_type < app < env < res_id)",
                    m.criterion,
                    named.join(", ")
                )
            };
            Ok(Json(MatchView {
                definition: m.definition.to_string(),
                version,
                criterion: m.criterion.clone(),
                reason,
                context,
            }))
        }
        Err(e @ MatchError::NoMatch { .. }) => Err(ApiError::NoMatch(e.to_string())),
        Err(e @ MatchError::Ambiguous { .. }) => Err(ApiError::Clash(e.to_string())),
    }
}
