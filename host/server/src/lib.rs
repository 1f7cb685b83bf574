//! `wharf-server`: the composition root of the Wharf host.
//!
//! [`start`] assembles what the API serves from its parts: it stores the plugins bundled
//! with this binary (adding new ones, replacing changed ones, installing the `rbac` policy
//! on a new Wharf), seals driver secrets stored before they were sealed, loads the
//! installed plugins into a [`Registry`], builds the policy chain, and creates the
//! deployment engine, which calls drivers and transformers through [`Installed`].
//!
//! The crates it wires stay unaware of each other's construction: the API serves HTTP over
//! an [`AppState`] it is given, the engine calls plugins through the traits it defines.
//! This crate must not serve requests or run deployments itself.

mod bundled;
mod installed;

pub use installed::Installed;

use std::sync::Arc;
use wharf_api::{AppState, Limits, PolicyChain, Registry};
use wharf_artifacts::Bundled;
use wharf_plugins::Runtime;
use wharf_store::Store;
use wharf_store::secrets::Sealer;

/// Why the server could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A plugin bundled with this binary does not load: the binary is broken.
    #[error("bundled plugin {id} does not load")]
    Bundled {
        /// The plugin.
        id: String,
        /// Why.
        #[source]
        source: wharf_api::registry::Error,
    },
    /// An installed plugin does not load, or the policy chain cannot be built.
    #[error("the installed plugins do not load")]
    Registry(#[from] wharf_api::registry::Error),
    /// The store failed.
    #[error("the store failed")]
    Store(#[from] wharf_store::Error),
}

/// The state the API serves, assembled: `bundled` stored, the installed plugins loaded
/// into `runtime`, the policy chain built, and the deployment engine created with
/// `engine` (the caller starts it, with [`wharf_engine::Engine::start`], once it is ready
/// to serve). Limits are the defaults; the caller sets the operator's.
pub async fn start(
    store: Store,
    runtime: Runtime,
    sealer: Sealer,
    bundled: &[Bundled],
    engine: wharf_engine::Settings,
) -> Result<AppState, Error> {
    let registry = Arc::new(Registry::new(runtime));
    for plugin in bundled {
        bundled::store(&store, &registry, plugin)
            .await
            .map_err(|source| Error::Bundled {
                id: plugin.name.to_string(),
                source,
            })?;
    }
    bundled::seal_installation_secrets(&store, &sealer).await?;
    let installed = Arc::new(Installed::new(
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
