//! `/plugins` and `/plugin-installations`: the components ops upload, and their
//! installations (configuration, capability grants, place in the chain).
//!
//! A component is checked when it is uploaded (it must be a component of the declared
//! kind, within its manifest's limits); a configuration is checked by the plugin's own
//! `validate-config` when it is installed or changed. A change to a policy installation
//! rebuilds the policy chain before the response is sent, so the next request sees it.

use crate::auth::Caller;
use crate::authz::Target;
use crate::registry::{Requested, kind};
use crate::routes::{Page, PageQuery, audit, body, check_version, id, if_match, page, tagged};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::Kind;
use wharf_core::clock::now;
use wharf_plugins::{Grants, Limits, Plugin};
use wharf_store::plugins::{self as stored, Installation};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, upload))
        .routes(routes!(show, remove))
        .routes(routes!(list_installations, install))
        .routes(routes!(show_installation, update_installation, uninstall))
}

/// An uploaded plugin.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PluginView {
    id: String,
    /// `driver`, `policy` or `transformer`.
    kind: String,
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
            world: format!("wharf:plugin/{}@0.1.0", p.kind),
            description: info["description"].as_str().unwrap_or_default().to_string(),
            config_schema: info.get("config_schema").cloned().unwrap_or(json!({})),
            resource_types: info.get("resource_types").cloned().unwrap_or(json!([])),
            id: p.id,
            kind: p.kind.as_str().into(),
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

fn object(what: &str, id: &str) -> Target {
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

/// An installation of a plugin.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InstallationView {
    id: String,
    /// The plugin it runs.
    plugin: String,
    /// The plugin's kind.
    kind: String,
    /// Its configuration. A driver's secrets are shown by name only (`secret_keys`):
    /// they are sealed at rest and only the driver gets them.
    config: Value,
    /// The capabilities granted.
    #[schema(value_type = Object)]
    grants: Value,
    /// Whether it takes part.
    enabled: bool,
    /// Its place in its chain: lower runs first.
    position: i64,
    /// Bumped by every change; also the `ETag`.
    revision: i64,
    created_at: i64,
    updated_at: i64,
    updated_by: String,
}

fn installation_view(i: Installation, kind: Kind) -> InstallationView {
    let config = if kind == Kind::Driver {
        crate::registry::config_view(&i.config)
    } else {
        i.config
    };
    InstallationView {
        id: i.id,
        plugin: i.plugin,
        kind: kind.to_string(),
        config,
        grants: i.grants,
        enabled: i.enabled,
        position: i.position,
        revision: i.revision,
        created_at: i.created_at,
        updated_at: i.updated_at,
        updated_by: i.updated_by,
    }
}

/// Every installation with its plugin's kind.
fn installations_with_kind(
    conn: &wharf_store::Tx<'_>,
) -> Result<Vec<InstallationView>, wharf_store::Error> {
    let kinds: std::collections::HashMap<String, Kind> = stored::list(conn)?
        .into_iter()
        .map(|p| (p.id, p.kind))
        .collect();
    Ok(stored::installations(conn)?
        .into_iter()
        .map(|i| {
            // An installation's plugin exists (the store refuses to delete one in use).
            let kind = kinds.get(&i.plugin).copied().unwrap_or(Kind::Driver);
            installation_view(i, kind)
        })
        .collect())
}

/// Lists the installations, in chain order.
#[utoipa::path(get, path = "/plugin-installations", operation_id = "listInstallations", tag = "plugins", params(PageQuery),
    responses((status = 200, description = "The installations", body = [InstallationView])))]
async fn list_installations(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Page<InstallationView>, ApiError> {
    state
        .policies
        .authorize(&caller, "plugins.list", Target::default())
        .await?;
    let mut all = state.store.call(installations_with_kind).await?;
    all.sort_by(|a, b| a.id.cmp(&b.id));
    page(
        all,
        |i| i.id.clone(),
        &query,
        "/api/v1/plugin-installations",
    )
}

/// The body of `POST /plugin-installations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewInstallation {
    /// The installation's id (a policy's id is what denials name).
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    id: String,
    /// The plugin to run.
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    plugin: String,
    /// Its configuration; the plugin's `validate-config` must accept it. `{}` when absent.
    #[serde(default)]
    config: Option<Value>,
    /// Capabilities granted: a subset of what the plugin's manifest requests.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    grants: Option<Grants>,
    /// Whether it takes part at once (true when absent).
    #[serde(default)]
    enabled: Option<bool>,
    /// Its place in its chain (after the others when absent).
    #[serde(default)]
    position: Option<i64>,
}

/// Checks `grants` against what `plugin` requests, and `config` with the plugin itself.
async fn check_installation(
    state: &AppState,
    caller: &Caller,
    plugin: &stored::Plugin,
    candidate: &Installation,
) -> Result<(), ApiError> {
    let requested: Requested = serde_json::from_value(plugin.manifest.clone())
        .map_err(|e| ApiError::Internal(format!("stored manifest of {}: {e}", plugin.id)))?;
    let grants: Grants = serde_json::from_value(candidate.grants.clone())
        .map_err(|e| ApiError::BadRequest(format!("grants: {e}")))?;
    let mut problems = grants.problems();
    let any = |list: &[String]| list.iter().any(|r| r == crate::registry::ANY);
    for origin in &grants.http {
        if !requested.grants.http.contains(origin) && !any(&requested.grants.http) {
            problems.push(format!(
                "grants.http: plugin {} does not request {origin:?} (it requests {:?})",
                plugin.id, requested.grants.http
            ));
        }
    }
    for socket in &grants.sockets {
        if !requested.grants.sockets.contains(socket) && !any(&requested.grants.sockets) {
            problems.push(format!(
                "grants.sockets: plugin {} does not request {socket:?} (it requests {:?})",
                plugin.id, requested.grants.sockets
            ));
        }
    }
    for dir in &grants.directories {
        if !requested.grants.directories.contains(dir) && !any(&requested.grants.directories) {
            problems.push(format!(
                "grants.directories: plugin {} does not request {dir:?} (it requests {:?})",
                plugin.id, requested.grants.directories
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::BadRequest(problems.join("; ")));
    }
    if !candidate.config.is_object() {
        return Err(ApiError::BadRequest("config: must be a JSON object".into()));
    }
    let loaded = state.registry.load_fresh(&state.store, candidate).await?;
    let refused = |e: wharf_plugins::PluginFailure| {
        ApiError::BadRequest(format!(
            "config: plugin {} failed to validate it: {e}",
            plugin.id
        ))
    };
    let issues = match &loaded {
        Plugin::Driver(d) => {
            let values: wharf_plugins::Values = serde_json::from_value(candidate.config.clone())
                .map_err(|e| {
                    ApiError::BadRequest(format!(
                        "config: a driver's configuration is {{\"values\": {{}}, \"secrets\": {{}}}}: {e}"
                    ))
                })?;
            d.validate_config(&values).await.map_err(refused)?
        }
        Plugin::Policy(p) => p
            .validate_config(&candidate.config)
            .await
            .map_err(refused)?,
        Plugin::Transformer(t) => t
            .validate_config(&candidate.config)
            .await
            .map_err(refused)?,
    };
    if issues.is_empty() {
        match &loaded {
            Plugin::Policy(p) if candidate.enabled => trial(caller, p, candidate).await,
            _ => Ok(()),
        }
    } else {
        Err(ApiError::BadRequest(format!(
            "config: plugin {} rejects it: {}",
            plugin.id,
            issues
                .iter()
                .map(|i| format!(
                    "{} {}",
                    if i.path.is_empty() { "/" } else { &i.path },
                    i.message
                ))
                .collect::<Vec<_>>()
                .join("; ")
        )))
    }
}

/// Asks a policy about to join the chain one question (may the caller change this
/// installation?). A policy that fails it would fail every request, the one that could
/// remove it included, so it is refused; what it answers does not matter.
async fn trial(
    caller: &Caller,
    policy: &wharf_plugins::PolicyPlugin,
    candidate: &Installation,
) -> Result<(), ApiError> {
    let request = wharf_plugins::AuthzRequest {
        principal: std::sync::Arc::new(crate::authz::principal(caller)),
        action: "plugins.update".into(),
        target: wharf_plugins::Target {
            object: Some(format!("installation:{}", candidate.id)),
            ..Default::default()
        },
        attributes: json!({}),
    };
    policy
        .authorize(&candidate.config, &[request])
        .await
        .map(|_| ())
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "plugin {}: a trial decision failed ({e}); in the chain it would fail every \
                 request, so it is not enabled",
                candidate.plugin
            ))
        })
}

/// Installs a plugin: validates its configuration with the plugin, grants capabilities,
/// and (for a policy) adds it to the chain at once.
#[utoipa::path(post, path = "/plugin-installations", operation_id = "createInstallation", tag = "plugins",
    request_body = NewInstallation,
    responses((status = 201, description = "Installed", body = InstallationView)))]
async fn install(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<Json<NewInstallation>, JsonRejection>,
) -> Result<(StatusCode, Response), ApiError> {
    let new = body(request)?;
    let installation_id = id(&new.id, "id")?;
    let plugin_id = id(&new.plugin, "plugin")?;
    state
        .policies
        .authorize(
            &caller,
            "plugins.install",
            object("installation", installation_id.as_str()),
        )
        .await?;
    let key = plugin_id.to_string();
    let (plugin, last) = state
        .store
        .call(move |conn| {
            let last = stored::installations(conn)?
                .iter()
                .map(|i| i.position)
                .max()
                .unwrap_or(0);
            Ok((stored::get(conn, &key)?, last))
        })
        .await?;
    let plugin = plugin.ok_or_else(|| {
        ApiError::BadRequest(format!(
            "plugin: there is no plugin {plugin_id}; upload it first"
        ))
    })?;
    let at = now();
    let mut config = new.config.unwrap_or_else(|| json!({}));
    if plugin.kind == Kind::Driver {
        config = crate::registry::driver_config(config, None)?;
    }
    let candidate = Installation {
        id: installation_id.to_string(),
        plugin: plugin.id.clone(),
        config,
        grants: serde_json::to_value(new.grants.unwrap_or_default()).expect("serializes"),
        enabled: new.enabled.unwrap_or(true),
        position: new.position.unwrap_or(last + 10),
        revision: 1,
        created_at: at,
        updated_at: at,
        updated_by: caller.id.clone(),
    };
    check_installation(&state, &caller, &plugin, &candidate).await?;
    let row = stored_form(&state, &plugin, &candidate)?;
    state
        .store
        .transaction(move |tx| {
            stored::install(tx, &row)?;
            audit(
                tx,
                &row.updated_by,
                "plugins.install",
                format!("installation:{}", row.id),
                json!({ "plugin": row.plugin, "enabled": row.enabled, "grants": row.grants }),
            )
        })
        .await?;
    state.registry.changed(&candidate.id);
    if plugin.kind == Kind::Policy {
        state
            .registry
            .rebuild_chain(&state.store, &state.policies)
            .await?;
    }
    let revision = candidate.revision;
    Ok((
        StatusCode::CREATED,
        tagged(revision, Json(installation_view(candidate, plugin.kind))),
    ))
}

/// An installation as it is stored: a driver's secrets sealed.
fn stored_form(
    state: &AppState,
    plugin: &stored::Plugin,
    open: &Installation,
) -> Result<Installation, ApiError> {
    let mut row = open.clone();
    if plugin.kind == Kind::Driver {
        row.config = crate::registry::seal_config(&state.sealer, &row.id, &open.config)?;
    }
    Ok(row)
}

async fn load_installation(
    state: &AppState,
    installation: &str,
) -> Result<(Installation, stored::Plugin), ApiError> {
    let key = installation.to_string();
    state
        .store
        .call(move |conn| {
            Ok(match stored::installation_by_id(conn, &key)? {
                Some(i) => stored::get(conn, &i.plugin)?.map(|p| (i, p)),
                None => None,
            })
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("installation {installation}")))
}

/// Shows an installation; its `ETag` is its revision.
#[utoipa::path(get, path = "/plugin-installations/{installation}", operation_id = "getInstallation", tag = "plugins",
    params(("installation" = String, Path, description = "The installation's id")),
    responses((status = 200, description = "The installation", body = InstallationView,
               headers(("ETag" = String, description = "The revision, for If-Match")))))]
async fn show_installation(
    State(state): State<AppState>,
    caller: Caller,
    Path(installation): Path<String>,
) -> Result<Response, ApiError> {
    state
        .policies
        .authorize(
            &caller,
            "plugins.get",
            object("installation", &installation),
        )
        .await?;
    let (i, plugin) = load_installation(&state, &installation).await?;
    Ok(tagged(i.revision, Json(installation_view(i, plugin.kind))))
}

/// The body of `PATCH /plugin-installations/{installation}`: the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstallationChange {
    /// A new configuration (validated by the plugin).
    #[serde(default)]
    config: Option<Value>,
    /// New grants.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    grants: Option<Grants>,
    /// Enable or disable it.
    #[serde(default)]
    enabled: Option<bool>,
    /// A new place in its chain.
    #[serde(default)]
    position: Option<i64>,
}

/// Refuses a change that would leave the policy chain empty: with no policy, every
/// request is denied, the change itself could not be undone through the API.
fn keep_a_policy(
    conn: &wharf_store::Tx<'_>,
    leaving: &str,
) -> Result<Result<(), ApiError>, wharf_store::Error> {
    let enabled = stored::enabled_of_kind(conn, Kind::Policy)?;
    if enabled.iter().all(|i| i.id == leaving) {
        return Ok(Err(ApiError::InUse(format!(
            "installation {leaving} is the last enabled policy; with none, every request \
             would be denied. Enable another policy first"
        ))));
    }
    Ok(Ok(()))
}

/// Changes an installation: configuration, grants, enabled, position. Send the `ETag`
/// you read as `If-Match` so that a concurrent change is not overwritten.
#[utoipa::path(patch, path = "/plugin-installations/{installation}", operation_id = "updateInstallation", tag = "plugins",
    params(("installation" = String, Path, description = "The installation's id"),
           ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    request_body = InstallationChange,
    responses((status = 200, description = "Changed", body = InstallationView,
               headers(("ETag" = String, description = "The new revision")))))]
async fn update_installation(
    State(state): State<AppState>,
    caller: Caller,
    Path(installation): Path<String>,
    headers: HeaderMap,
    request: Result<Json<InstallationChange>, JsonRejection>,
) -> Result<Response, ApiError> {
    let change = body(request)?;
    let accepted = if_match(&headers)?;
    state
        .policies
        .authorize(
            &caller,
            "plugins.update",
            object("installation", &installation),
        )
        .await?;
    let (current, plugin) = load_installation(&state, &installation).await?;
    check_version(
        &accepted,
        current.revision,
        &format!("installation {installation}"),
    )?;
    let mut next = current.clone();
    let is_driver = plugin.kind == Kind::Driver;
    match change.config {
        // New secrets replace the stored ones, which need not open (a lost key).
        Some(config) if is_driver && config.get("secrets").is_some() => {
            next.config = crate::registry::driver_config(config, None)?;
        }
        Some(config) if is_driver => {
            let stored = crate::registry::open_config(&state.sealer, &current.id, &current.config)?;
            next.config = crate::registry::driver_config(config, Some(&stored))?;
        }
        Some(config) => next.config = config,
        None if is_driver => {
            next.config =
                crate::registry::open_config(&state.sealer, &current.id, &current.config)?;
        }
        None => {}
    }
    if let Some(grants) = change.grants {
        next.grants = serde_json::to_value(grants).expect("serializes");
    }
    if let Some(enabled) = change.enabled {
        next.enabled = enabled;
    }
    if let Some(position) = change.position {
        next.position = position;
    }
    next.revision = current.revision + 1;
    next.updated_at = now();
    next.updated_by = caller.id.clone();
    check_installation(&state, &caller, &plugin, &next).await?;
    let row = stored_form(&state, &plugin, &next)?;
    let is_policy = plugin.kind == Kind::Policy;
    state
        .store
        .transaction(move |tx| {
            let now = stored::installation_by_id(tx, &row.id)?;
            match now {
                None => return Ok(Err(ApiError::NotFound(format!("installation {}", row.id)))),
                Some(n) if n.revision != current.revision => {
                    return Ok(Err(ApiError::PreconditionFailed(format!(
                        "installation {} changed while this request ran; fetch it again",
                        row.id
                    ))));
                }
                Some(_) => {}
            }
            if is_policy
                && !row.enabled
                && let Err(e) = keep_a_policy(tx, &row.id)?
            {
                return Ok(Err(e));
            }
            stored::update(tx, &row)?;
            audit(
                tx,
                &row.updated_by,
                "plugins.update",
                format!("installation:{}", row.id),
                json!({ "enabled": row.enabled, "position": row.position,
                        "revision": row.revision, "grants": row.grants }),
            )?;
            Ok(Ok(()))
        })
        .await??;
    state.registry.changed(&next.id);
    if is_policy {
        state
            .registry
            .rebuild_chain(&state.store, &state.policies)
            .await?;
    }
    Ok(tagged(
        next.revision,
        Json(installation_view(next, plugin.kind)),
    ))
}

/// Uninstalls: removes it from its chain; refused while a resource definition uses it.
#[utoipa::path(delete, path = "/plugin-installations/{installation}", operation_id = "deleteInstallation", tag = "plugins",
    params(("installation" = String, Path, description = "The installation's id")),
    responses((status = 204, description = "Uninstalled")))]
async fn uninstall(
    State(state): State<AppState>,
    caller: Caller,
    Path(installation): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .policies
        .authorize(
            &caller,
            "plugins.delete",
            object("installation", &installation),
        )
        .await?;
    let (current, plugin) = load_installation(&state, &installation).await?;
    let is_policy = plugin.kind == Kind::Policy;
    let by = caller.id.clone();
    state
        .store
        .transaction(move |tx| {
            if is_policy
                && current.enabled
                && let Err(e) = keep_a_policy(tx, &current.id)?
            {
                return Ok(Err(e));
            }
            if !stored::uninstall(tx, &current.id)? {
                return Ok(Err(ApiError::NotFound(format!(
                    "installation {}",
                    current.id
                ))));
            }
            audit(
                tx,
                &by,
                "plugins.delete",
                format!("installation:{}", current.id),
                json!({ "plugin": current.plugin }),
            )?;
            Ok(Ok(()))
        })
        .await??;
    state.registry.forget(&installation);
    if is_policy {
        state
            .registry
            .rebuild_chain(&state.store, &state.policies)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
