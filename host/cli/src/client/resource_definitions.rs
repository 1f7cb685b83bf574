//! `wharf resource-definitions`: which driver provisions a resource, for which
//! workloads; versioned, and matched on the server.

use super::transport::{Client, V1, json_arg, q};
use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

/// `wharf resource-definitions`.
#[derive(Debug, Subcommand)]
pub enum Definitions {
    /// List them.
    List,
    /// Show one.
    Get { id: String },
    /// Create one from JSON (or @FILE).
    Create { definition: String },
    /// Replace one with a new version from JSON (or @FILE); refused if it changed since
    /// `--if-version`.
    Update {
        definition: String,
        #[arg(long)]
        if_version: Option<i64>,
    },
    /// Every version of one.
    Versions { id: String },
    /// Delete one.
    Delete { id: String },
    /// Which definition a resource would use, and why.
    Match {
        #[arg(long = "type")]
        res_type: String,
        #[arg(long)]
        app: String,
        #[arg(long)]
        env: String,
        #[arg(long)]
        class: Option<String>,
        #[arg(long)]
        res_id: Option<String>,
        #[arg(long)]
        env_type: Option<String>,
    },
}

pub(crate) fn run(c: &Client, cmd: Definitions) -> anyhow::Result<()> {
    match cmd {
        Definitions::List => c.print(
            &c.all(&format!("{V1}/resource-definitions"))?,
            &["id", "type", "driver", "version", "criteria"],
        ),
        Definitions::Get { id } => c.print(&c.json("GET", &one(&id), None)?, &[]),
        Definitions::Create { definition } => {
            let body = json_arg(&definition).context("definition")?;
            c.print(
                &c.json("POST", &format!("{V1}/resource-definitions"), Some(body))?,
                &[],
            )
        }
        Definitions::Update {
            definition,
            if_version,
        } => update(c, &definition, if_version),
        Definitions::Versions { id } => c.print(
            &c.json("GET", &format!("{}/versions", one(&id)), None)?,
            &["version", "driver", "created_at", "created_by"],
        ),
        Definitions::Delete { id } => {
            c.json("DELETE", &one(&id), None)?;
            c.done(format!("deleted resource definition {id}"));
            Ok(())
        }
        Definitions::Match {
            res_type,
            app,
            env,
            class,
            res_id,
            env_type,
        } => {
            let mut body = json!({ "type": res_type, "app": app, "env": env });
            for (k, v) in [("class", class), ("res_id", res_id), ("env_type", env_type)] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            c.print(
                &c.json(
                    "POST",
                    &format!("{V1}/resource-definitions/match"),
                    Some(body),
                )?,
                &[],
            )
        }
    }
}

fn one(id: &str) -> String {
    format!("{V1}/resource-definitions/{}", q(id))
}

/// Puts a new version of the definition named by its `id` (`if-match` the version
/// given, when one is).
fn update(c: &Client, definition: &str, if_version: Option<i64>) -> anyhow::Result<()> {
    let body = json_arg(definition).context("definition")?;
    let id = body["id"]
        .as_str()
        .context("the definition has no \"id\"")?
        .to_string();
    let tag = if_version.map(|v| format!("\"{v}\""));
    let headers: Vec<(&str, &str)> = tag.iter().map(|t| ("if-match", t.as_str())).collect();
    let reply = c.send(
        "PUT",
        &one(&id),
        Some("application/json"),
        body.to_string().into_bytes(),
        &headers,
    )?;
    c.print(&reply.body, &[])
}
