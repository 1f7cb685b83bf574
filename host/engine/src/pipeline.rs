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

use crate::journal::StoreJournal;
use crate::provision::{self, Assignment, Drivers, Entry, Journal, Limits, Plan, Progress};
use crate::render;
use crate::target::gitops::Gitops;
use crate::target::process::Process;
use crate::target::{BoxFuture, EnvRef, LogQuery, LogStream, Target, WorkloadStatus};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use wharf_core::clock::now_ms;
use wharf_core::graph::{self, DefinitionRef};
use wharf_core::score::Workload;
use wharf_core::score::resolve::Outputs;
use wharf_core::set::Set;
use wharf_plugins::{PluginFailure, TransformContext, Values};
use wharf_store::deployments::{self, Deployment, Kind, Status, StepStatus};
use wharf_store::secrets::Sealer;
use wharf_store::{Store, envs, provisioned, resources, sets};

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

/// The steps of a deployment that applies a set, in order.
pub const DEPLOY_STEPS: &[&str] = &[
    "accept",
    "authorize",
    "resolve",
    "provision",
    "render",
    "transform",
    "apply",
    "verify",
    "prune",
];

/// The steps of an environment's deletion, in order.
pub const DELETE_STEPS: &[&str] = &["accept", "authorize", "stop", "deprovision", "remove"];

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
        /// Its name.
        name: String,
        /// `running`, `done`, `failed`, `skipped`.
        status: String,
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
        /// `in-progress`, `retrying`, `done`, `failed` (with `deprovision-` first when
        /// deprovisioning).
        status: String,
        /// What the driver said.
        message: String,
    },
    /// The deployment finished (or started).
    Status {
        /// `running`, `succeeded` or `failed`.
        status: String,
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
    /// The environment type's target is not one this Wharf runs.
    #[error("{0}")]
    Target(String),
    /// The target failed.
    #[error(transparent)]
    TargetFailed(#[from] crate::target::TargetError),
}

/// A resource of an environment, as `wharf status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceStatus {
    /// Its uid.
    pub uid: String,
    /// `done`, `in-progress`, `retrying`, `failed`, `deprovisioning`.
    pub status: String,
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
    /// `set`, `resource`, `workload`, `transformer`, `target`, `environment`.
    pub scope: String,
    /// What in it (a resource uid, a workload, an installation).
    pub object: String,
    /// What went wrong.
    pub message: String,
}

fn failure(scope: &str, object: impl Into<String>, message: impl Into<String>) -> StepError {
    StepError {
        scope: scope.into(),
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

    /// Starts again what a previous run left: the process target's environments, then
    /// every deployment that was queued or running.
    pub async fn start(&self) -> Result<(), EngineError> {
        let restored = self.inner.process.restore().await;
        if !restored.is_empty() {
            tracing::info!(environments = restored.len(), "local processes restarted");
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
        let target = self.target(&spec).map_err(EngineError::Target)?;
        let reference = EnvRef {
            app: environment.app.to_string(),
            env: environment.id.to_string(),
            set: current
                .as_ref()
                .map(|d| d.set_id.clone())
                .unwrap_or_default(),
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
                    status: r.status.as_str().to_string(),
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
        let target = self.target(&spec).map_err(EngineError::Target)?;
        let reference = EnvRef {
            app: app.to_string(),
            env: env.to_string(),
            set: String::new(),
        };
        Ok(target.logs(&reference, query).await?)
    }

    /// The directory where the process target keeps `app/env`.
    pub fn process_dir(&self, app: &str, env: &str) -> PathBuf {
        self.inner.process.dir(app, env)
    }

    fn target(&self, spec: &Value) -> Result<Arc<dyn Target>, String> {
        self.inner.target(spec)
    }
}

impl Inner {
    fn target(&self, spec: &Value) -> Result<Arc<dyn Target>, String> {
        use wharf_core::target::{TargetKind, TargetSpec};
        let spec = TargetSpec::parse(spec).map_err(|problems| {
            let list: Vec<String> = problems
                .iter()
                .map(|(path, message)| format!("target{path}: {message}"))
                .collect();
            format!(
                "the environment type's target is not valid: {}",
                list.join("; ")
            )
        })?;
        Ok(match &spec.kind {
            TargetKind::Process(p) => Arc::new(self.process.with_options(p.into())),
            TargetKind::Gitops(g) => Arc::new(Gitops::from_spec(g, self.sealer.clone())),
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
            .map_err(|e| failure("store", "", format!("the store failed: {e}")))
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
                let _ = tracing::Instrument::instrument(run(&inner, d), span).await;
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

/// One deployment being carried out: its steps as they are written.
struct Run<'a> {
    inner: &'a Inner,
    d: Deployment,
    /// Steps finished but not yet written: written with the next step's start (or the
    /// deployment's end), one store call instead of two. A crash in between leaves the
    /// step `running`, and a resumed deployment runs it again, as it must anyway.
    unwritten: Vec<usize>,
}

impl Run<'_> {
    fn position(&self, name: &str) -> usize {
        self.d
            .steps
            .iter()
            .position(|s| s.name == name)
            .expect("the deployment has every step of its kind")
    }

    /// The journal of this deployment's resources: the store, with each entry announced.
    fn journal(&self) -> EventJournal<'_> {
        EventJournal {
            inner: StoreJournal::new(
                self.inner.store.clone(),
                self.inner.sealer.clone(),
                &self.d.app,
                &self.d.env,
                self.d.id,
            ),
            engine: self.inner,
            d: &self.d,
        }
    }

    /// Whether the deployment has step `name` (one stored before the step existed has not).
    fn has(&self, name: &str) -> bool {
        self.d.steps.iter().any(|s| s.name == name)
    }

    async fn write_step(&mut self, position: usize) -> Result<(), StepError> {
        self.write(Some(position), None).await
    }

    /// Writes the unwritten steps, step `position`, and the deployment's end, in one
    /// transaction; then announces them.
    async fn write(
        &mut self,
        position: Option<usize>,
        end: Option<(Status, Option<Value>)>,
    ) -> Result<(), StepError> {
        let mut positions = std::mem::take(&mut self.unwritten);
        positions.extend(position);
        positions.dedup();
        let steps: Vec<(usize, deployments::Step)> = positions
            .iter()
            .map(|p| (*p, self.d.steps[*p].clone()))
            .collect();
        let (app, env, id) = (self.d.app.clone(), self.d.env.clone(), self.d.id);
        let written = steps.clone();
        let status = end.clone();
        self.inner
            .store(move |tx| {
                for (p, step) in &written {
                    deployments::set_step(tx, &app, &env, id, *p, step)?;
                }
                if let Some((status, error)) = status {
                    deployments::set_status(tx, &app, &env, id, status, error.as_ref(), now_ms())?;
                }
                Ok(())
            })
            .await?;
        for (position, step) in steps {
            self.inner.emit(
                &self.d,
                What::Step {
                    position,
                    name: step.name,
                    status: step.status.as_str().into(),
                    detail: step.detail,
                    error: step.error,
                    duration_ms: step
                        .started_at_ms
                        .zip(step.finished_at_ms)
                        .map(|(s, f)| f - s),
                },
            );
        }
        Ok(())
    }

    /// Marks step `name` running (written before it acts).
    async fn begin(&mut self, name: &str) -> Result<usize, StepError> {
        let position = self.position(name);
        let step = &mut self.d.steps[position];
        let resumed = step.status == StepStatus::Running || step.status == StepStatus::Done;
        step.status = StepStatus::Running;
        step.started_at_ms.get_or_insert(now_ms());
        step.finished_at_ms = None;
        if resumed {
            step.detail["resumed"] = json!(true);
        }
        self.write_step(position).await?;
        Ok(position)
    }

    async fn done(&mut self, position: usize, detail: Value) -> Result<(), StepError> {
        let step = &mut self.d.steps[position];
        let resumed = step.detail.get("resumed").cloned();
        step.status = StepStatus::Done;
        step.finished_at_ms = Some(now_ms());
        step.detail = detail;
        if let Some(r) = resumed {
            step.detail["resumed"] = r;
        }
        step.error = None;
        self.unwritten.push(position);
        Ok(())
    }

    /// Fails the step at `position` and the deployment; later steps are skipped.
    async fn fail(&mut self, position: usize, error: StepError) {
        let now = now_ms();
        let error_json = json!(error);
        let step = &mut self.d.steps[position];
        step.status = StepStatus::Failed;
        step.finished_at_ms = Some(now);
        step.error = Some(error_json.clone());
        self.unwritten.push(position);
        for later in position + 1..self.d.steps.len() {
            if self.d.steps[later].status == StepStatus::Pending {
                self.d.steps[later].status = StepStatus::Skipped;
                self.unwritten.push(later);
            }
        }
        let mut whole = error_json;
        whole["step"] = json!(self.d.steps[position].name);
        tracing::warn!(step = %self.d.steps[position].name, scope = %error.scope, object = %error.object, message = %error.message, "deployment failed");
        self.finish(Status::Failed, Some(whole)).await;
    }

    async fn finish(&mut self, status: Status, error: Option<Value>) {
        if let Err(e) = self.write(None, Some((status, error.clone()))).await {
            tracing::error!(message = %e.message, "recording the end of a deployment failed");
        }
        self.d.status = status;
        self.inner.emit(
            &self.d,
            What::Status {
                status: status.as_str().into(),
                error,
            },
        );
    }
}

async fn run(inner: &Inner, d: Deployment) {
    let (app, env, id) = (d.app.clone(), d.env.clone(), d.id);
    if let Err(e) = inner
        .store
        .call(move |conn| {
            deployments::set_status(conn, &app, &env, id, Status::Running, None, now_ms())
        })
        .await
    {
        tracing::error!(error = %e, "starting a deployment failed");
        return;
    }
    let mut run = Run {
        inner,
        d,
        unwritten: Vec::new(),
    };
    run.inner.emit(
        &run.d,
        What::Status {
            status: "running".into(),
            error: None,
        },
    );
    let kind = run.d.kind;
    let outcome = match kind {
        Kind::Deploy => deploy(&mut run).await,
        Kind::Delete => delete(&mut run).await,
    };
    match outcome {
        Ok(()) => {
            if kind == Kind::Deploy {
                run.finish(Status::Succeeded, None).await;
            } else {
                // The rows are gone with the environment; listeners still hear the end.
                run.d.status = Status::Succeeded;
                run.inner.emit(
                    &run.d,
                    What::Status {
                        status: "succeeded".into(),
                        error: None,
                    },
                );
            }
        }
        Err((position, error)) => run.fail(position, error).await,
    }
}

/// A failure at a step.
type Failed = (usize, StepError);

/// What a deployment needs from the store before it starts.
struct Context {
    env_type: envs::EnvType,
    workloads: Vec<Workload>,
    definitions: Vec<(resources::Definition, Value)>,
    records: Vec<provisioned::Record>,
}

async fn deploy(run: &mut Run<'_>) -> Result<(), Failed> {
    let position = run.begin("resolve").await.map_err(|e| (0, e))?;
    let at = |e| (position, e);
    let (app, env, set_id) = (run.d.app.clone(), run.d.env.clone(), run.d.set_id.clone());
    let sealer = run.inner.sealer.clone();
    let context = run
        .inner
        .store(move |conn| {
            let Some(environment) = envs::get(conn, &app, &env)? else {
                return Ok(Err(failure(
                    "environment",
                    format!("{app}/{env}"),
                    "the environment is gone",
                )));
            };
            let Some(env_type) = envs::get_type(conn, environment.env_type.as_str())? else {
                return Ok(Err(failure(
                    "environment",
                    environment.env_type.to_string(),
                    "the environment type is gone",
                )));
            };
            let Some(set) = sets::get(conn, &app, &set_id)? else {
                return Ok(Err(failure("set", set_id, "the set is not stored")));
            };
            let definitions = resources::list_definitions(conn)?
                .into_iter()
                .map(|d| {
                    let inputs = resources::driver_inputs(&sealer, &d)?;
                    Ok((d, inputs))
                })
                .collect::<Result<Vec<_>, wharf_store::Error>>()?;
            let records = provisioned::list(conn, &sealer, &app, &env)?;
            Ok(Ok((env_type, set.body, definitions, records)))
        })
        .await
        .map_err(at)?
        .map_err(at)?;
    let (env_type, body, definitions, records) = context;
    let set = Set::from_stored(body).map_err(|e| {
        at(failure(
            "set",
            &run.d.set_id,
            format!("the stored set cannot be read: {e}"),
        ))
    })?;
    let context = Context {
        env_type,
        workloads: set.workloads.into_values().collect(),
        definitions,
        records,
    };
    let mut graph = graph::build_with(&context.workloads, &context.env_type.resources)
        .map_err(|e| at(failure("set", &run.d.set_id, e.to_string())))?;
    let refs: Vec<DefinitionRef> = context
        .definitions
        .iter()
        .map(|(d, inputs)| DefinitionRef {
            id: d.id.clone(),
            res_type: d.res_type.clone(),
            criteria: serde_json::from_value(d.body["criteria"].clone()).unwrap_or_default(),
            inputs: inputs.clone(),
        })
        .collect();
    let env_type_id = context.env_type.id.to_string();
    let chosen = graph::match_definitions(&mut graph, &refs, &run.d.app, &run.d.env, &env_type_id)
        .map_err(|errors| {
            let first = &errors[0];
            let message = errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            at(failure("resource", first.object(), message))
        })?;
    let mut assignments = BTreeMap::new();
    for (uid, definition) in &chosen {
        let (d, inputs) = context
            .definitions
            .iter()
            .find(|(d, _)| d.id == *definition)
            .expect("a chosen definition is one of them");
        let node = &graph.nodes[uid];
        allowed_params(node, d).map_err(|m| at(failure("resource", uid, m)))?;
        let rewritten = graph::definition_inputs(inputs, &node.id)
            .map_err(|m| at(failure("resource", uid, m)))?
            .rewritten;
        assignments.insert(
            uid.clone(),
            Assignment {
                definition: d.id.clone(),
                driver: d.driver.clone(),
                config: Values {
                    values: rewritten["values"].clone(),
                    secrets: rewritten["secrets"].clone(),
                },
            },
        );
    }
    let plan_detail: BTreeMap<&String, Value> = assignments
        .iter()
        .map(|(uid, a)| {
            (
                uid,
                json!({ "definition": a.definition, "driver": a.driver }),
            )
        })
        .collect();
    run.done(position, json!({ "resources": plan_detail }))
        .await
        .map_err(at)?;

    let position = run.begin("provision").await.map_err(|e| (position, e))?;
    let at = |e| (position, e);
    let previous: BTreeMap<String, Value> = context
        .records
        .iter()
        .filter_map(|r| Some((r.uid.clone(), r.state.clone()?)))
        .collect();
    let finished: BTreeMap<String, Outputs> = context
        .records
        .iter()
        .filter(|r| r.deployment == run.d.id && r.status == provisioned::Status::Done)
        .map(|r| (r.uid.clone(), outputs_of(r)))
        .collect();
    let workloads: BTreeMap<String, Workload> = context
        .workloads
        .iter()
        .map(|w| (w.name().to_string(), w.clone()))
        .collect();
    let plan = Plan {
        graph: &graph,
        workloads: &workloads,
        assignments: &assignments,
        previous: &previous,
        finished: &finished,
        app: &run.d.app,
        env: &run.d.env,
        env_type: &env_type_id,
    };
    let journal = run.journal();
    let outputs = provision::run(
        &plan,
        run.inner.drivers.as_ref(),
        &journal,
        run.inner.settings.limits,
    )
    .await
    .map_err(|e| match &e {
        provision::ProvisionError::Node { uid, .. }
        | provision::ProvisionError::Journal { uid, .. } => {
            at(failure("resource", uid, e.to_string()))
        }
        provision::ProvisionError::Unassigned(uid) => at(failure("resource", uid, e.to_string())),
    })?;
    run.done(
        position,
        json!({ "resources": outputs.len(), "finished_before_restart": finished.len() }),
    )
    .await
    .map_err(at)?;

    let position = run.begin("render").await.map_err(|e| (position, e))?;
    let at = |e| (position, e);
    let images: BTreeMap<String, String> =
        serde_json::from_value(run.d.images.clone()).unwrap_or_default();
    let mut objects =
        render_all(&run.d, &context.workloads, &graph, &outputs, &images).map_err(at)?;
    run.done(position, json!({ "objects": objects.len() }))
        .await
        .map_err(at)?;

    let position = run.begin("transform").await.map_err(|e| (position, e))?;
    let at = |e| (position, e);
    let transform_context = TransformContext {
        app: run.d.app.clone(),
        env: run.d.env.clone(),
        env_type: env_type_id.clone(),
    };
    for installation in &context.env_type.transformers {
        objects = run
            .inner
            .transformers
            .transform(installation, transform_context.clone(), objects)
            .await
            .map_err(|e| at(failure("transformer", installation, e.to_string())))?;
    }
    run.done(
        position,
        json!({ "transformers": context.env_type.transformers, "objects": objects.len() }),
    )
    .await
    .map_err(at)?;

    let position = run.begin("apply").await.map_err(|e| (position, e))?;
    let at = |e| (position, e);
    let target = run
        .inner
        .target(&context.env_type.target)
        .map_err(|m| at(failure("target", &env_type_id, m)))?;
    let reference = EnvRef {
        app: run.d.app.clone(),
        env: run.d.env.clone(),
        set: run.d.set_id.clone(),
    };
    let applied = target
        .apply(&reference, &objects)
        .await
        .map_err(|e| at(failure("target", target.kind(), e.to_string())))?;
    run.done(
        position,
        json!({
            "target": target.kind(),
            "changed": applied.changed,
            "pruned": applied.pruned,
            "ignored": applied.ignored,
            "location": applied.location,
        }),
    )
    .await
    .map_err(at)?;

    let position = run.begin("verify").await.map_err(|e| (position, e))?;
    let at = |e| (position, e);
    let timeout = context.env_type.target["ready_timeout_seconds"]
        .as_u64()
        .map_or(run.inner.settings.ready_timeout, Duration::from_secs);
    let statuses = target
        .verify(&reference, timeout)
        .await
        .map_err(|e| at(failure("workload", "", e.to_string())))?;
    run.done(position, json!({ "workloads": statuses }))
        .await
        .map_err(at)?;

    if run.has("prune") {
        let position = run.begin("prune").await.map_err(|e| (position, e))?;
        let at = |e| (position, e);
        let detail = if target.confirms_ready() {
            // The set serves: a failure here is reported, and the deployment stands.
            prune(run, &context, &assignments, &outputs, &env_type_id)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(message = %e.message, "pruning failed");
                    json!({ "deprovisioned": [], "error": e.message })
                })
        } else {
            let unused: Vec<&String> = context
                .records
                .iter()
                .filter(|r| !assignments.contains_key(&r.uid))
                .map(|r| &r.uid)
                .collect();
            json!({
                "deprovisioned": [],
                "kept": unused,
                "reason": format!(
                    "the {} target cannot tell when the set it replaced stops serving, so \
                     what only that set used stays until the environment is deleted (or \
                     the environment type's target says \"prune\": true)",
                    target.kind()
                ),
            })
        };
        run.done(position, detail).await.map_err(at)?;
    }
    Ok(())
}

/// Deprovisions the resources of the environment that the deployed set no longer uses
/// (the new set serves without them). What cannot be deprovisioned stays, marked failed
/// with the reason in `wharf status`, and the next deployment tries again; the deployment
/// itself has succeeded.
async fn prune(
    run: &Run<'_>,
    context: &Context,
    assignments: &BTreeMap<String, Assignment>,
    outputs: &BTreeMap<String, Outputs>,
    env_type: &str,
) -> Result<Value, StepError> {
    let mut orphans: Vec<&provisioned::Record> = context
        .records
        .iter()
        .filter(|r| !assignments.contains_key(&r.uid))
        .collect();
    if orphans.is_empty() {
        return Ok(json!({ "deprovisioned": [] }));
    }
    // An unused resource whose driver gave the same outputs as one in use is that same
    // thing under another name (a renamed workload or resource id that kept its database
    // name, say): its record is forgotten, and the thing itself is not touched.
    let mut forgotten = BTreeMap::new();
    for r in &orphans {
        let same = outputs.iter().find(|(uid, o)| {
            assignments.get(*uid).is_some_and(|a| a.driver == r.driver)
                && !o.values.is_empty()
                && r.outputs.as_object() == Some(&o.values)
        });
        if let Some((uid, _)) = same {
            forgotten.insert(r.uid.clone(), format!("the same as {uid}, which is in use"));
        }
    }
    // A definition that says so keeps what it provisioned where it is: forgotten too.
    let orphaning: BTreeSet<&str> = context
        .definitions
        .iter()
        .filter(|(d, _)| resources::orphans_on_deletion(d))
        .map(|(d, _)| d.id.as_str())
        .collect();
    for r in &orphans {
        if !forgotten.contains_key(&r.uid) && orphaning.contains(r.definition.as_str()) {
            forgotten.insert(
                r.uid.clone(),
                format!(
                    "orphaned: definition {} keeps what it provisioned (deletion_policy orphan)",
                    r.definition
                ),
            );
        }
    }
    if !forgotten.is_empty() {
        let (app, env) = (run.d.app.clone(), run.d.env.clone());
        let uids: Vec<String> = forgotten.keys().cloned().collect();
        run.inner
            .store(move |conn| {
                for uid in &uids {
                    provisioned::delete(conn, &app, &env, uid)?;
                }
                Ok(())
            })
            .await?;
        orphans.retain(|r| !forgotten.contains_key(&r.uid));
    }
    let inputs: BTreeMap<String, Value> = context
        .definitions
        .iter()
        .map(|(d, inputs)| (d.id.clone(), inputs.clone()))
        .collect();
    let mut failed = BTreeMap::new();
    let mut doomed = Vec::new();
    for prepared in to_deprovision(&orphans, &inputs, &context.records, "") {
        match prepared {
            Ok(p) => doomed.push(p),
            Err((uid, message)) => {
                failed.insert(uid, message);
            }
        }
    }
    // What an orphan that stays depends on stays too.
    let orphan_uids: BTreeSet<&str> = orphans.iter().map(|r| r.uid.as_str()).collect();
    loop {
        let kept: BTreeSet<String> = orphans
            .iter()
            .filter(|r| failed.contains_key(&r.uid))
            .flat_map(|r| r.depends_on.iter())
            .filter(|uid| orphan_uids.contains(uid.as_str()) && !failed.contains_key(*uid))
            .cloned()
            .collect();
        if kept.is_empty() {
            break;
        }
        for uid in kept {
            failed.insert(
                uid,
                "kept: a resource the set no longer uses, which stays, depends on it".into(),
            );
        }
    }
    doomed.retain(|p| !failed.contains_key(&p.uid));
    let journal = run.journal();
    // What could not be prepared is marked failed, with the reason, where status shows it.
    for r in &orphans {
        let Some(message) = failed.get(&r.uid) else {
            continue;
        };
        if message.starts_with("kept: ") {
            continue;
        }
        let depends_on: BTreeSet<String> = r.depends_on.iter().cloned().collect();
        journal
            .record(Entry {
                uid: &r.uid,
                operation: provision::Operation::Deprovision,
                definition: &r.definition,
                driver: &r.driver,
                depends_on: &depends_on,
                params: &r.params,
                progress: &Progress::Failed {
                    message: message.clone(),
                },
            })
            .await
            .map_err(|m| failure("resource", &r.uid, m))?;
    }
    let outcome = provision::deprovision(
        &doomed,
        (&run.d.app, &run.d.env, env_type),
        run.inner.drivers.as_ref(),
        &journal,
        run.inner.settings.limits,
    )
    .await;
    let gone = match outcome {
        Ok(gone) => gone,
        Err(provision::ProvisionError::Journal { uid, message }) => {
            return Err(failure("resource", uid, message));
        }
        Err(e) => {
            let uid = match &e {
                provision::ProvisionError::Node { uid, .. }
                | provision::ProvisionError::Unassigned(uid) => uid.clone(),
                provision::ProvisionError::Journal { .. } => unreachable!("handled above"),
            };
            failed.insert(uid, e.to_string());
            // The rows of what was deprovisioned before the failure are gone.
            let (app, env, sealer) = (
                run.d.app.clone(),
                run.d.env.clone(),
                run.inner.sealer.clone(),
            );
            let left: BTreeSet<String> = run
                .inner
                .store(move |conn| provisioned::list(conn, &sealer, &app, &env))
                .await?
                .into_iter()
                .map(|r| r.uid)
                .collect();
            doomed
                .iter()
                .filter(|p| !left.contains(&p.uid))
                .map(|p| p.uid.clone())
                .collect()
        }
    };
    // After a failure, what was not tried stays too, for the next deployment.
    for p in &doomed {
        if !gone.contains(&p.uid) && !failed.contains_key(&p.uid) {
            failed.insert(
                p.uid.clone(),
                "kept: not tried after the failure of another; the next deployment tries again"
                    .into(),
            );
        }
    }
    for (uid, message) in &failed {
        tracing::warn!(resource = %uid, %message, "a resource the set no longer uses stays");
    }
    let mut detail = json!({ "deprovisioned": gone, "failed": failed });
    if !forgotten.is_empty() {
        detail["forgotten"] = json!(forgotten);
    }
    Ok(detail)
}

/// What deprovisioning `records` needs: each one with its driver configuration (its
/// definition's driver inputs, by definition id, resolved against the outputs of `all`),
/// or its uid and why it cannot be deprovisioned (`then` ends the advice to recreate a
/// missing definition).
fn to_deprovision(
    records: &[&provisioned::Record],
    inputs: &BTreeMap<String, Value>,
    all: &[provisioned::Record],
    then: &str,
) -> Vec<Result<provision::Provisioned, (String, String)>> {
    let outputs: BTreeMap<String, Outputs> =
        all.iter().map(|r| (r.uid.clone(), outputs_of(r))).collect();
    records
        .iter()
        .map(|r| {
            let fail = |m: String| (r.uid.clone(), m);
            let inputs = inputs.get(&r.definition).ok_or_else(|| {
                fail(format!(
                    "its resource definition {} is gone, so its driver cannot be configured to \
                     deprovision it; create the definition again{then}",
                    r.definition
                ))
            })?;
            let (_, _, id) = split(&r.uid);
            let rewritten = graph::definition_inputs(inputs, id)
                .map_err(fail)?
                .rewritten;
            let config = provision::resolve_config(
                &Values {
                    values: rewritten["values"].clone(),
                    secrets: rewritten["secrets"].clone(),
                },
                &outputs,
            )
            .map_err(fail)?;
            Ok(provision::Provisioned {
                uid: r.uid.clone(),
                definition: r.definition.clone(),
                driver: r.driver.clone(),
                depends_on: r.depends_on.iter().cloned().collect(),
                params: r.params.clone(),
                state: r.state.clone(),
                config,
            })
        })
        .collect()
}

/// Renders every workload with its resources' outputs.
fn render_all(
    d: &Deployment,
    workloads: &[Workload],
    graph: &graph::Graph,
    outputs: &BTreeMap<String, Outputs>,
    images: &BTreeMap<String, String>,
) -> Result<Vec<Value>, StepError> {
    let no_sources = |source: &str| -> Result<Vec<u8>, String> {
        Err(format!(
            "{source:?} was not included when the set was made; `wharf deploy` and `wharf sets \
             create` inline the files that a Score file's `source` names"
        ))
    };
    let ctx = render::Context {
        app: &d.app,
        env: &d.env,
        images,
        read_source: &no_sources,
    };
    let mut objects = Vec::new();
    for w in workloads {
        let names: BTreeMap<String, Outputs> = graph
            .nodes
            .values()
            .flat_map(|n| {
                n.declared_by
                    .iter()
                    .filter(|(wl, _)| wl == w.name())
                    .filter_map(|(_, name)| Some((name.clone(), outputs.get(&n.uid)?.clone())))
            })
            .collect();
        let rendered = render::kubernetes(w, &names, &ctx).map_err(|problems| {
            failure(
                "workload",
                w.name(),
                problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        objects.extend(rendered);
    }
    Ok(objects)
}

fn outputs_of(r: &provisioned::Record) -> Outputs {
    let object = |v: &Value| v.as_object().cloned().unwrap_or_default();
    Outputs {
        uid: r.uid.clone(),
        values: object(&r.outputs),
        secrets: object(&r.secrets),
    }
}

async fn delete(run: &mut Run<'_>) -> Result<(), Failed> {
    let position = run.begin("stop").await.map_err(|e| (0, e))?;
    let at = |e| (position, e);
    let (app, env) = (run.d.app.clone(), run.d.env.clone());
    let sealer = run.inner.sealer.clone();
    let (env_type, records, definitions, orphaning) = run
        .inner
        .store(move |conn| {
            let env_type = match envs::get(conn, &app, &env)? {
                Some(e) => envs::get_type(conn, e.env_type.as_str())?,
                None => None,
            };
            let records = provisioned::list(conn, &sealer, &app, &env)?;
            let mut definitions = BTreeMap::new();
            let mut orphaning = BTreeSet::new();
            for r in &records {
                if !definitions.contains_key(&r.definition)
                    && let Some(d) = resources::get_definition(conn, &r.definition)?
                {
                    if resources::orphans_on_deletion(&d) {
                        orphaning.insert(d.id.clone());
                    }
                    let inputs = resources::driver_inputs(&sealer, &d)?;
                    definitions.insert(r.definition.clone(), inputs);
                }
            }
            Ok((env_type, records, definitions, orphaning))
        })
        .await
        .map_err(at)?;
    let env_type = env_type.ok_or_else(|| {
        at(failure(
            "environment",
            format!("{}/{}", run.d.app, run.d.env),
            "the environment or its type is gone",
        ))
    })?;
    let target = run
        .inner
        .target(&env_type.target)
        .map_err(|m| at(failure("target", env_type.id.to_string(), m)))?;
    let reference = EnvRef {
        app: run.d.app.clone(),
        env: run.d.env.clone(),
        set: String::new(),
    };
    target
        .remove(&reference)
        .await
        .map_err(|e| at(failure("target", target.kind(), e.to_string())))?;
    run.done(position, json!({ "target": target.kind() }))
        .await
        .map_err(at)?;

    let position = run.begin("deprovision").await.map_err(|e| (position, e))?;
    let at = |e| (position, e);
    // What a definition keeps (deletion_policy orphan) is left where it is.
    let (kept, all): (Vec<&provisioned::Record>, Vec<&provisioned::Record>) = records
        .iter()
        .partition(|r| orphaning.contains(&r.definition));
    let orphaned: Vec<&String> = kept.iter().map(|r| &r.uid).collect();
    let doomed = to_deprovision(
        &all,
        &definitions,
        &records,
        ", then delete the environment",
    )
    .into_iter()
    .map(|prepared| prepared.map_err(|(uid, message)| at(failure("resource", uid, message))))
    .collect::<Result<Vec<_>, _>>()?;
    let journal = run.journal();
    let gone = provision::deprovision(
        &doomed,
        (&run.d.app, &run.d.env, env_type.id.as_str()),
        run.inner.drivers.as_ref(),
        &journal,
        run.inner.settings.limits,
    )
    .await
    .map_err(|e| match &e {
        provision::ProvisionError::Node { uid, .. }
        | provision::ProvisionError::Journal { uid, .. }
        | provision::ProvisionError::Unassigned(uid) => at(failure("resource", uid, e.to_string())),
    })?;
    run.done(
        position,
        json!({ "deprovisioned": &gone, "orphaned": &orphaned }),
    )
    .await
    .map_err(at)?;

    let position = run.begin("remove").await.map_err(|e| (position, e))?;
    let at = |e| (position, e);
    let (app, env) = (run.d.app.clone(), run.d.env.clone());
    // Announced before the rows go: a listener reads the step, then the end.
    run.inner.emit(
        &run.d,
        What::Step {
            position,
            name: "remove".into(),
            status: "done".into(),
            detail: json!({}),
            error: None,
            duration_ms: None,
        },
    );
    // The deployment's rows go with the environment; the audit log keeps what it did.
    let event = wharf_store::audit::Event {
        seq: 0,
        at: now_ms() / 1000,
        principal: run.d.created_by.clone(),
        action: "environments.deleted".into(),
        target: format!("env:{app}/{env}"),
        detail: json!({ "deployment": run.d.id, "deprovisioned": gone, "orphaned": orphaned }),
    };
    run.inner
        .store(move |tx| {
            envs::delete(tx, &app, &env)?;
            wharf_store::audit::record(tx, &event)?;
            // An app being deleted goes with its last environment.
            if wharf_store::apps::delete_if_done(tx, &app)? {
                wharf_store::audit::record(
                    tx,
                    &wharf_store::audit::Event {
                        action: "apps.deleted".into(),
                        target: format!("app:{app}"),
                        detail: json!({ "last_environment": env }),
                        ..event.clone()
                    },
                )?;
            }
            Ok(())
        })
        .await
        .map_err(at)?;
    Ok(())
}

/// Checks that the params a workload gave a resource are ones its definition lets
/// through (`allow_params`; every param but `name` when absent).
fn allowed_params(node: &graph::Node, definition: &resources::Definition) -> Result<(), String> {
    let Some(params) = node.params.as_ref().and_then(Value::as_object) else {
        return Ok(());
    };
    let listed: Option<Vec<&str>> = definition.body["allow_params"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    for key in params.keys() {
        let allowed = match &listed {
            Some(list) => list.contains(&key.as_str()),
            None => key != "name",
        };
        if !allowed {
            let lets = match &listed {
                Some(list) if list.is_empty() => "no params".to_string(),
                Some(list) => list.join(", "),
                None => "every param but name".to_string(),
            };
            return Err(format!(
                "params.{key}: resource definition {} does not let workloads set it (it lets \
                 {lets}); leave it out, or ask ops to add it to the definition's allow_params",
                definition.id
            ));
        }
    }
    Ok(())
}

fn split(uid: &str) -> (&str, &str, &str) {
    let (type_class, id) = uid.split_once('#').unwrap_or((uid, ""));
    let (res_type, class) = type_class.split_once('.').unwrap_or((type_class, ""));
    (res_type, class, id)
}

/// The store journal, announcing each step as an event.
struct EventJournal<'a> {
    inner: StoreJournal,
    engine: &'a Inner,
    d: &'a Deployment,
}

impl Journal for EventJournal<'_> {
    fn record<'a>(&'a self, entry: Entry<'a>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.inner.record(entry).await?;
            let (status, message) = match entry.progress {
                Progress::InProgress { message, .. } => ("in-progress", message.clone()),
                Progress::Retrying { message, .. } => ("retrying", message.clone()),
                Progress::Done { .. } => ("done", String::new()),
                Progress::Failed { message } => ("failed", message.clone()),
            };
            let status = match entry.operation {
                provision::Operation::Provision => status.to_string(),
                provision::Operation::Deprovision => format!("deprovision-{status}"),
            };
            self.engine.emit(
                self.d,
                What::Resource {
                    uid: entry.uid.to_string(),
                    status,
                    message,
                },
            );
            Ok(())
        })
    }
}
