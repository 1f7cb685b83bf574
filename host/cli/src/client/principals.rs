//! `wharf users` and `wharf service-accounts`: the principals, one subcommand set for
//! both collections.

use super::transport::{Client, V1, q};
use clap::Subcommand;
use serde_json::json;

/// `wharf users` and `wharf service-accounts`.
#[derive(Debug, Subcommand)]
pub enum Principals {
    /// List them.
    List,
    /// Show one (users only).
    Get { id: String },
    /// Create one.
    Create { id: String },
}

/// Runs `cmd` on `collection` (`users` or `service-accounts`).
pub(crate) fn run(c: &Client, cmd: Principals, collection: &str) -> anyhow::Result<()> {
    match cmd {
        Principals::List => c.print(
            &c.all(&format!("{V1}/{collection}"))?,
            &["id", "created_at"],
        ),
        Principals::Get { id } => c.print(
            &c.json("GET", &format!("{V1}/{collection}/{}", q(&id)), None)?,
            &[],
        ),
        Principals::Create { id } => c.print(
            &c.json(
                "POST",
                &format!("{V1}/{collection}"),
                Some(json!({ "id": id })),
            )?,
            &[],
        ),
    }
}
