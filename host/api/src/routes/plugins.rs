//! `/plugins`: the components ops upload. A component is checked when it is uploaded: it
//! must be a component of the declared kind, importing only what that kind's world allows,
//! within its manifest's limits. Installations are in `installations`.

use crate::auth::Caller;
use crate::authz::Target;
use crate::registry::{Requested, kind};
use crate::routes::{Page, PageQuery, audit, id, page};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::Kind;
use wharf_core::clock::now;
use wharf_plugins::{Grants, Limits};
use wharf_store::plugins::{self as stored};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, upload))
        .routes(routes!(show, remove))
}

/// An uploaded plugin.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PluginView {
    id: String,
    kind: Kind,
    /// The WIT world it implements.
    world: String,
    /// The version it reports.
    version: String,
    /// What it says it does.
    description: String,
    /// The sha256 of the component, hex.
    digest: String,
    /// The JSON Schema of its configuration.
    config_schema: Value,
    /// The resource types it provisions (drivers).
    resource_types: Value,
    /// The capabilities an installation may be granted.
    #[schema(value_type = Object)]
    requested_grants: Grants,
    /// Limits of every call.
    #[schema(value_type = Object)]
    limits: Limits,
    /// Whether it ships with Wharf.
    bundled: bool,
    created_at: i64,
    created_by: String,
}

impl From<stored::Plugin> for PluginView {
    fn from(p: stored::Plugin) -> Self {
        let requested: Requested = serde_json::from_value(p.manifest).unwrap_or_default();
        let info = &p.info;
        Self {
            world: wharf_plugins::world_name(p.kind),
            description: info["description"].as_str().unwrap_or_default().to_string(),
            config_schema: info.get("config_schema").cloned().unwrap_or(json!({})),
            resource_types: info.get("resource_types").cloned().unwrap_or(json!([])),
            id: p.id,
            kind: p.kind,
            version: p.version,
            digest: p.digest,
            requested_grants: requested.grants,
            limits: requested.limits,
            bundled: p.bundled,
            created_at: p.created_at,
            created_by: p.created_by,
        }
    }
}

pub(crate) fn object(what: &str, id: &str) -> Target {
    Target {
        object: Some(format!("{what}:{id}")),
        ..Target::default()
    }
}

/// Lists the uploaded plugins.
#[utoipa::path(get, path = "/plugins", operation_id = "listPlugins", tag = "plugins", params(PageQuery),
    responses((status = 200, description = "The plugins", body = [PluginView])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Page<PluginView>, ApiError> {
    state
        .policies
        .authorize(&caller, "plugins.list", Target::default())
        .await?;
    let all = state.store.call(stored::list).await?;
    page(
        all.into_iter().map(Into::into).collect(),
        |p: &PluginView| p.id.clone(),
        &query,
        "/api/v1/plugins",
    )
}

/// The metadata of an upload, in its query: the manifest.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct UploadQuery {
    /// The plugin's id.
    #[param(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    id: String,
    /// `driver`, `policy` or `transformer`.
    kind: String,
    /// Origins (`https://host:port`) installations may be granted over wasi:http,
    /// comma-separated (drivers only); `*` for whatever origin the operator grants (a
    /// driver for a system whose address differs from site to site).
    http: Option<String>,
    /// Addresses (`ip:port`) installations may be granted over TCP, comma-separated
    /// (drivers only); `*` for whatever address the operator grants.
    sockets: Option<String>,
    /// Host directories installations may be granted (absolute paths), comma-separated
    /// (drivers only); `*` for whatever directory the operator grants.
    directories: Option<String>,
    /// Linear memory per call, in bytes (64 MiB when absent).
    memory_bytes: Option<u64>,
    /// Wasm CPU time per call, in milliseconds (1000 when absent).
    cpu_ms: Option<u64>,
    /// Wall-clock time per call, in milliseconds (10000 when absent).
    wall_ms: Option<u64>,
    /// Size of a call's results, in bytes (4 MiB when absent).
    output_bytes: Option<u64>,
}

fn list_param(text: &Option<String>) -> Vec<String> {
    text.iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Uploads a component (the body, `application/wasm`) with its manifest (the query). It
/// is checked, not installed: install it next.
#[utoipa::path(post, path = "/plugins", operation_id = "uploadPlugin", tag = "plugins", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/wasm",
                 description = "The WebAssembly component"),
    responses((status = 201, description = "Uploaded", body = PluginView)))]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<UploadQuery>,
    component: crate::routes::Unread,
) -> Result<(StatusCode, Json<PluginView>), ApiError> {
    let plugin_id = id(&query.id, "id")?;
    let kind = kind(&query.kind)?;
    state
        .policies
        .authorize(
            &caller,
            "plugins.upload",
            object("plugin", plugin_id.as_str()),
        )
        .await?;
    // Read only once the caller may upload.
    let component = component.bytes(crate::routes::MAX_BODY).await?;
    let defaults = Limits::default();
    let requested = Requested {
        grants: Grants {
            http: list_param(&query.http),
            sockets: list_param(&query.sockets),
            directories: list_param(&query.directories),
        },
        limits: Limits {
            memory_bytes: query.memory_bytes.unwrap_or(defaults.memory_bytes),
            cpu_ms: query.cpu_ms.unwrap_or(defaults.cpu_ms),
            wall_ms: query.wall_ms.unwrap_or(defaults.wall_ms),
            output_bytes: query.output_bytes.unwrap_or(defaults.output_bytes),
        },
    };
    if component.is_empty() {
        return Err(ApiError::BadRequest(
            "body: empty; send the component's bytes as application/wasm".into(),
        ));
    }
    let loaded = state
        .registry
        .check(plugin_id.as_str(), kind, &requested, &component)
        .await?;
    let info = crate::registry::describe(&loaded).await?;
    let record = stored::Plugin {
        id: plugin_id.to_string(),
        kind,
        version: info["version"].as_str().unwrap_or_default().to_string(),
        digest: loaded.digest().to_string(),
        manifest: serde_json::to_value(&requested).expect("a manifest serializes"),
        info,
        bundled: false,
        created_at: now(),
        created_by: caller.id.clone(),
    };
    let row = record.clone();
    state
        .store
        .transaction(move |tx| {
            stored::create(tx, &row, &component)?;
            audit(
                tx,
                &row.created_by,
                "plugins.upload",
                format!("plugin:{}", row.id),
                json!({ "kind": row.kind, "digest": row.digest, "version": row.version }),
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// Shows a plugin: its metadata, world, digest and requested capabilities.
#[utoipa::path(get, path = "/plugins/{plugin}", operation_id = "getPlugin", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's id")),
    responses((status = 200, description = "The plugin", body = PluginView)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(plugin): Path<String>,
) -> Result<Json<PluginView>, ApiError> {
    state
        .policies
        .authorize(&caller, "plugins.get", object("plugin", &plugin))
        .await?;
    let key = plugin.clone();
    state
        .store
        .call(move |conn| stored::get(conn, &key))
        .await?
        .map(|p| Json(p.into()))
        .ok_or_else(|| ApiError::NotFound(format!("plugin {plugin}")))
}

/// Deletes a plugin no installation uses.
#[utoipa::path(delete, path = "/plugins/{plugin}", operation_id = "deletePlugin", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's id")),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(plugin): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .policies
        .authorize(&caller, "plugins.delete", object("plugin", &plugin))
        .await?;
    let (key, by) = (plugin.clone(), caller.id.clone());
    let deleted = state
        .store
        .transaction(move |tx| {
            match stored::get(tx, &key)? {
                None => return Ok(Ok(false)),
                Some(p) if p.bundled => {
                    return Ok(Err(ApiError::InUse(format!(
                        "plugin {key} is bundled with Wharf and cannot be deleted; \
                         disable its installations instead"
                    ))));
                }
                Some(_) => {}
            }
            let deleted = stored::delete(tx, &key)?;
            audit(
                tx,
                &by,
                "plugins.delete",
                format!("plugin:{key}"),
                Value::Null,
            )?;
            Ok(Ok(deleted))
        })
        .await??;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("plugin {plugin}")))
    }
}
