//! `wharf installations`: plugin installations (configuration, grants, the policy
//! chain's order). A change is a `PATCH` guarded by the revision it was read at.

use super::transport::{Client, V1, json_arg, q};
use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

/// `wharf installations`.
#[derive(Debug, Subcommand)]
pub enum Installations {
    /// List them.
    List,
    /// Show one.
    Get { id: String },
    /// Install a plugin.
    Create {
        id: String,
        #[arg(long)]
        plugin: String,
        /// Configuration as JSON or @FILE.
        #[arg(long)]
        config: Option<String>,
        /// Grants as JSON or @FILE (`{"http": [...], "sockets": [...]}`).
        #[arg(long)]
        grants: Option<String>,
        /// Install it disabled.
        #[arg(long)]
        disabled: bool,
        #[arg(long)]
        position: Option<i64>,
    },
    /// Enable one.
    Enable { id: String },
    /// Disable one.
    Disable { id: String },
    /// Change its configuration (JSON or @FILE).
    Configure { id: String, config: String },
    /// Uninstall one.
    Delete { id: String },
}

pub(crate) fn run(c: &Client, cmd: Installations) -> anyhow::Result<()> {
    match cmd {
        Installations::List => c.print(
            &c.all(&format!("{V1}/plugin-installations"))?,
            &["id", "plugin", "kind", "enabled", "position", "revision"],
        ),
        Installations::Get { id } => c.print(&c.json("GET", &one(&id), None)?, &[]),
        Installations::Create {
            id,
            plugin,
            config,
            grants,
            disabled,
            position,
        } => {
            let mut body = json!({ "id": id, "plugin": plugin, "enabled": !disabled });
            if let Some(config) = config {
                body["config"] = json_arg(&config).context("--config")?;
            }
            if let Some(grants) = grants {
                body["grants"] = json_arg(&grants).context("--grants")?;
            }
            if let Some(p) = position {
                body["position"] = json!(p);
            }
            c.print(
                &c.json("POST", &format!("{V1}/plugin-installations"), Some(body))?,
                &[],
            )
        }
        Installations::Enable { id } => patch(c, &id, json!({ "enabled": true })),
        Installations::Disable { id } => patch(c, &id, json!({ "enabled": false })),
        Installations::Configure { id, config } => patch(
            c,
            &id,
            json!({ "config": json_arg(&config).context("config")? }),
        ),
        Installations::Delete { id } => {
            c.json("DELETE", &one(&id), None)?;
            c.done(format!("uninstalled {id}"));
            Ok(())
        }
    }
}

fn one(id: &str) -> String {
    format!("{V1}/plugin-installations/{}", q(id))
}

/// Applies `change` to the installation as it is now (`if-match` its revision).
fn patch(c: &Client, id: &str, change: Value) -> anyhow::Result<()> {
    let reply = c.send("GET", &one(id), None, Vec::new(), &[])?;
    let revision = reply.body["revision"].as_i64().unwrap_or_default();
    let tag = format!("\"{revision}\"");
    let changed = c.send(
        "PATCH",
        &one(id),
        Some("application/json"),
        change.to_string().into_bytes(),
        &[("if-match", &tag)],
    )?;
    c.print(&changed.body, &[])
}
