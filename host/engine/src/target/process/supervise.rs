//! Supervision: each container's process started, restarted with backoff when it exits
//! or fails its liveness probe, stopped with its process group, and its state reported.

use super::probe::check;
use super::spec::ContainerSpec;
use super::{Confinement, Running};
use crate::target::{ContainerStatus, WorkloadStatus};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use wharf_core::status::{ContainerState as Container, WorkloadState};

/// How long a stopped process gets between SIGTERM and SIGKILL.
pub(super) const GRACE: Duration = Duration::from_secs(5);
/// A log file is rotated when it grows past this.
pub(super) const LOG_LIMIT: u64 = 16 << 20;
/// A process without ports or probe is ready once it has run this long.
pub(super) const SETTLE: Duration = Duration::from_secs(1);
/// A process that ran this long starts its restart backoff afresh.
pub(super) const STABLE: Duration = Duration::from_secs(60);

/// One container's supervisor.
pub(super) struct Supervised {
    pub(super) name: String,
    pub(super) spec: Arc<ContainerSpec>,
    pub(super) confinement: Arc<Confinement>,
    pub(super) state: Arc<Mutex<ContainerState>>,
    pub(super) stop: tokio::sync::watch::Sender<bool>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

/// What the supervisor knows of its container.
#[derive(Debug, Default)]
pub(super) struct ContainerState {
    pub(super) pid: Option<u32>,
    pub(super) since: Option<Instant>,
    pub(super) restarts: u32,
    pub(super) last_exit: Option<String>,
    pub(super) spawn_error: Option<String>,
    pub(super) stopped: bool,
}

/// Starts supervising a container.
pub(super) fn start(spec: Arc<ContainerSpec>, confinement: Arc<Confinement>) -> Supervised {
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
pub(super) async fn stop_workload(w: Running) {
    for c in &w.containers {
        let _ = c.stop.send(true);
    }
    for c in w.containers {
        let _ = c.task.await;
    }
}

/// Appends a line to a log file, rotating it when it is too big.
pub(super) async fn note(log: &Path, line: &str) {
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
pub(super) fn pump(reader: impl tokio::io::AsyncRead + Unpin + Send + 'static, log: PathBuf) {
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(reader).split(b'\n');
        while let Ok(Some(line)) = lines.next_segment().await {
            note(&log, &String::from_utf8_lossy(&line)).await;
        }
    });
}

/// The start time of process `pid` (clock ticks since boot), from `/proc`.
pub(super) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

/// Signals a process group.
pub(super) fn signal(pgid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals the process group; it has no memory
    // effects on this process.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), sig);
    }
}

/// Stops processes recorded in pid files under `dir` that are still the same processes.
pub(super) async fn kill_orphans(dir: &Path) {
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

/// The delays between restarts: 0.5 s after the first exit, doubling with each exit in a
/// row up to 30 s; a process that ran for [`STABLE`] starts afresh.
#[derive(Debug, Default)]
struct Backoff {
    exits: u32,
}

impl Backoff {
    /// The delay before restarting a process that exited after running for `ran`.
    fn after(&mut self, ran: Duration) -> Duration {
        if ran > STABLE {
            self.exits = 0;
        }
        self.exits += 1;
        Duration::from_millis(500)
            .saturating_mul(1 << (self.exits - 1).min(6))
            .min(Duration::from_secs(30))
    }
}

/// Runs a container until told to stop: starts it, restarts it with backoff when it
/// exits or fails its liveness probe, and stops its process group on the way out.
pub(super) async fn supervise(
    spec: Arc<ContainerSpec>,
    confinement: Arc<Confinement>,
    state: Arc<Mutex<ContainerState>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default();
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
        let delay = backoff.after(started.elapsed());
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
pub(super) async fn watch_liveness(
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
pub(super) async fn terminate(child: &mut tokio::process::Child, pid: u32) {
    signal(pid, libc::SIGTERM);
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        signal(pid, libc::SIGKILL);
        let _ = child.wait().await;
    }
    // Whatever the group still holds (children that ignored SIGTERM) goes too.
    signal(pid, libc::SIGKILL);
}

pub(super) fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "exited".into(),
    }
}

/// The last line a container wrote, for a reason shown to people.
pub(super) fn last_line(log: &Path) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let start = text.len().saturating_sub(4096);
    String::from_utf8_lossy(&text[start..])
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("[wharf]"))
        .map(str::to_string)
}

pub(super) async fn workload_status(w: &Running) -> WorkloadStatus {
    let mut containers = Vec::new();
    let mut reasons = Vec::new();
    let mut state = WorkloadState::Ready;
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
            (Some(_), _, _) => Container::Failed,
            (_, _, true) => Container::Stopped,
            (_, Some(_), _) => Container::Running,
            (_, None, _) if restarts > 0 => Container::Restarting,
            _ => Container::Starting,
        };
        containers.push(ContainerStatus {
            name: c.name.clone(),
            state: cstate,
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
            Container::Failed => {
                state = WorkloadState::Failed;
                reasons.push(format!(
                    "container {}: {}",
                    c.name,
                    spawn_error.unwrap_or_default()
                ));
            }
            Container::Restarting | Container::Stopped => {
                if state != WorkloadState::Failed {
                    state = WorkloadState::Restarting;
                }
                reasons.push(format!(
                    "container {} {} ({restarts} restarts){}",
                    c.name,
                    last_exit.unwrap_or_else(|| "stopped".into()),
                    tail()
                ));
            }
            Container::Starting => {
                if state == WorkloadState::Ready {
                    state = WorkloadState::Starting;
                }
                reasons.push(format!("container {} is starting", c.name));
            }
            Container::Running => {
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
                    if state == WorkloadState::Ready {
                        state = WorkloadState::Starting;
                    }
                    reasons.push(format!("container {}: {why}{}", c.name, tail()));
                }
            }
        }
    }
    WorkloadStatus {
        name: w.spec.name.clone(),
        state,
        ready: state == WorkloadState::Ready,
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

    #[test]
    fn restarts_back_off_from_half_a_second_to_thirty_and_start_afresh_after_a_stable_run() {
        let mut backoff = Backoff::default();
        let crash = Duration::from_millis(10);
        let delays: Vec<f64> = (0..9).map(|_| backoff.after(crash).as_secs_f64()).collect();
        assert_eq!(delays, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        assert_eq!(backoff.after(STABLE + crash), Duration::from_millis(500));
        assert_eq!(backoff.after(crash), Duration::from_secs(1));
        assert_eq!(
            backoff.after(STABLE),
            Duration::from_secs(2),
            "60 s is not yet stable"
        );
    }
}
