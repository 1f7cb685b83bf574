//! `wharf-api`: the REST API of Wharf, under `/api/v1`.
//!
//! Every request is authenticated by a bearer token ([`auth`]) and every action is decided
//! by the policy chain ([`authz`]) before a handler touches the store; errors are RFC 9457
//! problem documents ([`ApiError`]). Handlers write desired state to the store and return:
//! they never call drivers or targets inline.
//!
//! This crate must not bypass the policy chain for any route, and must not return a 5xx
//! for a client's mistake.

pub mod auth;
pub mod authz;
mod error;
mod openapi;
pub mod registry;
mod routes;
mod streams;

pub use authz::PolicyChain;
pub use error::ApiError;
pub use registry::Registry;

use axum::Router;
use std::sync::Arc;
use wharf_store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The platform's state.
    pub store: Store,
    /// The policies that decide every action.
    pub policies: Arc<PolicyChain>,
    /// The installed plugins, loaded into the runtime.
    pub registry: Arc<Registry>,
    /// Seals secrets at rest.
    pub sealer: wharf_store::secrets::Sealer,
    /// Carries out deployments.
    pub engine: wharf_engine::Engine,
    /// What a request may make the server do.
    pub limits: Limits,
    /// The streams each principal holds open.
    pub streams: Arc<streams::Streams>,
}

/// What a request may make the server do, set by the operator.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The longest a new API token may live, in days; `None` lets tokens be made that never
    /// expire (a token still never outlives the one that made it).
    pub token_max_lifetime_days: Option<u32>,
    /// How many streams (deployment events, followed logs) one principal may hold open.
    pub streams_per_principal: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            token_max_lifetime_days: Some(90),
            streams_per_principal: 8,
        }
    }
}

/// The whole API, ready to serve.
pub fn router(state: AppState) -> Router {
    routes::router().with_state(state)
}

/// The OpenAPI 3.1 document of the API (what `GET /api/v1/openapi.json` serves).
pub fn openapi() -> serde_json::Value {
    routes::documented().1
}

/// A component that ships inside the Wharf binary.
#[derive(Debug, Clone, Copy)]
pub struct BundledPlugin<'a> {
    /// Its id (`rbac`).
    pub id: &'a str,
    /// `driver`, `policy` or `transformer`.
    pub kind: &'a str,
    /// What an operator may grant its installations (`http`, `sockets`, `directories`).
    pub grants: &'a [&'a str],
    /// The component.
    pub bytes: &'a [u8],
}

/// The policy installed on a new Wharf, the one that decides by roles.
pub const RBAC: &str = "rbac";

/// What a bundled plugin's manifest requests: the grants its crate's metadata names
/// (`http`, `sockets`, `directories`) may be given for whatever origin, address or
/// directory the operator grants its installations; the others get no network and no
/// files.
fn bundled_requests(grants: &[&str]) -> registry::Requested {
    let mut requested = registry::Requested::default();
    for grant in grants {
        match *grant {
            "http" => requested.grants.http = vec![registry::ANY.into()],
            "sockets" => requested.grants.sockets = vec![registry::ANY.into()],
            "directories" => requested.grants.directories = vec![registry::ANY.into()],
            _ => {}
        }
    }
    requested
}

/// Seals the secrets of driver installations stored before they were sealed at rest (their
/// revision stays: what they hold is unchanged).
async fn seal_installation_secrets(
    store: &Store,
    sealer: &wharf_store::secrets::Sealer,
) -> Result<(), ApiError> {
    let sealer = sealer.clone();
    let sealed = store
        .transaction(move |tx| {
            use wharf_store::plugins as stored;
            let drivers: std::collections::HashSet<String> = stored::list(tx)?
                .into_iter()
                .filter(|p| p.kind == wharf_core::Kind::Driver)
                .map(|p| p.id)
                .collect();
            let mut sealed = Vec::new();
            for mut i in stored::installations(tx)? {
                if drivers.contains(&i.plugin)
                    && i.config["secrets"].is_object()
                    && i.config.get("secrets_sealed").is_none()
                {
                    i.config = registry::seal_config(&sealer, &i.id, &i.config);
                    stored::update(tx, &i)?;
                    sealed.push(i.id);
                }
            }
            Ok(sealed)
        })
        .await?;
    if !sealed.is_empty() {
        // The old text is overwritten in the file (secure_delete); the write-ahead log,
        // which may hold earlier pages with it, is emptied into the file.
        store.checkpoint().await?;
        tracing::info!(installations = ?sealed, "sealed the secrets of driver installations");
    }
    Ok(())
}

/// Prepares the state the API serves: stores the bundled plugins (adding those that are
/// new, replacing those that changed with this binary), installs the `rbac` policy on a
/// new Wharf, builds the policy chain from the enabled policy installations, and creates
/// the deployment engine (which the caller starts, with [`wharf_engine::Engine::start`],
/// once it is ready to serve).
pub async fn start(
    store: Store,
    runtime: wharf_plugins::Runtime,
    sealer: wharf_store::secrets::Sealer,
    bundled: &[BundledPlugin<'_>],
    engine: wharf_engine::Settings,
) -> Result<AppState, ApiError> {
    let registry = Arc::new(Registry::new(runtime));
    for b in bundled {
        let kind = registry::kind(b.kind)?;
        let requested = bundled_requests(b.grants);
        let loaded = registry
            .check(b.id, kind, &requested, b.bytes)
            .await
            .map_err(|e| ApiError::Internal(format!("bundled plugin {}: {e}", b.id)))?;
        let info = routes::describe_plugin(&loaded)
            .await
            .map_err(|e| ApiError::Internal(format!("bundled plugin {}: {e}", b.id)))?;
        let row = wharf_store::plugins::Plugin {
            id: b.id.to_string(),
            kind: registry::kind(b.kind)?,
            version: info["version"].as_str().unwrap_or_default().to_string(),
            digest: loaded.digest().to_string(),
            manifest: serde_json::to_value(&requested).expect("a manifest serializes"),
            info,
            bundled: true,
            created_at: wharf_core::clock::now(),
            created_by: "wharf".into(),
        };
        let bytes = b.bytes.to_vec();
        store
            .transaction(move |tx| {
                use wharf_store::plugins as stored;
                match stored::get(tx, &row.id)? {
                    None => {
                        stored::create(tx, &row, &bytes)?;
                        if row.id == RBAC && stored::installation_by_id(tx, RBAC)?.is_none() {
                            stored::install(
                                tx,
                                &stored::Installation {
                                    id: RBAC.into(),
                                    plugin: RBAC.into(),
                                    config: serde_json::json!({}),
                                    grants: serde_json::json!({}),
                                    enabled: true,
                                    position: 0,
                                    revision: 1,
                                    created_at: row.created_at,
                                    updated_at: row.created_at,
                                    updated_by: "wharf".into(),
                                },
                            )?;
                        }
                    }
                    Some(old) if old.bundled && old.digest != row.digest => {
                        stored::replace_bundled(tx, &row, &bytes)?;
                    }
                    Some(_) => {}
                }
                Ok(())
            })
            .await?;
    }
    seal_installation_secrets(&store, &sealer).await?;
    let installed = Arc::new(registry::Installed::new(
        store.clone(),
        registry.clone(),
        sealer.clone(),
    ));
    let engine = wharf_engine::Engine::new(
        store.clone(),
        sealer.clone(),
        installed.clone(),
        installed,
        engine,
    );
    let state = AppState {
        store,
        policies: Arc::new(PolicyChain::default()),
        registry,
        sealer,
        engine,
        limits: Limits::default(),
        streams: Arc::default(),
    };
    state
        .registry
        .rebuild_chain(&state.store, &state.policies)
        .await?;
    Ok(state)
}
