//! `wharf audit`: the audit log, filtered on the server.

use super::transport::{Client, V1, q};
use clap::Args;

/// `wharf audit`.
#[derive(Debug, Args)]
pub struct Audit {
    #[arg(long)]
    principal: Option<String>,
    /// An action, or a collection with a trailing dot (`apps.`).
    #[arg(long)]
    action: Option<String>,
    /// A target, or a prefix ending in `:` or `/`.
    #[arg(long)]
    target: Option<String>,
    /// Unix seconds.
    #[arg(long)]
    since: Option<i64>,
    #[arg(long)]
    until: Option<i64>,
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

pub(crate) fn run(c: &Client, a: Audit) -> anyhow::Result<()> {
    let mut path = format!("{V1}/audit?limit={}", a.limit);
    for (name, value) in [
        ("principal", &a.principal),
        ("action", &a.action),
        ("target", &a.target),
    ] {
        if let Some(v) = value {
            path.push_str(&format!("&{name}={}", q(v)));
        }
    }
    for (name, value) in [("since", a.since), ("until", a.until)] {
        if let Some(v) = value {
            path.push_str(&format!("&{name}={v}"));
        }
    }
    c.print(
        &c.json("GET", &path, None)?,
        &["seq", "at", "principal", "action", "target"],
    )
}
