//! Errors and metadata shared by every kind of plugin.

use crate::__private::wit::wharf::plugin::types as wit;

/// What went wrong, and whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is wrong. Retrying cannot help.
    InvalidInput,
    /// The thing already exists in a state that does not match. Retrying cannot help.
    Conflict,
    /// Something the plugin needs does not exist. Retrying cannot help.
    NotFound,
    /// An external system refused the plugin's credentials. Retrying cannot help.
    PermissionDenied,
    /// An external system is unreachable. The host retries.
    Unavailable,
    /// An external system asked to slow down. The host retries later.
    RateLimited,
    /// Anything else. Retrying cannot help.
    Other,
}

/// An expected failure of a plugin call, shown to the person who can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// Whether retrying can help.
    pub kind: ErrorKind,
    /// What went wrong and how to fix it.
    pub message: String,
    /// For `Unavailable` and `RateLimited`: when to try again.
    pub retry_after: Option<std::time::Duration>,
}

impl PluginError {
    /// A failure of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The input is wrong (a param, the configuration, an object).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// An external system is unreachable; the host will retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Anything else; the host will not retry.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }

    /// The configuration a driver call got is wrong: every issue, each at its path under
    /// the definition's `driver_inputs` (where the installation's configuration and the
    /// definition's inputs meet).
    pub fn driver_inputs(issues: Vec<Issue>) -> Self {
        Self::invalid_input(
            issues
                .iter()
                .map(|i| format!("driver_inputs{}: {}", i.path, i.message))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// Asks the host to wait this long before retrying.
    pub fn retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for PluginError {}

impl From<PluginError> for wit::PluginError {
    fn from(e: PluginError) -> Self {
        let kind = match e.kind {
            ErrorKind::InvalidInput => wit::ErrorKind::InvalidInput,
            ErrorKind::Conflict => wit::ErrorKind::Conflict,
            ErrorKind::NotFound => wit::ErrorKind::NotFound,
            ErrorKind::PermissionDenied => wit::ErrorKind::PermissionDenied,
            ErrorKind::Unavailable => wit::ErrorKind::Unavailable,
            ErrorKind::RateLimited => wit::ErrorKind::RateLimited,
            ErrorKind::Other => wit::ErrorKind::Other,
        };
        wit::PluginError {
            kind,
            message: e.message,
            retry_after_ms: e
                .retry_after
                .map(|d| d.as_millis().min(u64::MAX as u128) as u64),
        }
    }
}

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// JSON Pointer to the value at fault (`/limits/cpu`), empty for the whole document.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Issue {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl From<Issue> for wit::Issue {
    fn from(i: Issue) -> Self {
        wit::Issue {
            path: i.path,
            message: i.message,
        }
    }
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// A short, stable name.
    pub name: String,
    /// The plugin's version (semver).
    pub version: String,
    /// One sentence on what it does.
    pub description: String,
    /// A JSON Schema of its configuration (`{}` when it takes any).
    pub config_schema: serde_json::Value,
}

impl PluginInfo {
    /// Metadata with a configuration schema that accepts anything.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            config_schema: serde_json::json!({}),
        }
    }

    /// Sets the JSON Schema of the configuration.
    pub fn with_config_schema(mut self, schema: serde_json::Value) -> Self {
        self.config_schema = schema;
        self
    }
}

impl From<PluginInfo> for wit::PluginInfo {
    fn from(i: PluginInfo) -> Self {
        wit::PluginInfo {
            name: i.name,
            version: i.version,
            description: i.description,
            config_schema: i.config_schema.to_string(),
        }
    }
}
