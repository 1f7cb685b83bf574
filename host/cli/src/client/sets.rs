//! `wharf sets`: deployment sets, an app's workloads made from Score files and changed
//! by deltas.

use super::score::score_files;
use super::transport::{Client, V1, json_arg, q};
use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use std::path::PathBuf;

/// `wharf sets`.
#[derive(Debug, Subcommand)]
pub enum Sets {
    /// List an app's sets.
    List { app: String },
    /// Make a set from Score files (YAML or JSON).
    Create {
        app: String,
        /// A Score file; repeat for several workloads.
        #[arg(short = 'f', long = "file", required = true)]
        files: Vec<PathBuf>,
    },
    /// Show a set.
    Get { app: String, id: String },
    /// Apply a delta (JSON Patch, inline or @FILE) to a set, making a new one.
    Delta {
        app: String,
        id: String,
        patch: String,
    },
    /// The delta from one set to another.
    Diff {
        app: String,
        id: String,
        #[arg(long)]
        to: String,
    },
}

pub(crate) fn run(c: &Client, cmd: Sets) -> anyhow::Result<()> {
    let base = |app: &str| format!("{V1}/apps/{}/sets", q(app));
    match cmd {
        Sets::List { app } => c.print(&c.all(&base(&app))?, &["id", "workloads", "created_by"]),
        Sets::Create { app, files } => {
            let workloads = score_files(&files)?;
            c.print(
                &c.json("POST", &base(&app), Some(json!({ "workloads": workloads })))?,
                &[],
            )
        }
        Sets::Get { app, id } => c.print(
            &c.json("GET", &format!("{}/{}", base(&app), q(&id)), None)?,
            &[],
        ),
        Sets::Delta { app, id, patch } => {
            let patch = json_arg(&patch).context("patch")?;
            c.print(
                &c.json(
                    "POST",
                    &format!("{}/{}/deltas", base(&app), q(&id)),
                    Some(patch),
                )?,
                &[],
            )
        }
        Sets::Diff { app, id, to } => c.print(
            &c.json(
                "GET",
                &format!("{}/{}/diff?to={}", base(&app), q(&id), q(&to)),
                None,
            )?,
            &["op", "path", "value"],
        ),
    }
}
