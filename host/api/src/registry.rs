//! The installed plugins, loaded into the runtime, and the policy chain built from them.
//!
//! The store is the truth: an installation's row says which component runs, with which
//! configuration and grants. This module loads a component into the runtime once per
//! installation revision and rebuilds the policy chain from the store after every change,
//! so that a change takes effect on the next request.

use crate::ApiError;
use crate::authz::{Policy, PolicyChain};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wharf_plugins::{Grants, Kind, Limits, Manifest, Plugin, Runtime};
use wharf_store::Store;
use wharf_store::plugins::{self as stored, Installation};

/// The plugins loaded into the runtime, by installation.
pub struct Registry {
    runtime: Runtime,
    /// `(installation, revision)` → the loaded plugin.
    loaded: Mutex<HashMap<(String, i64), Plugin>>,
    /// Installation rows read for the engine, by id; dropped when the API changes one.
    rows: Mutex<HashMap<String, Installation>>,
    /// Serializes chain rebuilds, so that the last one to finish saw the newest state.
    rebuild: tokio::sync::Mutex<()>,
}

/// In a manifest's requested grants: any origin (or address) the operator grants.
pub const ANY: &str = "*";

/// What an uploaded plugin's manifest asks for.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Requested {
    /// Network capabilities an installation may be granted (drivers only).
    pub grants: Grants,
    /// Limits of every call.
    pub limits: Limits,
}

impl Registry {
    /// A registry over `runtime`.
    pub fn new(runtime: Runtime) -> Self {
        Self {
            runtime,
            loaded: Mutex::new(HashMap::new()),
            rows: Mutex::new(HashMap::new()),
            rebuild: tokio::sync::Mutex::new(()),
        }
    }

    /// Checks a component: that it is one, of `kind`, within `requested`'s limits. Returns
    /// it loaded (with no grants), to ask it about itself.
    pub async fn check(
        &self,
        id: &str,
        kind: Kind,
        requested: &Requested,
        component: &[u8],
    ) -> Result<Plugin, ApiError> {
        // `*` asks for what the operator will grant: nothing to check until then.
        let specific = |list: &[String]| list.iter().filter(|g| *g != ANY).cloned().collect();
        let manifest = Manifest {
            name: id.to_string(),
            kind,
            grants: Grants {
                http: specific(&requested.grants.http),
                sockets: specific(&requested.grants.sockets),
                directories: specific(&requested.grants.directories),
            },
            limits: requested.limits,
        };
        let any = requested
            .grants
            .http
            .iter()
            .chain(&requested.grants.sockets)
            .any(|g| g == ANY);
        if any && kind != Kind::Driver {
            return Err(ApiError::BadRequest(format!(
                "component: {kind} plugins get no network: remove the requested http and sockets"
            )));
        }
        self.runtime
            .install(component, manifest)
            .await
            .map_err(install_error)
    }

    /// The loaded plugin of a stored `installation` (loading it on first use).
    pub async fn load(
        &self,
        store: &Store,
        installation: &Installation,
    ) -> Result<Plugin, ApiError> {
        let key = (installation.id.clone(), installation.revision);
        if let Some(p) = self.loaded.lock().expect("never poisoned").get(&key) {
            return Ok(p.clone());
        }
        let loaded = self.load_fresh(store, installation).await?;
        let mut cache = self.loaded.lock().expect("never poisoned");
        cache.retain(|(id, _), _| *id != installation.id);
        cache.insert(key, loaded.clone());
        Ok(loaded)
    }

    /// Forgets what was loaded for installation `id` (it was deleted; a new one with the
    /// same id must not inherit its grants).
    pub fn forget(&self, id: &str) {
        self.loaded
            .lock()
            .expect("never poisoned")
            .retain(|(loaded, _), _| loaded != id);
        self.changed(id);
    }

    /// Installation `id` was written: the next call reads it again.
    pub fn changed(&self, id: &str) {
        self.rows.lock().expect("never poisoned").remove(id);
    }

    /// The stored installation `id`, read once and kept until [`Registry::changed`]: a
    /// deployment calls its drivers many times, and the API is the only writer.
    pub async fn installation(
        &self,
        store: &Store,
        id: &str,
    ) -> Result<Option<Installation>, wharf_store::Error> {
        if let Some(row) = self.rows.lock().expect("never poisoned").get(id) {
            return Ok(Some(row.clone()));
        }
        let key = id.to_string();
        let found = store
            .call(move |conn| stored::installation_by_id(conn, &key))
            .await?;
        if let Some(row) = &found {
            self.rows
                .lock()
                .expect("never poisoned")
                .insert(id.to_string(), row.clone());
        }
        Ok(found)
    }

    /// Loads `installation`, which need not be stored (a candidate being checked), without
    /// caching it.
    pub async fn load_fresh(
        &self,
        store: &Store,
        installation: &Installation,
    ) -> Result<Plugin, ApiError> {
        let plugin_id = installation.plugin.clone();
        let (plugin, component) = store
            .call(move |conn| {
                Ok(stored::get(conn, &plugin_id)?.zip(stored::component(conn, &plugin_id)?))
            })
            .await?
            .ok_or_else(|| {
                ApiError::Internal(format!(
                    "installation {} names plugin {}, which is gone",
                    installation.id, installation.plugin
                ))
            })?;
        let requested: Requested = serde_json::from_value(plugin.manifest.clone())
            .map_err(|e| ApiError::Internal(format!("stored manifest of {}: {e}", plugin.id)))?;
        let grants: Grants = serde_json::from_value(installation.grants.clone()).map_err(|e| {
            ApiError::Internal(format!("stored grants of {}: {e}", installation.id))
        })?;
        let manifest = Manifest {
            name: installation.id.clone(),
            kind: plugin.kind,
            grants,
            limits: requested.limits,
        };
        self.runtime
            .install(&component, manifest)
            .await
            .map_err(|e| ApiError::Internal(format!("loading {}: {e}", installation.id)))
    }

    /// Rebuilds `chain` from the enabled policy installations in the store.
    pub async fn rebuild_chain(&self, store: &Store, chain: &PolicyChain) -> Result<(), ApiError> {
        let _one_at_a_time = self.rebuild.lock().await;
        let installations = store
            .call(|conn| stored::enabled_of_kind(conn, Kind::Policy))
            .await?;
        let mut policies = Vec::with_capacity(installations.len());
        for installation in installations {
            let Plugin::Policy(plugin) = self.load(store, &installation).await? else {
                return Err(ApiError::Internal(format!(
                    "installation {} is not a policy",
                    installation.id
                )));
            };
            policies.push(Policy {
                name: installation.id.clone(),
                plugin,
                config: installation.config.clone(),
            });
        }
        chain.set(policies);
        Ok(())
    }
}

/// The kind named `text`.
pub fn kind(text: &str) -> Result<Kind, ApiError> {
    serde_json::from_value(Value::String(text.to_string())).map_err(|_| {
        ApiError::BadRequest(format!(
            "kind: {text:?} is not a plugin kind; expected driver, policy or transformer"
        ))
    })
}

/// A runtime error about a component or manifest the client sent is the client's to fix.
fn install_error(e: wharf_plugins::Error) -> ApiError {
    use wharf_plugins::Error as E;
    match e {
        E::Cache { .. } | E::Engine(_) => ApiError::Internal(e.to_string()),
        other => ApiError::BadRequest(format!("component: {}", wharf_core::error_chain(&other))),
    }
}

/// The installed plugins as the engine calls them: drivers and transformers by
/// installation id, loaded through the registry (so a changed installation is used from
/// its next call on).
pub struct Installed {
    store: Store,
    registry: Arc<Registry>,
    sealer: wharf_store::secrets::Sealer,
}

impl Installed {
    /// Calls through `registry`, reading installations from `store` and opening their
    /// secrets with `sealer`.
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        sealer: wharf_store::secrets::Sealer,
    ) -> Self {
        Self {
            store,
            registry,
            sealer,
        }
    }

    async fn plugin(&self, id: &str) -> Result<(Plugin, Value), wharf_plugins::PluginFailure> {
        use wharf_plugins::{ErrorKind, PluginError, PluginFailure};
        let missing = |message: String| {
            PluginFailure::Plugin(PluginError {
                kind: ErrorKind::NotFound,
                message,
                retry_after_ms: None,
            })
        };
        let installation = self
            .registry
            .installation(&self.store, id)
            .await
            .map_err(|e| PluginFailure::Host(format!("reading installation {id}: {e}")))?
            .ok_or_else(|| missing(format!("there is no plugin installation {id}")))?;
        if !installation.enabled {
            return Err(missing(format!(
                "plugin installation {id} is disabled; enable it to deploy"
            )));
        }
        let plugin = self
            .registry
            .load(&self.store, &installation)
            .await
            .map_err(|e| PluginFailure::Host(format!("loading installation {id}: {e}")))?;
        let config = match plugin {
            // Trying again cannot open what does not open: not retried.
            Plugin::Driver(_) => {
                open_config(&self.sealer, id, &installation.config).map_err(|e| {
                    PluginFailure::Plugin(PluginError {
                        kind: ErrorKind::Other,
                        message: format!(
                            "{e}; give plugin installation {id} its secrets again (PATCH its \
                             config with secrets)"
                        ),
                        retry_after_ms: None,
                    })
                })?
            }
            _ => installation.config,
        };
        Ok((plugin, config))
    }
}

impl wharf_engine::provision::Drivers for Installed {
    fn provision<'a>(
        &'a self,
        driver: &'a str,
        request: wharf_plugins::DriverRequest,
    ) -> wharf_engine::target::BoxFuture<
        'a,
        Result<wharf_plugins::Step, wharf_plugins::PluginFailure>,
    > {
        Box::pin(async move {
            match self.plugin(driver).await? {
                (Plugin::Driver(d), config) => {
                    let request = with_installation_config(request, &config);
                    on_a_worker(async move { d.provision(&request).await }).await
                }
                _ => Err(not_a(driver, "driver")),
            }
        })
    }

    fn deprovision<'a>(
        &'a self,
        driver: &'a str,
        request: wharf_plugins::DriverRequest,
    ) -> wharf_engine::target::BoxFuture<
        'a,
        Result<wharf_plugins::Step, wharf_plugins::PluginFailure>,
    > {
        Box::pin(async move {
            match self.plugin(driver).await? {
                (Plugin::Driver(d), config) => {
                    let request = with_installation_config(request, &config);
                    on_a_worker(async move { d.deprovision(&request).await }).await
                }
                _ => Err(not_a(driver, "driver")),
            }
        })
    }
}

impl wharf_engine::pipeline::Transformers for Installed {
    fn transform<'a>(
        &'a self,
        installation: &'a str,
        context: wharf_plugins::TransformContext,
        objects: Vec<Value>,
    ) -> wharf_engine::target::BoxFuture<'a, Result<Vec<Value>, wharf_plugins::PluginFailure>> {
        Box::pin(async move {
            match self.plugin(installation).await? {
                (Plugin::Transformer(t), config) => t.transform(&context, &config, &objects).await,
                _ => Err(not_a(installation, "transformer")),
            }
        })
    }
}

/// Where a driver installation's sealed secrets are bound.
fn secrets_context(installation: &str) -> String {
    format!("plugin-installation/secrets:{installation}")
}

/// A driver installation's configuration as sent, checked for its shape:
/// `{"values": {...}, "secrets": {...}}`, both optional (`secret_keys`, which a read shows,
/// is accepted and ignored, so that what was read can be sent back). Without `secrets`,
/// those of `previous` (an open configuration) are kept.
pub fn driver_config(config: Value, previous: Option<&Value>) -> Result<Value, ApiError> {
    let Value::Object(mut fields) = config else {
        return Err(ApiError::BadRequest(
            "config: a driver's configuration is {\"values\": {...}, \"secrets\": {...}}".into(),
        ));
    };
    fields.remove("secret_keys");
    if let Some(other) = fields.keys().find(|k| *k != "values" && *k != "secrets") {
        return Err(ApiError::BadRequest(format!(
            "config.{other}: a driver's configuration has only values and secrets"
        )));
    }
    for field in ["values", "secrets"] {
        match fields.get(field) {
            None | Some(Value::Object(_)) => {}
            Some(_) => {
                return Err(ApiError::BadRequest(format!(
                    "config.{field}: must be a JSON object"
                )));
            }
        }
    }
    let values = fields.remove("values").unwrap_or_else(|| json!({}));
    let secrets = match fields.remove("secrets") {
        Some(s) => s,
        None => previous
            .map(|p| p["secrets"].clone())
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({})),
    };
    Ok(json!({ "values": values, "secrets": secrets }))
}

/// A driver installation's open configuration as it is stored: the secrets sealed, bound
/// to the installation, and their names kept.
pub fn seal_config(
    sealer: &wharf_store::secrets::Sealer,
    installation: &str,
    config: &Value,
) -> Value {
    use base64::Engine as _;
    let secrets = config["secrets"].as_object().cloned().unwrap_or_default();
    let keys: Vec<&String> = secrets.keys().collect();
    let sealed = sealer.seal(
        Value::Object(secrets.clone()).to_string().as_bytes(),
        &secrets_context(installation),
    );
    json!({
        "values": config["values"],
        "secret_keys": keys,
        "secrets_sealed": base64::engine::general_purpose::STANDARD.encode(sealed),
    })
}

/// A stored configuration opened: a driver installation's secrets unsealed. Any other
/// configuration (a policy's, a transformer's, one stored before secrets were sealed) is
/// as it was stored.
pub fn open_config(
    sealer: &wharf_store::secrets::Sealer,
    installation: &str,
    config: &Value,
) -> Result<Value, wharf_store::Error> {
    use base64::Engine as _;
    let Some(text) = config["secrets_sealed"].as_str() else {
        return Ok(config.clone());
    };
    let corrupt = |e: String| {
        wharf_store::Error::Corrupt(format!(
            "sealed secrets of installation {installation}: {e}"
        ))
    };
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| corrupt(e.to_string()))?;
    let bytes = sealer.open(&sealed, &secrets_context(installation))?;
    let secrets: Value = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    Ok(json!({ "values": config["values"], "secrets": secrets }))
}

/// A driver installation's configuration as the API shows it: its secrets by name only.
pub fn config_view(config: &Value) -> Value {
    let mut view = config.clone();
    if let Some(fields) = view.as_object_mut() {
        fields.remove("secrets_sealed");
        if let Some(Value::Object(secrets)) = fields.remove("secrets") {
            fields.insert(
                "secret_keys".into(),
                json!(secrets.keys().collect::<Vec<_>>()),
            );
        }
    }
    view
}

/// A driver's configuration for one call: its installation's configuration (what all its
/// definitions share, like the address of the system it talks to, which goes with the
/// installation's grants), with the resource definition's driver inputs over it, key by
/// key.
fn with_installation_config(
    mut request: wharf_plugins::DriverRequest,
    installation: &Value,
) -> wharf_plugins::DriverRequest {
    for (field, target) in [
        ("values", &mut request.config.values),
        ("secrets", &mut request.config.secrets),
    ] {
        if let (Some(base), Some(over)) = (installation[field].as_object(), target.as_object()) {
            let mut merged = base.clone();
            merged.extend(over.clone());
            *target = Value::Object(merged);
        }
    }
    request
}

/// Runs a driver call as a task of its own: the engine drives a level's resources
/// concurrently from one task, and a task of its own lets each call's Wasm run on any
/// worker thread, in parallel.
async fn on_a_worker(
    call: impl std::future::Future<Output = Result<wharf_plugins::Step, wharf_plugins::PluginFailure>>
    + Send
    + 'static,
) -> Result<wharf_plugins::Step, wharf_plugins::PluginFailure> {
    tokio::spawn(call).await.unwrap_or_else(|e| {
        Err(wharf_plugins::PluginFailure::Host(format!(
            "the call failed: {e}"
        )))
    })
}

fn not_a(id: &str, kind: &str) -> wharf_plugins::PluginFailure {
    wharf_plugins::PluginFailure::Plugin(wharf_plugins::PluginError {
        kind: wharf_plugins::ErrorKind::InvalidInput,
        message: format!("plugin installation {id} is not a {kind}"),
        retry_after_ms: None,
    })
}
