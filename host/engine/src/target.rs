//! Targets: where rendered objects go. The `gitops` target writes them to a directory,
//! the `process` target runs them as local processes, the `kubernetes` target applies them
//! to a namespace of a cluster.

pub mod gitops;
pub mod kubernetes;
pub mod process;

use futures_util::stream::BoxStream;
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use wharf_core::status::{ContainerState, WorkloadState};

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
    /// The deployment's number; 0 when no deployment is under way (status, logs).
    pub deployment: i64,
}

impl EnvRef {
    /// The environment `app/env` itself, outside any deployment.
    pub fn of(app: &str, env: &str) -> Self {
        Self {
            app: app.to_string(),
            env: env.to_string(),
            set: String::new(),
            deployment: 0,
        }
    }
}

/// What applying did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Objects written or changed, as `Kind/name`.
    pub changed: Vec<String>,
    /// Objects removed because the new set no longer has them.
    pub pruned: Vec<String>,
    /// Objects the target has no use for (a NetworkPolicy on the process target).
    pub ignored: Vec<String>,
    /// Where it can be seen (a directory, a commit, a URL).
    pub location: String,
}

/// How one workload is doing on its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadStatus {
    /// The workload.
    pub name: String,
    /// How it is doing.
    pub state: WorkloadState,
    /// Whether it serves.
    pub ready: bool,
    /// Why it is not ready (or what happened last), for the person reading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where it answers (`http://127.0.0.1:PORT` for each service port).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// Its containers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerStatus>,
}

/// How one container is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerStatus {
    /// The container.
    pub name: String,
    /// How it is doing.
    pub state: ContainerState,
    /// Its process, while one runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// How often it was restarted.
    pub restarts: u32,
    /// How its last process ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
}

/// Which logs to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this workload's.
    pub workload: Option<String>,
    /// The last lines to start with, per container.
    pub tail: usize,
    /// Keep the stream open and send new lines as they come.
    pub follow: bool,
}

/// Log lines, each without its newline.
pub type LogStream = BoxStream<'static, String>;

/// Why a target failed.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The workloads did not become ready in time.
    #[error("{0}")]
    NotReady(String),
    /// The target cannot do this.
    #[error("{0}")]
    Unsupported(String),
    /// What was asked for is not there.
    #[error("{0}")]
    Missing(String),
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

    /// Waits until every workload of the environment is ready, at most `timeout`.
    /// Returns their status, or [`TargetError::NotReady`] saying which is not and why.
    fn verify<'a>(
        &'a self,
        env: &'a EnvRef,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<WorkloadStatus>, TargetError>>;

    /// How each workload of the environment is doing now.
    fn status<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Vec<WorkloadStatus>>;

    /// The environment's logs.
    fn logs<'a>(
        &'a self,
        env: &'a EnvRef,
        query: LogQuery,
    ) -> BoxFuture<'a, Result<LogStream, TargetError>>;

    /// Once the objects of the last apply serve, removes what earlier applies put in the
    /// environment that the last one did not; what it removed, as `Kind/name`. Targets
    /// whose `apply` already makes the environment exactly its objects remove nothing here.
    fn prune<'a>(&'a self, _env: &'a EnvRef) -> BoxFuture<'a, Result<Vec<String>, TargetError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Removes everything of the environment.
    fn remove<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Result<(), TargetError>>;

    /// Stops the environment's workloads and keeps everything else (their configuration,
    /// volumes and resources), until [`Target::resume`] and the next apply start them
    /// again.
    fn pause<'a>(&'a self, _env: &'a EnvRef) -> BoxFuture<'a, Result<(), TargetError>> {
        let kind = self.kind();
        Box::pin(async move {
            Err(TargetError::Unsupported(format!(
                "the {kind} target cannot pause an environment"
            )))
        })
    }

    /// Undoes what [`Target::pause`] holds, before the apply that runs the environment
    /// again. Targets whose apply alone starts the workloads do nothing here.
    fn resume<'a>(&'a self, _env: &'a EnvRef) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether a successful [`Target::verify`] means the new objects serve and the old
    /// ones are gone, so that what they alone used can be deprovisioned. A target that
    /// hands the objects to another system (gitops) cannot tell.
    fn confirms_ready(&self) -> bool {
        true
    }
}
