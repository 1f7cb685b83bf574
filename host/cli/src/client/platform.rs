//! `wharf platform apply`: what ops set up (environment types, plugin installations,
//! resource types and definitions), created from one file. `wharf up` applies an app
//! directory's platform.yaml the same way.

use super::output::Output;
use super::transport::{Client, Refused, V1};
use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `wharf platform`.
#[derive(Debug, Subcommand)]
pub enum Platform {
    /// Create what a platform file describes and the server does not have yet: environment
    /// types, plugin installations, resource types and resource definitions (YAML or JSON,
    /// each entry the body the API takes). What exists is left as it is.
    Apply {
        /// The platform file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
}

/// The sections of a platform file, in the order they are created, with their endpoint.
const PLATFORM: &[(&str, &str)] = &[
    ("env_types", "env-types"),
    ("installations", "plugin-installations"),
    ("resource_types", "resource-types"),
    ("resource_definitions", "resource-definitions"),
];

/// Applies a platform file; returns how many objects were created.
pub(crate) fn apply_platform(c: &Client, file: &Path) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("failed to read {}", file.display()))?;
    let doc: Value = wharf_core::yaml::to_value(&text)
        .with_context(|| format!("{} is not valid YAML or JSON", file.display()))?;
    let Some(map) = doc.as_object() else {
        bail!("{}: expected a map of sections", file.display());
    };
    if let Some(unknown) = map.keys().find(|k| !PLATFORM.iter().any(|(s, _)| s == k)) {
        bail!(
            "{}: unknown section {unknown:?}; the sections are {}",
            file.display(),
            PLATFORM
                .iter()
                .map(|(s, _)| *s)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut created = 0;
    for (section, endpoint) in PLATFORM {
        for (i, entry) in map
            .get(*section)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let id = entry["id"].as_str().unwrap_or("?");
            match c.json("POST", &format!("{V1}/{endpoint}"), Some(entry.clone())) {
                Ok(_) => {
                    created += 1;
                    if c.output() == Output::Table {
                        println!("created {section} {id}");
                    }
                }
                Err(e) if e.downcast_ref::<Refused>().is_some_and(|r| r.status == 409) => {
                    if c.output() == Output::Table {
                        println!("kept {section} {id} (it exists)");
                    }
                }
                Err(e) => {
                    return Err(e.context(format!("{}: {section}[{i}] ({id})", file.display())));
                }
            }
        }
    }
    Ok(created)
}

pub(crate) fn run(c: &Client, cmd: Platform) -> anyhow::Result<()> {
    match cmd {
        Platform::Apply { file } => apply_platform(c, &file).map(drop),
    }
}
