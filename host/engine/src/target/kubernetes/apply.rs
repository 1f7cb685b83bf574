//! Applying a deployment's objects: each labelled as the environment's, ordered so that
//! what a workload needs exists before it, resolved to its API resource (a table of the
//! kinds Wharf renders, discovery for every other), and sent with server-side apply.

use super::{ENV_LABELS, Kubernetes, describe};
use crate::target::{EnvRef, TargetError};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The field manager Wharf applies as.
pub const FIELD_MANAGER: &str = "wharf";

/// An object's API resource and whether it lives in a namespace.
#[derive(Debug, Clone)]
pub(super) struct Resource {
    pub(super) api: ApiResource,
    pub(super) namespaced: bool,
}

/// The kinds Wharf renders and those commonly added by transformers and drivers, so that
/// applying them needs no discovery request: `(apiVersion, kind, plural, namespaced)`.
const KNOWN: &[(&str, &str, &str, bool)] = &[
    ("v1", "Namespace", "namespaces", false),
    ("v1", "Secret", "secrets", true),
    ("v1", "ConfigMap", "configmaps", true),
    ("v1", "Service", "services", true),
    ("v1", "ServiceAccount", "serviceaccounts", true),
    (
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
    ),
    ("v1", "Pod", "pods", true),
    ("apps/v1", "Deployment", "deployments", true),
    ("apps/v1", "StatefulSet", "statefulsets", true),
    ("apps/v1", "DaemonSet", "daemonsets", true),
    ("batch/v1", "Job", "jobs", true),
    ("batch/v1", "CronJob", "cronjobs", true),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    (
        "policy/v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    (
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
    ),
    ("networking.k8s.io/v1", "Ingress", "ingresses", true),
];

/// Where an object goes in the order of applying: what others refer to first, workloads
/// after what they mount and the services that front them, then what refers to workloads.
fn rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "ServiceAccount"
        | "Secret"
        | "ConfigMap"
        | "PersistentVolumeClaim"
        | "Role"
        | "RoleBinding" => 1,
        "Service" => 2,
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob" | "Pod" => 3,
        _ => 4,
    }
}

/// `apiVersion` into its group and version.
pub(super) fn gvk(api_version: &str, kind: &str) -> GroupVersionKind {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind)
}

impl Kubernetes {
    /// The API resource of `apiVersion` `kind`: from the table of known kinds, else asked
    /// of the cluster (and remembered in `found`).
    pub(super) async fn resource(
        &self,
        api_version: &str,
        kind: &str,
        found: &mut BTreeMap<(String, String), Resource>,
    ) -> Result<Resource, String> {
        if let Some((_, _, plural, namespaced)) = KNOWN
            .iter()
            .find(|(v, k, _, _)| *v == api_version && *k == kind)
        {
            let api = ApiResource::from_gvk_with_plural(&gvk(api_version, kind), plural);
            return Ok(Resource {
                api,
                namespaced: *namespaced,
            });
        }
        let key = (api_version.to_string(), kind.to_string());
        if let Some(r) = found.get(&key) {
            return Ok(r.clone());
        }
        let (api, capabilities) =
            kube::discovery::pinned_kind(&self.client, &gvk(api_version, kind))
                .await
                .map_err(|e| {
                    format!(
                        "the cluster does not serve {kind} in {api_version} (is its \
                     CustomResourceDefinition installed?): {}",
                        describe(&e)
                    )
                })?;
        let r = Resource {
            api,
            namespaced: capabilities.scope == Scope::Namespaced,
        };
        found.insert(key, r.clone());
        Ok(r)
    }

    /// Applies `objects` into the environment's namespace, which is made (and marked as
    /// Wharf's) when missing. Objects of another namespace, and cluster-scoped objects, are
    /// refused: an environment's objects live in its namespace.
    pub(super) async fn apply_all(
        &self,
        env: &EnvRef,
        objects: &[Value],
    ) -> Result<Vec<String>, TargetError> {
        let namespace = self.namespace(env);
        let mut checked = Vec::new();
        for (index, object) in objects.iter().enumerate() {
            let invalid = |reason: String| TargetError::Object { index, reason };
            let (Some(api_version), Some(kind), Some(name)) = (
                object["apiVersion"].as_str(),
                object["kind"].as_str(),
                object["metadata"]["name"].as_str(),
            ) else {
                return Err(invalid(
                    "an object needs apiVersion, kind and metadata.name".into(),
                ));
            };
            if let Some(other) = object["metadata"]["namespace"].as_str()
                && other != namespace
            {
                return Err(invalid(format!(
                    "{kind}/{name} is for namespace {other}; the environment's objects go to \
                     its namespace {namespace}"
                )));
            }
            checked.push((index, api_version, kind, name));
        }
        checked.sort_by_key(|(index, _, kind, _)| (rank(kind), *index));
        let mut found = BTreeMap::new();
        let mut resources = Vec::new();
        for (index, api_version, kind, name) in &checked {
            let resource =
                self.resource(api_version, kind, &mut found)
                    .await
                    .map_err(|reason| TargetError::Object {
                        index: *index,
                        reason,
                    })?;
            if !resource.namespaced {
                return Err(TargetError::Object {
                    index: *index,
                    reason: format!(
                        "{kind}/{name} is cluster-scoped; an environment's objects live in its \
                         namespace, and cluster-wide objects are ops' to manage"
                    ),
                });
            }
            resources.push(resource);
        }
        self.ensure_namespace(env, &namespace, &resources).await?;
        let params = PatchParams {
            force: self.spec.force_conflicts,
            ..PatchParams::apply(FIELD_MANAGER)
        };
        let mut changed = Vec::new();
        for ((index, _, kind, name), resource) in checked.iter().zip(&resources) {
            let mut object = objects[*index].clone();
            label(&mut object, env);
            object["metadata"]["namespace"] = json!(namespace);
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &namespace, &resource.api);
            api.patch(name, &params, &Patch::Apply(&object))
                .await
                .map_err(|e| TargetError::Object {
                    index: *index,
                    reason: self.apply_failure(kind, name, &e),
                })?;
            changed.push(format!("{kind}/{name}"));
        }
        Ok(changed)
    }

    /// Says why an apply failed; a conflict names the fields and their managers (the API
    /// server's message does) and how to take them over.
    fn apply_failure(&self, kind: &str, name: &str, e: &kube::Error) -> String {
        match e {
            kube::Error::Api(status) if status.code == 409 && !self.spec.force_conflicts => {
                format!(
                    "{kind}/{name}: {}; another field manager owns these fields: change them \
                     there, or let the environment type's target say \"force_conflicts\": true",
                    status.message
                )
            }
            _ => format!("{kind}/{name}: {}", describe(e)),
        }
    }

    /// Makes sure the environment's namespace exists: a missing one is created with the
    /// environment's labels and marked as Wharf's (so deleting the environment deletes it);
    /// one that belongs to another environment is refused. Records the kinds this
    /// deployment applies in the namespace's `wharf.dev/kinds` annotation, with those of
    /// earlier deployments, so that prune and delete know where to look.
    async fn ensure_namespace(
        &self,
        env: &EnvRef,
        namespace: &str,
        resources: &[Resource],
    ) -> Result<(), TargetError> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &namespaces());
        let existing = api
            .get_opt(namespace)
            .await
            .map_err(|e| self.system(&format!("reading namespace {namespace}"), &e))?;
        let (created, mut kinds) = match &existing {
            None => (true, Vec::new()),
            Some(ns) => {
                let labels = ns.metadata.labels.clone().unwrap_or_default();
                let annotations = ns.metadata.annotations.clone().unwrap_or_default();
                if let (Some(app), Some(e)) = (labels.get(ENV_LABELS[0]), labels.get(ENV_LABELS[1]))
                    && (app != &env.app || e != &env.env)
                {
                    return Err(TargetError::Unsupported(format!(
                        "namespace {namespace} belongs to environment {e} of app {app}; give \
                         the environment type a namespace template with {{app}} and {{env}}"
                    )));
                }
                let kinds = annotations
                    .get("wharf.dev/kinds")
                    .and_then(|k| serde_json::from_str::<Vec<String>>(k).ok())
                    .unwrap_or_default();
                (
                    annotations
                        .get("wharf.dev/created")
                        .is_some_and(|v| v == "true"),
                    kinds,
                )
            }
        };
        for r in resources {
            let entry = kind_entry(&r.api);
            if !kinds.contains(&entry) {
                kinds.push(entry);
            }
        }
        kinds.sort();
        let mut object = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": { "name": namespace, "annotations": {
                "wharf.dev/kinds": serde_json::to_string(&kinds).expect("strings serialize") } },
        });
        if created {
            object["metadata"]["annotations"]["wharf.dev/created"] = json!("true");
            object["metadata"]["labels"] = json!({
                "app.kubernetes.io/managed-by": "wharf",
                ENV_LABELS[0]: env.app,
                ENV_LABELS[1]: env.env,
            });
        }
        api.patch(
            namespace,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&object),
        )
        .await
        .map_err(|e| self.system(&format!("applying namespace {namespace}"), &e))?;
        Ok(())
    }
}

/// The API resource of namespaces.
pub(super) fn namespaces() -> ApiResource {
    ApiResource::from_gvk_with_plural(&gvk("v1", "Namespace"), "namespaces")
}

/// How a kind is remembered in the namespace's `wharf.dev/kinds`: `apps/v1/deployments/Deployment`.
fn kind_entry(api: &ApiResource) -> String {
    format!("{}/{}/{}", api.api_version, api.plural, api.kind)
}

/// The API resource a `wharf.dev/kinds` entry names.
pub(super) fn from_kind_entry(entry: &str) -> Option<ApiResource> {
    let (rest, kind) = entry.rsplit_once('/')?;
    let (api_version, plural) = rest.rsplit_once('/')?;
    Some(ApiResource::from_gvk_with_plural(
        &gvk(api_version, kind),
        plural,
    ))
}

/// Puts the environment's labels on `object` (`app.kubernetes.io/managed-by`, app,
/// environment, deployment), beside its own.
pub(super) fn label(object: &mut Value, env: &EnvRef) {
    let metadata = &mut object["metadata"];
    if !metadata["labels"].is_object() {
        metadata["labels"] = json!({});
    }
    let labels = &mut metadata["labels"];
    labels["app.kubernetes.io/managed-by"] = json!("wharf");
    labels[ENV_LABELS[0]] = json!(env.app);
    labels[ENV_LABELS[1]] = json!(env.env);
    labels["wharf.dev/deployment"] = json!(env.deployment.to_string());
}
