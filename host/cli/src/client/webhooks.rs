//! `wharf webhooks`: where the platform posts its events, org-wide or for one app
//! (`--app`). A secret given is read from a file (or standard input), never from the
//! command line, where other users of the machine could see it.

use super::output::Output;
use super::transport::{Client, V1, q};
use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};

/// `wharf webhooks`.
#[derive(Debug, Subcommand)]
pub enum Webhooks {
    /// Create one; its signing secret is printed this once.
    Create {
        /// Where to post the events (https://...).
        #[arg(long)]
        url: String,
        /// The event types, comma-separated (deployment.failed,environment.created), or `*`
        /// for all.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        #[command(flatten)]
        at: Place,
        /// A file with the secret to sign with, 24 characters or more (`-`: standard
        /// input); else the server makes one.
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
    /// List the org-wide webhooks, or an app's.
    List {
        #[command(flatten)]
        at: Place,
    },
    /// Show one.
    Get {
        id: String,
        #[command(flatten)]
        at: Place,
    },
    /// Its deliveries, newest first: each event, its status, and why the last attempt
    /// failed.
    Deliveries {
        id: String,
        #[command(flatten)]
        at: Place,
        /// How many at most.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Enable one (after its deliveries failed, it is sent the events from now on).
    Enable {
        id: String,
        #[command(flatten)]
        at: Place,
    },
    /// Disable one; its pending deliveries are given up.
    Disable {
        id: String,
        #[command(flatten)]
        at: Place,
    },
    /// Delete one, with its deliveries.
    Delete {
        id: String,
        #[command(flatten)]
        at: Place,
    },
}

/// Whose webhooks: an app's, or the org's.
#[derive(Debug, Args)]
pub struct Place {
    /// The app whose webhooks these are; without it, the org-wide ones (sent every app's
    /// events).
    #[arg(long)]
    app: Option<String>,
}

impl Place {
    /// The collection's path.
    fn path(&self) -> String {
        match &self.app {
            Some(app) => format!("{V1}/apps/{}/webhooks", q(app)),
            None => format!("{V1}/webhooks"),
        }
    }

    /// Webhook `id`'s path.
    fn one(&self, id: &str) -> String {
        format!("{}/{}", self.path(), q(id))
    }
}

pub(crate) fn run(c: &Client, cmd: Webhooks) -> anyhow::Result<()> {
    match cmd {
        Webhooks::Create {
            url,
            events,
            at,
            secret_file,
        } => {
            let mut body = json!({ "url": url, "events": events });
            if let Some(file) = secret_file {
                body["secret"] = json!(read(&file)?.trim());
            }
            created(c, &c.json("POST", &at.path(), Some(body))?)
        }
        Webhooks::List { at } => c.print(
            &c.all(&at.path())?,
            &["id", "app", "url", "events", "state", "disabled_reason"],
        ),
        Webhooks::Get { id, at } => c.print(&c.json("GET", &at.one(&id), None)?, &[]),
        Webhooks::Deliveries { id, at, limit } => {
            let path = format!("{}/deliveries?limit={limit}", at.one(&id));
            deliveries(c, &c.json("GET", &path, None)?)
        }
        Webhooks::Enable { id, at } => set_active(c, &at, &id, true),
        Webhooks::Disable { id, at } => set_active(c, &at, &id, false),
        Webhooks::Delete { id, at } => {
            c.json("DELETE", &at.one(&id), None)?;
            c.done(format!("deleted webhook {id}"));
            Ok(())
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(text)
}

/// Prints a new webhook: its id and its secret, which no later answer shows.
fn created(c: &Client, hook: &Value) -> anyhow::Result<()> {
    const ONCE: &str = "the secret is shown this once: give it to the receiver now, to \
                        check each delivery's wharf-signature";
    if c.output() != Output::Table {
        c.print(hook, &[])?;
        eprintln!("{ONCE}");
        return Ok(());
    }
    let text = |key: &str| hook[key].as_str().unwrap_or_default().to_string();
    println!("created webhook {}", text("id"));
    println!("secret: {}", text("secret"));
    println!("{ONCE}");
    Ok(())
}

/// Prints deliveries: as a table, each with the status code and error of its last attempt.
fn deliveries(c: &Client, found: &Value) -> anyhow::Result<()> {
    if c.output() != Output::Table {
        return c.print(found, &[]);
    }
    let rows: Vec<Value> = found
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let last = match (d["last_status_code"].as_u64(), d["last_error"].as_str()) {
                (Some(code), Some(error)) => format!("{code}: {error}"),
                (Some(code), None) => code.to_string(),
                (None, Some(error)) => error.to_string(),
                (None, None) => "-".to_string(),
            };
            json!({ "id": d["id"], "event": d["event_type"], "env": d["env"],
                    "status": d["status"], "attempts": d["attempts"], "last": last })
        })
        .collect();
    c.print(
        &json!(rows),
        &["id", "event", "env", "status", "attempts", "last"],
    )
}

/// Enables or disables a webhook.
fn set_active(c: &Client, at: &Place, id: &str, active: bool) -> anyhow::Result<()> {
    let hook = c.json("PATCH", &at.one(id), Some(json!({ "active": active })))?;
    let state = hook["state"].as_str().unwrap_or("changed");
    c.done(format!("webhook {id} is {state}"));
    Ok(())
}
