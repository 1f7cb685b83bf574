//! What an operator says when installing a plugin: its kind, the capabilities granted,
//! and its limits.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

pub use wharf_core::Kind;

/// The WIT interface a plugin of `kind` exports.
pub(crate) fn export_interface(kind: Kind) -> &'static str {
    match kind {
        Kind::Driver => "wharf:plugin/provisioner",
        Kind::Policy => "wharf:plugin/authorizer",
        Kind::Transformer => "wharf:plugin/transform",
    }
}

/// Network capabilities granted to one installation of a plugin. The default is nothing:
/// a grant list replaces the default, it does not add to an implicit one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Grants {
    /// Origins reachable over `wasi:http`: `scheme://host[:port]`, exactly (no wildcards,
    /// no paths). Redirects are not followed, so a redirect elsewhere is never reached.
    pub http: Vec<String>,
    /// Host directories the plugin may read and write, each visible to it at the same
    /// absolute path (a preopen; nothing else of the file system is). Drivers only.
    pub directories: Vec<String>,
    /// Addresses reachable over `wasi:sockets` TCP: `ip:port` (`127.0.0.1:5432`,
    /// `[::1]:5432`). Names are not resolved: grant the address the plugin connects to.
    pub sockets: Vec<String>,
}

impl Grants {
    /// Every grant that is not a valid origin or address, with what is wrong; empty when
    /// all are valid.
    pub fn problems(&self) -> Vec<String> {
        self.parsed().err().unwrap_or_default()
    }

    fn parsed(&self) -> Result<ValidGrants, Vec<String>> {
        let mut problems = Vec::new();
        let mut origins = Vec::new();
        for (i, grant) in self.http.iter().enumerate() {
            match Origin::parse(grant) {
                Ok(o) => origins.push(o),
                Err(e) => problems.push(format!("grants.http[{i}]: {e}")),
            }
        }
        let mut sockets = Vec::new();
        for (i, grant) in self.sockets.iter().enumerate() {
            match grant.parse::<SocketAddr>() {
                Ok(a) => sockets.push(a),
                Err(_) => problems.push(format!(
                    "grants.sockets[{i}]: {grant:?} is not ip:port (like 127.0.0.1:5432)"
                )),
            }
        }
        let mut directories = Vec::new();
        for (i, grant) in self.directories.iter().enumerate() {
            let path = std::path::Path::new(grant);
            if !path.is_absolute()
                || path
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                problems.push(format!(
                    "grants.directories[{i}]: {grant:?} must be an absolute path without `..`"
                ));
            } else if !path.is_dir() {
                problems.push(format!(
                    "grants.directories[{i}]: {grant:?} is not a directory on the Wharf host; create it first"
                ));
            } else {
                directories.push(path.to_path_buf());
            }
        }
        if problems.is_empty() {
            Ok(ValidGrants {
                origins,
                sockets,
                directories,
            })
        } else {
            Err(problems)
        }
    }
}

/// Limits of every call to one installation of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Linear memory the plugin may use, in bytes, across all its memories.
    pub memory_bytes: u64,
    /// Time the plugin may run Wasm code per call, in milliseconds (measured in 10 ms
    /// epoch ticks while it runs, so time blocked in host calls is not counted).
    pub cpu_ms: u64,
    /// Wall-clock time per call, in milliseconds, including host calls (HTTP).
    pub wall_ms: u64,
    /// Size of a call's results (JSON text), in bytes.
    pub output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            cpu_ms: 1_000,
            wall_ms: 10_000,
            output_bytes: 4 << 20,
        }
    }
}

impl Limits {
    pub(crate) fn cpu(&self) -> Duration {
        Duration::from_millis(self.cpu_ms)
    }

    pub(crate) fn wall(&self) -> Duration {
        Duration::from_millis(self.wall_ms)
    }
}

/// What an operator declares when installing a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The installation's name, used in logs and errors.
    pub name: String,
    /// The kind the component must implement.
    pub kind: Kind,
    /// Network granted (drivers only).
    #[serde(default)]
    pub grants: Grants,
    /// Limits per call.
    #[serde(default)]
    pub limits: Limits,
}

impl Manifest {
    /// A manifest with no grants and default limits.
    pub fn new(name: &str, kind: Kind) -> Self {
        Self {
            name: name.into(),
            kind,
            grants: Grants::default(),
            limits: Limits::default(),
        }
    }

    /// Checks the manifest, naming every problem.
    pub(crate) fn validate(&self, max_memory: u64) -> Result<ValidGrants, Error> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push("name must not be empty".to_string());
        }
        if self.kind != Kind::Driver
            && (!self.grants.http.is_empty()
                || !self.grants.sockets.is_empty()
                || !self.grants.directories.is_empty())
        {
            problems.push(format!(
                "{} plugins get no network and no files: remove grants.http, grants.sockets \
                 and grants.directories",
                self.kind
            ));
        }
        let grants = match self.grants.parsed() {
            Ok(parsed) => parsed,
            Err(found) => {
                problems.extend(found);
                ValidGrants::default()
            }
        };
        let l = &self.limits;
        if l.memory_bytes == 0 || l.memory_bytes > max_memory {
            problems.push(format!(
                "limits.memory_bytes must be between 1 and {max_memory}"
            ));
        }
        if l.cpu_ms == 0 || l.wall_ms == 0 || l.output_bytes == 0 {
            problems.push("limits.cpu_ms, wall_ms and output_bytes must be above 0".into());
        }
        if problems.is_empty() {
            Ok(grants)
        } else {
            Err(Error::InvalidManifest { problems })
        }
    }
}

/// Grants in the form the sandbox checks them.
#[derive(Debug, Clone, Default)]
pub(crate) struct ValidGrants {
    pub origins: Vec<Origin>,
    pub sockets: Vec<SocketAddr>,
    pub directories: Vec<std::path::PathBuf>,
}

/// `scheme://host:port`, with the port made explicit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text)
            .map_err(|e| format!("{text:?} is not a URL ({e}); expected scheme://host[:port]"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!(
                "{text:?}: only http and https origins can be granted"
            ));
        }
        if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
            return Err(format!(
                "{text:?}: grant an origin (scheme://host[:port]) without path, query or user"
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("{text:?} has no host"))?
            .to_ascii_lowercase();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("{text:?} has no port"))?;
        Ok(Self {
            scheme: url.scheme().to_string(),
            host,
            port,
        })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized_and_paths_refused() {
        let o = Origin::parse("HTTP://Example.com").unwrap();
        assert_eq!(o.to_string(), "http://example.com:80");
        assert_eq!(Origin::parse("https://a.b:8443").unwrap().port, 8443);
        assert!(
            Origin::parse("http://a.b/path")
                .unwrap_err()
                .contains("without path")
        );
        assert!(
            Origin::parse("ftp://a.b")
                .unwrap_err()
                .contains("only http")
        );
        assert!(Origin::parse("a.b:80").is_err());
    }

    #[test]
    fn manifest_lists_every_problem() {
        let mut m = Manifest::new("", Kind::Policy);
        m.grants.http.push("http://x".into());
        m.limits.cpu_ms = 0;
        let Err(Error::InvalidManifest { problems }) = m.validate(1 << 30) else {
            panic!("expected an invalid manifest");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
