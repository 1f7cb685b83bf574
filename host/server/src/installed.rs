//! The installed plugins as the engine calls them: the adapter between the engine's
//! [`Drivers`] and [`Transformers`] and the API's [`Registry`].

use serde_json::Value;
use std::sync::Arc;
use wharf_api::registry::{Registry, open_config, with_installation_config};
use wharf_engine::pipeline::Transformers;
use wharf_engine::provision::Drivers;
use wharf_engine::target::BoxFuture;
use wharf_plugins::{
    DriverRequest, ErrorKind, Plugin, PluginError, PluginFailure, Step, TransformContext,
};
use wharf_store::Store;
use wharf_store::secrets::Sealer;

/// The installed plugins as the engine calls them: drivers and transformers by
/// installation id, loaded through the registry (so a changed installation is used from
/// its next call on).
pub struct Installed {
    store: Store,
    registry: Arc<Registry>,
    sealer: Sealer,
}

impl Installed {
    /// Calls through `registry`, reading installations from `store` and opening their
    /// secrets with `sealer`.
    pub fn new(store: Store, registry: Arc<Registry>, sealer: Sealer) -> Self {
        Self {
            store,
            registry,
            sealer,
        }
    }

    async fn plugin(&self, id: &str) -> Result<(Plugin, Value), PluginFailure> {
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
            .map_err(|e| PluginFailure::host(format!("reading installation {id}"), e))?
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
            .map_err(|e| PluginFailure::host(format!("loading installation {id}"), e))?;
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

impl Drivers for Installed {
    fn provision<'a>(
        &'a self,
        driver: &'a str,
        request: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>> {
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
        request: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>> {
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

impl Transformers for Installed {
    fn transform<'a>(
        &'a self,
        installation: &'a str,
        context: TransformContext,
        objects: Vec<Value>,
    ) -> BoxFuture<'a, Result<Vec<Value>, PluginFailure>> {
        Box::pin(async move {
            match self.plugin(installation).await? {
                (Plugin::Transformer(t), config) => t.transform(&context, &config, &objects).await,
                _ => Err(not_a(installation, "transformer")),
            }
        })
    }
}

/// Runs a driver call as a task of its own: the engine drives a level's resources
/// concurrently from one task, and a task of its own lets each call's Wasm run on any
/// worker thread, in parallel.
async fn on_a_worker(
    call: impl std::future::Future<Output = Result<Step, PluginFailure>> + Send + 'static,
) -> Result<Step, PluginFailure> {
    tokio::spawn(call)
        .await
        .unwrap_or_else(|e| Err(PluginFailure::host("running the call on a worker", e)))
}

fn not_a(id: &str, kind: &str) -> PluginFailure {
    PluginFailure::Plugin(PluginError {
        kind: ErrorKind::InvalidInput,
        message: format!("plugin installation {id} is not a {kind}"),
        retry_after_ms: None,
    })
}
