//! `wharf clusters`: the Kubernetes clusters environment types deploy to (ops). Credentials
//! are read from files (or standard input), never from the command line, where other
//! users of the machine could see them.

use super::transport::{Client, V1, q};
use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};

/// `wharf clusters`.
#[derive(Debug, Subcommand)]
pub enum Clusters {
    /// List them (credentials by kind only).
    List,
    /// Show one.
    Get { id: String },
    /// Add one: a server with a token or a client certificate, or a kubeconfig.
    Create {
        id: String,
        /// The cluster's API server URL (https://...).
        #[arg(long, value_name = "URL", conflicts_with = "kubeconfig")]
        api_server: Option<String>,
        /// A file with the CA certificates of the API server (PEM).
        #[arg(long, conflicts_with = "kubeconfig")]
        ca_bundle: Option<PathBuf>,
        /// A file with a bearer token (`-`: standard input).
        #[arg(long, conflicts_with_all = ["kubeconfig", "client_certificate"])]
        token_file: Option<PathBuf>,
        /// A file with a client certificate (PEM), with --client-key.
        #[arg(long, requires = "client_key", conflicts_with = "kubeconfig")]
        client_certificate: Option<PathBuf>,
        /// A file with the client certificate's key (PEM).
        #[arg(long, requires = "client_certificate")]
        client_key: Option<PathBuf>,
        /// A kubeconfig file with one context whose cluster and user are inline.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
    },
    /// Remove one no environment type uses (nothing in the cluster is touched).
    Delete { id: String },
    /// Connect: the server's version and what the credentials may do.
    Check { id: String },
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

pub(crate) fn run(c: &Client, cmd: Clusters) -> anyhow::Result<()> {
    match cmd {
        Clusters::List => c.print(
            &c.all(&format!("{V1}/clusters"))?,
            &["id", "server", "credentials", "used_by"],
        ),
        Clusters::Get { id } => c.print(
            &c.json("GET", &format!("{V1}/clusters/{}", q(&id)), None)?,
            &[],
        ),
        Clusters::Create {
            id,
            api_server,
            ca_bundle,
            token_file,
            client_certificate,
            client_key,
            kubeconfig,
        } => {
            let mut body = json!({ "id": id });
            if let Some(k) = kubeconfig {
                body["kubeconfig"] = json!(read(&k)?);
            } else {
                let Some(server) = api_server else {
                    bail!(
                        "give --server with --token-file or --client-certificate, or --kubeconfig"
                    );
                };
                body["server"] = json!(server);
                if let Some(ca) = ca_bundle {
                    body["ca_bundle"] = json!(read(&ca)?);
                }
                match (token_file, client_certificate, client_key) {
                    (Some(t), None, None) => body["token"] = json!(read(&t)?.trim()),
                    (None, Some(cert), Some(key)) => {
                        body["client_certificate"] = json!(read(&cert)?);
                        body["client_key"] = json!(read(&key)?);
                    }
                    _ => bail!("give --token-file, or --client-certificate and --client-key"),
                }
            }
            c.print(&c.json("POST", &format!("{V1}/clusters"), Some(body))?, &[])
        }
        Clusters::Delete { id } => {
            c.json("DELETE", &format!("{V1}/clusters/{}", q(&id)), None)?;
            c.done(format!("removed cluster {id}"));
            Ok(())
        }
        Clusters::Check { id } => {
            let found = c.json("POST", &format!("{V1}/clusters/{}/check", q(&id)), None)?;
            check(c, &id, &found)
        }
    }
}

/// Prints what a check found; fails when the cluster cannot be used.
fn check(c: &Client, id: &str, found: &Value) -> anyhow::Result<()> {
    if c.output() != super::output::Output::Table {
        c.print(found, &[])?;
    } else {
        if let Some(version) = found["version"].as_str() {
            println!("cluster {id}: Kubernetes {version}");
        }
        let rows: Vec<Value> = found["access"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                json!({ "resource": a["resource"], "verb": a["verb"],
                        "allowed": if a["allowed"] == true { "yes" } else { "NO" } })
            })
            .collect();
        if !rows.is_empty() {
            c.print(&json!(rows), &["resource", "verb", "allowed"])?;
        }
    }
    match found["error"].as_str() {
        Some(error) if found["ok"] != true => bail!("{error}"),
        _ => Ok(()),
    }
}
