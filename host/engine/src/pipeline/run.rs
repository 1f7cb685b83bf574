//! One deployment being carried out: its steps begun, done or failed, each written to the
//! store and announced as an event.

use super::{Inner, StepError, What, delete, deploy};
use crate::journal::StoreJournal;
use crate::provision::{Entry, Journal, Operation, Progress};
use crate::target::BoxFuture;
use futures_util::FutureExt;
use serde_json::{Value, json};
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use wharf_core::clock::now_ms;
use wharf_core::status::{
    DeploymentKind, DeploymentStatus, ErrorScope, ResourceProgress, Step, StepStatus,
};
use wharf_store::deployments::{self, Deployment};

/// A failure at a step: its position and what failed.
pub(super) type Failed = (usize, StepError);

/// One deployment being carried out. Its steps change as it goes (behind a lock, so that
/// a step's body can read the deployment while the step is being carried out).
pub(super) struct Run<'a> {
    pub(super) inner: &'a Inner,
    /// The deployment as it was read; its steps are in `progress`.
    pub(super) d: Deployment,
    progress: Mutex<Steps>,
}

/// The steps of a deployment as they are now.
struct Steps {
    steps: Vec<deployments::Step>,
    /// Steps finished but not yet written: written with the next step's start (or the
    /// deployment's end), one store call instead of two. A crash in between leaves the
    /// step `running`, and a resumed deployment runs it again, as it must anyway.
    unwritten: Vec<usize>,
}

/// Carries out deployment `d` to its end, which it writes and announces.
pub(super) async fn run(inner: &Inner, d: Deployment) {
    let (app, env, id) = (d.app.clone(), d.env.clone(), d.id);
    // A deployment resumed after a restart was announced when it first started.
    let started = (d.status == DeploymentStatus::Queued && d.kind == DeploymentKind::Deploy)
        .then(|| outbound(&d, "deployment.started", None));
    if let Err(e) = inner
        .store
        .transaction(move |conn| {
            deployments::set_status(
                conn,
                &app,
                &env,
                id,
                DeploymentStatus::Running,
                None,
                now_ms(),
            )?;
            if let Some(event) = &started {
                wharf_store::webhooks::emit(conn, event, now_ms())?;
            }
            Ok(())
        })
        .await
    {
        tracing::error!(error = %e, "starting a deployment failed");
        return;
    }
    let mut d = d;
    let steps = std::mem::take(&mut d.steps);
    let run = Run {
        inner,
        d,
        progress: Mutex::new(Steps {
            steps,
            unwritten: Vec::new(),
        }),
    };
    run.announce(DeploymentStatus::Running, None);
    let kind = run.d.kind;
    let body = async {
        match kind {
            DeploymentKind::Deploy => deploy::deploy(&run).await,
            DeploymentKind::Delete => delete::delete(&run).await,
        }
    };
    // A fault in the engine fails this deployment at the step it was in, instead of
    // leaving it running for ever with its listeners waiting.
    let outcome = match AssertUnwindSafe(body).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            tracing::error!(app = %run.d.app, env = %run.d.env, deployment = run.d.id,
                            panic = %message, "a deployment stopped on an internal fault");
            Err((run.current_step(), internal_fault(&message)))
        }
    };
    match outcome {
        Ok(()) if kind == DeploymentKind::Deploy => {
            run.finish(DeploymentStatus::Succeeded, None).await
        }
        // The rows are gone with the environment; listeners still hear the end.
        Ok(()) => run.announce(DeploymentStatus::Succeeded, None),
        Err((position, error)) => run.fail(position, error).await,
    }
}

/// The outbound event `kind` (`deployment.started`, ...) about deployment `d`, for the
/// webhooks that ask for it.
fn outbound(d: &Deployment, kind: &str, error: Option<Value>) -> wharf_store::webhooks::OutEvent {
    let mut data = json!({
        "app": d.app, "env": d.env, "deployment": d.id, "kind": d.kind, "set": d.set_id,
        "images": d.images, "comment": d.comment, "created_by": d.created_by,
    });
    if let Some(error) = error {
        data["error"] = error;
    }
    wharf_store::webhooks::OutEvent {
        kind: kind.to_string(),
        app: Some(d.app.clone()),
        env: Some(d.env.clone()),
        subject: format!("deployments/{}", d.id),
        data,
    }
}

/// The error of a deployment stopped by a fault in Wharf.
fn internal_fault(message: &str) -> StepError {
    StepError {
        scope: ErrorScope::Internal,
        object: String::new(),
        message: format!(
            "the deployment stopped on an internal fault in Wharf ({message}); nothing more \
             was done. Deploy again; if it happens again, report it with the server's log"
        ),
    }
}

impl Run<'_> {
    /// The step being carried out (the last one begun), else the first.
    fn current_step(&self) -> usize {
        self.progress()
            .steps
            .iter()
            .rposition(|s| s.status == StepStatus::Running)
            .unwrap_or(0)
    }

    /// Carries out step `step`: written `running`, then `body`, then written `done` with
    /// the detail `body` gave, or failed (with the deployment) at this step.
    pub(super) async fn step<T>(
        &self,
        step: Step,
        body: impl Future<Output = Result<(T, Value), StepError>>,
    ) -> Result<T, Failed> {
        let position = self.position(step);
        let at = |e| (position, e);
        self.begin(position).await.map_err(at)?;
        let (value, detail) = body.await.map_err(at)?;
        self.done(position, detail);
        Ok(value)
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Steps> {
        self.progress.lock().expect("never poisoned")
    }

    /// Whether the deployment has step `step` (one stored before the step existed has
    /// not).
    pub(super) fn has(&self, step: Step) -> bool {
        self.progress().steps.iter().any(|s| s.name == step)
    }

    pub(super) fn position(&self, step: Step) -> usize {
        self.progress()
            .steps
            .iter()
            .position(|s| s.name == step)
            .expect("the deployment has every step of its kind")
    }

    /// The journal of this deployment's resources: the store, with each entry announced.
    pub(super) fn journal(&self) -> EventJournal<'_> {
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

    /// Announces `step`, at `position`, as it is.
    pub(super) fn announce_step(&self, position: usize, step: &deployments::Step) {
        self.inner.emit(
            &self.d,
            What::Step {
                position,
                name: step.name,
                status: step.status,
                detail: step.detail.clone(),
                error: step.error.clone(),
                duration_ms: step
                    .started_at_ms
                    .zip(step.finished_at_ms)
                    .map(|(s, f)| f - s),
            },
        );
    }

    fn announce(&self, status: DeploymentStatus, error: Option<Value>) {
        self.inner.emit(&self.d, What::Status { status, error });
    }

    /// Writes the unwritten steps, step `position`, and the deployment's end, in one
    /// transaction; then announces them.
    async fn write(
        &self,
        position: Option<usize>,
        end: Option<(DeploymentStatus, Option<Value>)>,
    ) -> Result<(), StepError> {
        let steps: Vec<(usize, deployments::Step)> = {
            let mut progress = self.progress();
            let mut positions = std::mem::take(&mut progress.unwritten);
            positions.extend(position);
            positions.dedup();
            positions
                .into_iter()
                .map(|p| (p, progress.steps[p].clone()))
                .collect()
        };
        let (app, env, id) = (self.d.app.clone(), self.d.env.clone(), self.d.id);
        let written = steps.clone();
        let ended = end.as_ref().map(|(status, error)| {
            let kind = match status {
                DeploymentStatus::Succeeded => "deployment.succeeded",
                _ => "deployment.failed",
            };
            outbound(&self.d, kind, error.clone())
        });
        self.inner
            .store(move |tx| {
                for (p, step) in &written {
                    deployments::set_step(tx, &app, &env, id, *p, step)?;
                }
                if let Some((status, error)) = end {
                    deployments::set_status(tx, &app, &env, id, status, error.as_ref(), now_ms())?;
                }
                if let Some(event) = &ended {
                    wharf_store::webhooks::emit(tx, event, now_ms())?;
                }
                Ok(())
            })
            .await?;
        for (position, step) in &steps {
            self.announce_step(*position, step);
        }
        Ok(())
    }

    /// Marks step `position` running (written before it acts).
    async fn begin(&self, position: usize) -> Result<(), StepError> {
        {
            let step = &mut self.progress().steps[position];
            let resumed = matches!(step.status, StepStatus::Running | StepStatus::Done);
            step.status = StepStatus::Running;
            step.started_at_ms.get_or_insert(now_ms());
            step.finished_at_ms = None;
            if resumed {
                step.detail["resumed"] = json!(true);
            }
        }
        self.write(Some(position), None).await
    }

    fn done(&self, position: usize, detail: Value) {
        let mut progress = self.progress();
        let step = &mut progress.steps[position];
        let resumed = step.detail.get("resumed").cloned();
        step.status = StepStatus::Done;
        step.finished_at_ms = Some(now_ms());
        step.detail = detail;
        if let Some(r) = resumed {
            step.detail["resumed"] = r;
        }
        step.error = None;
        progress.unwritten.push(position);
    }

    /// Fails the step at `position` and the deployment; later steps are skipped.
    async fn fail(&self, position: usize, error: StepError) {
        let mut whole = json!(error);
        let name = {
            let mut progress = self.progress();
            let step = &mut progress.steps[position];
            step.status = StepStatus::Failed;
            step.finished_at_ms = Some(now_ms());
            step.error = Some(whole.clone());
            let name = step.name;
            progress.unwritten.push(position);
            for later in position + 1..progress.steps.len() {
                if progress.steps[later].status == StepStatus::Pending {
                    progress.steps[later].status = StepStatus::Skipped;
                    progress.unwritten.push(later);
                }
            }
            name
        };
        whole["step"] = json!(name);
        tracing::warn!(
            step = %name,
            scope = %error.scope,
            object = %error.object,
            message = %error.message,
            "deployment failed"
        );
        self.finish(DeploymentStatus::Failed, Some(whole)).await;
    }

    async fn finish(&self, status: DeploymentStatus, error: Option<Value>) {
        if let Err(e) = self.write(None, Some((status, error.clone()))).await {
            tracing::error!(message = %e.message, "recording the end of a deployment failed");
        }
        self.announce(status, error);
    }
}

/// The store journal, announcing each entry as an event.
pub(super) struct EventJournal<'a> {
    inner: StoreJournal,
    engine: &'a Inner,
    d: &'a Deployment,
}

impl Journal for EventJournal<'_> {
    fn record<'a>(&'a self, entry: Entry<'a>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.inner.record(entry).await?;
            let (status, message) = progress(entry.operation, entry.progress);
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

/// What a journal entry announces: the resource's progress and the driver's message.
fn progress(operation: Operation, progress: &Progress) -> (ResourceProgress, String) {
    use ResourceProgress as P;
    let deprovision = operation == Operation::Deprovision;
    let pick = |provision, deprovisioning| {
        if deprovision {
            deprovisioning
        } else {
            provision
        }
    };
    match progress {
        Progress::InProgress { message, .. } => (
            pick(P::InProgress, P::DeprovisionInProgress),
            message.clone(),
        ),
        Progress::Retrying { message, .. } => {
            (pick(P::Retrying, P::DeprovisionRetrying), message.clone())
        }
        Progress::Done { .. } => (pick(P::Done, P::DeprovisionDone), String::new()),
        Progress::Failed { message } => (pick(P::Failed, P::DeprovisionFailed), message.clone()),
    }
}
