//! `wharf artefacts`: the images CI hands over, by digest.

use super::transport::{Client, V1, q};
use clap::Subcommand;
use serde_json::json;

/// `wharf artefacts`.
#[derive(Debug, Subcommand)]
pub enum Artefacts {
    /// Register an image CI built: `IMAGE@sha256:...` (a tag alone is refused: it can be
    /// moved to another image).
    Push {
        /// `registry.example.com/shop/api@sha256:...` (optionally `...:TAG@sha256:...`).
        image: String,
        /// The git ref it was built from (`refs/heads/main`).
        #[arg(long = "ref", default_value = "")]
        git_ref: String,
        /// The commit it was built from.
        #[arg(long, default_value = "")]
        commit: String,
    },
    /// List them, oldest first.
    List {
        /// Only repositories starting with this.
        #[arg(long)]
        repository: Option<String>,
        /// Only those whose latest push was from this git ref.
        #[arg(long = "ref")]
        git_ref: Option<String>,
    },
    /// Show one.
    Get { id: i64 },
}

pub(crate) fn run(c: &Client, cmd: Artefacts) -> anyhow::Result<()> {
    match cmd {
        Artefacts::Push {
            image,
            git_ref,
            commit,
        } => show(
            c,
            c.json(
                "POST",
                &format!("{V1}/artefacts"),
                Some(json!({ "image": image, "ref": git_ref, "commit": commit })),
            )?,
        ),
        Artefacts::List {
            repository,
            git_ref,
        } => {
            let mut path = format!("{V1}/artefacts?limit=1000");
            for (key, value) in [("repository", repository), ("ref", git_ref)] {
                if let Some(v) = value {
                    path.push_str(&format!("&{key}={}", q(&v)));
                }
            }
            c.print(
                &c.all(&path)?,
                &["id", "image", "tag", "ref", "commit", "pushes", "pushed_by"],
            )
        }
        Artefacts::Get { id } => show(c, c.json("GET", &format!("{V1}/artefacts/{id}"), None)?),
    }
}

/// Prints an artefact; for a person, what each automation rule did with it follows, one
/// line each.
fn show(c: &Client, mut artefact: serde_json::Value) -> anyhow::Result<()> {
    if c.output() != super::output::Output::Table {
        return c.print(&artefact, &[]);
    }
    let outcomes = artefact
        .as_object_mut()
        .and_then(|a| a.remove("outcomes"))
        .unwrap_or_default();
    c.print(&artefact, &[])?;
    for o in outcomes.as_array().into_iter().flatten() {
        let (app, env) = (
            o["app"].as_str().unwrap_or_default(),
            o["env"].as_str().unwrap_or_default(),
        );
        let rule = o["rule"].as_str().unwrap_or_default();
        match o["deployment"].as_i64() {
            Some(n) => println!("rule {app}/{rule}: deployed to {app}/{env} (deployment {n})"),
            None => println!(
                "rule {app}/{rule}: {} for {app}/{env}: {}",
                o["outcome"].as_str().unwrap_or_default(),
                o["reason"].as_str().unwrap_or_default()
            ),
        }
    }
    Ok(())
}
