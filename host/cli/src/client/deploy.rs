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
    /// An image for a container: CONTAINER=REF or WORKLOAD/CONTAINER=REF runs REF instead
    /// of its Score image; `*=REF` fills every container whose image is `.`.
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

/// `wharf promote`.
#[derive(Debug, Args)]
pub struct Promote {
    /// The app.
    app: String,
    /// The environment whose set and images to deploy.
    #[arg(long)]
    from: String,
    /// The environment to deploy them to.
    #[arg(long)]
    to: String,
    /// Promote this deployment of the source (by default, what it runs now).
    #[arg(long)]
    deployment: Option<i64>,
    /// Show what would change (the set's changes, images, resources) and deploy nothing.
    #[arg(long)]
    plan: bool,
    /// Why.
    #[arg(long, default_value = "")]
    comment: String,
    /// Show the deployment's progress until it is over; fail when it fails.
    #[arg(long)]
    follow: bool,
}

pub(crate) fn promote(c: &Client, args: Promote) -> anyhow::Result<()> {
    let mut body = json!({ "promote_from": args.from, "comment": args.comment });
    if let Some(n) = args.deployment {
        body["rollback_to"] = json!(n);
    }
    if !args.plan {
        return queued(c, &args.app, &args.to, body, args.follow);
    }
    let path = format!(
        "{}/plan",
        deployments_path(&args.app, &args.to).trim_end_matches("/deployments")
    );
    let plan = c.json("POST", &path, Some(body))?;
    if c.output() != Output::Table {
        return c.print(&plan, &[]);
    }
    print!("{}", plan_text(&plan, &args.app, &args.to));
    Ok(())
}

/// A plan for a person: the source, the set's changes, the images, the resources.
fn plan_text(plan: &Value, app: &str, env: &str) -> String {
    let mut out = format!(
        "Promoting to {app}/{env}: {}\nSet: {} -> {}\n",
        plan["source"].as_str().unwrap_or_default(),
        plan["current_set"].as_str().map_or("(none)", short),
        short(plan["set"].as_str().unwrap_or_default()),
    );
    let diff = plan["set_diff"].as_array().cloned().unwrap_or_default();
    if diff.is_empty() {
        out.push_str("  the set is the same\n");
    }
    for op in &diff {
        out.push_str(&format!(
            "  {} {}\n",
            op["op"].as_str().unwrap_or_default(),
            op["path"].as_str().unwrap_or_default()
        ));
    }
    let images = plan["images"].as_array().cloned().unwrap_or_default();
    out.push_str(if images.is_empty() {
        "Images: unchanged\n"
    } else {
        "Images:\n"
    });
    for i in &images {
        out.push_str(&format!(
            "  {}: {} -> {}\n",
            i["container"].as_str().unwrap_or_default(),
            i["from"].as_str().unwrap_or("(none)"),
            i["to"].as_str().unwrap_or("(none)")
        ));
    }
    out.push_str("Resources:\n");
    for (key, word) in [("create", "create"), ("keep", "keep"), ("remove", "remove")] {
        for r in plan["resources"][key].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  {word} {} (definition {})\n",
                r["uid"].as_str().unwrap_or_default(),
                r["definition"].as_str().unwrap_or_default()
            ));
        }
    }
    for u in plan["resources"]["unresolved"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.push_str(&format!(
            "  cannot resolve: {}\n",
            u.as_str().unwrap_or_default()
        ));
    }
    out
}
