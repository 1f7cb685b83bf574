//! `wharf up DIR`: Wharf with its embedded defaults (SQLite in the data directory, the
//! bundled plugins, the local process target) and an app deployed, in one command.
//!
//! It starts the server, applies `DIR/platform.yaml` when there is one (what ops would
//! set up: driver installations, resource types and definitions), creates the app (named
//! after the directory) and its `dev` environment of type `development`, deploys the
//! directory's Score files (`score.yaml` and `*.score.yaml`), follows the deployment and
//! prints where each workload answers. Then it serves until Ctrl-C, which stops the
//! workloads too. Run again, it deploys again: what did not change keeps running.

use crate::client::output::Output;
use crate::client::transport::{Client, Refused, V1, q};
use anyhow::Context;
use serde_json::json;
use std::path::{Path, PathBuf};

/// `wharf up`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The app's directory: its Score files, and optionally platform.yaml.
    #[arg(default_value = "examples/hello")]
    pub dir: PathBuf,
    /// The app's id (the directory's name when absent).
    #[arg(long)]
    pub app: Option<String>,
    /// The environment to deploy to (created, of type development, when missing).
    #[arg(long, default_value = "dev")]
    pub env: String,
}

/// The Score files of a directory: `score.yaml`, then `*.score.yaml`, by name.
fn score_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("failed to read the directory {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == "score.yaml" || n.ends_with(".score.yaml"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!(
            "{} has no Score file (score.yaml or NAME.score.yaml)",
            dir.display()
        );
    }
    Ok(files)
}

pub async fn run(settings: crate::serve::Settings, up: Options) -> anyhow::Result<()> {
    let files = score_files(&up.dir)?;
    let app = match &up.app {
        Some(a) => a.clone(),
        None => up
            .dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .context("name the app with --app")?,
    };
    let stopping = crate::serve::shutdown();
    let prepared = crate::serve::prepare(settings).await?;
    let address = prepared.address;
    let token = session_token(&prepared.store).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve::serve(prepared, async move {
        let _ = stopped.await;
    }));
    let server_url = format!("http://{address}");
    eprintln!("Wharf is serving on {server_url}");
    let (url, session) = (server_url.clone(), token.clone());
    let (dir, env) = (up.dir.clone(), up.env.clone());
    let deployed = tokio::task::spawn_blocking(move || {
        let c = Client::new(url, Some(session), Output::Table);
        deploy(&c, &dir, &app, &env, &files)
    })
    .await
    .context("the deploying thread failed")?;
    match deployed {
        Ok(()) => {}
        Err(e) => eprintln!(
            "error: {e:#}\nWharf keeps serving, so that you can look: `wharf status` and \
             `wharf logs` (log in as below)."
        ),
    }
    eprintln!(
        "\nOpen the web UI at {server_url}/ui/ and sign in with the token {token}\n\
         Use the CLI with: wharf login --server {server_url} --token {token}\n\
         Stop with Ctrl-C (the workloads stop too).",
    );
    stopping.await;
    let _ = stop.send(());
    server.await.context("the server task failed")?
}

/// A token for this session: a new API token of the bootstrap admin, valid for a day
/// (`up` owns the data directory, so it may mint one).
async fn session_token(store: &wharf_store::Store) -> anyhow::Result<String> {
    let token = wharf_api::auth::new_token();
    let (id, hash) = (token.id.clone(), token.hash.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    store
        .call(move |conn| {
            wharf_store::auth::create_token(
                conn,
                &id,
                wharf_api::auth::BOOTSTRAP_ADMIN,
                &hash,
                now,
                Some(now + 24 * 3600),
            )
        })
        .await
        .context("failed to create a session token")?;
    Ok(token.secret)
}

/// Creates `value` at `path` unless it exists.
fn ensure(c: &Client, path: &str, value: serde_json::Value) -> anyhow::Result<()> {
    match c.json("POST", path, Some(value)) {
        Ok(_) => Ok(()),
        Err(e) if e.downcast_ref::<Refused>().is_some_and(|r| r.status == 409) => Ok(()),
        Err(e) => Err(e),
    }
}

fn deploy(c: &Client, dir: &Path, app: &str, env: &str, files: &[PathBuf]) -> anyhow::Result<()> {
    let platform = dir.join("platform.yaml");
    if platform.exists() {
        crate::client::platform::apply_platform(c, &platform)?;
    }
    ensure(c, &format!("{V1}/apps"), json!({ "id": app }))?;
    ensure(
        c,
        &format!("{V1}/apps/{}/envs", q(app)),
        json!({ "id": env, "env_type": "development" }),
    )?;
    let workloads = crate::client::score::score_files(files)?;
    let d = c.json(
        "POST",
        &format!("{V1}/apps/{}/envs/{}/deployments", q(app), q(env)),
        Some(json!({ "workloads": workloads, "comment": "wharf up" })),
    )?;
    let n = d["id"]
        .as_i64()
        .context("the server's answer has no deployment id")?;
    crate::client::follow::follow(c, app, env, n)
}
