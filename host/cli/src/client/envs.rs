//! `wharf envs`: an app's environments; a clone and a deletion are deployments, followed
//! like any other.

use super::follow::follow;
use super::transport::{Client, Refused, V1, q};
use clap::Subcommand;
use serde_json::json;

/// `wharf envs`.
#[derive(Debug, Subcommand)]
pub enum Envs {
    /// List an app's environments.
    List { app: String },
    /// Show one.
    Get { app: String, env: String },
    /// Create one of an environment type, empty or as a clone of another.
    Create {
        app: String,
        env: String,
        /// Its environment type.
        #[arg(long = "type")]
        env_type: String,
        /// Clone this environment of the app: deploy its current set to the new one.
        #[arg(long)]
        from: Option<String>,
    },
    /// Delete one: its workloads are stopped, its resources deprovisioned.
    Delete {
        app: String,
        env: String,
        /// Return at once instead of following the deletion to its end.
        #[arg(long)]
        no_wait: bool,
    },
}

pub(crate) fn run(c: &Client, cmd: Envs) -> anyhow::Result<()> {
    match cmd {
        Envs::List { app } => c.print(
            &c.all(&format!("{V1}/apps/{}/envs", q(&app)))?,
            &["id", "env_type", "created_by"],
        ),
        Envs::Get { app, env } => c.print(
            &c.json(
                "GET",
                &format!("{V1}/apps/{}/envs/{}", q(&app), q(&env)),
                None,
            )?,
            &[],
        ),
        Envs::Create {
            app,
            env,
            env_type,
            from,
        } => {
            let mut body = json!({ "id": env, "env_type": env_type });
            if let Some(from) = &from {
                body["from"] = json!(from);
            }
            let created = c.json("POST", &format!("{V1}/apps/{}/envs", q(&app)), Some(body))?;
            c.print(&created, &[])?;
            match created["deployment"].as_i64() {
                Some(n) => follow(c, &app, &env, n),
                None => Ok(()),
            }
        }
        Envs::Delete { app, env, no_wait } => delete(c, &app, &env, no_wait),
    }
}

/// Deletes an environment: the server queues its deletion, which is followed unless
/// `no_wait`.
fn delete(c: &Client, app: &str, env: &str, no_wait: bool) -> anyhow::Result<()> {
    let answer = c.json(
        "DELETE",
        &format!("{V1}/apps/{}/envs/{}", q(app), q(env)),
        None,
    )?;
    match answer["id"].as_i64() {
        Some(n) if !no_wait => match follow(c, app, env, n) {
            // A quick deletion can be over, its rows gone with the
            // environment, before the client asks to follow it.
            Err(e) if e.downcast_ref::<Refused>().is_some_and(|r| r.status == 404) => {
                c.done(format!("deleted environment {app}/{env}"));
                Ok(())
            }
            other => other,
        },
        Some(n) => {
            c.done(format!(
                "deleting environment {app}/{env} (deployment {n}); follow it with \
                 `wharf deployments follow {app} {env} {n}`"
            ));
            Ok(())
        }
        None => {
            c.done(format!("deleted environment {app}/{env}"));
            Ok(())
        }
    }
}
