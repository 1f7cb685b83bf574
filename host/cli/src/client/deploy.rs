//! `wharf deploy` and `wharf rollback`: a developer's commands, which queue a deployment
//! and, with `--follow`, show it to its end.

use super::follow::{deployments_path, follow, short};
use super::output::Output;
use super::score::score_files;
use super::transport::{Client, json_arg};
use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `wharf deploy`.
#[derive(Debug, Args)]
pub struct Deploy {
    /// The app.
    #[arg(long)]
    app: String,
    /// The environment.
    #[arg(long)]
    env: String,
    /// A Score file (YAML or JSON); repeat for several workloads.
    #[arg(short = 'f', long = "file", required_unless_present_any = ["set", "delta"])]
    files: Vec<PathBuf>,
    /// Deploy a stored set instead of files.
    #[arg(long, conflicts_with_all = ["files", "delta"])]
    set: Option<String>,
    /// Deploy the environment's current set changed by this JSON Patch (inline or @FILE).
    #[arg(long, conflicts_with = "files")]
    delta: Option<String>,
    /// The image of a container whose Score image is `.`: CONTAINER=REF (`*=REF` for all).
    #[arg(long = "image", value_name = "CONTAINER=REF")]
    images: Vec<String>,
    /// Why (kept with the deployment).
    #[arg(long, default_value = "")]
    comment: String,
    /// Show the deployment's progress until it is over; fail when it fails.
    #[arg(long)]
    follow: bool,
}

/// `wharf rollback`.
#[derive(Debug, Args)]
pub struct Rollback {
    /// The app.
    #[arg(long)]
    app: String,
    /// The environment.
    #[arg(long)]
    env: String,
    /// The deployment whose set (and images) to deploy again.
    #[arg(long = "to", value_name = "DEPLOYMENT")]
    to: i64,
    /// Why.
    #[arg(long, default_value = "")]
    comment: String,
    /// Show the deployment's progress until it is over; fail when it fails.
    #[arg(long)]
    follow: bool,
}

/// The `--image` flags as the API takes them: container name to image reference.
fn images(given: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    given
        .iter()
        .map(|i| match i.split_once('=') {
            Some((c, r)) if !c.is_empty() && !r.is_empty() => Ok((c.to_string(), r.to_string())),
            _ => bail!("--image {i:?}: write CONTAINER=REF, like --image web=ghcr.io/acme/web:1.2"),
        })
        .collect()
}

pub(crate) fn deploy(c: &Client, args: Deploy) -> anyhow::Result<()> {
    let mut body = json!({ "images": images(&args.images)?, "comment": args.comment });
    if let Some(set) = &args.set {
        body["set"] = json!(set);
    } else if let Some(delta) = &args.delta {
        body["delta"] = json_arg(delta).context("--delta")?;
    } else {
        body["workloads"] = Value::Array(score_files(&args.files)?);
    }
    queued(c, &args.app, &args.env, body, args.follow)
}

pub(crate) fn rollback(c: &Client, args: Rollback) -> anyhow::Result<()> {
    let body = json!({ "rollback_to": args.to, "comment": args.comment });
    queued(c, &args.app, &args.env, body, args.follow)
}

/// Queues a deployment; follows it, or says how to.
fn queued(c: &Client, app: &str, env: &str, body: Value, follow_it: bool) -> anyhow::Result<()> {
    let d = c.json("POST", &deployments_path(app, env), Some(body))?;
    let n = d["id"]
        .as_i64()
        .context("the server's answer has no deployment id")?;
    if follow_it {
        return follow(c, app, env, n);
    }
    match c.output() {
        Output::Table => println!(
            "Deployment {n} of {app}/{env} is {} (set {}). Follow it with \
             `wharf deployments follow {app} {env} {n}`.",
            d["status"].as_str().unwrap_or("queued"),
            short(d["set"].as_str().unwrap_or_default()),
        ),
        _ => c.print(&d, &[])?,
    }
    Ok(())
}
