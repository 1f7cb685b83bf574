//! `wharf plugins`: uploaded components with the capabilities they may be granted.

use super::transport::{Client, V1, q};
use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};

/// `wharf plugins`.
#[derive(Debug, Subcommand)]
pub enum Plugins {
    /// List the uploaded plugins.
    List,
    /// Show one: metadata, world, digest, requested capabilities.
    Get { id: String },
    /// Upload a component with its manifest.
    Upload {
        /// The component (.wasm).
        file: PathBuf,
        #[arg(long)]
        id: String,
        /// driver, policy or transformer.
        #[arg(long)]
        kind: String,
        /// Origins installations may be granted (drivers), repeatable.
        #[arg(long)]
        http: Vec<String>,
        /// Addresses (ip:port) installations may be granted (drivers), repeatable.
        #[arg(long)]
        socket: Vec<String>,
        #[arg(long)]
        memory_bytes: Option<u64>,
        #[arg(long)]
        cpu_ms: Option<u64>,
        #[arg(long)]
        wall_ms: Option<u64>,
    },
    /// Delete one no installation uses.
    Delete { id: String },
}

pub(crate) fn run(c: &Client, cmd: Plugins) -> anyhow::Result<()> {
    match cmd {
        Plugins::List => c.print(
            &c.all(&format!("{V1}/plugins"))?,
            &["id", "kind", "version", "bundled", "digest"],
        ),
        Plugins::Get { id } => c.print(
            &c.json("GET", &format!("{V1}/plugins/{}", q(&id)), None)?,
            &[],
        ),
        Plugins::Upload {
            file,
            id,
            kind,
            http,
            socket,
            memory_bytes,
            cpu_ms,
            wall_ms,
        } => upload(
            c,
            &file,
            &id,
            &kind,
            &http,
            &socket,
            [memory_bytes, cpu_ms, wall_ms],
        ),
        Plugins::Delete { id } => {
            c.json("DELETE", &format!("{V1}/plugins/{}", q(&id)), None)?;
            c.done(format!("deleted plugin {id}"));
            Ok(())
        }
    }
}

/// Sends the component as the body; its manifest goes in the query.
fn upload(
    c: &Client,
    file: &Path,
    id: &str,
    kind: &str,
    http: &[String],
    sockets: &[String],
    [memory, cpu, wall]: [Option<u64>; 3],
) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(file).with_context(|| format!("failed to read {}", file.display()))?;
    let mut path = format!("{V1}/plugins?id={}&kind={}", q(id), q(kind));
    if !http.is_empty() {
        path.push_str(&format!("&http={}", q(&http.join(","))));
    }
    if !sockets.is_empty() {
        path.push_str(&format!("&sockets={}", q(&sockets.join(","))));
    }
    for (name, value) in [("memory_bytes", memory), ("cpu_ms", cpu), ("wall_ms", wall)] {
        if let Some(v) = value {
            path.push_str(&format!("&{name}={v}"));
        }
    }
    let reply = c.send("POST", &path, Some("application/wasm"), bytes, &[])?;
    c.print(&reply.body, &[])
}
