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

use super::{
    Applied, BoxFuture, ContainerStatus, EnvRef, LogQuery, LogStream, Target, TargetError,
    WorkloadStatus,
};
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use wharf_store::secrets::Sealer;

mod confine;

use confine::Reach;
pub use confine::{Confinement, User, server_is_root, shield_server};

/// How long a stopped process gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);
/// A log file is rotated when it grows past this.
const LOG_LIMIT: u64 = 16 << 20;
/// A process without ports or probe is ready once it has run this long.
const SETTLE: Duration = Duration::from_secs(1);
/// A process that ran this long starts its restart backoff afresh.
const STABLE: Duration = Duration::from_secs(60);

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

impl Options {
    /// The options in an environment type's target; unknown fields are refused.
    pub fn from_spec(spec: &Value) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Spec {
            #[allow(dead_code)]
            kind: String,
            #[serde(flatten)]
            options: Options,
        }
        let parsed: Spec =
            serde_json::from_value(spec.clone()).map_err(|e| format!("the process target: {e}"))?;
        if let Some(p) = parsed.options.read_only.iter().find(|p| !p.is_absolute()) {
            return Err(format!(
                "the process target: read_only: {} is not an absolute path",
                p.display()
            ));
        }
        Ok(parsed.options)
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

/// One container's supervisor.
struct Supervised {
    name: String,
    spec: Arc<ContainerSpec>,
    confinement: Arc<Confinement>,
    state: Arc<Mutex<ContainerState>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// What the supervisor knows of its container.
#[derive(Debug, Default)]
struct ContainerState {
    pid: Option<u32>,
    since: Option<Instant>,
    restarts: u32,
    last_exit: Option<String>,
    spawn_error: Option<String>,
    stopped: bool,
}

/// A workload as this target runs it: everything resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct WorkloadSpec {
    name: String,
    ports: Vec<PortSpec>,
    containers: Vec<ContainerSpec>,
    files: Vec<FileSpec>,
    links: Vec<LinkSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct PortSpec {
    name: String,
    port: u16,
    target: u16,
    protocol: String,
    local: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct ContainerSpec {
    /// What it may reach beyond the system directories.
    reach: Reach,
    name: String,
    workload: String,
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    readiness: Option<Probe>,
    liveness: Option<Probe>,
    ports: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct FileSpec {
    path: PathBuf,
    digest: String,
    #[serde(skip)]
    bytes: Vec<u8>,
    mode: u32,
}

/// A mounted directory: `link` points at `to` (created when `create`).
#[derive(Debug, Clone, PartialEq, Serialize)]
struct LinkSpec {
    link: PathBuf,
    to: PathBuf,
    create: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
enum Probe {
    Http {
        port: u16,
        path: String,
        host: String,
        tcp_only: bool,
        headers: Vec<(String, String)>,
    },
    Exec {
        command: Vec<String>,
    },
}

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
                let reference = EnvRef {
                    app: app.clone(),
                    env: name.clone(),
                    set: String::new(),
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
            let stuck = statuses.iter().find(|s| s.state == "failed");
            if let Some(s) = stuck.or_else(|| {
                (Instant::now() >= deadline)
                    .then(|| statuses.iter().find(|s| !s.ready))
                    .flatten()
            }) {
                let reason = s.reason.clone().unwrap_or_else(|| s.state.clone());
                return Err(TargetError::NotReady(if s.state == "failed" {
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

/// The first lines of each log under `dir` and, when following, the stream of what comes
/// next.
fn read_logs(dir: &Path, env: &EnvRef, query: &LogQuery) -> Result<LogStream, TargetError> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let stem = name.strip_suffix(".log")?.to_string();
                    Some((stem, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(w) = &query.workload {
        files.retain(|(stem, _)| stem.split_once('.').is_some_and(|(wl, _)| wl == w));
        if files.is_empty() {
            return Err(TargetError::Missing(format!(
                "workload {w} has no logs in {}/{} (is it deployed?)",
                env.app, env.env
            )));
        }
    }
    files.sort();
    let prefix = files.len() > 1;
    let mut first = Vec::new();
    let mut cursors = Vec::new();
    for (stem, path) in files {
        let label = stem.replacen('.', "/", 1);
        let (lines, consumed) = last_lines(&path, query.tail);
        first.extend(lines.iter().map(|line| tag(prefix, &label, line)));
        cursors.push(Cursor {
            label,
            path,
            offset: consumed,
        });
    }
    let head = futures_util::stream::iter(first);
    if !query.follow {
        return Ok(Box::pin(head));
    }
    let tail = futures_util::stream::unfold(
        (cursors, std::collections::VecDeque::<String>::new()),
        move |(mut cursors, mut pending)| async move {
            loop {
                if let Some(line) = pending.pop_front() {
                    return Some((line, (cursors, pending)));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut alive = false;
                for c in &mut cursors {
                    alive |= c.path.exists();
                    for line in c.read_new().await {
                        pending.push_back(tag(prefix, &c.label, line.as_bytes()));
                    }
                }
                if !alive {
                    return None;
                }
            }
        },
    );
    Ok(Box::pin(futures_util::StreamExt::chain(head, tail)))
}

/// The last `n` complete lines of a log file, and the offset just after the last one.
/// Reads backwards from the end in blocks, so that a tail of a few lines costs a few
/// blocks, not the whole file.
fn last_lines(path: &Path, n: usize) -> (Vec<Vec<u8>>, u64) {
    use std::io::{Read, Seek, SeekFrom};
    const BLOCK: u64 = 64 << 10;
    let Ok(mut file) = std::fs::File::open(path) else {
        return (Vec::new(), 0);
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    // What was read so far, from `start` to the end of the file.
    let mut buf: Vec<u8> = Vec::new();
    let mut start = len;
    let end_of_complete = loop {
        // The complete lines end at the last newline; what follows is being written.
        if let Some(last) = buf.iter().rposition(|b| *b == b'\n') {
            let complete = &buf[..last];
            let newlines = complete.iter().filter(|b| **b == b'\n').count();
            if newlines >= n || start == 0 {
                break Some(last);
            }
        } else if start == 0 {
            break None;
        }
        let from = start.saturating_sub(BLOCK);
        let mut block = vec![0; (start - from) as usize];
        if file.seek(SeekFrom::Start(from)).is_err() || file.read_exact(&mut block).is_err() {
            return (Vec::new(), len);
        }
        block.extend_from_slice(&buf);
        buf = block;
        start = from;
    };
    let Some(last) = end_of_complete else {
        return (Vec::new(), 0);
    };
    let mut segments: Vec<&[u8]> = buf[..last].split(|b| *b == b'\n').collect();
    if start > 0 {
        segments.remove(0); // may be cut by the block boundary
    }
    let mut lines: Vec<Vec<u8>> = segments
        .into_iter()
        .rev()
        .filter(|l| !l.is_empty())
        .take(n)
        .map(<[u8]>::to_vec)
        .collect();
    lines.reverse();
    (lines, start + last as u64 + 1)
}

/// A log file being followed.
struct Cursor {
    label: String,
    path: PathBuf,
    offset: u64,
}

impl Cursor {
    /// The complete lines written since the last read (from the start after a rotation).
    async fn read_new(&mut self) -> Vec<String> {
        let Ok(mut file) = tokio::fs::File::open(&self.path).await else {
            return Vec::new();
        };
        let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            self.offset = 0;
        }
        if len == self.offset {
            return Vec::new();
        }
        use tokio::io::AsyncSeekExt;
        if file
            .seek(std::io::SeekFrom::Start(self.offset))
            .await
            .is_err()
        {
            return Vec::new();
        }
        // At most a block per poll: a follower catches up over several polls instead of
        // loading what a noisy workload wrote all at once.
        const BLOCK: u64 = 1 << 20;
        let mut buf = Vec::new();
        if (&mut file).take(BLOCK).read_to_end(&mut buf).await.is_err() {
            return Vec::new();
        }
        let end = match buf.iter().rposition(|b| *b == b'\n') {
            Some(end) => end,
            // A line longer than a block is sent in pieces.
            None if buf.len() as u64 == BLOCK => {
                self.offset += BLOCK;
                return vec![String::from_utf8_lossy(&buf).into_owned()];
            }
            None => return Vec::new(),
        };
        self.offset += end as u64 + 1;
        buf[..end]
            .split(|b| *b == b'\n')
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }
}

fn tag(prefix: bool, label: &str, line: &[u8]) -> String {
    let line = String::from_utf8_lossy(line);
    if prefix {
        format!("[{label}] {line}")
    } else {
        line.into_owned()
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

    fn remove<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(self.remove_now(env))
    }
}

fn digest(spec: &WorkloadSpec) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(spec).expect("a spec serializes"),
    ))
}

/// Only the owner may read an environment's directory (files may hold secrets).
fn restrict(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TargetError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(system(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(system(format!("writing {}", path.display())))
}

fn read_ports(dir: &Path) -> BTreeMap<String, u16> {
    std::fs::read(dir.join("ports.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// A container file system path (`/app/x`) under `root`, refusing `..`.
fn under(root: &Path, target: &str) -> Option<PathBuf> {
    let relative = Path::new(target.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Some(root.join(relative))
}

fn decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// The bytes of `key` in a ConfigMap (`binaryData` or `data`) or Secret (`data` or
/// `stringData`).
fn key_bytes(object: &Value, key: &str) -> Option<Vec<u8>> {
    if object["kind"] == "Secret" {
        if let Some(v) = object["data"][key].as_str() {
            return decode(v);
        }
        return object["stringData"][key]
            .as_str()
            .map(|s| s.as_bytes().to_vec());
    }
    if let Some(v) = object["binaryData"][key].as_str() {
        return decode(v);
    }
    object["data"][key].as_str().map(|s| s.as_bytes().to_vec())
}

/// Turns the objects into workload specs, checking everything. Returns the specs by
/// name, and the objects this target has no use for (`Kind/name`).
fn plan(
    objects: &[Value],
    dir: &Path,
    run: &Path,
    options: &Options,
    previous_ports: &BTreeMap<String, u16>,
    in_use: &[u16],
) -> Result<(BTreeMap<String, WorkloadSpec>, Vec<String>), TargetError> {
    let mut by_kind: HashMap<(&str, &str), (usize, &Value)> = HashMap::new();
    let mut deployments = Vec::new();
    let mut services = Vec::new();
    let mut ignored = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let kind = o["kind"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        if name.is_empty() || kind.is_empty() {
            return Err(object_error(i, "an object needs a kind and metadata.name"));
        }
        match kind {
            "Deployment" => deployments.push((i, o)),
            "Service" => services.push((i, o)),
            "ConfigMap" | "Secret" => {
                by_kind.insert((kind, name), (i, o));
            }
            _ => ignored.push(format!("{kind}/{name}")),
        }
    }
    // Hold every allocated port's listener until planning ends, so no two get the same.
    let mut held = Vec::new();
    let mut specs = BTreeMap::new();
    for (i, d) in deployments {
        let name = d["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let labels = d["spec"]["template"]["metadata"]["labels"].clone();
        let mut ports = Vec::new();
        for (si, s) in &services {
            let selector = s["spec"]["selector"].as_object();
            let selects = selector.is_some_and(|sel| {
                !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
            });
            if !selects {
                continue;
            }
            for p in s["spec"]["ports"].as_array().into_iter().flatten() {
                let port_name = p["name"].as_str().unwrap_or_default().to_string();
                let Some(port) = p["port"].as_u64().and_then(|n| u16::try_from(n).ok()) else {
                    return Err(object_error(*si, "spec.ports[].port must be a port number"));
                };
                let target = p["targetPort"]
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .unwrap_or(port);
                let protocol = p["protocol"].as_str().unwrap_or("TCP").to_string();
                let wanted = previous_ports.get(&format!("{name}/{port_name}")).copied();
                let local = allocate(wanted, in_use, &mut held)
                    .map_err(system("allocating a local port"))?;
                ports.push(PortSpec {
                    name: port_name,
                    port,
                    target,
                    protocol,
                    local,
                });
            }
        }
        ports.sort_by(|a, b| a.name.cmp(&b.name));
        let pod = &d["spec"]["template"]["spec"];
        let volumes: HashMap<&str, &Value> = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| Some((v["name"].as_str()?, v)))
            .collect();
        // The server's record of the workload (pid files) and what the workload sees.
        let workload_dir = dir.join("workloads").join(&name);
        let workload_run = run.join("workloads").join(&name);
        let mut files = Vec::new();
        let mut links = Vec::new();
        let mut containers = Vec::new();
        for c in pod["containers"].as_array().into_iter().flatten() {
            let cname = c["name"].as_str().unwrap_or_default().to_string();
            let at = |what: &str| format!("Deployment {name}, container {cname}: {what}");
            let strings = |v: &Value| -> Option<Vec<String>> {
                v.as_array()?
                    .iter()
                    .map(|s| s.as_str().map(str::to_string))
                    .collect()
            };
            let command = match strings(&c["command"]) {
                Some(command) if !command.is_empty() => command,
                _ => {
                    return Err(object_error(
                        i,
                        at(&format!(
                            "no command; the process target runs commands, not images (it \
                             does not pull {}): give the container a `command` in its Score \
                             file",
                            c["image"]
                                .as_str()
                                .map_or("images".into(), |i| format!("{i:?}"))
                        )),
                    ));
                }
            };
            let args = strings(&c["args"]).unwrap_or_default();
            let root = workload_run.join(&cname);
            let mut mounts: Vec<String> = Vec::new();
            let links_before = links.len();
            for m in c["volumeMounts"].as_array().into_iter().flatten() {
                let vname = m["name"].as_str().unwrap_or_default();
                let mount = m["mountPath"].as_str().unwrap_or_default();
                let Some(path) = under(&root, mount).filter(|_| mount.starts_with('/')) else {
                    return Err(object_error(
                        i,
                        at(&format!(
                            "mountPath {mount:?} must be an absolute path without `..`"
                        )),
                    ));
                };
                let Some(volume) = volumes.get(vname) else {
                    return Err(object_error(i, at(&format!("no volume named {vname:?}"))));
                };
                let sub = m["subPath"].as_str().filter(|s| !s.is_empty());
                mounts.push(mount.trim_end_matches('/').to_string());
                mount_volume(
                    volume, &path, sub, &by_kind, run, &name, &mut files, &mut links,
                )
                .map_err(|why| object_error(i, at(&format!("volume {vname}: {why}"))))?;
            }
            mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
            let rewrite = |s: &str| -> String {
                for m in &mounts {
                    if !m.is_empty()
                        && (s == m
                            || s.strip_prefix(m.as_str())
                                .is_some_and(|r| r.starts_with('/')))
                    {
                        return root.join(s.trim_start_matches('/')).display().to_string();
                    }
                }
                s.to_string()
            };
            let mut env: BTreeMap<String, String> = BTreeMap::new();
            for e in c["env"].as_array().into_iter().flatten() {
                let var = e["name"].as_str().unwrap_or_default().to_string();
                let value = if let Some(v) = e["value"].as_str() {
                    v.to_string()
                } else if e.get("value").is_none_or(Value::is_null)
                    && e.get("valueFrom").is_none_or(Value::is_null)
                {
                    String::new()
                } else {
                    let from = &e["valueFrom"];
                    let (kind, r) = if from["secretKeyRef"].is_object() {
                        ("Secret", &from["secretKeyRef"])
                    } else if from["configMapKeyRef"].is_object() {
                        ("ConfigMap", &from["configMapKeyRef"])
                    } else {
                        return Err(object_error(
                            i,
                            at(&format!(
                                "variable {var}: only values, secretKeyRef and configMapKeyRef \
                                 can be resolved here"
                            )),
                        ));
                    };
                    let (oname, k) = (
                        r["name"].as_str().unwrap_or_default(),
                        r["key"].as_str().unwrap_or_default(),
                    );
                    let bytes = by_kind
                        .get(&(kind, oname))
                        .and_then(|(_, o)| key_bytes(o, k))
                        .ok_or_else(|| {
                            object_error(
                                i,
                                at(&format!("variable {var}: {kind} {oname} has no key {k:?}")),
                            )
                        })?;
                    String::from_utf8(bytes).map_err(|_| {
                        object_error(i, at(&format!("variable {var}: the value is not UTF-8")))
                    })?
                };
                env.insert(var, rewrite(&value));
            }
            if let Some(first) = ports.iter().find(|p| p.protocol == "TCP") {
                env.insert("PORT".into(), first.local.to_string());
            }
            for p in &ports {
                let var: String = p
                    .name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                env.insert(format!("WHARF_PORT_{var}"), p.local.to_string());
            }
            env.insert("HOME".into(), root.display().to_string());
            env.insert("TMPDIR".into(), root.join("tmp").display().to_string());
            env.insert(
                "PATH".into(),
                confine::workload_path(
                    &std::env::var("PATH")
                        .unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
                    &options.read_only,
                    options.unconfined,
                ),
            );
            let probe = |field: &str| -> Result<Option<Probe>, TargetError> {
                let p = &c[field];
                if p.is_null() {
                    return Ok(None);
                }
                if let Some(http) = p.get("httpGet") {
                    let port = match &http["port"] {
                        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                        Value::String(named) => {
                            ports.iter().find(|p| p.name == *named).map(|p| p.target)
                        }
                        _ => None,
                    }
                    .ok_or_else(|| object_error(i, at(&format!("{field}: no usable port"))))?;
                    let local = ports
                        .iter()
                        .find(|p| p.target == port)
                        .map_or(port, |p| p.local);
                    return Ok(Some(Probe::Http {
                        port: local,
                        path: http["path"].as_str().unwrap_or("/").to_string(),
                        host: http["host"].as_str().unwrap_or("127.0.0.1").to_string(),
                        tcp_only: http["scheme"]
                            .as_str()
                            .is_some_and(|s| s.eq_ignore_ascii_case("https")),
                        headers: http["httpHeaders"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|h| {
                                Some((h["name"].as_str()?.into(), h["value"].as_str()?.into()))
                            })
                            .collect(),
                    }));
                }
                if let Some(command) = strings(&p["exec"]["command"]).filter(|c| !c.is_empty()) {
                    return Ok(Some(Probe::Exec {
                        command: command.iter().map(|s| rewrite(s)).collect(),
                    }));
                }
                Err(object_error(
                    i,
                    at(&format!("{field}: needs httpGet or exec")),
                ))
            };
            let readiness = probe("readinessProbe")?;
            let liveness = probe("livenessProbe")?;
            let mut all: Vec<String> = command.iter().chain(&args).map(|s| rewrite(s)).collect();
            let program = all.remove(0);
            let mine = &links[links_before..];
            let reach = Reach {
                own: std::iter::once(root.clone())
                    .chain(mine.iter().filter(|l| l.create).map(|l| l.to.clone()))
                    .collect(),
                volumes: mine
                    .iter()
                    .filter(|l| !l.create)
                    .map(|l| l.to.clone())
                    .collect(),
                readable: options.read_only.clone(),
                unconfined: options.unconfined,
            };
            containers.push(ContainerSpec {
                reach,
                log: dir.join("logs").join(format!("{name}.{cname}.log")),
                pid_file: workload_dir.join(format!("{cname}.pid")),
                name: cname,
                workload: name.clone(),
                program,
                args: all,
                env: env.into_iter().collect(),
                dir: root,
                readiness,
                liveness,
                ports: ports
                    .iter()
                    .filter(|p| p.protocol == "TCP")
                    .map(|p| p.local)
                    .collect(),
            });
        }
        if containers.is_empty() {
            return Err(object_error(
                i,
                format!("Deployment {name} has no containers"),
            ));
        }
        specs.insert(
            name.clone(),
            WorkloadSpec {
                name,
                ports,
                containers,
                files,
                links,
            },
        );
    }
    Ok((specs, ignored))
}

/// A local port: `wanted` when it is ours or free, else a new one.
fn allocate(
    wanted: Option<u16>,
    in_use: &[u16],
    held: &mut Vec<std::net::TcpListener>,
) -> std::io::Result<u16> {
    if let Some(port) = wanted {
        if in_use.contains(&port) {
            return Ok(port);
        }
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
            return Ok(port);
        }
    }
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let port = l.local_addr()?.port();
    held.push(l);
    Ok(port)
}

/// Adds what mounting `volume` at `path` (a file when `sub` names one item) needs.
#[allow(clippy::too_many_arguments)]
fn mount_volume(
    volume: &Value,
    path: &Path,
    sub: Option<&str>,
    by_kind: &HashMap<(&str, &str), (usize, &Value)>,
    dir: &Path,
    workload: &str,
    files: &mut Vec<FileSpec>,
    links: &mut Vec<LinkSpec>,
) -> Result<(), String> {
    let source = if volume["configMap"].is_object() {
        Some(("ConfigMap", &volume["configMap"], "name", 0o644))
    } else if volume["secret"].is_object() {
        Some(("Secret", &volume["secret"], "secretName", 0o600))
    } else {
        None
    };
    if let Some((kind, source, name_field, default_mode)) = source {
        let oname = source[name_field].as_str().unwrap_or_default();
        let (_, object) = by_kind
            .get(&(kind, oname))
            .ok_or_else(|| format!("there is no {kind} {oname}"))?;
        let default_mode = source["defaultMode"]
            .as_u64()
            .map_or(default_mode, |m| m as u32);
        let mut items: Vec<(String, String, u32)> = match source["items"].as_array() {
            Some(items) => items
                .iter()
                .map(|it| {
                    (
                        it["key"].as_str().unwrap_or_default().to_string(),
                        it["path"].as_str().unwrap_or_default().to_string(),
                        it["mode"].as_u64().map_or(default_mode, |m| m as u32),
                    )
                })
                .collect(),
            None => ["data", "binaryData", "stringData"]
                .iter()
                .flat_map(|f| object[*f].as_object().into_iter().flatten())
                .map(|(k, _)| (k.clone(), k.clone(), default_mode))
                .collect(),
        };
        if let Some(sub) = sub {
            items.retain(|(_, p, _)| p == sub);
            let (key, _, mode) = items
                .pop()
                .ok_or_else(|| format!("subPath {sub:?} is not an item of {kind} {oname}"))?;
            let bytes = key_bytes(object, &key)
                .ok_or_else(|| format!("{kind} {oname} has no key {key:?}"))?;
            files.push(file(path.to_path_buf(), bytes, mode));
            return Ok(());
        }
        for (key, item_path, mode) in items {
            let bytes = key_bytes(object, &key)
                .ok_or_else(|| format!("{kind} {oname} has no key {key:?}"))?;
            let at =
                under(path, &item_path).ok_or_else(|| format!("bad item path {item_path:?}"))?;
            files.push(file(at, bytes, mode));
        }
        return Ok(());
    }
    if volume["emptyDir"].is_object() {
        let vname = volume["name"].as_str().unwrap_or_default();
        let mut to = dir.join("volumes").join(workload).join(vname);
        if let Some(sub) = sub {
            to = under(&to, sub).ok_or_else(|| format!("bad subPath {sub:?}"))?;
        }
        links.push(LinkSpec {
            link: path.to_path_buf(),
            to,
            create: true,
        });
        return Ok(());
    }
    if let Some(host) = volume["hostPath"]["path"].as_str() {
        let mut to = PathBuf::from(host);
        if let Some(sub) = sub {
            to = under(&to, sub).ok_or_else(|| format!("bad subPath {sub:?}"))?;
        }
        links.push(LinkSpec {
            link: path.to_path_buf(),
            to,
            create: false,
        });
        return Ok(());
    }
    let kinds: Vec<&str> = volume
        .as_object()
        .map(|o| {
            o.keys()
                .map(String::as_str)
                .filter(|k| *k != "name")
                .collect()
        })
        .unwrap_or_default();
    Err(format!(
        "the process target mounts configMap, secret, emptyDir and hostPath volumes, not {}",
        kinds.join(", ")
    ))
}

fn file(path: PathBuf, bytes: Vec<u8>, mode: u32) -> FileSpec {
    FileSpec {
        path,
        digest: hex::encode(Sha256::digest(&bytes)),
        bytes,
        mode,
    }
}

/// Writes a workload's files and links, under `workloads` (the root of every
/// environment's): the directories on the way are passable and not listable by the
/// workloads' user, and what the workload owns (its container directories, its
/// `emptyDir` volumes, the files written there, a volume directory a Wharf driver made)
/// is handed to that user.
fn materialize(
    spec: &WorkloadSpec,
    workloads: &Path,
    confinement: &Confinement,
) -> Result<(), TargetError> {
    use std::os::unix::fs::PermissionsExt;
    let passable = if confinement.user.is_some() {
        0o711
    } else {
        0o700
    };
    // Creates `to` and the directories above it up to `workloads`, passable only.
    let make = |to: &Path| -> Result<(), TargetError> {
        std::fs::create_dir_all(to).map_err(system(format!("creating {}", to.display())))?;
        let mut at = to.parent();
        while let Some(dir) = at.filter(|d| d.starts_with(workloads)) {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(passable))
                .map_err(system(format!("setting the mode of {}", dir.display())))?;
            at = dir.parent();
        }
        Ok(())
    };
    let owned = |to: &Path| -> Result<(), TargetError> {
        hand_over_tree(to, confinement).map_err(system(format!("handing over {}", to.display())))
    };
    for c in &spec.containers {
        make(&c.dir)?;
        std::fs::create_dir_all(c.dir.join("tmp"))
            .map_err(system(format!("creating {}", c.dir.join("tmp").display())))?;
        // The server's own: logs and pid files, in the environment's state.
        for own in [c.log.parent(), c.pid_file.parent()].into_iter().flatten() {
            std::fs::create_dir_all(own).map_err(system(format!("creating {}", own.display())))?;
        }
    }
    for f in &spec.files {
        if let Some(parent) = f.path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(system(format!("creating {}", parent.display())))?;
        }
        std::fs::write(&f.path, &f.bytes)
            .map_err(system(format!("writing {}", f.path.display())))?;
        std::fs::set_permissions(&f.path, std::fs::Permissions::from_mode(f.mode & 0o7777))
            .map_err(system(format!("setting the mode of {}", f.path.display())))?;
    }
    for l in &spec.links {
        if l.create {
            make(&l.to)?;
            owned(&l.to)?;
        } else if driver_made(&l.to) {
            // A directory a Wharf driver made for this resource (the volume driver's):
            // the workload's to write in. Other host paths keep their owner and mode.
            confinement
                .hand_over(&l.to)
                .map_err(system(format!("handing over {}", l.to.display())))?;
        }
        if let Some(parent) = l.link.parent() {
            std::fs::create_dir_all(parent)
                .map_err(system(format!("creating {}", parent.display())))?;
        }
        let _ = std::fs::remove_file(&l.link);
        std::os::unix::fs::symlink(&l.to, &l.link)
            .map_err(system(format!("linking {}", l.link.display())))?;
    }
    for c in &spec.containers {
        owned(&c.dir)?;
    }
    Ok(())
}

/// Whether a Wharf driver made `dir` for a resource: it leaves the resource's mark beside
/// it, in `DIR.wharf-owner` (the volume driver does).
fn driver_made(dir: &Path) -> bool {
    let mut mark = dir.as_os_str().to_owned();
    mark.push(".wharf-owner");
    Path::new(&mark).is_file()
}

/// Hands `root` and everything under it (links themselves, never where they lead) to the
/// workloads' user; owner-only modes for directories.
fn hand_over_tree(root: &Path, confinement: &Confinement) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(root)?;
    confinement.hand_over(root)?;
    if meta.is_dir() {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
        for entry in std::fs::read_dir(root)? {
            hand_over_tree(&entry?.path(), confinement)?;
        }
    }
    Ok(())
}

/// Starts supervising a container.
fn start(spec: Arc<ContainerSpec>, confinement: Arc<Confinement>) -> Supervised {
    let state = Arc::new(Mutex::new(ContainerState::default()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(supervise(
        spec.clone(),
        confinement.clone(),
        state.clone(),
        stopped,
    ));
    Supervised {
        name: spec.name.clone(),
        spec,
        confinement,
        state,
        stop,
        task,
    }
}

/// Stops a workload's containers and waits for them.
async fn stop_workload(w: Running) {
    for c in &w.containers {
        let _ = c.stop.send(true);
    }
    for c in w.containers {
        let _ = c.task.await;
    }
}

/// Appends a line to a log file, rotating it when it is too big.
async fn note(log: &Path, line: &str) {
    if let Ok(meta) = tokio::fs::metadata(log).await
        && meta.len() > LOG_LIMIT
    {
        let _ = tokio::fs::rename(log, log.with_extension("log.1")).await;
    }
    if let Ok(mut f) = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .await
    {
        let _ = f.write_all(format!("{line}\n").as_bytes()).await;
    }
}

/// Copies a child's output, line by line, into its log.
fn pump(reader: impl tokio::io::AsyncRead + Unpin + Send + 'static, log: PathBuf) {
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(reader).split(b'\n');
        while let Ok(Some(line)) = lines.next_segment().await {
            note(&log, &String::from_utf8_lossy(&line)).await;
        }
    });
}

/// The start time of process `pid` (clock ticks since boot), from `/proc`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

/// Signals a process group.
fn signal(pgid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals the process group; it has no memory
    // effects on this process.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), sig);
    }
}

/// Stops processes recorded in pid files under `dir` that are still the same processes.
async fn kill_orphans(dir: &Path) {
    let Ok(workloads) = std::fs::read_dir(dir) else {
        return;
    };
    for w in workloads.filter_map(Result::ok) {
        let Ok(entries) = std::fs::read_dir(w.path()) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            if e.path().extension().is_none_or(|x| x != "pid") {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let mut parts = text.split_whitespace();
            let (Some(pid), Some(started)) = (
                parts.next().and_then(|p| p.parse::<u32>().ok()),
                parts.next().and_then(|p| p.parse::<u64>().ok()),
            ) else {
                continue;
            };
            if start_time(pid) == Some(started) {
                tracing::info!(pid, "stopping a process left by a previous run");
                signal(pid, libc::SIGTERM);
                let deadline = Instant::now() + GRACE;
                while start_time(pid) == Some(started) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if start_time(pid) == Some(started) {
                    signal(pid, libc::SIGKILL);
                }
            }
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Runs a container until told to stop: starts it, restarts it with backoff when it
/// exits or fails its liveness probe, and stops its process group on the way out.
async fn supervise(
    spec: Arc<ContainerSpec>,
    confinement: Arc<Confinement>,
    state: Arc<Mutex<ContainerState>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            break;
        }
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let started = Instant::now();
        let confined = confinement.prepare(&mut cmd, &spec.reach);
        match confined
            .map_err(std::io::Error::other)
            .and_then(|()| cmd.spawn())
        {
            Err(e) => {
                let message = format!("cannot start {:?}: {e}", spec.program);
                note(&spec.log, &format!("[wharf] {message}")).await;
                state.lock().expect("never poisoned").spawn_error = Some(message);
            }
            Ok(mut child) => {
                let pid = child.id().unwrap_or_default();
                if let Some(out) = child.stdout.take() {
                    pump(out, spec.log.clone());
                }
                if let Some(err) = child.stderr.take() {
                    pump(err, spec.log.clone());
                }
                if let Some(t) = start_time(pid) {
                    let _ = std::fs::write(&spec.pid_file, format!("{pid} {t}\n"));
                }
                {
                    let mut s = state.lock().expect("never poisoned");
                    s.pid = Some(pid);
                    s.since = Some(started);
                    s.spawn_error = None;
                }
                note(
                    &spec.log,
                    &format!("[wharf] started {} (pid {pid})", spec.program),
                )
                .await;
                let ended = tokio::select! {
                    status = child.wait() => Some(match status {
                        Ok(s) => describe_exit(s),
                        Err(e) => format!("lost: {e}"),
                    }),
                    why = watch_liveness(&spec, &confinement, &mut stop) => {
                        if let Some(why) = &why {
                            note(&spec.log, &format!("[wharf] liveness probe failed: {why}; restarting")).await;
                        }
                        terminate(&mut child, pid).await;
                        why.map(|w| format!("killed: liveness probe failed ({w})"))
                    }
                };
                let _ = std::fs::remove_file(&spec.pid_file);
                let mut s = state.lock().expect("never poisoned");
                s.pid = None;
                s.since = None;
                match ended {
                    Some(how) => s.last_exit = Some(how),
                    None => break,
                }
            }
        }
        if *stop.borrow() {
            break;
        }
        if started.elapsed() > STABLE {
            failures = 0;
        }
        failures += 1;
        let delay = Duration::from_millis(500)
            .saturating_mul(1 << (failures - 1).min(6))
            .min(Duration::from_secs(30));
        let exit = {
            let mut s = state.lock().expect("never poisoned");
            s.restarts += 1;
            s.last_exit.clone().unwrap_or_default()
        };
        note(
            &spec.log,
            &format!("[wharf] {exit}; restarting in {:.1}s", delay.as_secs_f64()),
        )
        .await;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => break,
        }
    }
    let mut s = state.lock().expect("never poisoned");
    s.stopped = true;
    s.pid = None;
}

/// Resolves when the container should stop: `None` when asked to, `Some(why)` when its
/// liveness probe failed three times in a row.
async fn watch_liveness(
    spec: &ContainerSpec,
    confinement: &Confinement,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<String> {
    let mut failed = 0;
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return None;
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(10)), if spec.liveness.is_some() => {
                let probe = spec.liveness.as_ref().expect("checked");
                match check(probe, spec, confinement).await {
                    Ok(()) => failed = 0,
                    Err(why) => {
                        failed += 1;
                        if failed >= 3 {
                            return Some(why);
                        }
                    }
                }
            }
        }
    }
}

/// SIGTERM to the process group, SIGKILL after the grace period.
async fn terminate(child: &mut tokio::process::Child, pid: u32) {
    signal(pid, libc::SIGTERM);
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        signal(pid, libc::SIGKILL);
        let _ = child.wait().await;
    }
    // Whatever the group still holds (children that ignored SIGTERM) goes too.
    signal(pid, libc::SIGKILL);
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "exited".into(),
    }
}

/// Runs a probe once.
async fn check(
    probe: &Probe,
    spec: &ContainerSpec,
    confinement: &Confinement,
) -> Result<(), String> {
    let limit = Duration::from_secs(1);
    match probe {
        Probe::Http {
            port,
            path,
            host,
            tcp_only,
            headers,
        } => {
            let attempt = async {
                let mut stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| format!("port {port}: {e}"))?;
                if *tcp_only {
                    return Ok(());
                }
                let mut request = format!(
                    "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: wharf-probe\r\nConnection: close\r\n"
                );
                for (k, v) in headers {
                    request.push_str(&format!("{k}: {v}\r\n"));
                }
                request.push_str("\r\n");
                stream
                    .write_all(request.as_bytes())
                    .await
                    .map_err(|e| e.to_string())?;
                // The whole answer is read (the server closes after it): closing a
                // connection with unread data would reset it under the server's feet.
                let mut answer = Vec::new();
                let _ = (&mut stream).take(64 << 10).read_to_end(&mut answer).await;
                let line = String::from_utf8_lossy(&answer[..answer.len().min(64)]);
                let code: u16 = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| format!("GET {path} on port {port}: not an HTTP answer"))?;
                if (200..400).contains(&code) {
                    Ok(())
                } else {
                    Err(format!("GET {path} on port {port} answered {code}"))
                }
            };
            tokio::time::timeout(limit, attempt)
                .await
                .unwrap_or_else(|_| Err(format!("GET {path} on port {port}: no answer in 1s")))
        }
        Probe::Exec { command } => {
            let mut cmd = tokio::process::Command::new(&command[0]);
            cmd.args(&command[1..])
                .env_clear()
                .envs(spec.env.iter().map(|(k, v)| (k, v)))
                .current_dir(&spec.dir)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .process_group(0)
                .kill_on_drop(true);
            // A probe runs as the workload runs: confined the same way.
            confinement.prepare(&mut cmd, &spec.reach)?;
            match tokio::time::timeout(limit, cmd.status()).await {
                Ok(Ok(s)) if s.success() => Ok(()),
                Ok(Ok(s)) => Err(format!("{:?} {}", command.join(" "), describe_exit(s))),
                Ok(Err(e)) => Err(format!("{:?}: {e}", command[0])),
                Err(_) => Err(format!("{:?} did not finish in 1s", command.join(" "))),
            }
        }
    }
}

/// The last line a container wrote, for a reason shown to people.
fn last_line(log: &Path) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let start = text.len().saturating_sub(4096);
    String::from_utf8_lossy(&text[start..])
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("[wharf]"))
        .map(str::to_string)
}

async fn workload_status(w: &Running) -> WorkloadStatus {
    let mut containers = Vec::new();
    let mut reasons = Vec::new();
    let mut state = "ready";
    for c in &w.containers {
        let (pid, since, restarts, last_exit, spawn_error, stopped) = {
            let s = c.state.lock().expect("never poisoned");
            (
                s.pid,
                s.since,
                s.restarts,
                s.last_exit.clone(),
                s.spawn_error.clone(),
                s.stopped,
            )
        };
        let cstate = match (&spawn_error, pid, stopped) {
            (Some(_), _, _) => "failed",
            (_, _, true) => "stopped",
            (_, Some(_), _) => "running",
            (_, None, _) if restarts > 0 => "restarting",
            _ => "starting",
        };
        containers.push(ContainerStatus {
            name: c.name.clone(),
            state: cstate.into(),
            pid,
            restarts,
            last_exit: last_exit.clone(),
        });
        let tail = || {
            last_line(&c.spec.log)
                .map(|l| format!("; last output: {l}"))
                .unwrap_or_default()
        };
        match cstate {
            "failed" => {
                state = "failed";
                reasons.push(format!(
                    "container {}: {}",
                    c.name,
                    spawn_error.unwrap_or_default()
                ));
            }
            "restarting" | "stopped" => {
                if state != "failed" {
                    state = "restarting";
                }
                reasons.push(format!(
                    "container {} {} ({restarts} restarts){}",
                    c.name,
                    last_exit.unwrap_or_else(|| "stopped".into()),
                    tail()
                ));
            }
            "starting" => {
                if state == "ready" {
                    state = "starting";
                }
                reasons.push(format!("container {} is starting", c.name));
            }
            _ => {
                let ready = match &c.spec.readiness {
                    Some(probe) => check(probe, &c.spec, &c.confinement).await,
                    None if !c.spec.ports.is_empty() => {
                        let mut result = Ok(());
                        for port in &c.spec.ports {
                            if let Err(e) =
                                tokio::net::TcpStream::connect(("127.0.0.1", *port)).await
                            {
                                result = Err(format!("not answering on port {port} yet ({e})"));
                                break;
                            }
                        }
                        result
                    }
                    None if since.is_some_and(|s| s.elapsed() < SETTLE) => {
                        Err("just started".to_string())
                    }
                    None => Ok(()),
                };
                if let Err(why) = ready {
                    if state == "ready" {
                        state = "starting";
                    }
                    reasons.push(format!("container {}: {why}{}", c.name, tail()));
                }
            }
        }
    }
    WorkloadStatus {
        name: w.spec.name.clone(),
        state: state.into(),
        ready: state == "ready",
        reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        endpoints: w
            .spec
            .ports
            .iter()
            .filter(|p| p.protocol == "TCP")
            .map(|p| format!("http://127.0.0.1:{}", p.local))
            .collect(),
        containers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tail_reads_the_last_whole_lines_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("w.c.log");
        let mut text: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
        text.push_str("half a li");
        std::fs::write(&log, &text).unwrap();
        let (lines, offset) = last_lines(&log, 3);
        let lines: Vec<String> = lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        assert_eq!(lines, ["line 199997", "line 199998", "line 199999"]);
        assert_eq!(offset, (text.len() - "half a li".len()) as u64);
        // More lines than one block holds, and the whole file when it has fewer.
        let (many, _) = last_lines(&log, 20_000);
        assert_eq!(many.len(), 20_000);
        assert_eq!(many[0], b"line 180000");
        let (all, _) = last_lines(&log, 1_000_000);
        assert_eq!(all.len(), 200_000);
        assert_eq!(all[0], b"line 0");
        assert_eq!(last_lines(&dir.path().join("none.log"), 5), (Vec::new(), 0));
    }

    fn deployment(container: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "web" },
            "spec": { "template": {
                "metadata": { "labels": { "app.kubernetes.io/instance": "shop-dev-web" } },
                "spec": {
                    "containers": [container],
                    "volumes": [{ "name": "files", "configMap": { "name": "web-files",
                        "items": [{ "key": "main-1", "path": "main-1", "mode": 420 }] } }]
                }
            } }
        })
    }

    #[test]
    fn a_container_without_a_command_is_refused_with_what_to_do() {
        let objects = [deployment(json!({ "name": "main", "image": "nginx" }))];
        let err = plan(
            &objects,
            Path::new("/tmp/x"),
            Path::new("/tmp/w"),
            &Options::default(),
            &BTreeMap::new(),
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("runs commands, not images"), "{text}");
        assert!(text.contains("\"nginx\""), "{text}");
    }

    #[test]
    fn mounted_paths_in_arguments_and_variables_are_rewritten_and_ports_passed() {
        let objects = [
            json!({ "kind": "ConfigMap", "metadata": { "name": "web-files" },
                    "binaryData": { "main-1": "aGVsbG8=" } }),
            json!({ "kind": "Service", "metadata": { "name": "web" }, "spec": {
                "selector": { "app.kubernetes.io/instance": "shop-dev-web" },
                "ports": [{ "name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP" }]
            } }),
            json!({ "kind": "NetworkPolicy", "metadata": { "name": "deny" } }),
            deployment(json!({
                "name": "main", "image": "python", "command": ["python3"],
                "args": ["/app/server.py", "/elsewhere"],
                "env": [{ "name": "CONFIG", "value": "/app/server.py" }, { "name": "PORT", "value": "8080" }],
                "readinessProbe": { "httpGet": { "path": "/", "port": 8080 } },
                "volumeMounts": [{ "name": "files", "mountPath": "/app/server.py", "subPath": "main-1" }]
            })),
        ];
        let (specs, ignored) = plan(
            &objects,
            Path::new("/d"),
            Path::new("/w"),
            &Options::default(),
            &BTreeMap::new(),
            &[],
        )
        .unwrap();
        assert_eq!(ignored, ["NetworkPolicy/deny"]);
        let web = &specs["web"];
        let c = &web.containers[0];
        assert_eq!(c.program, "python3");
        assert_eq!(
            c.args,
            ["/w/workloads/web/main/app/server.py", "/elsewhere"]
        );
        let env: BTreeMap<_, _> = c.env.iter().cloned().collect();
        assert_eq!(env["CONFIG"], "/w/workloads/web/main/app/server.py");
        let local = web.ports[0].local;
        assert_ne!(local, 8080);
        assert_eq!(env["PORT"], local.to_string(), "the local port wins");
        assert_eq!(env["WHARF_PORT_HTTP"], local.to_string());
        assert!(!env.contains_key("WHARF_SECRET_KEY"));
        assert_eq!(env["TMPDIR"], "/w/workloads/web/main/tmp");
        assert_eq!(c.reach.own, [Path::new("/w/workloads/web/main")]);
        assert!(c.reach.volumes.is_empty() && !c.reach.unconfined);
        assert_eq!(
            c.readiness,
            Some(Probe::Http {
                port: local,
                path: "/".into(),
                host: "127.0.0.1".into(),
                tcp_only: false,
                headers: vec![]
            }),
            "a probe on the target port goes to the local port"
        );
        assert_eq!(
            web.files[0].path,
            Path::new("/w/workloads/web/main/app/server.py")
        );
        assert_eq!(web.files[0].bytes, b"hello");
        assert_eq!(web.files[0].mode, 0o644);
        let again = plan(
            &objects,
            Path::new("/d"),
            Path::new("/w"),
            &Options::default(),
            &BTreeMap::from([("web/http".to_string(), local)]),
            &[local],
        )
        .unwrap()
        .0;
        assert_eq!(again["web"].ports[0].local, local, "ports are kept");
        assert_eq!(digest(&again["web"]), digest(web));
    }
}
