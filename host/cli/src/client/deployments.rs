//! `wharf deployments`: an environment's deployments, listed, shown with their steps,
//! or followed.

use super::follow::{deployments_path, follow};
use super::output::{Output, table};
use super::transport::Client;
use clap::Subcommand;
use serde_json::{Value, json};

/// `wharf deployments`.
#[derive(Debug, Subcommand)]
pub enum Deployments {
    /// List an environment's deployments, newest first.
    List { app: String, env: String },
    /// Show one with its steps.
    Get { app: String, env: String, id: i64 },
    /// Follow one until it is over.
    Follow { app: String, env: String, id: i64 },
}

pub(crate) fn run(c: &Client, cmd: Deployments) -> anyhow::Result<()> {
    match cmd {
        Deployments::List { app, env } => c.print(
            &c.all(&deployments_path(&app, &env))?,
            &["id", "kind", "status", "set", "created_by", "comment"],
        ),
        Deployments::Get { app, env, id } => {
            let d = c.json(
                "GET",
                &format!("{}/{id}", deployments_path(&app, &env)),
                None,
            )?;
            if c.output() != Output::Table {
                return c.print(&d, &[]);
            }
            let mut head = d.clone();
            if let Some(o) = head.as_object_mut() {
                o.remove("steps");
            }
            c.print(&head, &[])?;
            let steps: Vec<Value> = d["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    json!({
                        "step": s["name"],
                        "status": s["status"],
                        "ms": s["duration_ms"],
                        "error": s["error"]["message"],
                    })
                })
                .collect();
            println!();
            print!(
                "{}",
                table(&Value::Array(steps), &["step", "status", "ms", "error"])
            );
            Ok(())
        }
        Deployments::Follow { app, env, id } => follow(c, &app, &env, id),
    }
}
