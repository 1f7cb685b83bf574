//! `wharf apps`: applications, and their deletion with every environment.

use super::follow::follow;
use super::transport::{Client, Refused, V1, q};
use clap::Subcommand;
use serde_json::json;

/// `wharf apps`.
#[derive(Debug, Subcommand)]
pub enum Apps {
    /// List the apps you may see.
    List,
    /// Show one.
    Get { id: String },
    /// Create one (you become its owner).
    Create {
        id: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Delete one with its environments: each is deleted as `wharf envs delete` does it
    /// (workloads stopped, resources deprovisioned); the app goes with the last.
    Delete {
        id: String,
        /// Return at once instead of following the deletions to their end.
        #[arg(long)]
        no_wait: bool,
    },
}

pub(crate) fn run(c: &Client, cmd: Apps) -> anyhow::Result<()> {
    match cmd {
        Apps::List => c.print(
            &c.all(&format!("{V1}/apps"))?,
            &["id", "name", "created_by"],
        ),
        Apps::Get { id } => c.print(&c.json("GET", &format!("{V1}/apps/{}", q(&id)), None)?, &[]),
        Apps::Create { id, name } => {
            let mut body = json!({ "id": id });
            if let Some(n) = name {
                body["name"] = json!(n);
            }
            c.print(&c.json("POST", &format!("{V1}/apps"), Some(body))?, &[])
        }
        Apps::Delete { id, no_wait } => delete(c, &id, no_wait),
    }
}

/// Deletes an app: the server queues a deletion per environment, which are followed
/// unless `no_wait`.
fn delete(c: &Client, id: &str, no_wait: bool) -> anyhow::Result<()> {
    let answer = c.json("DELETE", &format!("{V1}/apps/{}", q(id)), None)?;
    let deletions = answer["deletions"].as_array().cloned().unwrap_or_default();
    if deletions.is_empty() {
        c.done(format!("deleted app {id}"));
        return Ok(());
    }
    if no_wait {
        let envs: Vec<&str> = deletions.iter().filter_map(|d| d["env"].as_str()).collect();
        c.done(format!(
            "deleting app {id}: its environments {} are being deleted, and the app \
             goes with the last",
            envs.join(", ")
        ));
        return Ok(());
    }
    for d in &deletions {
        let (env, n) = (
            d["env"].as_str().unwrap_or_default(),
            d["id"].as_i64().unwrap_or(0),
        );
        match follow(c, id, env, n) {
            // Over, its rows gone with the environment, before it is followed.
            Err(e) if e.downcast_ref::<Refused>().is_some_and(|r| r.status == 404) => {}
            other => other?,
        }
    }
    c.done(format!("deleted app {id}"));
    Ok(())
}
