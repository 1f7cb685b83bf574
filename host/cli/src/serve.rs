//! `wharf serve`: reads the operator's settings, opens the data directory (the store, the
//! sealing key, the plugin cache), has `wharf-server` assemble the server, bootstraps the
//! first admin, and serves the API until interrupted.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use wharf_plugins::{Runtime, RuntimeConfig};
use wharf_store::Store;

/// What `wharf serve` runs with, from flags, environment and the config file.
pub struct Settings {
    listen: SocketAddr,
    data_dir: PathBuf,
    bootstrap_token_file: Option<PathBuf>,
    limits: wharf_api::Limits,
    workload_user: String,
    workloads_dir: Option<PathBuf>,
    reaper: wharf_api::automation::ReaperSettings,
    webhooks: wharf_api::webhooks::DeliverySettings,
}

/// The config file: `listen`, `data_dir`, `bootstrap_token_file`, and the limits.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    bootstrap_token_file: Option<PathBuf>,
    /// The longest a new API token may live, in days (90); 0 lets tokens be made that
    /// never expire.
    token_max_lifetime_days: Option<u32>,
    /// How many event and log streams one principal may follow at once (8).
    streams_per_principal: Option<usize>,
    /// The user the process target runs workloads as when the server runs as root
    /// (`nobody`).
    workload_user: Option<String>,
    /// Where the process target keeps the directories workloads see (`DATA/workloads`,
    /// or `/var/lib/wharf/workloads/ID` when they run as another user).
    workloads_dir: Option<PathBuf>,
    /// How long before a preview environment expires the warning is given (`1h`).
    expiry_warning: Option<String>,
    /// How often expired preview environments are looked for (`30s`).
    reaper_interval: Option<String>,
    /// Private or local networks webhooks may be delivered to (`["10.20.0.0/16"]`).
    webhook_allow_networks: Option<Vec<String>>,
    /// Attempts at a webhook delivery before it fails and the webhook is disabled (8).
    webhook_attempts: Option<u32>,
    /// The wait before a delivery's first retry, doubled after each (`1s`).
    webhook_backoff: Option<String>,
}

/// A duration setting: the environment variable `var`, else the config file's `file`, else
/// `default` seconds.
fn duration_setting(
    var: &str,
    file: Option<&str>,
    default: u64,
) -> anyhow::Result<std::time::Duration> {
    let text = std::env::var(var).ok().or(file.map(str::to_string));
    Ok(std::time::Duration::from_secs(match text {
        Some(t) => wharf_core::duration::parse_duration(&t)
            .map_err(|e| anyhow::anyhow!("{var}: {e}"))? as u64,
        None => default,
    }))
}

impl Settings {
    /// Flags (and their environment variables) first, then the config file, then the
    /// defaults.
    pub fn resolve(
        config: Option<&Path>,
        listen: Option<SocketAddr>,
        data_dir: Option<PathBuf>,
        bootstrap_token_file: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let file = match config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("failed to read the config file {}", path.display())
                })?;
                toml::from_str::<ConfigFile>(&text)
                    .with_context(|| format!("the config file {} is not valid", path.display()))?
            }
            None => ConfigFile::default(),
        };
        let webhooks = webhook_settings(&file)?;
        Ok(Self {
            listen: listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: data_dir
                .or(file.data_dir)
                .unwrap_or_else(crate::default_data_dir),
            bootstrap_token_file: bootstrap_token_file.or(file.bootstrap_token_file),
            limits: {
                let mut limits = wharf_api::Limits::default();
                if let Some(days) = file.token_max_lifetime_days {
                    limits.token_max_lifetime_days = (days > 0).then_some(days);
                }
                if let Some(n) = file.streams_per_principal {
                    limits.streams_per_principal = n.max(1);
                }
                limits
            },
            reaper: wharf_api::automation::ReaperSettings {
                interval: duration_setting(
                    "WHARF_REAPER_INTERVAL",
                    file.reaper_interval.as_deref(),
                    30,
                )?,
                warn_before: duration_setting(
                    "WHARF_EXPIRY_WARNING",
                    file.expiry_warning.as_deref(),
                    3600,
                )?,
            },
            webhooks,
            workload_user: file.workload_user.unwrap_or_else(|| "nobody".into()),
            workloads_dir: file.workloads_dir,
        })
    }

    /// Lets webhooks be delivered to these private or local networks too
    /// (`--webhook-allow-network`).
    pub fn allow_webhook_networks(&mut self, networks: Vec<wharf_api::webhooks::Network>) {
        self.webhooks.allowed_networks.extend(networks);
    }
}

/// How webhooks are delivered: the config file, with `WHARF_WEBHOOK_ATTEMPTS` and
/// `WHARF_WEBHOOK_BACKOFF` taking precedence.
fn webhook_settings(file: &ConfigFile) -> anyhow::Result<wharf_api::webhooks::DeliverySettings> {
    let mut settings = wharf_api::webhooks::DeliverySettings::default();
    for network in file.webhook_allow_networks.iter().flatten() {
        settings.allowed_networks.push(
            network
                .parse()
                .map_err(|e| anyhow::anyhow!("webhook_allow_networks: {e}"))?,
        );
    }
    let attempts = std::env::var("WHARF_WEBHOOK_ATTEMPTS").ok();
    if let Some(n) = attempts.as_deref() {
        settings.attempts = n.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
            anyhow::anyhow!("WHARF_WEBHOOK_ATTEMPTS: {n:?} is not a count (1, 2, ...)")
        })?;
    } else if let Some(n) = file.webhook_attempts {
        settings.attempts = n.max(1);
    }
    settings.backoff = duration_setting(
        "WHARF_WEBHOOK_BACKOFF",
        file.webhook_backoff.as_deref(),
        settings.backoff.as_secs(),
    )?;
    Ok(settings)
}

/// A Wharf ready to serve: its state loaded, its listener bound.
pub struct Prepared {
    pub(crate) reaper: wharf_api::automation::ReaperSettings,
    pub(crate) webhooks: wharf_api::webhooks::DeliverySettings,
    pub(crate) store: Store,
    pub(crate) state: wharf_api::AppState,
    pub(crate) listener: tokio::net::TcpListener,
    pub(crate) address: SocketAddr,
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let prepared = prepare(settings).await?;
    eprintln!("Wharf is serving on http://{}", prepared.address);
    eprintln!("The web UI is at http://{}/ui/", prepared.address);
    serve(prepared, shutdown()).await
}

/// Starts the engine (resuming what was in flight) and serves until `stop`; then stops
/// the engine and closes the store.
pub async fn serve(
    prepared: Prepared,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let Prepared {
        store,
        state,
        listener,
        reaper,
        webhooks,
        ..
    } = prepared;
    let engine = state.engine.clone();
    engine
        .start()
        .await
        .context("failed to resume the deployments in flight")?;
    let reaper = wharf_api::automation::spawn_reaper(state.clone(), reaper);
    let deliverer = wharf_api::webhooks::spawn(state.clone(), webhooks);
    let app = wharf_ui::router(state, wharf_ui::SessionSettings::default());
    let served = serve_until_stopped(listener, app, stop).await;
    reaper.abort();
    deliverer.abort();
    engine.shutdown().await;
    store.close().await;
    served
}

/// Opens the data directory, loads the plugins, bootstraps the admin on a new Wharf and
/// binds the listener.
pub async fn prepare(settings: Settings) -> anyhow::Result<Prepared> {
    let Settings {
        listen,
        data_dir,
        bootstrap_token_file,
        limits,
        workload_user,
        workloads_dir,
        reaper,
        webhooks,
    } = settings;
    let data_dir = data_dir.as_path();
    let bootstrap_token_file = bootstrap_token_file.as_deref();
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("failed to create the data directory {}", data_dir.display()))?;
    // It holds the store, the sealing key and every environment's state: its owner's only.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700)).with_context(
            || {
                format!(
                    "failed to restrict the data directory {}",
                    data_dir.display()
                )
            },
        )?;
    }
    let store = Store::open(&data_dir.join("wharf.db"))
        .await
        .context("failed to open the store")?;
    let runtime = Runtime::new(RuntimeConfig::new(data_dir.join("plugin-cache")))
        .context("failed to start the plugin runtime")?;
    let sealer = match std::env::var("WHARF_SECRET_KEY") {
        Ok(hex) => wharf_store::secrets::Sealer::from_hex(&hex)
            .map_err(|e| anyhow::anyhow!("WHARF_SECRET_KEY: {e}"))?,
        Err(_) => wharf_store::secrets::Sealer::load_or_create(&data_dir.join("secret.key"))
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("failed to load the key that seals secrets")?,
    };
    let engine = wharf_engine::Settings::with_process(process_settings(
        data_dir,
        &workload_user,
        workloads_dir,
    )?);
    let mut state = wharf_server::start(
        store.clone(),
        runtime,
        sealer,
        wharf_artifacts::BUNDLED,
        engine,
    )
    .await
    .context("failed to load the installed plugins")?;
    state.limits = limits;
    let given = match bootstrap_token_file {
        Some(file) => Some(std::fs::read_to_string(file).with_context(|| {
            format!("failed to read the bootstrap token from {}", file.display())
        })?),
        None => None,
    };
    if let Some(token) = wharf_api::auth::bootstrap(&store, given.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("failed to create the bootstrap admin")?
    {
        if given.is_some() {
            eprintln!("A new Wharf: the admin's token is the one in the bootstrap token file.");
        } else {
            eprintln!(
                "A new Wharf: the admin's token is shown once, keep it:\n\n    {token}\n\n\
                 Log in with: wharf login --server http://{listen} --token {token}\n"
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("failed to listen on {listen}"))?;
    let local = listener
        .local_addr()
        .context("failed to read the listen address")?;
    tracing::info!(address = %local, "serving");
    Ok(Prepared {
        reaper,
        webhooks,
        store,
        state,
        listener,
        address: local,
    })
}

/// Where the process target keeps its workloads and who runs them: never root. When the
/// server runs as root, workloads run as `workload_user`, in directories outside the data
/// directory (which that user could not pass).
fn process_settings(
    data_dir: &Path,
    workload_user: &str,
    workloads_dir: Option<PathBuf>,
) -> anyhow::Result<wharf_engine::target::process::ProcessSettings> {
    use wharf_engine::target::process::{ProcessSettings, User, server_is_root, shield_server};
    shield_server();
    let user = if server_is_root() {
        Some(
            User::lookup(workload_user)
                .map_err(|e| anyhow::anyhow!(e))
                .context("failed to find the user workloads run as (workload_user)")?,
        )
    } else {
        None
    };
    let settings = match workloads_dir {
        Some(dir) => ProcessSettings::new(data_dir.join("envs"), dir, user, data_dir),
        None => ProcessSettings::for_data_dir(data_dir, user),
    };
    if let Some(why) = &settings.confinement.unavailable {
        eprintln!(
            "Warning: workloads cannot be confined on this machine ({why}); the process \
             target starts only those of environment types that say \"unconfined\": true."
        );
    }
    Ok(settings)
}

/// Serves until `stop` resolves, then lets open requests finish for a few seconds: a
/// client following logs or a deployment would otherwise hold the server up forever.
pub(crate) async fn serve_until_stopped(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let (tell, told) = tokio::sync::watch::channel(false);
    let mut told = told;
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = told.changed().await;
    });
    let server = std::future::IntoFuture::into_future(server);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.context("the server failed"),
        () = stop => {}
    }
    let _ = tell.send(true);
    match tokio::time::timeout(std::time::Duration::from_secs(5), &mut server).await {
        Ok(result) => result.context("the server failed"),
        Err(_) => {
            tracing::info!("closing connections still open after 5s");
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) fn shutdown() -> impl std::future::Future<Output = ()> {
    // Registered now, not when first awaited: a signal that comes before the await (while
    // `wharf up` deploys, say) is not lost to the default action.
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Some(mut interrupt), Some(mut term)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    }
}
