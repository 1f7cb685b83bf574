//! `/resource-definitions`: which driver installation provisions each resource type,
//! with which inputs, where (the definitions' criteria), versioned.

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::{
    Body, Page, PageQuery, audit, check_version, delete_audited, id, if_match, page, tagged,
};
use crate::{ApiError, AppState};
use axum::Json;
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
use wharf_core::matching::{self, Candidate, Criterion};
use wharf_store::plugins;
use wharf_store::resources::{self as stored, Definition, secrets_context};
use wharf_store::secrets::Sealer;

use crate::routes::resources::{empty_object, object};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_definitions, create_definition))
        .routes(routes!(
            show_definition,
            replace_definition,
            delete_definition
        ))
        .routes(routes!(definition_versions))
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

pub(crate) fn criteria(d: &Definition) -> Vec<Criterion> {
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
/// request has none), or every problem it has.
fn check_definition(
    conn: &wharf_store::Tx<'_>,
    sealer: &Sealer,
    mut request: DefinitionRequest,
    previous: Option<&Definition>,
    by: &str,
) -> Result<Result<Definition, ApiError>, wharf_store::Error> {
    let mut problems = problems(conn, &request)?;
    problems.extend(request_problems(&request));
    if !problems.is_empty() {
        return Ok(Err(ApiError::Invalid(problems)));
    }
    if let Some(clash) = clash(conn, &request)? {
        return Ok(Err(clash));
    }
    if request.driver_inputs.values.is_null() {
        request.driver_inputs.values = json!({});
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

/// What is wrong with what a definition names in the store: its type, and its driver
/// installation (which must run a driver plugin that serves the type).
fn problems(
    conn: &wharf_store::Tx<'_>,
    request: &DefinitionRequest,
) -> Result<Vec<(String, String)>, wharf_store::Error> {
    let mut problems = Vec::new();
    let mut problem = |path: &str, message: String| problems.push((path.to_string(), message));
    if stored::get_type(conn, &request.res_type)?.is_none() {
        let message = format!(
            "there is no resource type {:?}; create it first",
            request.res_type
        );
        problem("/type", message);
    }
    let Some(installation) = plugins::installation_by_id(conn, &request.driver)? else {
        let message = format!("there is no plugin installation {:?}", request.driver);
        problem("/driver", message);
        return Ok(problems);
    };
    let plugin = plugins::get(conn, &installation.plugin)?;
    let Some(plugin) = plugin.filter(|p| p.kind == wharf_core::Kind::Driver) else {
        let message = format!(
            "installation {} does not run a driver plugin",
            request.driver
        );
        problem("/driver", message);
        return Ok(problems);
    };
    let served: Vec<&str> = plugin.info["resource_types"]
        .as_array()
        .map(|types| types.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    if !served.is_empty() && !served.iter().any(|t| *t == "*" || *t == request.res_type) {
        let message = format!(
            "plugin {} provisions {}, not {}",
            plugin.id,
            served.join(", "),
            request.res_type
        );
        problem("/driver", message);
    }
    Ok(problems)
}

/// What is wrong with a definition on its own: its criteria, its `allow_params` and its
/// driver's values.
fn request_problems(request: &DefinitionRequest) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (i, c) in request.criteria.iter().enumerate() {
        let at = |field: &str| format!("/criteria/{i}/{field}");
        if c.class.is_empty() {
            problems.push((at("class"), "must not be empty".to_string()));
        }
        for (name, value) in [("env_type", &c.env_type), ("app", &c.app), ("env", &c.env)] {
            if let Some(v) = value
                && let Err(e) = wharf_core::Id::new(v.as_str())
            {
                problems.push((at(name), e.to_string()));
            }
        }
        if request.criteria[..i].contains(c) {
            problems.push((format!("/criteria/{i}"), format!("{c} is listed twice")));
        }
    }
    let names = request.allow_params.iter().flatten().enumerate();
    for (i, p) in names {
        let name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if p.is_empty() || !p.chars().all(name) {
            let message = format!("{p:?} is not a param name (letters, digits, - and _)");
            problems.push((format!("/allow_params/{i}"), message));
        }
    }
    let values = &request.driver_inputs.values;
    if !values.is_null() && !values.is_object() {
        let message = "must be a JSON object".to_string();
        problems.push(("/driver_inputs/values".to_string(), message));
    }
    problems
}

/// A criterion of the definition that another definition of its type has too.
fn clash(
    conn: &wharf_store::Tx<'_>,
    request: &DefinitionRequest,
) -> Result<Option<ApiError>, wharf_store::Error> {
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
    Ok(request.criteria.iter().find_map(|c| {
        matching::check_new_criterion(&candidates, &request.id, &request.res_type, c)
            .err()
            .map(|e| ApiError::Clash(format!("criteria: {e}")))
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
    Body(request): Body<DefinitionRequest>,
) -> Result<(StatusCode, Response), ApiError> {
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
    Body(request): Body<DefinitionRequest>,
) -> Result<Response, ApiError> {
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
