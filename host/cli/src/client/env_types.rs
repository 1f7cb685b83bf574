//! `wharf env-types`: environment types, which ops define (target, transformers, the
//! resources every environment gets).

use super::transport::{Client, V1, json_arg, q};
use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

/// `wharf env-types`.
#[derive(Debug, Subcommand)]
pub enum EnvTypes {
    /// List them.
    List,
    /// Show one.
    Get { id: String },
    /// Create one.
    Create {
        id: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The target as JSON (or @FILE); the local process target when absent.
        #[arg(long)]
        target: Option<String>,
        /// A transformer installation every deployment goes through; repeat, in order.
        #[arg(long = "transformer")]
        transformers: Vec<String>,
        /// Resources provisioned in every environment, as a JSON list (or @FILE):
        /// `[{"type": "namespace", "id": "env"}]`.
        #[arg(long)]
        resources: Option<String>,
        /// The longest time to live a preview environment of the type may have (`7d`).
        #[arg(long = "max-preview-ttl")]
        max_preview_ttl: Option<String>,
        /// How many preview environments of the type one app may have at once.
        #[arg(long = "max-previews")]
        max_previews: Option<u32>,
    },
    /// Delete one no environment uses.
    Delete { id: String },
}

pub(crate) fn run(c: &Client, cmd: EnvTypes) -> anyhow::Result<()> {
    match cmd {
        EnvTypes::List => c.print(
            &c.all(&format!("{V1}/env-types"))?,
            &["id", "target", "description"],
        ),
        EnvTypes::Get { id } => c.print(
            &c.json("GET", &format!("{V1}/env-types/{}", q(&id)), None)?,
            &[],
        ),
        EnvTypes::Create {
            id,
            description,
            target,
            transformers,
            resources,
            max_preview_ttl,
            max_previews,
        } => {
            let mut body =
                json!({ "id": id, "description": description, "transformers": transformers });
            if let Some(t) = target {
                body["target"] = json_arg(&t).context("--target")?;
            }
            if let Some(r) = resources {
                body["resources"] = json_arg(&r).context("--resources")?;
            }
            if let Some(t) = max_preview_ttl {
                body["previews"]["max_ttl"] = json!(t);
            }
            if let Some(n) = max_previews {
                body["previews"]["max_per_app"] = json!(n);
            }
            c.print(
                &c.json("POST", &format!("{V1}/env-types"), Some(body))?,
                &[],
            )
        }
        EnvTypes::Delete { id } => {
            c.json("DELETE", &format!("{V1}/env-types/{}", q(&id)), None)?;
            c.done(format!("deleted environment type {id}"));
            Ok(())
        }
    }
}
