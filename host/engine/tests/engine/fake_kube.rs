//! A small Kubernetes API server, in process: objects kept by their path, label selectors
//! with `=` and `!=`, server-side apply stored as sent (creating what is missing), deletes,
//! discovery documents and pod logs as the test puts them, scripted answers for a path. It
//! records every request. With `controller` on, it plays the controllers a test needs: a
//! Deployment or StatefulSet applied is rolled out at once (all replicas available), unless
//! one of its images names `nope`, in which case its pod cannot pull it.
//!
//! It is not Kubernetes: no defaulting, validation or field ownership (a conflict is
//! scripted). The engine's request-level tests reach it through a mock service; the
//! end-to-end tests of the binary through HTTP on loopback.

use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

/// The fake API server's state: objects by their path, requests in order, and scripted
/// answers for a path (a conflict, a log).
#[derive(Default)]
pub struct Server {
    pub objects: BTreeMap<String, Value>,
    pub seen: Vec<Seen>,
    pub scripted: BTreeMap<String, (u16, Value)>,
    pub logs: BTreeMap<String, String>,
    /// Rolls out what is applied, as the controllers would.
    pub controller: bool,
}

pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": message, "metadata": {} })
}

/// Whether `labels` satisfy a selector of `k=v` and `k!=v` terms.
fn selects(selector: &str, labels: &Value) -> bool {
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            labels[k].as_str() != Some(v)
        } else if let Some((k, v)) = term.split_once('=') {
            labels[k].as_str() == Some(v)
        } else {
            false
        }
    })
}

pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| url_decode(v))
    })
}

fn url_decode(v: &str) -> String {
    let mut out = Vec::new();
    let bytes = v.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

impl Server {
    /// Answers a request: the status, the JSON body, or the text of a log.
    pub fn answer(&mut self, seen: Seen) -> (u16, Value, Option<String>) {
        self.seen.push(seen.clone());
        if let Some((code, body)) = self.scripted.get(&seen.path) {
            return (*code, body.clone(), None);
        }
        if seen.path.ends_with("/log") {
            let container = query_param(&seen.query, "container").unwrap_or_default();
            let key = format!("{}/{container}", seen.path);
            return (
                200,
                Value::Null,
                Some(self.logs.get(&key).cloned().unwrap_or_default()),
            );
        }
        match seen.method.as_str() {
            "GET" => match self.objects.get(&seen.path) {
                Some(o) => (200, o.clone(), None),
                None if self.is_collection(&seen.path) => {
                    let selector = query_param(&seen.query, "labelSelector").unwrap_or_default();
                    let items: Vec<Value> = self
                        .objects
                        .iter()
                        .filter(|(p, _)| {
                            p.starts_with(&format!("{}/", seen.path))
                                && !p[seen.path.len() + 1..].contains('/')
                        })
                        .filter(|(_, o)| selects(&selector, &o["metadata"]["labels"]))
                        .map(|(_, o)| {
                            // As the API server lists them: items carry no kind of their own.
                            let mut item = o.clone();
                            if let Some(map) = item.as_object_mut() {
                                map.remove("kind");
                                map.remove("apiVersion");
                            }
                            item
                        })
                        .collect();
                    (
                        200,
                        json!({ "kind": "List", "apiVersion": "v1", "metadata": {}, "items": items }),
                        None,
                    )
                }
                None => (
                    404,
                    status(404, "NotFound", &format!("{} not found", seen.path)),
                    None,
                ),
            },
            "PATCH" => {
                let mut object = seen.body.clone();
                if let Some(old) = self.objects.get(&seen.path) {
                    // Keep what a controller wrote.
                    object["status"] = old["status"].clone();
                    if object["metadata"]["generation"].is_null() {
                        object["metadata"]["generation"] = old["metadata"]["generation"].clone();
                    }
                }
                self.objects.insert(seen.path.clone(), object.clone());
                if self.controller {
                    self.roll_out(&seen.path, &object);
                }
                (200, object, None)
            }
            "DELETE" => match self.objects.remove(&seen.path) {
                Some(_) => (200, status(200, "", "deleted"), None),
                None => (404, status(404, "NotFound", "not found"), None),
            },
            _ => (405, status(405, "MethodNotAllowed", "no"), None),
        }
    }

    /// A path names a collection when it ends with a plural and no object name.
    fn is_collection(&self, path: &str) -> bool {
        let last = path.rsplit('/').next().unwrap_or_default();
        last.ends_with('s')
            && !self.objects.contains_key(path)
            && [
                "deployments",
                "statefulsets",
                "pods",
                "secrets",
                "configmaps",
                "services",
                "horizontalpodautoscalers",
                "httproutes",
                "namespaces",
            ]
            .contains(&last)
    }

    /// What the controllers do with a workload applied at `path`: its pods and status.
    fn roll_out(&mut self, path: &str, object: &Value) {
        let kind = object["kind"].as_str().unwrap_or_default();
        if !matches!(kind, "Deployment" | "StatefulSet") {
            return;
        }
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
        let template = &object["spec"]["template"];
        let containers: Vec<Value> = template["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let broken = containers
            .iter()
            .find(|c| c["image"].as_str().unwrap_or_default().contains("nope"));
        let generation = self.objects[path]["metadata"]["generation"]
            .as_i64()
            .unwrap_or(0)
            + 1;
        let available = if broken.is_some() { 0 } else { replicas };
        let stored = self.objects.get_mut(path).unwrap();
        stored["metadata"]["generation"] = json!(generation);
        stored["status"] = json!({
            "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
            "availableReplicas": available, "readyReplicas": available,
        });
        let statuses: Vec<Value> = containers
            .iter()
            .map(|c| match broken {
                Some(b) if b["name"] == c["name"] => json!({
                    "name": c["name"], "image": c["image"], "ready": false, "restartCount": 0,
                    "imageID": "", "state": { "waiting": { "reason": "ImagePullBackOff",
                        "message": format!("Back-off pulling image {}", c["image"]) } } }),
                _ => json!({ "name": c["name"], "image": c["image"], "ready": broken.is_none(),
                             "restartCount": 0, "imageID": "", "state": { "running": {} } }),
            })
            .collect();
        let pod = format!("{name}-1");
        let mut labels = template["metadata"]["labels"].clone();
        for key in ["wharf.dev/app", "wharf.dev/env"] {
            labels[key] = object["metadata"]["labels"][key].clone();
        }
        self.objects.insert(
            format!("/api/v1/namespaces/{namespace}/pods/{pod}"),
            json!({ "apiVersion": "v1", "kind": "Pod",
                    "metadata": { "name": pod, "namespace": namespace, "labels": labels },
                    "spec": { "containers": containers },
                    "status": { "containerStatuses": statuses } }),
        );
    }
}
