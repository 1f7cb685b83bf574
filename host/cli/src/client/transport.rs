//! The client's HTTP transport: one connection to the API, requests with the token,
//! pages followed, refusals turned into errors that carry the server's own words (its
//! problem documents' `detail`). What to ask and how to show the answer is the
//! commands'; nothing here knows a resource.

use super::config::load_saved;
use super::output::Output;
use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;
use ureq::http;

/// The API's path prefix.
pub(crate) const V1: &str = "/api/v1";

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
pub(crate) struct Reply {
    pub(crate) body: Value,
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

    /// The server's URL, without a trailing slash.
    pub(crate) fn server(&self) -> &str {
        &self.server
    }

    /// One request; a refusal (status 400 and up) is an error with the server's detail.
    pub(crate) fn send(
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

    /// Prints an answer in the output format asked for.
    pub(crate) fn print(&self, value: &Value, columns: &[&str]) -> anyhow::Result<()> {
        self.output.print(value, columns)
    }

    /// Says a command is done, in the output format asked for.
    pub(crate) fn done(&self, what: String) {
        self.output.done(what)
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

/// `text` percent-encoded for a path segment or a query value.
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
