//! `wharf login`: checks a server and a token, then saves both for the other commands.

use super::config::{Saved, save};
use super::output::Output;
use super::transport::Client;
use anyhow::{Context, bail};
use clap::Args;

/// `wharf login`.
#[derive(Debug, Args)]
pub struct Login {
    /// The server's URL, like http://127.0.0.1:8080.
    #[arg(long)]
    server: String,
    /// The API token (else read from WHARF_TOKEN, else from standard input).
    #[arg(long, env = "WHARF_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Checks the server and the token, then saves both.
pub fn login(args: Login) -> anyhow::Result<()> {
    let token = match args.token {
        Some(t) => t,
        None => {
            eprintln!("Paste the API token and press Enter:");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim().to_string()
        }
    };
    if token.is_empty() {
        bail!("no token given: pass --token, set WHARF_TOKEN, or type it");
    }
    let client = Client::new(args.server.clone(), Some(token.clone()), Output::Table);
    client
        .json("GET", "/readyz", None)
        .context("the server is not ready")?;
    client.json("GET", "/api/v1/env-types?limit=1", None)?;
    let file = save(&Saved {
        server: client.server().to_string(),
        token,
    })?;
    println!(
        "Logged in to {}; saved to {}",
        client.server(),
        file.display()
    );
    Ok(())
}
