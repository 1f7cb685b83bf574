//! `wharf resource-types`: the kinds of resource workloads may ask for.

use super::transport::{Client, V1, q};
use clap::Subcommand;
use serde_json::json;

/// `wharf resource-types`.
#[derive(Debug, Subcommand)]
pub enum ResourceTypes {
    /// List them.
    List,
    /// Show one.
    Get { id: String },
    /// Create one.
    Create {
        id: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete one no definition uses.
    Delete { id: String },
}

pub(crate) fn run(c: &Client, cmd: ResourceTypes) -> anyhow::Result<()> {
    match cmd {
        ResourceTypes::List => c.print(
            &c.all(&format!("{V1}/resource-types"))?,
            &["id", "description"],
        ),
        ResourceTypes::Get { id } => c.print(
            &c.json("GET", &format!("{V1}/resource-types/{}", q(&id)), None)?,
            &[],
        ),
        ResourceTypes::Create { id, description } => c.print(
            &c.json(
                "POST",
                &format!("{V1}/resource-types"),
                Some(json!({ "id": id, "description": description })),
            )?,
            &[],
        ),
        ResourceTypes::Delete { id } => {
            c.json("DELETE", &format!("{V1}/resource-types/{}", q(&id)), None)?;
            c.done(format!("deleted resource type {id}"));
            Ok(())
        }
    }
}
