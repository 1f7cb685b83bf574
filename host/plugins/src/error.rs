//! Errors of installing a plugin ([`Error`]) and of calling one ([`PluginFailure`]).

use crate::types::PluginError;
use std::time::Duration;

/// Why a plugin could not be installed or loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest has problems (each named).
    #[error("invalid plugin manifest: {}", problems.join("; "))]
    InvalidManifest {
        /// Every problem found.
        problems: Vec<String>,
    },
    /// The upload is larger than the runtime accepts.
    #[error("plugin is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// Size of the upload.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are a core WebAssembly module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component: build the plugin for \
         wasm32-wasip2 (cargo build --target wasm32-wasip2) or wrap it with \
         `wasm-tools component new`"
    )]
    CoreModule,
    /// The bytes are code compiled ahead of time, which is never accepted.
    #[error(
        "this is precompiled native code, which is never accepted: upload the .wasm \
         component and the host compiles it"
    )]
    Precompiled,
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly component (the file does not start with the \\0asm header)")]
    NotWasm,
    /// The component is malformed or cannot be compiled.
    #[error("invalid WebAssembly component")]
    Invalid(#[source] wasmtime::Error),
    /// The component does not implement the world of its declared kind.
    #[error("component does not implement the {kind} world: {}", problems.join("; "))]
    WrongWorld {
        /// The declared kind.
        kind: crate::Kind,
        /// What is missing or unexpected.
        problems: Vec<String>,
    },
    /// The compile cache could not be read or written.
    #[error("compile cache at {path}")]
    Cache {
        /// The cache directory.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The runtime could not be created.
    #[error("failed to create the WebAssembly engine")]
    Engine(#[source] wasmtime::Error),
}

/// Why a plugin call failed. Each variant but [`PluginFailure::Plugin`] is the host's
/// verdict on a plugin that misbehaved or hit a limit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginFailure {
    /// The plugin returned an error value: an expected failure it reports itself.
    #[error("plugin error ({kind:?}): {message}", kind = .0.kind, message = .0.message)]
    Plugin(PluginError),
    /// The plugin trapped: a panic, an `unreachable`, a stack overflow, a bad access.
    #[error("plugin trapped: {message}")]
    Trap {
        /// The trap, with the last lines the plugin wrote to stderr.
        message: String,
    },
    /// The plugin ran Wasm longer than its CPU budget.
    #[error("plugin exceeded its CPU budget of {budget:?}")]
    CpuBudgetExceeded {
        /// The budget.
        budget: Duration,
    },
    /// The call took longer than its wall-clock timeout.
    #[error("plugin call timed out after {after:?}")]
    Timeout {
        /// The timeout.
        after: Duration,
    },
    /// The plugin tried to use more memory than allowed.
    #[error("plugin reached its memory limit of {limit} bytes (it asked for {requested})")]
    MemoryLimit {
        /// The limit.
        limit: u64,
        /// Total it asked for.
        requested: u64,
    },
    /// The plugin used a capability it was not granted, and the call failed.
    #[error("not granted: {capability} (the installation's grants do not include it)")]
    CapabilityDenied {
        /// What was refused (`http to http://host:port`, `tcp connect to ip:port`).
        capability: String,
    },
    /// The plugin returned more data than allowed.
    #[error("plugin returned {bytes} bytes; the limit is {limit}")]
    OutputTooLarge {
        /// Size returned.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The plugin returned something the contract forbids (wrong number of decisions,
    /// text that is not JSON).
    #[error("plugin broke its contract: {0}")]
    Contract(String),
    /// The host could not run the call (no instance slot free, engine error).
    #[error("host could not run the plugin: {what}")]
    Host {
        /// What the host was doing.
        what: String,
        /// Why it failed, when another error says so.
        #[source]
        cause: Option<Cause>,
    },
}

/// The error that made the host fail a call: shared, so a failure can be cloned and
/// compared (by its message).
#[derive(Debug, Clone)]
pub struct Cause(std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PluginFailure {
    /// The host failed at `what`, because of `cause`.
    pub fn host(
        what: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Host {
            what: what.into(),
            cause: Some(Cause(std::sync::Arc::from(cause.into()))),
        }
    }
}

impl PluginFailure {
    /// True when trying again later may succeed (retryable plugin errors and timeouts).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Plugin(e) => e.kind.is_retryable(),
            Self::Timeout { .. } | Self::Host { .. } => true,
            _ => false,
        }
    }
}
