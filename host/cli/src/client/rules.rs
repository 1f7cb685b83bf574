//! `wharf rules`: an environment's automation rules, which deploy the artefacts CI pushes.

use super::transport::{Client, V1, q};
use clap::Subcommand;
use serde_json::{Value, json};

/// `wharf rules`.
#[derive(Debug, Subcommand)]
pub enum Rules {
    /// List an environment's rules.
    List { app: String, env: String },
    /// Show one.
    Get {
        app: String,
        env: String,
        rule: String,
    },
    /// Create one: when an artefact whose repository matches `--image` and whose git ref
    /// matches `--ref` is pushed, deploy it to the environment's current set (or, with
    /// `--preview`, to a preview environment made from this one). Its deployments have
    /// your rights.
    Create {
        app: String,
        env: String,
        rule: String,
        /// A glob over the image repository: `registry.example.com/shop-*`.
        #[arg(long)]
        image: String,
        /// A glob over the git ref: `refs/heads/main`, `refs/pull/*/head`.
        #[arg(long = "ref", default_value = "*")]
        git_ref: String,
        /// A container to update (repeat); by default those whose image names the
        /// artefact's repository.
        #[arg(long = "container")]
        containers: Vec<String>,
        /// A principal whose pushes trigger it (repeat); by default any principal with a
        /// role on the app.
        #[arg(long = "pusher")]
        pushers: Vec<String>,
        /// Create a preview environment of this name for each matching ref, `{n}`
        /// standing for what the ref's `*` matched: `pr-{n}`.
        #[arg(long, requires = "ttl")]
        preview: Option<String>,
        /// The preview's time to live: `48h`.
        #[arg(long)]
        ttl: Option<String>,
        /// The preview's environment type (this environment's by default).
        #[arg(long = "preview-type")]
        preview_type: Option<String>,
    },
    /// Pause a rule: pushes no longer make it deploy.
    Pause {
        app: String,
        env: String,
        rule: String,
    },
    /// Resume a paused rule (you become its owner).
    Resume {
        app: String,
        env: String,
        rule: String,
    },
    /// Delete a rule.
    Delete {
        app: String,
        env: String,
        rule: String,
    },
}

fn path(app: &str, env: &str) -> String {
    format!("{V1}/apps/{}/envs/{}/rules", q(app), q(env))
}

pub(crate) fn run(c: &Client, cmd: Rules) -> anyhow::Result<()> {
    let columns = ["id", "image", "ref", "preview", "paused", "owner"];
    match cmd {
        Rules::List { app, env } => {
            let mut list = c.all(&path(&app, &env))?;
            for r in list.as_array_mut().into_iter().flatten() {
                r["preview"] = match &r["preview"] {
                    Value::Null => json!("-"),
                    p => json!(format!(
                        "{} (ttl {})",
                        p["name"].as_str().unwrap_or_default(),
                        p["ttl"].as_str().unwrap_or_default()
                    )),
                };
            }
            c.print(&list, &columns)
        }
        Rules::Get { app, env, rule } => c.print(
            &c.json("GET", &format!("{}/{}", path(&app, &env), q(&rule)), None)?,
            &[],
        ),
        Rules::Create {
            app,
            env,
            rule,
            image,
            git_ref,
            containers,
            pushers,
            preview,
            ttl,
            preview_type,
        } => {
            let mut body = json!({ "id": rule, "image": image, "ref": git_ref,
                                   "containers": containers, "pushers": pushers });
            if let Some(name) = preview {
                body["preview"] = json!({ "name": name, "ttl": ttl.unwrap_or_default() });
                if let Some(t) = preview_type {
                    body["preview"]["env_type"] = json!(t);
                }
            }
            c.print(&c.json("POST", &path(&app, &env), Some(body))?, &[])
        }
        Rules::Pause { app, env, rule } => switch(c, &app, &env, &rule, true),
        Rules::Resume { app, env, rule } => switch(c, &app, &env, &rule, false),
        Rules::Delete { app, env, rule } => {
            c.json(
                "DELETE",
                &format!("{}/{}", path(&app, &env), q(&rule)),
                None,
            )?;
            c.done(format!("deleted rule {rule} of {app}/{env}"));
            Ok(())
        }
    }
}

/// Pauses or resumes a rule.
fn switch(c: &Client, app: &str, env: &str, rule: &str, paused: bool) -> anyhow::Result<()> {
    c.json(
        "PATCH",
        &format!("{}/{}", path(app, env), q(rule)),
        Some(json!({ "paused": paused })),
    )?;
    let what = if paused { "paused" } else { "resumed" };
    c.done(format!("{what} rule {rule} of {app}/{env}"));
    Ok(())
}
