//! The deployment pipeline: the engine that carries out what the API queued.
//!
//! The API writes a deployment `queued` (with its `accept` and `authorize` steps done)
//! and calls [`Engine::wake`]; the engine runs the environment's deployments one at a
//! time, in order, and many environments at once (at most `max_running`). A deployment
//! of a set goes through `resolve` (the resource graph, a definition for each node),
//! `provision` (the drivers, through [`provision::run`]), `render` (Kubernetes objects),
//! `transform` (the environment type's transformer chain), `apply` (to its target) and
//! `verify` (readiness, with a deadline). Deleting an environment is a deployment too:
//! `stop` (the target removes everything), `deprovision` (reverse dependency order) and
//! `remove` (the environment's rows).
//!
//! Every step is written `running` before it acts and `done` or `failed` after, and
//! every driver step is journaled, so a Wharf that was killed resumes its deployments
//! when it starts ([`Engine::start`]): a resource this deployment finished is not
//! provisioned again, one in progress continues from its state with the same
//! idempotency key. Progress is published as [`Event`]s (the API serves them as
//! server-sent events).

mod delete;
mod deploy;
mod prune;
mod run;

use crate::provision::{Drivers, Limits};
use crate::target::gitops::Gitops;
use crate::target::kubernetes::{self, Kubernetes};
use crate::target::process::Process;
use crate::target::{BoxFuture, EnvRef, LogQuery, LogStream, Target, TargetError, WorkloadStatus};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use wharf_core::status::{
    DeploymentStatus, ErrorScope, ResourceProgress, ResourceState, Step, StepStatus,
};
use wharf_core::target::{InvalidTarget, TargetKind, TargetSpec};
use wharf_plugins::{PluginFailure, TransformContext};
use wharf_store::deployments::{self, Deployment};
use wharf_store::secrets::Sealer;
use wharf_store::{Store, envs, provisioned};

/// Calls transformers: the host implements it over its installed plugins.
pub trait Transformers: Send + Sync {
    /// Runs the transformer installation `installation` over `objects`.
    fn transform<'a>(
        &'a self,
        installation: &'a str,
        context: TransformContext,
        objects: Vec<Value>,
    ) -> BoxFuture<'a, Result<Vec<Value>, PluginFailure>>;
}

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the process target keeps its environments, and how it confines them.
    pub process: crate::target::process::ProcessSettings,
    /// Limits of the provisioning loop.
    pub limits: Limits,
    /// How long `verify` waits for readiness unless the target says otherwise.
    pub ready_timeout: Duration,
    /// Deployments carried out at once (across environments).
    pub max_running: usize,
    /// How often the kubernetes target looks at a rollout while waiting for it.
    pub rollout_poll: Duration,
}

impl Settings {
    /// The defaults, with the process target's state under `process_root`, its
    /// workloads beside it (`../workloads`), run as the server's user.
    pub fn new(process_root: impl Into<PathBuf>) -> Self {
        let state: PathBuf = process_root.into();
        let data = state.parent().unwrap_or(&state).to_path_buf();
        let workloads = data.join("workloads");
        Self::with_process(crate::target::process::ProcessSettings::new(
            state, workloads, None, &data,
        ))
    }

    /// The defaults, with the process target set up as `process` says.
    pub fn with_process(process: crate::target::process::ProcessSettings) -> Self {
        Self {
            process,
            limits: Limits::default(),
            ready_timeout: Duration::from_secs(60),
            max_running: 64,
            rollout_poll: Duration::from_secs(2),
        }
    }
}

/// Something that happened to a deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// The app.
    pub app: String,
    /// The environment.
    pub env: String,
    /// The deployment's number.
    pub deployment: i64,
    /// What happened.
    #[serde(flatten)]
    pub what: What,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum What {
    /// A step changed.
    Step {
        /// Its place.
        position: usize,
        /// Which step it is.
        name: Step,
        /// Where it is.
        status: StepStatus,
        /// What it did.
        detail: Value,
        /// Why it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<Value>,
        /// How long it took.
        #[serde(skip_serializing_if = "Option::is_none")]
        duration_ms: Option<i64>,
    },
    /// A resource's driver answered.
    Resource {
        /// The resource.
        uid: String,
        /// What the driver's answer did.
        status: ResourceProgress,
        /// What the driver said.
        message: String,
    },
    /// The deployment finished (or started).
    Status {
        /// Where it is.
        status: DeploymentStatus,
        /// Why it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<Value>,
    },
}

/// Why the engine cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] wharf_store::Error),
    /// There is no such environment.
    #[error("environment {0} does not exist")]
    NoEnvironment(String),
    /// The environment type's stored target does not parse.
    #[error(transparent)]
    Target(#[from] InvalidTarget),
    /// The target failed.
    #[error(transparent)]
    TargetFailed(#[from] crate::target::TargetError),
}

/// A resource of an environment, as `wharf status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceStatus {
    /// Its uid.
    pub uid: String,
    /// Where it is.
    pub status: ResourceState,
    /// What the driver said last (why it is not done).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Its definition.
    pub definition: String,
    /// Its driver installation.
    pub driver: String,
    /// The names of its secret outputs (their values are never shown).
    pub secret_outputs: Vec<String>,
    /// Its other outputs.
    pub outputs: Value,
}

/// How an environment is doing.
#[derive(Debug, Clone, Serialize)]
pub struct EnvStatus {
    /// The number of the last deployment that succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<i64>,
    /// Its set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
    /// Where its workloads run (`process`, `gitops`).
    pub target: String,
    /// Each workload.
    pub workloads: Vec<WorkloadStatus>,
    /// Each resource.
    pub resources: Vec<ResourceStatus>,
}

/// The deployment engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    sealer: Sealer,
    drivers: Arc<dyn Drivers>,
    transformers: Arc<dyn Transformers>,
    process: Arc<Process>,
    settings: Settings,
    events: broadcast::Sender<Event>,
    /// Environments with a worker: true when it was woken while busy.
    workers: Mutex<HashMap<(String, String), bool>>,
    tasks: Mutex<tokio::task::JoinSet<()>>,
    running: tokio::sync::Semaphore,
}

/// A step's failure: what failed, where, and the message for the person who can fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepError {
    /// Where the failure lies.
    pub scope: ErrorScope,
    /// What in it (a resource uid, a workload, an installation).
    pub object: String,
    /// What went wrong.
    pub message: String,
}

fn failure(scope: ErrorScope, object: impl Into<String>, message: impl Into<String>) -> StepError {
    StepError {
        scope,
        object: object.into(),
        message: message.into(),
    }
}

impl Engine {
    /// An engine over the store, calling plugins through `drivers` and `transformers`.
    pub fn new(
        store: Store,
        sealer: Sealer,
        drivers: Arc<dyn Drivers>,
        transformers: Arc<dyn Transformers>,
        settings: Settings,
    ) -> Self {
        let (events, _) = broadcast::channel(4096);
        Self {
            inner: Arc::new(Inner {
                process: Arc::new(Process::new(&settings.process, sealer.clone())),
                running: tokio::sync::Semaphore::new(settings.max_running.max(1)),
                store,
                sealer,
                drivers,
                transformers,
                settings,
                events,
                workers: Mutex::new(HashMap::new()),
                tasks: Mutex::new(tokio::task::JoinSet::new()),
            }),
        }
    }

    /// Starts again what a previous run left: the process target's environments (paused
    /// ones stay stopped), then every deployment that was queued or running.
    pub async fn start(&self) -> Result<(), EngineError> {
        let restored = self.inner.process.restore().await;
        if !restored.is_empty() {
            tracing::info!(environments = restored.len(), "local processes restarted");
        }
        // Paused ones stay stopped, also when Wharf stopped between marking one paused and
        // its target stopping it.
        let paused = self.inner.store.call(envs::paused).await?;
        for (app, env) in paused {
            if let Err(e) = self.pause(&app, &env).await {
                tracing::warn!(app = %app, env = %env, error = %e, "keeping a paused environment stopped failed");
            }
        }
        let pending = self.inner.store.call(deployments::pending).await?;
        for (app, env) in pending {
            tracing::info!(app = %app, env = %env, "resuming deployments");
            self.wake(&app, &env);
        }
        Ok(())
    }

    /// Stops the engine: deployments in flight stop where they are (they resume on the
    /// next start), and local processes are stopped.
    pub async fn shutdown(&self) {
        let mut tasks = std::mem::take(&mut *self.inner.tasks.lock().expect("never poisoned"));
        tasks.shutdown().await;
        self.inner.process.shutdown().await;
    }

    /// Events of every deployment from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Tells the engine that `app/env` has a deployment to carry out.
    pub fn wake(&self, app: &str, env: &str) {
        let key = (app.to_string(), env.to_string());
        let mut workers = self.inner.workers.lock().expect("never poisoned");
        if let Some(again) = workers.get_mut(&key) {
            *again = true;
            return;
        }
        workers.insert(key.clone(), false);
        let inner = self.inner.clone();
        let mut tasks = self.inner.tasks.lock().expect("never poisoned");
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move { worker(inner, key).await });
    }

    /// How `app/env` is doing: its workloads on their target, its resources.
    pub async fn status(&self, app: &str, env: &str) -> Result<EnvStatus, EngineError> {
        let (a, e) = (app.to_string(), env.to_string());
        let sealer = self.inner.sealer.clone();
        let (environment, env_type, current, records) = self
            .inner
            .store
            .call(move |conn| {
                let Some(environment) = envs::get(conn, &a, &e)? else {
                    return Ok(None);
                };
                let env_type = envs::get_type(conn, environment.env_type.as_str())?;
                let current = deployments::current(conn, &a, &e)?;
                let records = provisioned::list(conn, &sealer, &a, &e)?;
                Ok(Some((environment, env_type, current, records)))
            })
            .await?
            .ok_or_else(|| EngineError::NoEnvironment(format!("{app}/{env}")))?;
        let spec = env_type.map(|t| t.target).unwrap_or(Value::Null);
        let target = self
            .inner
            .target(&TargetSpec::parse(&spec).map_err(InvalidTarget)?)
            .await?;
        let reference = EnvRef {
            app: environment.app.to_string(),
            env: environment.id.to_string(),
            set: current
                .as_ref()
                .map(|d| d.set_id.clone())
                .unwrap_or_default(),
            deployment: 0,
        };
        let workloads = target.status(&reference).await;
        Ok(EnvStatus {
            current: current.as_ref().map(|d| d.id),
            set: current.map(|d| d.set_id),
            target: target.kind().to_string(),
            workloads,
            resources: records
                .into_iter()
                .map(|r| ResourceStatus {
                    uid: r.uid,
                    status: r.status,
                    message: r.message,
                    definition: r.definition,
                    driver: r.driver,
                    secret_outputs: r
                        .secrets
                        .as_object()
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default(),
                    outputs: r.outputs,
                })
                .collect(),
        })
    }

    /// The logs of `app/env`'s workloads.
    pub async fn logs(
        &self,
        app: &str,
        env: &str,
        query: LogQuery,
    ) -> Result<LogStream, EngineError> {
        let target = self.target_of(app, env).await?;
        Ok(target.logs(&EnvRef::of(app, env), query).await?)
    }

    /// Pauses `app/env`: its target stops the workloads and keeps the rest. The caller
    /// makes sure no deployment of it runs.
    pub async fn pause(&self, app: &str, env: &str) -> Result<(), EngineError> {
        let target = self.target_of(app, env).await?;
        Ok(target.pause(&EnvRef::of(app, env)).await?)
    }

    /// Resumes `app/env` on its target: undoes what the pause holds there (the next apply
    /// starts the workloads).
    pub async fn resume(&self, app: &str, env: &str) -> Result<(), EngineError> {
        let target = self.target_of(app, env).await?;
        Ok(target.resume(&EnvRef::of(app, env)).await?)
    }

    /// The target of `app/env`'s type.
    async fn target_of(&self, app: &str, env: &str) -> Result<Arc<dyn Target>, EngineError> {
        let (a, e) = (app.to_string(), env.to_string());
        let spec = self
            .inner
            .store
            .call(move |conn| {
                let Some(environment) = envs::get(conn, &a, &e)? else {
                    return Ok(None);
                };
                Ok(Some(
                    envs::get_type(conn, environment.env_type.as_str())?
                        .map(|t| t.target)
                        .unwrap_or(Value::Null),
                ))
            })
            .await?
            .ok_or_else(|| EngineError::NoEnvironment(format!("{app}/{env}")))?;
        let target = self
            .inner
            .target(&TargetSpec::parse(&spec).map_err(InvalidTarget)?)
            .await?;
        Ok(target)
    }

    /// The directory where the process target keeps `app/env`.
    pub fn process_dir(&self, app: &str, env: &str) -> PathBuf {
        self.inner.process.dir(app, env)
    }
}

impl Inner {
    /// The target that runs environments of `spec`; for the kubernetes target, a client
    /// of its cluster (no request is made yet).
    async fn target(&self, spec: &TargetSpec) -> Result<Arc<dyn Target>, TargetError> {
        Ok(match &spec.kind {
            TargetKind::Process(p) => Arc::new(self.process.with_options(p.into())),
            TargetKind::Gitops(g) => Arc::new(Gitops::from_spec(g, self.sealer.clone())),
            TargetKind::Kubernetes(k) => {
                let (id, sealer) = (k.cluster.clone(), self.sealer.clone());
                let cluster = self
                    .store
                    .call(move |tx| wharf_store::clusters::get(tx, &sealer, &id))
                    .await
                    .map_err(|e| TargetError::System {
                        what: format!("reading cluster {}", k.cluster),
                        source: std::io::Error::other(e.to_string()),
                    })?
                    .ok_or_else(|| {
                        TargetError::Missing(format!(
                            "cluster {} is not known (the environment type's target names it): \
                             add it with `wharf clusters create`",
                            k.cluster
                        ))
                    })?;
                let timeout = Some(kubernetes::connect::READ_TIMEOUT);
                let client = kubernetes::connect::client(&cluster, timeout)
                    .await
                    .map_err(TargetError::Unsupported)?;
                let streams = kubernetes::connect::client(&cluster, None)
                    .await
                    .map_err(TargetError::Unsupported)?;
                Arc::new(
                    Kubernetes::new(client, &cluster.id, k.clone())
                        .with_streams(streams)
                        .with_poll(self.settings.rollout_poll),
                )
            }
        })
    }

    fn emit(&self, d: &Deployment, what: What) {
        let _ = self.events.send(Event {
            app: d.app.clone(),
            env: d.env.clone(),
            deployment: d.id,
            what,
        });
    }

    /// Runs `f` in one transaction of the store.
    async fn store<R: Send + 'static>(
        &self,
        f: impl FnOnce(&wharf_store::Tx<'_>) -> Result<R, wharf_store::Error> + Send + 'static,
    ) -> Result<R, StepError> {
        self.store
            .transaction(f)
            .await
            .map_err(|e| failure(ErrorScope::Store, "", format!("the store failed: {e}")))
    }
}

/// Carries out the deployments of one environment, in order, until there are none.
async fn worker(inner: Arc<Inner>, key: (String, String)) {
    loop {
        let (app, env) = key.clone();
        let next = inner
            .store
            .call(move |conn| deployments::next(conn, &app, &env))
            .await;
        match next {
            Ok(Some(d)) => {
                let _permit = inner.running.acquire().await;
                let span = tracing::info_span!("deployment", app = %d.app, env = %d.env, id = d.id);
                let _ = tracing::Instrument::instrument(run::run(&inner, d), span).await;
            }
            Ok(None) => {
                let mut workers = inner.workers.lock().expect("never poisoned");
                match workers.get_mut(&key) {
                    Some(again) if *again => *again = false,
                    _ => {
                        workers.remove(&key);
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the next deployment failed");
                inner.workers.lock().expect("never poisoned").remove(&key);
                return;
            }
        }
    }
}
