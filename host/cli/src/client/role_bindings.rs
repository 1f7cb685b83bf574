//! `wharf role-bindings`: roles granted to principals at a scope.

use super::transport::{Client, V1, q};
use anyhow::bail;
use clap::Subcommand;
use serde_json::{Value, json};

/// `wharf role-bindings`.
#[derive(Debug, Subcommand)]
pub enum RoleBindings {
    /// List a principal's role bindings.
    List { principal: String },
    /// Grant a role.
    Grant {
        principal: String,
        role: String,
        /// `org`, `app:ID` or `env-type:ID`.
        #[arg(long, default_value = "org")]
        scope: String,
    },
    /// Revoke a role.
    Revoke {
        principal: String,
        role: String,
        #[arg(long, default_value = "org")]
        scope: String,
    },
}

pub(crate) fn run(c: &Client, cmd: RoleBindings) -> anyhow::Result<()> {
    match cmd {
        RoleBindings::List { principal } => c.print(
            &c.json(
                "GET",
                &format!("{V1}/users/{}/role-bindings", q(&principal)),
                None,
            )?,
            &["principal", "scope", "role"],
        ),
        RoleBindings::Grant {
            principal,
            role,
            scope,
        } => {
            let body =
                json!({ "principal": principal, "scope": scope_json(&scope)?, "role": role });
            c.print(
                &c.json("POST", &format!("{V1}/role-bindings"), Some(body))?,
                &[],
            )
        }
        RoleBindings::Revoke {
            principal,
            role,
            scope,
        } => {
            c.json(
                "DELETE",
                &format!(
                    "{V1}/role-bindings?principal={}&scope={}&role={}",
                    q(&principal),
                    q(&scope),
                    q(&role)
                ),
                None,
            )?;
            c.done(format!("revoked {role} at {scope} from {principal}"));
            Ok(())
        }
    }
}

/// `--scope` as the API takes it.
fn scope_json(scope: &str) -> anyhow::Result<Value> {
    Ok(match scope.split_once(':') {
        None if scope == "org" => json!({ "kind": "org" }),
        Some((kind @ ("app" | "env-type"), id)) => json!({ "kind": kind, "id": id }),
        _ => bail!("--scope: {scope:?} is not org, app:ID or env-type:ID"),
    })
}
