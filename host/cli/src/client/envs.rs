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
    /// Create one of an environment type, empty or as a clone of another; with `--ttl`, a
    /// preview, deleted when its time runs out (each deployment renews it).
    Create {
        app: String,
        env: String,
        /// Its environment type (with `--from`, the source's when absent).
        #[arg(long = "type", required_unless_present = "from")]
        env_type: Option<String>,
        /// Clone this environment of the app: deploy its current set to the new one.
        #[arg(long)]
        from: Option<String>,
        /// Its time to live: `48h`, `30m`, `7d`.
        #[arg(long)]
        ttl: Option<String>,
    },
    /// Stop its workloads and keep its resources; it takes no deployment until resumed.
    Pause { app: String, env: String },
    /// Start its workloads again (a deployment of the set it ran when paused).
    Resume {
        app: String,
        env: String,
        /// Return at once instead of following the deployment to its end.
        #[arg(long)]
        no_wait: bool,
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
        Envs::List { app } => {
            let mut list = c.all(&format!("{V1}/apps/{}/envs", q(&app)))?;
            for e in list.as_array_mut().into_iter().flatten() {
                e["expires"] = match e["expires_in"].as_i64() {
                    Some(left) => json!(format!(
                        "in {} (ttl {})",
                        wharf_core::duration::format_duration(left),
                        e["ttl"].as_str().unwrap_or_default()
                    )),
                    None => json!("never"),
                };
            }
            c.print(&list, &["id", "env_type", "state", "expires", "created_by"])
        }
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
            ttl,
        } => {
            let mut body = json!({ "id": env });
            for (key, value) in [("env_type", &env_type), ("from", &from), ("ttl", &ttl)] {
                if let Some(v) = value {
                    body[key] = json!(v);
                }
            }
            let created = c.json("POST", &format!("{V1}/apps/{}/envs", q(&app)), Some(body))?;
            c.print(&created, &[])?;
            match created["deployment"].as_i64() {
                Some(n) => follow(c, &app, &env, n),
                None => Ok(()),
            }
        }
        Envs::Delete { app, env, no_wait } => delete(c, &app, &env, no_wait),
        Envs::Pause { app, env } => {
            let path = format!("{V1}/apps/{}/envs/{}/pause", q(&app), q(&env));
            c.json("POST", &path, None)?;
            c.done(format!(
                "paused environment {app}/{env}: its workloads are stopped, its resources \
                 kept; `wharf envs resume {app} {env}` starts them again"
            ));
            Ok(())
        }
        Envs::Resume { app, env, no_wait } => {
            let path = format!("{V1}/apps/{}/envs/{}/resume", q(&app), q(&env));
            let answer = c.json("POST", &path, None)?;
            match answer["id"].as_i64() {
                Some(n) if !no_wait => follow(c, &app, &env, n),
                Some(n) => {
                    c.done(format!(
                        "resuming environment {app}/{env} (deployment {n}); follow it with \
                         `wharf deployments follow {app} {env} {n}`"
                    ));
                    Ok(())
                }
                None => {
                    c.done(format!(
                        "environment {app}/{env} runs (nothing was paused to start)"
                    ));
                    Ok(())
                }
            }
        }
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
