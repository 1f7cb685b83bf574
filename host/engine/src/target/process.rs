//! The `process` target, Wharf's embedded default: it runs each environment's workloads
//! as local processes, from the same Kubernetes objects the other targets get (so the
//! environment type's transformers apply here too).
//!
//! A Deployment's containers each become one supervised process: `command` then `args`
//! are run (a container without a command is refused: this target runs commands, not
//! images), with the container's environment (values, and keys of the rendered Secrets
//! and ConfigMaps), in a directory of its own that stands for the container's file
//! system: a file mounted at `/app/config.yaml` is written to `DIR/app/config.yaml`, and
//! any argument or variable that names a mounted path is rewritten to where it really is.
//! `emptyDir` volumes are directories of the environment, `hostPath` volumes links to the
//! path. Nothing else of the host is passed on: the environment holds only `PATH`,
//! `HOME` (the container's directory) and what the workload sets.
//!
//! Ports: each Service port of a workload gets a local port on 127.0.0.1, kept across
//! deployments of the environment when it is still free. The process learns it from
//! `PORT` (the first TCP port by name) and `WHARF_PORT_<NAME>` (each port); these win
//! over the workload's own values, because a Score file's ports are the cluster's, not
//! this machine's. A readiness probe on a service's target port is sent to the local
//! port.
//!
//! Readiness: the container's readiness probe (`httpGet` as an HTTP/1.1 GET that must
//! answer 2xx or 3xx, HTTPS probed as a TCP connection; `exec` as a command that must exit
//! 0), else every TCP service port accepting connections, else the process staying up for
//! a second. A process that exits is restarted with exponential backoff (0.5 s doubling to
//! 30 s, reset after a minute of running); a failing liveness probe (three in a row,
//! every ten seconds) restarts it too.
//!
//! Apply replaces only what changed: a workload whose resolved spec (commands,
//! environment, files, ports) is the same keeps its processes; a changed one is stopped
//! (SIGTERM to its process group, SIGKILL after five seconds) and started anew; one that
//! is gone is stopped. Everything is checked before anything is stopped, so objects this
//! target cannot run leave the previous deployment running.
//!
//! Logs: each container's stdout and stderr go to `logs/WORKLOAD.CONTAINER.log` in the
//! environment's directory (16 MiB, then one older file), with Wharf's own notes (start,
//! exit, restart) as lines starting `[wharf]`.
//!
//! Crash safety: the desired objects of each environment are kept sealed (they hold
//! secrets) in its directory, and each process's pid and start time in a file; when Wharf
//! starts, [`Process::restore`] stops processes left by a Wharf that was killed and starts
//! every environment again.

use super::{Applied, BoxFuture, EnvRef, LogQuery, LogStream, Target, TargetError, WorkloadStatus};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wharf_core::status::WorkloadState;
use wharf_store::secrets::Sealer;

mod confine;
mod files;
mod logs;
mod plan;
mod probe;
mod spec;
mod supervise;

pub use confine::{Confinement, User, server_is_root, shield_server};
use files::{materialize, read_ports, restrict, write_atomic};
use logs::read_logs;
use plan::plan;
use spec::{WorkloadSpec, digest};
use supervise::{Supervised, kill_orphans, start, stop_workload, workload_status};

/// Where the process target keeps what, and how it confines workloads.
#[derive(Debug, Clone)]
pub struct ProcessSettings {
    /// Each environment's own state (its objects, sealed; logs; pids), the server's only:
    /// `DATA/envs`.
    pub state: PathBuf,
    /// Each environment's containers and volumes, what its workloads see: `DATA/workloads`,
    /// or, when workloads run as another user (who could not pass the data directory),
    /// a directory of their own outside it.
    pub workloads: PathBuf,
    /// How workloads are confined.
    pub confinement: Confinement,
}

impl ProcessSettings {
    /// The settings for a server whose data directory is `data`: workloads as the
    /// server's user, or as `user` when the server runs as root, confined as this machine
    /// allows.
    pub fn for_data_dir(data: &Path, user: Option<User>) -> Self {
        let workloads = match &user {
            None => data.join("workloads"),
            Some(_) => {
                // Every directory above a workload's must be passable by its user: the
                // data directory (0700, often under a home directory) is not.
                let real = std::fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
                let id = hex::encode(&Sha256::digest(real.as_os_str().as_encoded_bytes())[..8]);
                PathBuf::from("/var/lib/wharf/workloads").join(id)
            }
        };
        Self::new(data.join("envs"), workloads, user, data)
    }

    /// The settings with the state under `state` and the workloads under `workloads`,
    /// run as `user` (`None`: as the server), kept out of `data` and of each other.
    pub fn new(state: PathBuf, workloads: PathBuf, user: Option<User>, data: &Path) -> Self {
        let _ = std::fs::create_dir_all(&workloads);
        let confinement = Confinement::probe(user, &[data, &state, &workloads]);
        Self {
            state,
            workloads,
            confinement,
        }
    }
}

/// What an environment type says of its process target (`{"kind": "process", ...}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Options {
    /// Run the workloads even where they cannot be confined, and without confinement
    /// where they could be: ops' explicit choice, for workloads that need the machine.
    #[serde(default)]
    pub unconfined: bool,
    /// More directories the workloads may read and execute from (a language runtime
    /// installed outside the system directories, say).
    #[serde(default)]
    pub read_only: Vec<PathBuf>,
}

impl From<&wharf_core::target::ProcessSpec> for Options {
    fn from(spec: &wharf_core::target::ProcessSpec) -> Self {
        Self {
            unconfined: spec.unconfined,
            read_only: spec.read_only.clone(),
        }
    }
}

/// Runs workloads as local processes: their state under `DATA/envs`, their files under
/// the workloads' root.
pub struct Process {
    root: PathBuf,
    workloads: PathBuf,
    confinement: Arc<Confinement>,
    sealer: Sealer,
    envs: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Env>>>>,
}

/// What runs in one environment.
#[derive(Default)]
struct Env {
    workloads: BTreeMap<String, Running>,
}

/// One workload's processes.
struct Running {
    spec: WorkloadSpec,
    digest: String,
    containers: Vec<Supervised>,
}

/// The file that marks an environment paused, in its state directory.
const PAUSED: &str = "paused";

fn key(env: &EnvRef) -> String {
    format!("{}/{}", env.app, env.env)
}

fn object_error(index: usize, reason: impl Into<String>) -> TargetError {
    TargetError::Object {
        index,
        reason: reason.into(),
    }
}

fn system(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TargetError {
    let what = what.into();
    move |source| TargetError::System { what, source }
}

impl Process {
    /// A target with `settings`; desired objects are sealed with `sealer`.
    pub fn new(settings: &ProcessSettings, sealer: Sealer) -> Self {
        if let Some(why) = &settings.confinement.unavailable {
            tracing::warn!(
                reason = %why,
                "the process target cannot confine workloads; it will start only those of \
                 environment types that say \"unconfined\": true"
            );
        }
        if let Some(user) = &settings.confinement.user {
            tracing::info!(
                user = %user.name,
                uid = user.uid,
                workloads = %settings.workloads.display(),
                "workloads run as an unprivileged user"
            );
        }
        Self {
            root: settings.state.clone(),
            workloads: settings.workloads.clone(),
            confinement: Arc::new(settings.confinement.clone()),
            sealer,
            envs: Mutex::new(HashMap::new()),
        }
    }

    /// The directory of an environment's state.
    pub fn dir(&self, app: &str, env: &str) -> PathBuf {
        self.root.join(app).join(env)
    }

    /// The directory of an environment's containers and volumes.
    pub fn run_dir(&self, app: &str, env: &str) -> PathBuf {
        self.workloads.join(app).join(env)
    }

    /// This target for one environment type, with its options.
    pub fn with_options(self: &Arc<Self>, options: Options) -> ProcessTarget {
        ProcessTarget {
            process: self.clone(),
            options,
        }
    }

    fn env(&self, env: &EnvRef) -> Arc<tokio::sync::Mutex<Env>> {
        self.envs
            .lock()
            .expect("never poisoned")
            .entry(key(env))
            .or_default()
            .clone()
    }

    fn seal_context(env: &EnvRef) -> String {
        format!("process/desired:{}/{}", env.app, env.env)
    }

    /// Starts again every environment a previous Wharf left: stops the processes it
    /// left running (when they are still the ones it started), then applies the
    /// environment's last objects. Returns the environments restored.
    pub async fn restore(&self) -> Vec<(String, String)> {
        let mut restored = Vec::new();
        let Ok(apps) = std::fs::read_dir(&self.root) else {
            return restored;
        };
        for app in apps.filter_map(Result::ok) {
            let Ok(envs) = std::fs::read_dir(app.path()) else {
                continue;
            };
            for env in envs.filter_map(Result::ok) {
                let (Some(app), Some(name)) = (
                    app.file_name().to_str().map(str::to_string),
                    env.file_name().to_str().map(str::to_string),
                ) else {
                    continue;
                };
                let dir = env.path();
                kill_orphans(&dir.join("workloads")).await;
                if dir.join(PAUSED).exists() {
                    continue;
                }
                let reference = EnvRef {
                    app: app.clone(),
                    env: name.clone(),
                    set: String::new(),
                    deployment: 0,
                };
                let objects = match std::fs::read(dir.join("desired.sealed")) {
                    Ok(sealed) => {
                        match self.sealer.open(&sealed, &Self::seal_context(&reference)) {
                            Ok(bytes) => serde_json::from_slice::<Vec<Value>>(&bytes).ok(),
                            Err(_) => None,
                        }
                    }
                    Err(_) => None,
                };
                let Some(objects) = objects else {
                    tracing::warn!(app = %app, env = %name, "no readable desired state; not restarted");
                    continue;
                };
                let options: Options = std::fs::read(dir.join("options.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                match self.apply_now(&reference, &objects, &options).await {
                    Ok(_) => restored.push((app, name)),
                    Err(e) => {
                        tracing::warn!(app = %app, env = %name, error = %e, "restarting the environment failed")
                    }
                }
            }
        }
        restored
    }

    /// Stops every process (on shutdown); what they run is kept, for [`Process::restore`].
    pub async fn shutdown(&self) {
        let envs: Vec<_> = self
            .envs
            .lock()
            .expect("never poisoned")
            .values()
            .cloned()
            .collect();
        for env in envs {
            let mut env = env.lock().await;
            let workloads = std::mem::take(&mut env.workloads);
            futures_util::future::join_all(workloads.into_values().map(stop_workload)).await;
        }
    }

    async fn apply_now(
        &self,
        env: &EnvRef,
        objects: &[Value],
        options: &Options,
    ) -> Result<Applied, TargetError> {
        if let (Some(why), false) = (&self.confinement.unavailable, options.unconfined) {
            return Err(TargetError::Unsupported(format!(
                "the process target cannot confine workloads on this machine ({why}), so it \
                 starts none; an environment type whose workloads may run unconfined says \
                 \"unconfined\": true in its target"
            )));
        }
        let shared = self.env(env);
        let mut running = shared.lock().await;
        let dir = self.dir(&env.app, &env.env);
        let run = self.run_dir(&env.app, &env.env);
        let previous_ports = read_ports(&dir);
        let in_use: Vec<u16> = running
            .workloads
            .values()
            .flat_map(|w| w.spec.ports.iter().map(|p| p.local))
            .collect();
        let (specs, ignored) = plan(objects, &dir, &run, options, &previous_ports, &in_use)?;
        std::fs::create_dir_all(&dir).map_err(system(format!("creating {}", dir.display())))?;
        restrict(&dir);
        // An apply runs the environment again, paused or not.
        let _ = std::fs::remove_file(dir.join(PAUSED));
        write_atomic(
            &dir.join("options.json"),
            &serde_json::to_vec(options).expect("options serialize"),
        )?;
        let sealed = self.sealer.seal(
            &serde_json::to_vec(objects).expect("JSON values serialize"),
            &Self::seal_context(env),
        );
        write_atomic(&dir.join("desired.sealed"), &sealed)?;
        let ports: BTreeMap<String, u16> = specs
            .values()
            .flat_map(|w| {
                w.ports
                    .iter()
                    .map(move |p| (format!("{}/{}", w.name, p.name), p.local))
            })
            .collect();
        write_atomic(
            &dir.join("ports.json"),
            &serde_json::to_vec_pretty(&ports).expect("ports serialize"),
        )?;
        let digests: BTreeMap<String, String> =
            specs.iter().map(|(n, s)| (n.clone(), digest(s))).collect();
        let mut changed = Vec::new();
        let mut pruned = Vec::new();
        let names: Vec<String> = running.workloads.keys().cloned().collect();
        for name in names {
            let keep = digests.get(&name) == Some(&running.workloads[&name].digest);
            if !keep {
                let old = running.workloads.remove(&name).expect("listed");
                stop_workload(old).await;
                let _ = std::fs::remove_dir_all(dir.join("workloads").join(&name));
                let _ = std::fs::remove_dir_all(run.join("workloads").join(&name));
                let _ = std::fs::remove_dir_all(run.join("volumes").join(&name));
                if !specs.contains_key(&name) {
                    pruned.push(format!("Deployment/{name}"));
                }
            }
        }
        for (name, spec) in specs {
            if running.workloads.contains_key(&name) {
                continue;
            }
            materialize(&spec, &self.workloads, &self.confinement)?;
            let containers = spec
                .containers
                .iter()
                .map(|c| start(Arc::new(c.clone()), self.confinement.clone()))
                .collect();
            changed.push(format!("Deployment/{name}"));
            running.workloads.insert(
                name.clone(),
                Running {
                    digest: digests[&name].clone(),
                    spec,
                    containers,
                },
            );
        }
        Ok(Applied {
            changed,
            pruned,
            ignored,
            location: dir.display().to_string(),
        })
    }

    async fn status_now(&self, env: &EnvRef) -> Vec<WorkloadStatus> {
        let shared = self.env(env);
        let running = shared.lock().await;
        let mut out = Vec::new();
        for w in running.workloads.values() {
            out.push(workload_status(w).await);
        }
        out
    }

    async fn verify_now(
        &self,
        env: &EnvRef,
        timeout: Duration,
    ) -> Result<Vec<WorkloadStatus>, TargetError> {
        let deadline = Instant::now() + timeout;
        loop {
            let statuses = self.status_now(env).await;
            if statuses.iter().all(|s| s.ready) {
                return Ok(statuses);
            }
            let stuck = statuses.iter().find(|s| s.state == WorkloadState::Failed);
            if let Some(s) = stuck.or_else(|| {
                (Instant::now() >= deadline)
                    .then(|| statuses.iter().find(|s| !s.ready))
                    .flatten()
            }) {
                let reason = s.reason.clone().unwrap_or_else(|| s.state.to_string());
                return Err(TargetError::NotReady(if s.state == WorkloadState::Failed {
                    format!("workload {} cannot run: {reason}", s.name)
                } else {
                    format!(
                        "workload {} is not ready after {}s: {reason}",
                        s.name,
                        timeout.as_secs()
                    )
                }));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops every process of the environment and marks it paused (a restarted Wharf
    /// leaves it stopped); its directories, volumes and desired state stay.
    async fn pause_now(&self, env: &EnvRef) -> Result<(), TargetError> {
        let shared = self.env(env);
        let mut running = shared.lock().await;
        let dir = self.dir(&env.app, &env.env);
        if dir.exists() {
            write_atomic(&dir.join(PAUSED), b"paused\n")?;
        }
        let workloads = std::mem::take(&mut running.workloads);
        futures_util::future::join_all(workloads.into_values().map(stop_workload)).await;
        kill_orphans(&dir.join("workloads")).await;
        Ok(())
    }

    async fn remove_now(&self, env: &EnvRef) -> Result<(), TargetError> {
        let shared = self.env(env);
        {
            let mut running = shared.lock().await;
            let workloads = std::mem::take(&mut running.workloads);
            futures_util::future::join_all(workloads.into_values().map(stop_workload)).await;
            let dir = self.dir(&env.app, &env.env);
            kill_orphans(&dir.join("workloads")).await;
            for dir in [dir, self.run_dir(&env.app, &env.env)] {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(system(format!("removing {}", dir.display())))?;
                }
            }
            let _ = std::fs::remove_dir(self.root.join(&env.app));
            let _ = std::fs::remove_dir(self.workloads.join(&env.app));
        }
        self.envs.lock().expect("never poisoned").remove(&key(env));
        Ok(())
    }

    /// Opens the environment's logs; the files are read on the blocking pool.
    async fn logs_now(&self, env: &EnvRef, query: LogQuery) -> Result<LogStream, TargetError> {
        let dir = self.dir(&env.app, &env.env).join("logs");
        let env = env.clone();
        tokio::task::spawn_blocking(move || read_logs(&dir, &env, &query))
            .await
            .map_err(|e| TargetError::System {
                what: "reading logs".into(),
                source: std::io::Error::other(e),
            })?
    }
}

/// The process target for the environments of one type: the target with that type's
/// options.
pub struct ProcessTarget {
    process: Arc<Process>,
    options: Options,
}

impl std::ops::Deref for ProcessTarget {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}

impl Target for ProcessTarget {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn apply<'a>(
        &'a self,
        env: &'a EnvRef,
        objects: &'a [Value],
    ) -> BoxFuture<'a, Result<Applied, TargetError>> {
        Box::pin(self.process.apply_now(env, objects, &self.options))
    }

    fn verify<'a>(
        &'a self,
        env: &'a EnvRef,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<WorkloadStatus>, TargetError>> {
        Box::pin(self.verify_now(env, timeout))
    }

    fn status<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Vec<WorkloadStatus>> {
        Box::pin(self.status_now(env))
    }

    fn logs<'a>(
        &'a self,
        env: &'a EnvRef,
        query: LogQuery,
    ) -> BoxFuture<'a, Result<LogStream, TargetError>> {
        Box::pin(self.logs_now(env, query))
    }

    fn pause<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(self.pause_now(env))
    }

    fn remove<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(self.remove_now(env))
    }
}
