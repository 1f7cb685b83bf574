//! The installed plugins, loaded into the runtime, and the policy chain built from them.
//!
//! The store is the truth: an installation's row says which component runs, with which
//! configuration and grants. This module loads a component into the runtime once per
//! installation revision and rebuilds the policy chain from the store after every change,
//! so that a change takes effect on the next request. What a driver installation's
//! configuration holds, and how its secrets are sealed, is [`config`].

mod config;

pub use config::{
    DriverConfig, SealedConfig, config_view, driver_config, open_config, seal_config,
    with_installation_config,
};

use crate::ApiError;
use crate::authz::{Policy, PolicyChain};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use wharf_plugins::{Grants, Kind, Limits, Manifest, Plugin, Runtime};
use wharf_store::Store;
use wharf_store::plugins::{self as stored, Installation};

/// Why the registry could not check, load or describe a plugin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A component or manifest a client sent is not acceptable; the message says what to
    /// fix.
    #[error("component: {0}")]
    Rejected(String),
    /// A name that is not one of the plugin kinds.
    #[error("kind: {0:?} is not a plugin kind; expected driver, policy or transformer")]
    UnknownKind(String),
    /// A stored installation could not be loaded: its plugin is gone, or what was stored
    /// with it no longer reads.
    #[error("installation {installation} cannot be loaded: {reason}")]
    Stored {
        /// The installation.
        installation: String,
        /// What is wrong with what is stored.
        reason: String,
    },
    /// The runtime failed to compile or cache a component that was acceptable.
    #[error("the plugin runtime failed")]
    Runtime(#[source] wharf_plugins::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] wharf_store::Error),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Rejected(_) | Error::UnknownKind(_) => ApiError::BadRequest(e.to_string()),
            Error::Store(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

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
    ) -> Result<Plugin, Error> {
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
            return Err(Error::Rejected(format!(
                "{kind} plugins get no network: remove the requested http and sockets"
            )));
        }
        self.runtime
            .install(component, manifest)
            .await
            .map_err(install_error)
    }

    /// The loaded plugin of a stored `installation` (loading it on first use).
    pub async fn load(&self, store: &Store, installation: &Installation) -> Result<Plugin, Error> {
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
    ) -> Result<Plugin, Error> {
        let plugin_id = installation.plugin.clone();
        let (plugin, component) = store
            .call(move |conn| {
                Ok(stored::get(conn, &plugin_id)?.zip(stored::component(conn, &plugin_id)?))
            })
            .await?
            .ok_or_else(|| Error::Stored {
                installation: installation.id.clone(),
                reason: format!("its plugin {} is gone", installation.plugin),
            })?;
        let stored = |what: &str, e: serde_json::Error| Error::Stored {
            installation: installation.id.clone(),
            reason: format!("its {what} do not read: {e}"),
        };
        let requested: Requested = serde_json::from_value(plugin.manifest.clone())
            .map_err(|e| stored("plugin's requested grants and limits", e))?;
        let grants: Grants =
            serde_json::from_value(installation.grants.clone()).map_err(|e| stored("grants", e))?;
        let manifest = Manifest {
            name: installation.id.clone(),
            kind: plugin.kind,
            grants,
            limits: requested.limits,
        };
        self.runtime
            .install(&component, manifest)
            .await
            .map_err(Error::Runtime)
    }

    /// Rebuilds `chain` from the enabled policy installations in the store.
    pub async fn rebuild_chain(&self, store: &Store, chain: &PolicyChain) -> Result<(), Error> {
        let _one_at_a_time = self.rebuild.lock().await;
        let installations = store
            .call(|conn| stored::enabled_of_kind(conn, Kind::Policy))
            .await?;
        let mut policies = Vec::with_capacity(installations.len());
        for installation in installations {
            let Plugin::Policy(plugin) = self.load(store, &installation).await? else {
                return Err(Error::Stored {
                    installation: installation.id.clone(),
                    reason: "it is stored as a policy but its plugin is not one".into(),
                });
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
pub fn kind(text: &str) -> Result<Kind, Error> {
    text.parse()
        .map_err(|_| Error::UnknownKind(text.to_string()))
}

/// What a loaded plugin says about itself (its `describe` export), as stored and shown:
/// `name`, `version`, `description`, `config_schema`, and `resource_types` for drivers.
pub async fn describe(plugin: &Plugin) -> Result<Value, Error> {
    let refused = |e: wharf_plugins::PluginFailure| {
        Error::Rejected(format!("its describe export failed: {e}"))
    };
    let json = |v: Result<Value, serde_json::Error>| v.expect("plugin info serializes");
    Ok(match plugin {
        Plugin::Driver(d) => {
            let d = d.describe().await.map_err(refused)?;
            let mut info = json(serde_json::to_value(&d.info));
            info["resource_types"] = json(serde_json::to_value(&d.resource_types));
            info
        }
        Plugin::Policy(p) => json(serde_json::to_value(p.describe().await.map_err(refused)?)),
        Plugin::Transformer(t) => json(serde_json::to_value(t.describe().await.map_err(refused)?)),
    })
}

/// A runtime error about a component or manifest the client sent is the client's to fix.
fn install_error(e: wharf_plugins::Error) -> Error {
    use wharf_plugins::Error as E;
    match e {
        E::Cache { .. } | E::Engine(_) => Error::Runtime(e),
        other => Error::Rejected(wharf_core::error_chain(&other)),
    }
}
