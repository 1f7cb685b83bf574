//! `wharf serve`: the composition root. Opens the store, starts the plugin runtime with
//! the bundled policy, bootstraps the first admin, and serves the API until interrupted.

use anyhow::Context;
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use wharf_api::authz::Policy;
use wharf_api::{AppState, PolicyChain};
use wharf_plugins::{Kind, Manifest, Plugin, Runtime, RuntimeConfig};
use wharf_store::Store;

pub async fn run(data_dir: &Path, listen: SocketAddr) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("failed to create the data directory {}", data_dir.display()))?;
    let store = Store::open(&data_dir.join("wharf.db"))
        .await
        .context("failed to open the store")?;
    let runtime = Runtime::new(RuntimeConfig::new(data_dir.join("plugin-cache")))
        .context("failed to start the plugin runtime")?;
    let rbac = wharf_artifacts::BUNDLED
        .iter()
        .find(|b| b.name == "rbac")
        .context("the rbac policy is not bundled in this binary")?;
    let Plugin::Policy(plugin) = runtime
        .install(rbac.bytes, Manifest::new("rbac", Kind::Policy))
        .await
        .context("failed to install the bundled rbac policy")?
    else {
        anyhow::bail!("the bundled rbac plugin is not a policy");
    };
    let policies = Arc::new(PolicyChain::default());
    policies.set(vec![Policy {
        name: "rbac".into(),
        plugin,
        config: json!({}),
    }]);
    if let Some(token) = wharf_api::auth::bootstrap(&store)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("failed to create the bootstrap admin")?
    {
        eprintln!(
            "A new Wharf: the admin's token is shown once, keep it:\n\n    {token}\n\n\
             Try: curl -H 'Authorization: Bearer {token}' http://{listen}/api/v1/apps\n"
        );
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("failed to listen on {listen}"))?;
    let local = listener
        .local_addr()
        .context("failed to read the listen address")?;
    tracing::info!(address = %local, "serving");
    eprintln!("Wharf is serving on http://{local}");
    let app = wharf_api::router(AppState {
        store: store.clone(),
        policies,
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
        .context("the server failed")?;
    store.close().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
}
