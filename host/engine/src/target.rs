//! Targets: where rendered objects go. The `gitops` target writes them to a directory;
//! the `process` and `kubernetes` targets implement the same trait.

pub mod gitops;

use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

/// A boxed future, so that targets can be chosen at run time.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The environment a target acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRef {
    /// The app.
    pub app: String,
    /// The environment.
    pub env: String,
    /// The deployment set being applied (its content address), for the record.
    pub set: String,
}

/// What applying did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Objects written or changed, as `Kind/name`.
    pub changed: Vec<String>,
    /// Objects removed because the new set no longer has them.
    pub pruned: Vec<String>,
    /// Where it can be seen (a directory, a commit, a URL).
    pub location: String,
}

/// Why a target failed.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// An object cannot be handled (no kind or name...).
    #[error("object {index}: {reason}")]
    Object {
        /// Its place in the list.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The target's system failed (disk, git, cluster).
    #[error("{what}: {source}")]
    System {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Where rendered objects go.
pub trait Target: Send + Sync {
    /// The target's kind (`gitops`, `process`, `kubernetes`).
    fn kind(&self) -> &'static str;

    /// Makes the environment run exactly `objects`: writes what is new or changed,
    /// removes what the previous apply had and this one does not.
    fn apply<'a>(
        &'a self,
        env: &'a EnvRef,
        objects: &'a [Value],
    ) -> BoxFuture<'a, Result<Applied, TargetError>>;

    /// Removes everything of the environment.
    fn remove<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Result<(), TargetError>>;
}
