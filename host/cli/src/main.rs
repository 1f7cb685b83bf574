//! `wharf`: the command-line entry point of Wharf.
//!
//! `wharf serve` runs the platform ([`serve`]); `wharf up` runs it with an app deployed
//! ([`up`]); every other command but the local plugin tools ([`plugin`]: check and call
//! a component in the host's sandbox, no server needed) is a client of the API
//! ([`client`]). This file only parses arguments, sets up logging and prints
//! errors. The binary must stay a thin shell over the library crates: no plugin or
//! platform logic of its own.

mod client;
mod plugin;
mod serve;
mod up;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Wharf, the internal developer platform.
#[derive(Parser)]
#[command(name = "wharf", version, about)]
struct Cli {
    /// Where Wharf keeps its data (the compile cache of plugins).
    #[arg(long, env = "WHARF_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    connection: client::Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Wharf server: the API on LISTEN, state in the data directory.
    Serve {
        /// Address to listen on (127.0.0.1:8080 unless the config file says otherwise).
        #[arg(long, env = "WHARF_LISTEN")]
        listen: Option<std::net::SocketAddr>,
        /// On a new Wharf, use the token in this file as the admin's (for automation)
        /// instead of printing a random one.
        #[arg(long, env = "WHARF_BOOTSTRAP_TOKEN_FILE")]
        bootstrap_token_file: Option<PathBuf>,
        /// A TOML file with any of `listen`, `data_dir` and `bootstrap_token_file`;
        /// flags and environment variables take precedence over it.
        #[arg(long, env = "WHARF_CONFIG")]
        config: Option<PathBuf>,
        /// A private or local network webhooks may be delivered to (CIDR: 10.0.0.0/8,
        /// 127.0.0.1/32); repeat it, or separate with commas. Without it, a webhook's
        /// host must resolve to a public address.
        #[arg(
            long = "webhook-allow-network",
            value_name = "CIDR",
            env = "WHARF_WEBHOOK_ALLOW_NETWORKS",
            value_delimiter = ','
        )]
        webhook_allow_network: Vec<wharf_api::webhooks::Network>,
    },
    /// Run Wharf with its embedded defaults and deploy an app's directory to it (by
    /// default the example app), then serve until Ctrl-C.
    Up {
        #[command(flatten)]
        up: up::Options,
        /// Address to listen on.
        #[arg(long, env = "WHARF_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Work with plugins (Wasm components) locally, without a server.
    #[command(subcommand)]
    Plugin(plugin::Command),
    /// Administer the data directory.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Save the server's URL and your API token for the other commands (in a file only
    /// you can read).
    Login(client::Login),
    #[command(flatten)]
    Remote(client::Command),
}

/// The commands that run here, in the async runtime.
enum Local {
    Serve(serve::Settings),
    Up(serve::Settings, up::Options),
    Plugin(plugin::Command),
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Write a consistent copy of the database to FILE (safe while the server runs).
    Backup {
        /// Where to write the copy; it must not exist.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WHARF_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // The client commands block on the network; they need no async runtime.
    let command = match cli.command {
        Command::Login(args) => return report(client::login(args).map(|()| ExitCode::SUCCESS)),
        Command::Remote(command) => {
            return report(
                client::Client::connect(&cli.connection)
                    .and_then(|c| client::run(command, &c))
                    .map(|()| ExitCode::SUCCESS),
            );
        }
        Command::Serve {
            listen,
            bootstrap_token_file,
            config,
            webhook_allow_network,
        } => {
            let mut settings = match serve::Settings::resolve(
                config.as_deref(),
                listen,
                cli.data_dir.clone(),
                bootstrap_token_file,
            ) {
                Ok(s) => s,
                Err(e) => return report(Err(e)),
            };
            settings.allow_webhook_networks(webhook_allow_network);
            Local::Serve(settings)
        }
        Command::Up { up, listen } => {
            match serve::Settings::resolve(None, Some(listen), cli.data_dir.clone(), None) {
                Ok(s) => Local::Up(s, up),
                Err(e) => return report(Err(e)),
            }
        }
        Command::Plugin(command) => Local::Plugin(command),
        Command::Admin(command) => Local::Admin(command),
    };
    let data_dir = cli.data_dir.unwrap_or_else(default_data_dir);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Local::Serve(settings) => serve::run(settings).await.map(|()| ExitCode::SUCCESS),
            Local::Up(settings, up) => up::run(settings, up).await.map(|()| ExitCode::SUCCESS),
            Local::Plugin(command) => plugin::run(command, &data_dir).await,
            Local::Admin(AdminCommand::Backup { file }) => {
                backup(&data_dir, &file).await.map(|()| ExitCode::SUCCESS)
            }
        }
    });
    report(result)
}

fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Copies the database with SQLite's online backup, through a connection of its own, so
/// a running server is not disturbed.
async fn backup(data_dir: &std::path::Path, file: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let db = data_dir.join("wharf.db");
    if !db.exists() {
        anyhow::bail!(
            "there is no database at {}: is --data-dir right?",
            db.display()
        );
    }
    if file.exists() {
        anyhow::bail!("{} exists already: choose a new file", file.display());
    }
    let store = wharf_store::Store::open(&db)
        .await
        .with_context(|| format!("failed to open {}", db.display()))?;
    store
        .backup(file)
        .await
        .with_context(|| format!("failed to write the backup to {}", file.display()))?;
    store.close().await;
    eprintln!("backed up {} to {}", db.display(), file.display());
    Ok(())
}

/// `$XDG_DATA_HOME/wharf`, else `~/.local/share/wharf`, else `./.wharf`.
pub(crate) fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("wharf");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/wharf"),
        None => PathBuf::from(".wharf"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
