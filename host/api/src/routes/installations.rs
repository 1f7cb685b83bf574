//! `/plugin-installations`: an uploaded plugin put to work, with its configuration (checked
//! by the plugin's own `validate-config`), its capability grants (within what the plugin
//! requests) and, for a policy, its place in the chain (rebuilt before the response is
//! sent, so the next request sees it).

use crate::auth::Caller;
use crate::authz::Target;
use crate::registry::Requested;
use crate::routes::{Body, Page, PageQuery, audit, check_version, id, if_match, page, tagged};
use crate::{ApiError, AppState};
use axum::Json;
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
use wharf_plugins::{Grants, Plugin};
use wharf_store::plugins::{self as stored, Installation};

use crate::routes::plugins::object;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_installations, install))
        .routes(routes!(show_installation, update_installation, uninstall))
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

/// Checks `grants` against what `plugin` requests, and `config` with the plugin itself;
/// a refusal lists every problem it found.
async fn check_installation(
    state: &AppState,
    caller: &Caller,
    plugin: &stored::Plugin,
    candidate: &Installation,
) -> Result<(), ApiError> {
    let requested: Requested = serde_json::from_value(plugin.manifest.clone())
        .map_err(|e| ApiError::internal(format!("stored manifest of {}: {e}", plugin.id)))?;
    let mut problems = grant_problems(plugin, &requested, &candidate.grants);
    if !candidate.config.is_object() {
        problems.push("config: must be a JSON object".into());
    }
    if !problems.is_empty() {
        return Err(ApiError::BadRequest(problems.join("; ")));
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
    if !issues.is_empty() {
        let issues: Vec<String> = issues
            .iter()
            .map(|i| {
                let path = if i.path.is_empty() { "/" } else { &i.path };
                format!("{path} {}", i.message)
            })
            .collect();
        return Err(ApiError::BadRequest(format!(
            "config: plugin {} rejects it: {}",
            plugin.id,
            issues.join("; ")
        )));
    }
    match &loaded {
        Plugin::Policy(p) if candidate.enabled => trial(caller, p, candidate).await,
        _ => Ok(()),
    }
}

/// What is wrong with `grants`: grants that do not parse, and grants of what `plugin`
/// does not request.
fn grant_problems(plugin: &stored::Plugin, requested: &Requested, grants: &Value) -> Vec<String> {
    let grants: Grants = match serde_json::from_value(grants.clone()) {
        Ok(grants) => grants,
        Err(e) => return vec![format!("grants: {e}")],
    };
    let mut problems = grants.problems();
    let any = |list: &[String]| list.iter().any(|r| r == crate::registry::ANY);
    let kinds = [
        ("http", &grants.http, &requested.grants.http),
        ("sockets", &grants.sockets, &requested.grants.sockets),
        (
            "directories",
            &grants.directories,
            &requested.grants.directories,
        ),
    ];
    for (kind, granted, wanted) in kinds {
        for grant in granted {
            if !wanted.contains(grant) && !any(wanted) {
                problems.push(format!(
                    "grants.{kind}: plugin {} does not request {grant:?} (it requests {wanted:?})",
                    plugin.id
                ));
            }
        }
    }
    problems
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
    Body(new): Body<NewInstallation>,
) -> Result<(StatusCode, Response), ApiError> {
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
    Body(change): Body<InstallationChange>,
) -> Result<Response, ApiError> {
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
