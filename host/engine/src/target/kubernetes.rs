//! The kubernetes target: each environment in its own namespace of the cluster its
//! environment type names.
//!
//! A deployment's objects are applied with server-side apply as field manager `wharf`
//! (conflicts with another manager fail the apply, naming the fields, unless the target
//! says `force_conflicts`), in dependency order, each labelled with the app, the
//! environment and the deployment. Kinds Wharf does not know are found by discovery, so
//! an HPA or a custom resource from a transformer or a driver applies too; cluster-scoped
//! objects and objects for another namespace are refused. The namespace is created on the
//! first deployment (and marked as Wharf's) and remembers, in its `wharf.dev/kinds`
//! annotation, every kind Wharf applied in it. Once the new set serves, objects of the
//! environment with another deployment's label are pruned; deleting the environment
//! deletes its objects and the namespace when Wharf created it. Nothing without the
//! environment's labels is ever deleted.

mod apply;
pub mod connect;
mod logs;
mod rollout;

use crate::target::{
    Applied, BoxFuture, EnvRef, LogQuery, LogStream, Target, TargetError, WorkloadStatus,
};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PropagationPolicy};
use serde_json::Value;
use std::time::Duration;
use wharf_core::target::KubernetesSpec;

pub use apply::FIELD_MANAGER;

/// The field manager that holds a paused environment's workloads at zero replicas.
pub const PAUSE_MANAGER: &str = "wharf-pause";

/// The labels that say which app and environment an object belongs to.
pub const ENV_LABELS: [&str; 2] = ["wharf.dev/app", "wharf.dev/env"];

/// The kubernetes target for one environment type.
pub struct Kubernetes {
    client: kube::Client,
    /// For followed logs: no read timeout, as a quiet workload writes nothing for long.
    streams: kube::Client,
    cluster: String,
    spec: KubernetesSpec,
    /// How often a rollout is looked at while waiting for it.
    poll: Duration,
}

impl Kubernetes {
    /// The target for `spec`, reaching its cluster (`cluster`, its id) with `client`.
    pub fn new(client: kube::Client, cluster: &str, spec: KubernetesSpec) -> Self {
        Self {
            streams: client.clone(),
            client,
            cluster: cluster.to_string(),
            spec,
            poll: Duration::from_secs(2),
        }
    }

    /// Follows logs with `streams` (a client without a read timeout).
    pub fn with_streams(mut self, streams: kube::Client) -> Self {
        self.streams = streams;
        self
    }

    /// Looks at rollouts every `poll` while waiting.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The environment's namespace.
    pub fn namespace(&self, env: &EnvRef) -> String {
        self.spec.namespace_for(&env.app, &env.env)
    }

    fn system(&self, what: &str, e: &kube::Error) -> TargetError {
        TargetError::System {
            what: format!("cluster {}: {what}", self.cluster),
            source: std::io::Error::other(describe(e)),
        }
    }

    /// Claims (`pause`) or releases the replicas of every Deployment and StatefulSet of
    /// the environment, as field manager [`PAUSE_MANAGER`].
    async fn hold_replicas(&self, env: &EnvRef, pause: bool) -> Result<(), TargetError> {
        let namespace = self.namespace(env);
        let selector = format!(
            "{}={},{}={}",
            ENV_LABELS[0], env.app, ENV_LABELS[1], env.env
        );
        let params = kube::api::PatchParams {
            force: true,
            ..kube::api::PatchParams::apply(PAUSE_MANAGER)
        };
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
                let name = item.metadata.name.unwrap_or_default();
                let mut claim = serde_json::json!({
                    "apiVersion": "apps/v1", "kind": kind, "metadata": { "name": name },
                });
                if pause {
                    claim["spec"] = serde_json::json!({ "replicas": 0 });
                }
                api.patch(&name, &params, &kube::api::Patch::Apply(&claim))
                    .await
                    .map_err(|e| self.system(&format!("scaling {kind}/{name}"), &e))?;
            }
        }
        Ok(())
    }

    /// Deletes the objects of the environment that carry the environment's labels and
    /// match `extra` (another deployment's, for a prune), across every kind Wharf applied
    /// in the namespace. What it deleted, as `Kind/name`.
    async fn delete_labelled(&self, env: &EnvRef, extra: &str) -> Result<Vec<String>, TargetError> {
        let namespace = self.namespace(env);
        let namespaces: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &apply::namespaces());
        let Some(ns) = namespaces
            .get_opt(&namespace)
            .await
            .map_err(|e| self.system(&format!("reading namespace {namespace}"), &e))?
        else {
            return Ok(Vec::new());
        };
        let kinds: Vec<String> = ns
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("wharf.dev/kinds"))
            .and_then(|k| serde_json::from_str(k).ok())
            .unwrap_or_default();
        let selector = format!(
            "app.kubernetes.io/managed-by=wharf,{}={},{}={}{extra}",
            ENV_LABELS[0], env.app, ENV_LABELS[1], env.env
        );
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        let mut deleted = Vec::new();
        for entry in kinds {
            let Some(resource) = apply::from_kind_entry(&entry) else {
                continue;
            };
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &namespace, &resource);
            let list = api
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| {
                    self.system(&format!("listing {} in {namespace}", resource.plural), &e)
                })?;
            for item in list.items {
                let name = item.metadata.name.clone().unwrap_or_default();
                match api.delete(&name, &params).await {
                    Ok(_) => deleted.push(format!("{}/{name}", resource.kind)),
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => {
                        return Err(self.system(&format!("deleting {}/{name}", resource.kind), &e));
                    }
                }
            }
        }
        Ok(deleted)
    }
}

/// A kube error in words: the API server's message and code, or the client's error.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() {
                String::new()
            } else {
                format!(" {}", status.reason)
            };
            format!("{} ({}{reason})", status.message, status.code)
        }
        other => {
            // Each cause once: kube's and hyper's messages often repeat their source's.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                let cause = s.to_string();
                if !text.contains(&cause) {
                    text.push_str(&format!(": {cause}"));
                }
                source = s.source();
            }
            text
        }
    }
}

impl Target for Kubernetes {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    fn apply<'a>(
        &'a self,
        env: &'a EnvRef,
        objects: &'a [Value],
    ) -> BoxFuture<'a, Result<Applied, TargetError>> {
        Box::pin(async move {
            let changed = self.apply_all(env, objects).await?;
            Ok(Applied {
                changed,
                pruned: Vec::new(),
                ignored: Vec::new(),
                location: format!(
                    "cluster {}, namespace {}",
                    self.cluster,
                    self.namespace(env)
                ),
            })
        })
    }

    fn verify<'a>(
        &'a self,
        env: &'a EnvRef,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<WorkloadStatus>, TargetError>> {
        Box::pin(self.wait(env, timeout))
    }

    fn status<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Vec<WorkloadStatus>> {
        Box::pin(async move {
            let env = EnvRef {
                deployment: 0,
                ..env.clone()
            };
            match self.rollouts(&env).await {
                Ok(rollouts) => rollouts.into_iter().map(|r| r.status).collect(),
                Err(e) => vec![WorkloadStatus {
                    name: "*".into(),
                    state: wharf_core::status::WorkloadState::Failed,
                    ready: false,
                    reason: Some(e.to_string()),
                    endpoints: Vec::new(),
                    containers: Vec::new(),
                }],
            }
        })
    }

    fn logs<'a>(
        &'a self,
        env: &'a EnvRef,
        query: LogQuery,
    ) -> BoxFuture<'a, Result<LogStream, TargetError>> {
        Box::pin(self.log_stream(env, query))
    }

    fn prune<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Result<Vec<String>, TargetError>> {
        Box::pin(async move {
            let other = format!(",wharf.dev/deployment!={}", env.deployment);
            self.delete_labelled(env, &other).await
        })
    }

    /// Scales every Deployment and StatefulSet of the environment to zero replicas: a
    /// server-side apply of `spec.replicas: 0` alone, as field manager `wharf-pause`
    /// (forced: an autoscaler's claim on the field gives way), so that Wharf's own
    /// applies, which leave the replicas to their default or to an autoscaler, do not
    /// undo it.
    fn pause<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(self.hold_replicas(env, true))
    }

    /// Releases `wharf-pause`'s claim on the replicas (an apply without them), so they go
    /// back to their default, or to what an autoscaler sets.
    fn resume<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(self.hold_replicas(env, false))
    }

    fn remove<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            self.delete_labelled(env, "").await?;
            let namespace = self.namespace(env);
            let namespaces: Api<DynamicObject> =
                Api::all_with(self.client.clone(), &apply::namespaces());
            let ours = namespaces
                .get_opt(&namespace)
                .await
                .map_err(|e| self.system(&format!("reading namespace {namespace}"), &e))?
                .is_some_and(|ns| {
                    ns.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("wharf.dev/created"))
                        .is_some_and(|v| v == "true")
                });
            if ours {
                match namespaces
                    .delete(&namespace, &DeleteParams::background())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => {
                        return Err(self.system(&format!("deleting namespace {namespace}"), &e));
                    }
                }
            }
            Ok(())
        })
    }
}
