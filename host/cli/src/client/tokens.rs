//! `wharf tokens`: a principal's API tokens.

use super::transport::{Client, V1, q};
use clap::Subcommand;
use serde_json::json;

/// `wharf tokens`.
#[derive(Debug, Subcommand)]
pub enum Tokens {
    /// List a principal's tokens.
    List { principal: String },
    /// Create a token (its secret is printed once).
    Create {
        principal: String,
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke a token.
    Revoke { principal: String, id: String },
}

pub(crate) fn run(c: &Client, cmd: Tokens) -> anyhow::Result<()> {
    match cmd {
        Tokens::List { principal } => c.print(
            &c.json(
                "GET",
                &format!("{V1}/principals/{}/tokens", q(&principal)),
                None,
            )?,
            &["id", "created_at", "expires_at", "revoked_at"],
        ),
        Tokens::Create {
            principal,
            expires_in_days,
        } => {
            let body = match expires_in_days {
                Some(d) => json!({ "expires_in_days": d }),
                None => json!({}),
            };
            c.print(
                &c.json(
                    "POST",
                    &format!("{V1}/principals/{}/tokens", q(&principal)),
                    Some(body),
                )?,
                &[],
            )
        }
        Tokens::Revoke { principal, id } => {
            c.json(
                "DELETE",
                &format!("{V1}/principals/{}/tokens/{}", q(&principal), q(&id)),
                None,
            )?;
            c.done(format!("revoked token {id} of {principal}"));
            Ok(())
        }
    }
}
