//! `wharf logs`: an environment's workload logs, streamed as the server sends them.

use super::transport::{Client, V1, q};
use anyhow::Context;
use clap::Args;
use std::io::BufRead;

/// `wharf logs`.
#[derive(Debug, Args)]
pub struct Logs {
    app: String,
    env: String,
    /// Only this workload.
    workload: Option<String>,
    /// Keep printing lines as they are written.
    #[arg(long, short)]
    follow: bool,
    /// Lines to start with, per container.
    #[arg(long, default_value_t = 100)]
    tail: usize,
}

pub(crate) fn run(c: &Client, args: Logs) -> anyhow::Result<()> {
    let mut path = format!(
        "{V1}/apps/{}/envs/{}/logs?tail={}&follow={}",
        q(&args.app),
        q(&args.env),
        args.tail,
        args.follow
    );
    if let Some(w) = &args.workload {
        path.push_str(&format!("&workload={}", q(w)));
    }
    let reader = c.stream(&path)?;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for line in reader.lines() {
        let line = line.context("the log stream broke off")?;
        if writeln!(out, "{line}").is_err() {
            break;
        }
        let _ = out.flush();
    }
    Ok(())
}
