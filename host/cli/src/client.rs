//! The client half of `wharf`: one subcommand per API endpoint, `wharf login`, and the
//! output formats. Talks to a running `wharf serve` over its REST API only; what the
//! server answers is printed as the server said it (errors are its problem documents'
//! `detail`).
//!
//! [`transport`] is the connection (with [`config`], the saved login), [`output`] the
//! formats; each command group is a module of its own with its `clap` arguments next to
//! its handler, and [`run`] only dispatches. A command module uses the transport and the
//! output, and of the others only [`follow`] (a deployment shown to its end) and
//! [`score`] (Score files read for the API); none of these uses a command module.

mod apps;
mod artefacts;
mod audit;
mod clusters;
mod config;
mod deploy;
mod deployments;
mod env_types;
mod envs;
pub(crate) mod follow;
mod installations;
mod login;
mod logs;
pub(crate) mod output;
pub(crate) mod platform;
mod plugins;
mod principals;
mod resource_definitions;
mod resource_types;
mod role_bindings;
mod rules;
pub(crate) mod score;
mod sets;
mod status;
mod tokens;
pub(crate) mod transport;
mod webhooks;

pub use login::{Login, login};
pub use transport::{Client, Connection};

use clap::Subcommand;

/// The client subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Applications.
    #[command(subcommand)]
    Apps(apps::Apps),
    /// Container images CI built, by digest.
    #[command(subcommand)]
    Artefacts(artefacts::Artefacts),
    /// Kubernetes clusters environment types deploy to (ops).
    #[command(subcommand)]
    Clusters(clusters::Clusters),
    /// Environment types (ops).
    #[command(subcommand, name = "env-types")]
    EnvTypes(env_types::EnvTypes),
    /// Environments of an app.
    #[command(subcommand)]
    Envs(envs::Envs),
    /// Users.
    #[command(subcommand)]
    Users(principals::Principals),
    /// Service accounts.
    #[command(subcommand, name = "service-accounts")]
    ServiceAccounts(principals::Principals),
    /// Role bindings.
    #[command(subcommand, name = "role-bindings")]
    RoleBindings(role_bindings::RoleBindings),
    /// API tokens.
    #[command(subcommand)]
    Tokens(tokens::Tokens),
    /// Uploaded plugins (components).
    #[command(subcommand)]
    Plugins(plugins::Plugins),
    /// Plugin installations: configuration, grants, the policy chain.
    #[command(subcommand)]
    Installations(installations::Installations),
    /// Resource types.
    #[command(subcommand, name = "resource-types")]
    ResourceTypes(resource_types::ResourceTypes),
    /// Resource definitions.
    #[command(subcommand, name = "resource-definitions")]
    ResourceDefinitions(resource_definitions::Definitions),
    /// Deployment sets: the workloads of an app, from Score files.
    #[command(subcommand)]
    Sets(sets::Sets),
    /// The audit log.
    Audit(audit::Audit),
    /// Platform configuration from a file (ops).
    #[command(subcommand)]
    Platform(platform::Platform),
    /// Deploy Score files (or a stored set) to an environment.
    Deploy(deploy::Deploy),
    /// Deploy an earlier deployment's set again.
    Rollback(deploy::Rollback),
    /// Deploy exactly what one environment runs (set and images) to another.
    Promote(deploy::Promote),
    /// Automation rules: deploy the artefacts CI pushes.
    #[command(subcommand)]
    Rules(rules::Rules),
    /// How an environment is doing: each workload and resource, and why it is not ready.
    Status { app: String, env: String },
    /// The logs of an environment's workloads.
    Logs(logs::Logs),
    /// An environment's deployments.
    #[command(subcommand)]
    Deployments(deployments::Deployments),
    /// Webhooks: where the platform posts its events (org-wide, or an app's with --app).
    #[command(subcommand)]
    Webhooks(webhooks::Webhooks),
}

/// Runs a client subcommand.
pub fn run(command: Command, c: &Client) -> anyhow::Result<()> {
    match command {
        Command::Apps(cmd) => apps::run(c, cmd),
        Command::Artefacts(cmd) => artefacts::run(c, cmd),
        Command::Clusters(cmd) => clusters::run(c, cmd),
        Command::EnvTypes(cmd) => env_types::run(c, cmd),
        Command::Envs(cmd) => envs::run(c, cmd),
        Command::Users(cmd) => principals::run(c, cmd, "users"),
        Command::ServiceAccounts(cmd) => principals::run(c, cmd, "service-accounts"),
        Command::RoleBindings(cmd) => role_bindings::run(c, cmd),
        Command::Tokens(cmd) => tokens::run(c, cmd),
        Command::Plugins(cmd) => plugins::run(c, cmd),
        Command::Installations(cmd) => installations::run(c, cmd),
        Command::ResourceTypes(cmd) => resource_types::run(c, cmd),
        Command::ResourceDefinitions(cmd) => resource_definitions::run(c, cmd),
        Command::Sets(cmd) => sets::run(c, cmd),
        Command::Audit(args) => audit::run(c, args),
        Command::Platform(cmd) => platform::run(c, cmd),
        Command::Deploy(args) => deploy::deploy(c, args),
        Command::Rollback(args) => deploy::rollback(c, args),
        Command::Promote(args) => deploy::promote(c, args),
        Command::Rules(cmd) => rules::run(c, cmd),
        Command::Status { app, env } => status::run(c, &app, &env),
        Command::Logs(args) => logs::run(c, args),
        Command::Deployments(cmd) => deployments::run(c, cmd),
        Command::Webhooks(cmd) => webhooks::run(c, cmd),
    }
}
