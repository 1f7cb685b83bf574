//! Rollout status: whether each workload of the environment serves its newest version,
//! and when not, why, in the words a developer acts on, taken from its pods.

use super::{ENV_LABELS, Kubernetes, describe};
use crate::target::{ContainerStatus, EnvRef, TargetError, WorkloadStatus};
use kube::api::{Api, DynamicObject, ListParams, LogParams};
use serde_json::Value;
use std::time::Duration;
use wharf_core::status::{ContainerState, WorkloadState};

/// Waiting reasons of a container that will not go away by waiting.
const STUCK: &[&str] = &[
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// One workload's rollout, as read from its object and its pods.
#[derive(Debug, Clone)]
pub(super) struct Rollout {
    pub(super) status: WorkloadStatus,
    /// The rollout cannot succeed without a change (a bad image, a crashing program, the
    /// progress deadline passed).
    pub(super) stuck: bool,
}

/// The workload's desired, updated and available replicas, and whether its controller has
/// seen its newest spec; `None` when the object is not a workload Wharf follows.
fn progress(kind: &str, object: &Value) -> Option<(i64, i64, i64, i64, bool)> {
    let status = &object["status"];
    let observed = status["observedGeneration"].as_i64().unwrap_or(0)
        >= object["metadata"]["generation"].as_i64().unwrap_or(0);
    let desired = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let replicas = status["replicas"].as_i64().unwrap_or(0);
    match kind {
        "Deployment" => Some((
            desired,
            status["updatedReplicas"].as_i64().unwrap_or(0),
            status["availableReplicas"].as_i64().unwrap_or(0),
            replicas,
            observed,
        )),
        "StatefulSet" => {
            let current = status["currentRevision"] == status["updateRevision"];
            Some((
                desired,
                status["updatedReplicas"].as_i64().unwrap_or(0),
                status["readyReplicas"].as_i64().unwrap_or(0),
                replicas,
                observed && current,
            ))
        }
        _ => None,
    }
}

impl Kubernetes {
    /// The rollout of every Deployment and StatefulSet of the environment (of the
    /// deployment `env` names, when it names one).
    pub(super) async fn rollouts(&self, env: &EnvRef) -> Result<Vec<Rollout>, TargetError> {
        let namespace = self.namespace(env);
        // A deployment waits for its own workloads; the status shows all of them.
        let mut selector = format!(
            "{}={},{}={}",
            ENV_LABELS[0], env.app, ENV_LABELS[1], env.env
        );
        if env.deployment > 0 {
            selector.push_str(&format!(",wharf.dev/deployment={}", env.deployment));
        }
        let mut out = Vec::new();
        for kind in ["Deployment", "StatefulSet"] {
            let resource = self
                .resource("apps/v1", kind, &mut Default::default())
                .await
                .map_err(TargetError::Unsupported)?;
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &namespace, &resource.api);
            let list = api
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| self.system(&format!("listing {kind}s in {namespace}"), &e))?;
            for item in list.items {
                let object = serde_json::to_value(&item).expect("an object serializes");
                out.push(self.rollout(&namespace, kind, &object).await?);
            }
        }
        out.sort_by(|a, b| a.status.name.cmp(&b.status.name));
        Ok(out)
    }

    async fn rollout(
        &self,
        namespace: &str,
        kind: &str,
        object: &Value,
    ) -> Result<Rollout, TargetError> {
        let name = object["metadata"]["annotations"]["wharf.dev/workload"]
            .as_str()
            .or(object["metadata"]["name"].as_str())
            .unwrap_or_default()
            .to_string();
        // The kind is the one listed: the items of a list carry no kind of their own.
        let Some((desired, updated, available, replicas, observed)) = progress(kind, object) else {
            return Err(TargetError::Unsupported(format!(
                "{kind} is not a workload Wharf follows"
            )));
        };
        let (containers, why, stuck) = self.pods(namespace, object).await?;
        let deadline_passed = object["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
        let ready = observed && updated == desired && available == desired && replicas == desired;
        let counts = format!("{available}/{desired} available, {updated} updated");
        let (state, reason) = if ready {
            (WorkloadState::Ready, None)
        } else if stuck || deadline_passed {
            let why = why.unwrap_or_else(|| {
                "its rollout passed its progress deadline (progressDeadlineSeconds)".into()
            });
            (
                WorkloadState::Failed,
                Some(format!("{kind} {name} ({counts}): {why}")),
            )
        } else {
            let why = why.unwrap_or_else(|| "rolling out".into());
            (
                WorkloadState::Starting,
                Some(format!("{kind} {name} ({counts}): {why}")),
            )
        };
        Ok(Rollout {
            status: WorkloadStatus {
                name,
                state,
                ready,
                reason,
                endpoints: Vec::new(),
                containers,
            },
            stuck: stuck || deadline_passed,
        })
    }

    /// The containers of the workload's pods (`pod/container`), the first reason one is not
    /// ready, and whether that reason is one waiting does not cure.
    async fn pods(
        &self,
        namespace: &str,
        workload: &Value,
    ) -> Result<(Vec<ContainerStatus>, Option<String>, bool), TargetError> {
        let selector = workload["spec"]["selector"]["matchLabels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        if selector.is_empty() {
            return Ok((Vec::new(), None, false));
        }
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), namespace);
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| self.system(&format!("listing pods in {namespace}"), &e))?;
        let mut containers = Vec::new();
        let mut why: Option<(String, bool)> = None;
        for pod in list.items {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let status = pod.status.clone().unwrap_or_default();
            for condition in status.conditions.iter().flatten() {
                if condition.type_ == "PodScheduled" && condition.status == "False" && why.is_none()
                {
                    why = Some((
                        format!(
                            "pod {pod_name} cannot be scheduled: {}",
                            condition.message.clone().unwrap_or_default()
                        ),
                        false,
                    ));
                }
            }
            let images: Vec<(String, String)> = pod
                .spec
                .iter()
                .flat_map(|s| &s.containers)
                .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                .collect();
            for c in status.container_statuses.iter().flatten() {
                let image = images
                    .iter()
                    .find(|(n, _)| *n == c.name)
                    .map_or(c.image.clone(), |(_, i)| i.clone());
                let waiting = c.state.as_ref().and_then(|s| s.waiting.clone());
                let last = c.last_state.as_ref().and_then(|s| s.terminated.clone());
                let state = match (&waiting, c.ready) {
                    (_, true) => ContainerState::Running,
                    (Some(w), _) if w.reason.as_deref() == Some("CrashLoopBackOff") => {
                        ContainerState::Restarting
                    }
                    (Some(w), _) if STUCK.contains(&w.reason.as_deref().unwrap_or("")) => {
                        ContainerState::Failed
                    }
                    _ => ContainerState::Starting,
                };
                containers.push(ContainerStatus {
                    name: format!("{pod_name}/{}", c.name),
                    state,
                    pid: None,
                    restarts: c.restart_count.max(0) as u32,
                    last_exit: last.as_ref().map(|t| {
                        format!(
                            "exited with {}{}",
                            t.exit_code,
                            t.reason
                                .as_ref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        )
                    }),
                });
                if why.as_ref().is_some_and(|(_, stuck)| *stuck) || c.ready {
                    continue;
                }
                let reason = waiting.as_ref().and_then(|w| w.reason.clone());
                let message = waiting
                    .as_ref()
                    .and_then(|w| w.message.clone())
                    .unwrap_or_default();
                let found = match reason.as_deref() {
                    Some(
                        "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName"
                        | "ErrImageNeverPull",
                    ) => {
                        let r = reason.clone().unwrap_or_default();
                        Some((
                            format!(
                                "container {} cannot pull image {image} ({r}: {message})",
                                c.name
                            ),
                            r != "ErrImagePull",
                        ))
                    }
                    Some("CrashLoopBackOff") => {
                        let code = last.as_ref().map_or(-1, |t| t.exit_code);
                        let tail = self.last_lines(namespace, &pod_name, &c.name).await;
                        Some((
                            format!(
                                "container {} keeps crashing (exit code {code}, {} restarts){tail}",
                                c.name, c.restart_count
                            ),
                            true,
                        ))
                    }
                    Some(r) if STUCK.contains(&r) => {
                        Some((format!("container {}: {r}: {message}", c.name), true))
                    }
                    _ if c.state.as_ref().is_some_and(|s| s.running.is_some()) => Some((
                        format!(
                            "container {} runs but is not ready (its readiness probe fails)",
                            c.name
                        ),
                        false,
                    )),
                    _ => None,
                };
                if let Some(found) = found
                    && (why.is_none() || found.1)
                {
                    why = Some(found);
                }
            }
        }
        let stuck = why.as_ref().is_some_and(|(_, s)| *s);
        Ok((containers, why.map(|(w, _)| w), stuck))
    }

    /// The last lines a crashed container wrote, for the reason shown.
    async fn last_lines(&self, namespace: &str, pod: &str, container: &str) -> String {
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: Some(container.to_string()),
            previous: true,
            tail_lines: Some(5),
            ..LogParams::default()
        };
        match pods.logs(pod, &params).await {
            Ok(text) if !text.trim().is_empty() => {
                format!("; its last lines:\n{}", text.trim_end())
            }
            Ok(_) => String::new(),
            Err(e) => format!("; its logs cannot be read: {}", describe(&e)),
        }
    }

    /// Waits until every workload serves its newest version, at most `timeout`; fails as
    /// soon as one is stuck (a bad image, a crash loop, a passed progress deadline).
    pub(super) async fn wait(
        &self,
        env: &EnvRef,
        timeout: Duration,
    ) -> Result<Vec<WorkloadStatus>, TargetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let rollouts = self.rollouts(env).await?;
            if rollouts.iter().all(|r| r.status.ready) {
                return Ok(rollouts.into_iter().map(|r| r.status).collect());
            }
            let waiting: Vec<&Rollout> = rollouts.iter().filter(|r| !r.status.ready).collect();
            if let Some(stuck) = waiting.iter().find(|r| r.stuck) {
                return Err(TargetError::NotReady(
                    stuck.status.reason.clone().unwrap_or_default(),
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                let reasons: Vec<String> = waiting
                    .iter()
                    .filter_map(|r| r.status.reason.clone())
                    .collect();
                return Err(TargetError::NotReady(format!(
                    "not ready after {}s: {}",
                    timeout.as_secs(),
                    reasons.join("; ")
                )));
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}
