//! Logs: the pods' logs through the API server, every container of every replica
//! interleaved, each line prefixed with `[pod/container]`, as the process target
//! prefixes its lines with the container.

use super::{ENV_LABELS, Kubernetes};
use crate::target::{EnvRef, LogQuery, LogStream, TargetError};
use futures_util::{AsyncBufReadExt, StreamExt, stream};
use kube::api::{Api, ListParams, LogParams};

impl Kubernetes {
    pub(super) async fn log_stream(
        &self,
        env: &EnvRef,
        query: LogQuery,
    ) -> Result<LogStream, TargetError> {
        let namespace = self.namespace(env);
        let mut selector = format!(
            "{}={},{}={}",
            ENV_LABELS[0], env.app, ENV_LABELS[1], env.env
        );
        if let Some(workload) = &query.workload {
            selector.push_str(&format!(",app.kubernetes.io/name={workload}"));
        }
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), &namespace);
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| self.system(&format!("listing pods in {namespace}"), &e))?;
        if list.items.is_empty() {
            return Err(TargetError::Missing(match &query.workload {
                Some(w) => format!("no pods of workload {w} in namespace {namespace}"),
                None => format!("no pods in namespace {namespace}"),
            }));
        }
        let mut streams = Vec::new();
        for pod in &list.items {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            for container in pod.spec.iter().flat_map(|s| &s.containers) {
                let params = LogParams {
                    container: Some(container.name.clone()),
                    follow: query.follow,
                    tail_lines: Some(query.tail as i64),
                    ..LogParams::default()
                };
                let prefix = format!("{pod_name}/{}", container.name);
                let client = if query.follow {
                    &self.streams
                } else {
                    &self.client
                };
                let pods: Api<k8s_openapi::api::core::v1::Pod> =
                    Api::namespaced(client.clone(), &namespace);
                let lines = pods
                    .log_stream(&pod_name, &params)
                    .await
                    .map_err(|e| self.system(&format!("reading the logs of {prefix}"), &e))?
                    .lines()
                    .filter_map(move |line| {
                        let prefix = prefix.clone();
                        async move { line.ok().map(|l| format!("[{prefix}] {l}")) }
                    });
                streams.push(lines.boxed());
            }
        }
        Ok(stream::select_all(streams).boxed())
    }
}
