//! The client half of `wharf`: one subcommand per API endpoint, `wharf login`, and the
//! output formats. Talks to a running `wharf serve` over its REST API only; what the
//! server answers is printed as the server said it (errors are its problem documents'
//! `detail`).

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use ureq::http;

/// How to print what the server answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Columns for lists, `key: value` lines for one object.
    #[default]
    Table,
    /// JSON, as the API sends it.
    Json,
    /// YAML.
    Yaml,
}

/// Where the server is and who the client is: flags and environment first, then the
/// file `wharf login` wrote.
#[derive(Debug, Args)]
pub struct Connection {
    /// The server's URL (else WHARF_SERVER, else the one `wharf login` saved).
    #[arg(long, env = "WHARF_SERVER", global = true)]
    server: Option<String>,
    /// The API token (else WHARF_TOKEN, else the one `wharf login` saved).
    #[arg(long, env = "WHARF_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// How to print results.
    #[arg(long, short, value_enum, default_value_t, global = true)]
    output: Output,
}

/// What `wharf login` keeps.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    server: String,
    token: String,
}

/// `$XDG_CONFIG_HOME/wharf/config.json`, else `~/.config/wharf/config.json`.
fn config_file() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("wharf").join("config.json")
}

fn load_saved() -> Option<Saved> {
    let text = std::fs::read_to_string(config_file()).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes the file readable by its owner only (0600), atomically.
fn save(saved: &Saved) -> anyhow::Result<PathBuf> {
    let file = config_file();
    let dir = file.parent().expect("the config file is in a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let temp = dir.join(".config.json.tmp");
    let text = serde_json::to_string_pretty(saved)?;
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options
            .open(&temp)
            .with_context(|| format!("failed to write {}", temp.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&temp, &file).with_context(|| format!("failed to write {}", file.display()))?;
    Ok(file)
}

/// A connection to the API.
pub struct Client {
    agent: ureq::Agent,
    server: String,
    token: Option<String>,
    output: Output,
}

/// The server's answer to a request it refused: the status and its problem's detail.
#[derive(Debug)]
pub(crate) struct Refused {
    /// The HTTP status.
    pub(crate) status: u16,
    /// What the server said.
    pub(crate) message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for Refused {}

/// What the server answered.
struct Reply {
    body: Value,
    next: Option<String>,
}

impl Client {
    pub(crate) fn new(server: String, token: Option<String>, output: Output) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(120)))
            .build()
            .new_agent();
        Self {
            agent,
            server: server.trim_end_matches('/').to_string(),
            token,
            output,
        }
    }

    /// A client from flags, environment and the saved login.
    pub fn connect(c: &Connection) -> anyhow::Result<Self> {
        let saved = load_saved();
        let server = c
            .server
            .clone()
            .or_else(|| saved.as_ref().map(|s| s.server.clone()))
            .context(
                "no server: run `wharf login --server URL --token TOKEN`, or set WHARF_SERVER",
            )?;
        let token = c.token.clone().or_else(|| saved.map(|s| s.token));
        Ok(Self::new(server, token, c.output))
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let url = format!("{}{path}", self.server);
        let mut request = http::Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(body)
            .with_context(|| format!("{url:?} is not a valid URL"))?;
        let mut response = self.agent.run(request).map_err(|e| match e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                anyhow::anyhow!(
                    "cannot reach the Wharf server at {}: connection refused. Is `wharf serve` \
                     running there? (change it with `wharf login --server URL`)",
                    self.server
                )
            }
            ureq::Error::HostNotFound => anyhow::anyhow!(
                "cannot reach the Wharf server at {}: the host name does not resolve",
                self.server
            ),
            other => anyhow::anyhow!("cannot reach the Wharf server at {}: {other}", self.server),
        })?;
        let status = response.status().as_u16();
        let next = response
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| Some(l[l.find('<')? + 1..l.find('>')?].to_string()));
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .context("failed to read the server's answer")?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status == 401 {
            bail!(
                "the server refused the token: {}. Log in again with `wharf login`",
                detail(&body)
            );
        }
        if status >= 400 {
            return Err(Refused {
                status,
                message: detail(&body),
            }
            .into());
        }
        Ok(Reply { body, next })
    }

    /// The output format asked for.
    pub(crate) fn output(&self) -> Output {
        self.output
    }

    /// Opens a streaming `GET` (server-sent events, followed logs): no overall timeout,
    /// the body read as it comes.
    pub(crate) fn stream(&self, path: &str) -> anyhow::Result<impl std::io::BufRead + use<>> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let url = format!("{}{path}", self.server);
        let mut request = agent.get(&url);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.call().map_err(|e| {
            anyhow::anyhow!("cannot reach the Wharf server at {}: {e}", self.server)
        })?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        if status >= 400 {
            let text = body.read_to_string().unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            return Err(Refused {
                status,
                message: detail(&body),
            }
            .into());
        }
        Ok(std::io::BufReader::new(body.into_reader()))
    }

    pub(crate) fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (ct, bytes) = match body {
            Some(b) => (Some("application/json"), b.to_string().into_bytes()),
            None => (None, Vec::new()),
        };
        Ok(self.send(method, path, ct, bytes, &[])?.body)
    }

    /// Every item of a list, following the `Link` header from page to page.
    pub(crate) fn all(&self, path: &str) -> anyhow::Result<Value> {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(path) = next.take() {
            let reply = self.send("GET", &path, None, Vec::new(), &[])?;
            match reply.body {
                Value::Array(page) => items.extend(page),
                other => return Ok(other),
            }
            next = reply.next;
        }
        Ok(Value::Array(items))
    }

    pub(crate) fn print(&self, value: &Value, columns: &[&str]) -> anyhow::Result<()> {
        match self.output {
            Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
            Output::Yaml => print!("{}", wharf_core::yaml::to_string(value)),
            Output::Table => print!("{}", table(value, columns)),
        }
        Ok(())
    }

    pub(crate) fn done(&self, what: String) {
        match self.output {
            Output::Table => println!("{what}"),
            Output::Json => println!("{}", json!({ "done": what })),
            Output::Yaml => println!("done: {what:?}"),
        }
    }
}

fn detail(body: &Value) -> String {
    if let Some(problems) = body["problems"].as_array() {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| {
                let path = p["path"].as_str().unwrap_or_default();
                let message = p["message"].as_str().unwrap_or_default();
                if path.is_empty() {
                    format!("  {message}")
                } else {
                    format!("  {path}: {message}")
                }
            })
            .collect();
        return format!("{} problem(s):\n{}\n", lines.len(), lines.join("\n"));
    }
    body["detail"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string())
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// A list as aligned columns; one object as `key: value` lines.
pub(crate) fn table(value: &Value, columns: &[&str]) -> String {
    let mut out = String::new();
    match value {
        Value::Array(rows) => {
            let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| columns.iter().map(|c| cell(&r[*c])).collect())
                .collect();
            let widths: Vec<usize> = (0..columns.len())
                .map(|i| {
                    body.iter()
                        .map(|r| r[i].chars().count())
                        .chain([header[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for row in std::iter::once(&header).chain(&body) {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                out.push_str(line.join("  ").trim_end());
                out.push('\n');
            }
        }
        Value::Object(map) => {
            let width = map.keys().map(String::len).max().unwrap_or(0);
            for (k, v) in map {
                out.push_str(&format!(
                    "{:<width$}  {}\n",
                    format!("{k}:"),
                    cell(v),
                    width = width + 1
                ));
            }
        }
        other => {
            out.push_str(&cell(other));
            out.push('\n');
        }
    }
    out
}

/// A JSON value from the command line: inline JSON, or `@FILE`.
pub(crate) fn json_arg(text: &str) -> anyhow::Result<Value> {
    let text = match text.strip_prefix('@') {
        Some(file) => {
            std::fs::read_to_string(file).with_context(|| format!("failed to read {file}"))?
        }
        None => text.to_string(),
    };
    serde_json::from_str(&text).context("not valid JSON")
}

pub(crate) fn q(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

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
        .send("GET", "/readyz", None, Vec::new(), &[])
        .context("the server is not ready")?;
    client.send("GET", "/api/v1/env-types?limit=1", None, Vec::new(), &[])?;
    let file = save(&Saved {
        server: client.server.clone(),
        token,
    })?;
    println!(
        "Logged in to {}; saved to {}",
        client.server,
        file.display()
    );
    Ok(())
}

/// The client subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Applications.
    #[command(subcommand)]
    Apps(Apps),
    /// Environment types (ops).
    #[command(subcommand, name = "env-types")]
    EnvTypes(EnvTypes),
    /// Environments of an app.
    #[command(subcommand)]
    Envs(Envs),
    /// Users.
    #[command(subcommand)]
    Users(Principals),
    /// Service accounts.
    #[command(subcommand, name = "service-accounts")]
    ServiceAccounts(Principals),
    /// Role bindings.
    #[command(subcommand, name = "role-bindings")]
    RoleBindings(RoleBindings),
    /// API tokens.
    #[command(subcommand)]
    Tokens(Tokens),
    /// Uploaded plugins (components).
    #[command(subcommand)]
    Plugins(Plugins),
    /// Plugin installations: configuration, grants, the policy chain.
    #[command(subcommand)]
    Installations(Installations),
    /// Resource types.
    #[command(subcommand, name = "resource-types")]
    ResourceTypes(ResourceTypes),
    /// Resource definitions.
    #[command(subcommand, name = "resource-definitions")]
    ResourceDefinitions(Definitions),
    /// Deployment sets: the workloads of an app, from Score files.
    #[command(subcommand)]
    Sets(Sets),
    /// The audit log.
    Audit(Audit),
    /// Platform configuration from a file (ops).
    #[command(subcommand)]
    Platform(crate::deploy::Platform),
    /// Deploy Score files (or a stored set) to an environment.
    Deploy(crate::deploy::Deploy),
    /// Deploy an earlier deployment's set again.
    Rollback(crate::deploy::Rollback),
    /// How an environment is doing: each workload and resource, and why it is not ready.
    Status { app: String, env: String },
    /// The logs of an environment's workloads.
    Logs(crate::deploy::Logs),
    /// An environment's deployments.
    #[command(subcommand)]
    Deployments(crate::deploy::Deployments),
}

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

/// `wharf apps`.
#[derive(Debug, Subcommand)]
pub enum Apps {
    /// List the apps you may see.
    List,
    /// Show one.
    Get { id: String },
    /// Create one (you become its owner).
    Create {
        id: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Delete one with its environments: each is deleted as `wharf envs delete` does it
    /// (workloads stopped, resources deprovisioned); the app goes with the last.
    Delete {
        id: String,
        /// Return at once instead of following the deletions to their end.
        #[arg(long)]
        no_wait: bool,
    },
}

/// `wharf env-types`.
#[derive(Debug, Subcommand)]
pub enum EnvTypes {
    /// List them.
    List,
    /// Show one.
    Get { id: String },
    /// Create one.
    Create {
        id: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The target as JSON (or @FILE); the local process target when absent.
        #[arg(long)]
        target: Option<String>,
        /// A transformer installation every deployment goes through; repeat, in order.
        #[arg(long = "transformer")]
        transformers: Vec<String>,
        /// Resources provisioned in every environment, as a JSON list (or @FILE):
        /// `[{"type": "namespace", "id": "env"}]`.
        #[arg(long)]
        resources: Option<String>,
    },
    /// Delete one no environment uses.
    Delete { id: String },
}

/// `wharf envs`.
#[derive(Debug, Subcommand)]
pub enum Envs {
    /// List an app's environments.
    List { app: String },
    /// Show one.
    Get { app: String, env: String },
    /// Create one of an environment type, empty or as a clone of another.
    Create {
        app: String,
        env: String,
        /// Its environment type.
        #[arg(long = "type")]
        env_type: String,
        /// Clone this environment of the app: deploy its current set to the new one.
        #[arg(long)]
        from: Option<String>,
    },
    /// Delete one: its workloads are stopped, its resources deprovisioned.
    Delete {
        app: String,
        env: String,
        /// Return at once instead of following the deletion to its end.
        #[arg(long)]
        no_wait: bool,
    },
}

/// `wharf users` and `wharf service-accounts`.
#[derive(Debug, Subcommand)]
pub enum Principals {
    /// List them.
    List,
    /// Show one (users only).
    Get { id: String },
    /// Create one.
    Create { id: String },
}

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

/// `wharf plugins`.
#[derive(Debug, Subcommand)]
pub enum Plugins {
    /// List the uploaded plugins.
    List,
    /// Show one: metadata, world, digest, requested capabilities.
    Get { id: String },
    /// Upload a component with its manifest.
    Upload {
        /// The component (.wasm).
        file: PathBuf,
        #[arg(long)]
        id: String,
        /// driver, policy or transformer.
        #[arg(long)]
        kind: String,
        /// Origins installations may be granted (drivers), repeatable.
        #[arg(long)]
        http: Vec<String>,
        /// Addresses (ip:port) installations may be granted (drivers), repeatable.
        #[arg(long)]
        socket: Vec<String>,
        #[arg(long)]
        memory_bytes: Option<u64>,
        #[arg(long)]
        cpu_ms: Option<u64>,
        #[arg(long)]
        wall_ms: Option<u64>,
    },
    /// Delete one no installation uses.
    Delete { id: String },
}

/// `wharf installations`.
#[derive(Debug, Subcommand)]
pub enum Installations {
    /// List them.
    List,
    /// Show one.
    Get { id: String },
    /// Install a plugin.
    Create {
        id: String,
        #[arg(long)]
        plugin: String,
        /// Configuration as JSON or @FILE.
        #[arg(long)]
        config: Option<String>,
        /// Grants as JSON or @FILE (`{"http": [...], "sockets": [...]}`).
        #[arg(long)]
        grants: Option<String>,
        /// Install it disabled.
        #[arg(long)]
        disabled: bool,
        #[arg(long)]
        position: Option<i64>,
    },
    /// Enable one.
    Enable { id: String },
    /// Disable one.
    Disable { id: String },
    /// Change its configuration (JSON or @FILE).
    Configure { id: String, config: String },
    /// Uninstall one.
    Delete { id: String },
}

/// `wharf resource-types`.
#[derive(Debug, Subcommand)]
pub enum ResourceTypes {
    /// List them.
    List,
    /// Show one.
    Get { id: String },
    /// Create one.
    Create {
        id: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete one no definition uses.
    Delete { id: String },
}

/// `wharf resource-definitions`.
#[derive(Debug, Subcommand)]
pub enum Definitions {
    /// List them.
    List,
    /// Show one.
    Get { id: String },
    /// Create one from JSON (or @FILE).
    Create { definition: String },
    /// Replace one with a new version from JSON (or @FILE); refused if it changed since
    /// `--if-version`.
    Update {
        definition: String,
        #[arg(long)]
        if_version: Option<i64>,
    },
    /// Every version of one.
    Versions { id: String },
    /// Delete one.
    Delete { id: String },
    /// Which definition a resource would use, and why.
    Match {
        #[arg(long = "type")]
        res_type: String,
        #[arg(long)]
        app: String,
        #[arg(long)]
        env: String,
        #[arg(long)]
        class: Option<String>,
        #[arg(long)]
        res_id: Option<String>,
        #[arg(long)]
        env_type: Option<String>,
    },
}

/// `wharf audit`.
#[derive(Debug, Args)]
pub struct Audit {
    #[arg(long)]
    principal: Option<String>,
    /// An action, or a collection with a trailing dot (`apps.`).
    #[arg(long)]
    action: Option<String>,
    /// A target, or a prefix ending in `:` or `/`.
    #[arg(long)]
    target: Option<String>,
    /// Unix seconds.
    #[arg(long)]
    since: Option<i64>,
    #[arg(long)]
    until: Option<i64>,
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

pub(crate) const V1: &str = "/api/v1";

/// Runs a client subcommand.
pub fn run(command: Command, c: &Client) -> anyhow::Result<()> {
    match command {
        Command::Apps(cmd) => match cmd {
            Apps::List => c.print(
                &c.all(&format!("{V1}/apps"))?,
                &["id", "name", "created_by"],
            ),
            Apps::Get { id } => {
                c.print(&c.json("GET", &format!("{V1}/apps/{}", q(&id)), None)?, &[])
            }
            Apps::Create { id, name } => {
                let mut body = json!({ "id": id });
                if let Some(n) = name {
                    body["name"] = json!(n);
                }
                c.print(&c.json("POST", &format!("{V1}/apps"), Some(body))?, &[])
            }
            Apps::Delete { id, no_wait } => {
                let answer = c.json("DELETE", &format!("{V1}/apps/{}", q(&id)), None)?;
                let deletions = answer["deletions"].as_array().cloned().unwrap_or_default();
                if deletions.is_empty() {
                    c.done(format!("deleted app {id}"));
                    return Ok(());
                }
                if no_wait {
                    let envs: Vec<&str> =
                        deletions.iter().filter_map(|d| d["env"].as_str()).collect();
                    c.done(format!(
                        "deleting app {id}: its environments {} are being deleted, and the app \
                         goes with the last",
                        envs.join(", ")
                    ));
                    return Ok(());
                }
                for d in &deletions {
                    let (env, n) = (
                        d["env"].as_str().unwrap_or_default(),
                        d["id"].as_i64().unwrap_or(0),
                    );
                    match crate::deploy::follow(c, &id, env, n) {
                        // Over, its rows gone with the environment, before it is followed.
                        Err(e) if e.downcast_ref::<Refused>().is_some_and(|r| r.status == 404) => {}
                        other => other?,
                    }
                }
                c.done(format!("deleted app {id}"));
                Ok(())
            }
        },
        Command::EnvTypes(cmd) => match cmd {
            EnvTypes::List => c.print(
                &c.all(&format!("{V1}/env-types"))?,
                &["id", "target", "description"],
            ),
            EnvTypes::Get { id } => c.print(
                &c.json("GET", &format!("{V1}/env-types/{}", q(&id)), None)?,
                &[],
            ),
            EnvTypes::Create {
                id,
                description,
                target,
                transformers,
                resources,
            } => {
                let mut body =
                    json!({ "id": id, "description": description, "transformers": transformers });
                if let Some(t) = target {
                    body["target"] = json_arg(&t).context("--target")?;
                }
                if let Some(r) = resources {
                    body["resources"] = json_arg(&r).context("--resources")?;
                }
                c.print(
                    &c.json("POST", &format!("{V1}/env-types"), Some(body))?,
                    &[],
                )
            }
            EnvTypes::Delete { id } => {
                c.json("DELETE", &format!("{V1}/env-types/{}", q(&id)), None)?;
                c.done(format!("deleted environment type {id}"));
                Ok(())
            }
        },
        Command::Envs(cmd) => match cmd {
            Envs::List { app } => c.print(
                &c.all(&format!("{V1}/apps/{}/envs", q(&app)))?,
                &["id", "env_type", "created_by"],
            ),
            Envs::Get { app, env } => c.print(
                &c.json(
                    "GET",
                    &format!("{V1}/apps/{}/envs/{}", q(&app), q(&env)),
                    None,
                )?,
                &[],
            ),
            Envs::Create {
                app,
                env,
                env_type,
                from,
            } => {
                let mut body = json!({ "id": env, "env_type": env_type });
                if let Some(from) = &from {
                    body["from"] = json!(from);
                }
                let created = c.json("POST", &format!("{V1}/apps/{}/envs", q(&app)), Some(body))?;
                c.print(&created, &[])?;
                match created["deployment"].as_i64() {
                    Some(n) => crate::deploy::follow(c, &app, &env, n),
                    None => Ok(()),
                }
            }
            Envs::Delete { app, env, no_wait } => {
                let answer = c.json(
                    "DELETE",
                    &format!("{V1}/apps/{}/envs/{}", q(&app), q(&env)),
                    None,
                )?;
                match answer["id"].as_i64() {
                    Some(n) if !no_wait => match crate::deploy::follow(c, &app, &env, n) {
                        // A quick deletion can be over, its rows gone with the
                        // environment, before the client asks to follow it.
                        Err(e) if e.downcast_ref::<Refused>().is_some_and(|r| r.status == 404) => {
                            c.done(format!("deleted environment {app}/{env}"));
                            Ok(())
                        }
                        other => other,
                    },
                    Some(n) => {
                        c.done(format!(
                            "deleting environment {app}/{env} (deployment {n}); follow it with \
                             `wharf deployments follow {app} {env} {n}`"
                        ));
                        Ok(())
                    }
                    None => {
                        c.done(format!("deleted environment {app}/{env}"));
                        Ok(())
                    }
                }
            }
        },
        Command::Users(cmd) => principals(c, cmd, "users"),
        Command::ServiceAccounts(cmd) => principals(c, cmd, "service-accounts"),
        Command::RoleBindings(cmd) => match cmd {
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
        },
        Command::Tokens(cmd) => match cmd {
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
        },
        Command::Plugins(cmd) => match cmd {
            Plugins::List => c.print(
                &c.all(&format!("{V1}/plugins"))?,
                &["id", "kind", "version", "bundled", "digest"],
            ),
            Plugins::Get { id } => c.print(
                &c.json("GET", &format!("{V1}/plugins/{}", q(&id)), None)?,
                &[],
            ),
            Plugins::Upload {
                file,
                id,
                kind,
                http,
                socket,
                memory_bytes,
                cpu_ms,
                wall_ms,
            } => upload(
                c,
                &file,
                &id,
                &kind,
                &http,
                &socket,
                [memory_bytes, cpu_ms, wall_ms],
            ),
            Plugins::Delete { id } => {
                c.json("DELETE", &format!("{V1}/plugins/{}", q(&id)), None)?;
                c.done(format!("deleted plugin {id}"));
                Ok(())
            }
        },
        Command::Installations(cmd) => installations(c, cmd),
        Command::ResourceTypes(cmd) => match cmd {
            ResourceTypes::List => c.print(
                &c.all(&format!("{V1}/resource-types"))?,
                &["id", "description"],
            ),
            ResourceTypes::Get { id } => c.print(
                &c.json("GET", &format!("{V1}/resource-types/{}", q(&id)), None)?,
                &[],
            ),
            ResourceTypes::Create { id, description } => c.print(
                &c.json(
                    "POST",
                    &format!("{V1}/resource-types"),
                    Some(json!({ "id": id, "description": description })),
                )?,
                &[],
            ),
            ResourceTypes::Delete { id } => {
                c.json("DELETE", &format!("{V1}/resource-types/{}", q(&id)), None)?;
                c.done(format!("deleted resource type {id}"));
                Ok(())
            }
        },
        Command::ResourceDefinitions(cmd) => definitions(c, cmd),
        Command::Sets(cmd) => sets(c, cmd),
        Command::Deploy(args) => crate::deploy::deploy(c, args),
        Command::Platform(crate::deploy::Platform::Apply { file }) => {
            crate::deploy::apply_platform(c, &file).map(drop)
        }
        Command::Rollback(args) => crate::deploy::rollback(c, args),
        Command::Status { app, env } => crate::deploy::status(c, &app, &env),
        Command::Logs(args) => crate::deploy::logs(c, args),
        Command::Deployments(cmd) => crate::deploy::deployments(c, cmd),
        Command::Audit(a) => {
            let mut path = format!("{V1}/audit?limit={}", a.limit);
            for (name, value) in [
                ("principal", &a.principal),
                ("action", &a.action),
                ("target", &a.target),
            ] {
                if let Some(v) = value {
                    path.push_str(&format!("&{name}={}", q(v)));
                }
            }
            for (name, value) in [("since", a.since), ("until", a.until)] {
                if let Some(v) = value {
                    path.push_str(&format!("&{name}={v}"));
                }
            }
            c.print(
                &c.json("GET", &path, None)?,
                &["seq", "at", "principal", "action", "target"],
            )
        }
    }
}

fn scope_json(scope: &str) -> anyhow::Result<Value> {
    Ok(match scope.split_once(':') {
        None if scope == "org" => json!({ "kind": "org" }),
        Some((kind @ ("app" | "env-type"), id)) => json!({ "kind": kind, "id": id }),
        _ => bail!("--scope: {scope:?} is not org, app:ID or env-type:ID"),
    })
}

fn principals(c: &Client, cmd: Principals, collection: &str) -> anyhow::Result<()> {
    match cmd {
        Principals::List => c.print(
            &c.all(&format!("{V1}/{collection}"))?,
            &["id", "created_at"],
        ),
        Principals::Get { id } => c.print(
            &c.json("GET", &format!("{V1}/{collection}/{}", q(&id)), None)?,
            &[],
        ),
        Principals::Create { id } => c.print(
            &c.json(
                "POST",
                &format!("{V1}/{collection}"),
                Some(json!({ "id": id })),
            )?,
            &[],
        ),
    }
}

fn upload(
    c: &Client,
    file: &Path,
    id: &str,
    kind: &str,
    http: &[String],
    sockets: &[String],
    [memory, cpu, wall]: [Option<u64>; 3],
) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(file).with_context(|| format!("failed to read {}", file.display()))?;
    let mut path = format!("{V1}/plugins?id={}&kind={}", q(id), q(kind));
    if !http.is_empty() {
        path.push_str(&format!("&http={}", q(&http.join(","))));
    }
    if !sockets.is_empty() {
        path.push_str(&format!("&sockets={}", q(&sockets.join(","))));
    }
    for (name, value) in [("memory_bytes", memory), ("cpu_ms", cpu), ("wall_ms", wall)] {
        if let Some(v) = value {
            path.push_str(&format!("&{name}={v}"));
        }
    }
    let reply = c.send("POST", &path, Some("application/wasm"), bytes, &[])?;
    c.print(&reply.body, &[])
}

fn installations(c: &Client, cmd: Installations) -> anyhow::Result<()> {
    let one = |id: &str| format!("{V1}/plugin-installations/{}", q(id));
    let patch = |id: &str, change: Value| -> anyhow::Result<()> {
        let reply = c.send("GET", &one(id), None, Vec::new(), &[])?;
        let revision = reply.body["revision"].as_i64().unwrap_or_default();
        let tag = format!("\"{revision}\"");
        let changed = c.send(
            "PATCH",
            &one(id),
            Some("application/json"),
            change.to_string().into_bytes(),
            &[("if-match", &tag)],
        )?;
        c.print(&changed.body, &[])
    };
    match cmd {
        Installations::List => c.print(
            &c.all(&format!("{V1}/plugin-installations"))?,
            &["id", "plugin", "kind", "enabled", "position", "revision"],
        ),
        Installations::Get { id } => c.print(&c.json("GET", &one(&id), None)?, &[]),
        Installations::Create {
            id,
            plugin,
            config,
            grants,
            disabled,
            position,
        } => {
            let mut body = json!({ "id": id, "plugin": plugin, "enabled": !disabled });
            if let Some(config) = config {
                body["config"] = json_arg(&config).context("--config")?;
            }
            if let Some(grants) = grants {
                body["grants"] = json_arg(&grants).context("--grants")?;
            }
            if let Some(p) = position {
                body["position"] = json!(p);
            }
            c.print(
                &c.json("POST", &format!("{V1}/plugin-installations"), Some(body))?,
                &[],
            )
        }
        Installations::Enable { id } => patch(&id, json!({ "enabled": true })),
        Installations::Disable { id } => patch(&id, json!({ "enabled": false })),
        Installations::Configure { id, config } => patch(
            &id,
            json!({ "config": json_arg(&config).context("config")? }),
        ),
        Installations::Delete { id } => {
            c.json("DELETE", &one(&id), None)?;
            c.done(format!("uninstalled {id}"));
            Ok(())
        }
    }
}

fn definitions(c: &Client, cmd: Definitions) -> anyhow::Result<()> {
    let one = |id: &str| format!("{V1}/resource-definitions/{}", q(id));
    match cmd {
        Definitions::List => c.print(
            &c.all(&format!("{V1}/resource-definitions"))?,
            &["id", "type", "driver", "version", "criteria"],
        ),
        Definitions::Get { id } => c.print(&c.json("GET", &one(&id), None)?, &[]),
        Definitions::Create { definition } => {
            let body = json_arg(&definition).context("definition")?;
            c.print(
                &c.json("POST", &format!("{V1}/resource-definitions"), Some(body))?,
                &[],
            )
        }
        Definitions::Update {
            definition,
            if_version,
        } => {
            let body = json_arg(&definition).context("definition")?;
            let id = body["id"]
                .as_str()
                .context("the definition has no \"id\"")?
                .to_string();
            let tag = if_version.map(|v| format!("\"{v}\""));
            let headers: Vec<(&str, &str)> = tag.iter().map(|t| ("if-match", t.as_str())).collect();
            let reply = c.send(
                "PUT",
                &one(&id),
                Some("application/json"),
                body.to_string().into_bytes(),
                &headers,
            )?;
            c.print(&reply.body, &[])
        }
        Definitions::Versions { id } => c.print(
            &c.json("GET", &format!("{}/versions", one(&id)), None)?,
            &["version", "driver", "created_at", "created_by"],
        ),
        Definitions::Delete { id } => {
            c.json("DELETE", &one(&id), None)?;
            c.done(format!("deleted resource definition {id}"));
            Ok(())
        }
        Definitions::Match {
            res_type,
            app,
            env,
            class,
            res_id,
            env_type,
        } => {
            let mut body = json!({ "type": res_type, "app": app, "env": env });
            for (k, v) in [("class", class), ("res_id", res_id), ("env_type", env_type)] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            c.print(
                &c.json(
                    "POST",
                    &format!("{V1}/resource-definitions/match"),
                    Some(body),
                )?,
                &[],
            )
        }
    }
}

fn sets(c: &Client, cmd: Sets) -> anyhow::Result<()> {
    let base = |app: &str| format!("{V1}/apps/{}/sets", q(app));
    match cmd {
        Sets::List { app } => c.print(&c.all(&base(&app))?, &["id", "workloads", "created_by"]),
        Sets::Create { app, files } => {
            let workloads = crate::deploy::score_files(&files)?;
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
