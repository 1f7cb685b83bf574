//! Rendering a workload into Kubernetes objects.
//!
//! What comes out, for workload `W` of environment `ENV` of app `APP`, in this order:
//! a ConfigMap `W-files` with every non-secret file, a Secret `W-secrets` with every
//! variable or file that holds a secret output, a Service `W` when the workload has
//! service ports, and a Deployment `W`. The annotation `k8s.score.dev/kind: StatefulSet`
//! makes it a StatefulSet with a headless Service, and `k8s.score.dev/service-name` names
//! the Service, as score-k8s reads them; CPU and memory amounts are written as Kubernetes
//! writes them (`0.25` → `250m`) and checked. `before` (ordered container starts) is
//! refused, the same for every target, as no target orders starts yet. Every object carries the labels
//! `app.kubernetes.io/{name,instance,part-of,managed-by}`; the selector uses `instance`
//! only. Containers, variables and ports are sorted by name, so the same input always
//! gives the same bytes.
//!
//! Better than the reference implementation where it matters: files are mounted one by
//! one with `subPath` (a file never hides the rest of its directory); a variable that
//! mixes text and a secret goes whole into the Secret (no dependent-variable tricks); a
//! `.` image without a replacement, an unknown volume source, or a probe with nothing to
//! run are errors, never silently dropped objects.

mod quantity;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use wharf_core::score::resolve::{Outputs, Resolved, Scope};
use wharf_core::score::{Container, File, Problem, Volume, Workload, pointer_segment};

/// Where a workload is rendered.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The app.
    pub app: &'a str,
    /// The environment.
    pub env: &'a str,
    /// Images given at deploy time for containers whose image is `.`, by container name
    /// (`*` for any).
    pub images: &'a BTreeMap<String, String>,
    /// Reads a file named by a Score file's `files.*.source` (relative to that file).
    pub read_source: &'a dyn Fn(&str) -> Result<Vec<u8>, String>,
}

/// Short, stable hex of `text` (the first 5 bytes of its sha256).
fn hex10(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..5])
}

fn problem(path: String, message: impl Into<String>) -> Problem {
    Problem {
        path,
        message: message.into(),
    }
}

/// Renders `workload` with its resources' outputs (by the workload's names for them).
/// Returns the objects, or every problem found.
pub fn kubernetes(
    workload: &Workload,
    outputs: &BTreeMap<String, Outputs>,
    ctx: &Context<'_>,
) -> Result<Vec<Value>, Vec<Problem>> {
    let name = workload.name();
    let mut pod = Pod {
        workload: name,
        scope: Scope {
            metadata: &workload.metadata,
            resources: outputs.iter().map(|(k, v)| (k.clone(), v)).collect(),
        },
        outputs,
        ctx,
        secret_name: format!("{name}-secrets"),
        files_name: format!("{name}-files"),
        problems: Vec::new(),
        config_data: BTreeMap::new(),
        secret_data: BTreeMap::new(),
        volumes: BTreeMap::new(),
    };
    let containers: Vec<Value> = workload
        .containers
        .iter()
        .map(|(c, container)| pod.container(c, container))
        .collect();
    let shape = pod.shape(workload);
    if !pod.problems.is_empty() {
        return Err(pod.problems);
    }
    Ok(pod.objects(workload, containers, &shape))
}

/// A workload's pod as it is rendered: what its containers need besides themselves (the
/// ConfigMap's and the Secret's data, the pod's volumes), and the problems found.
struct Pod<'a> {
    /// The workload's name.
    workload: &'a str,
    scope: Scope<'a>,
    outputs: &'a BTreeMap<String, Outputs>,
    ctx: &'a Context<'a>,
    secret_name: String,
    files_name: String,
    problems: Vec<Problem>,
    config_data: BTreeMap<String, String>,
    secret_data: BTreeMap<String, String>,
    volumes: BTreeMap<String, Value>,
}

/// What runs a workload and its Service's name, as its annotations say (score-k8s's
/// `k8s.score.dev/kind` and `k8s.score.dev/service-name`).
struct Shape {
    /// `Deployment` (the default) or `StatefulSet`.
    kind: &'static str,
    /// The Service's name: the workload's unless the annotation names another.
    service: String,
}

impl Pod<'_> {
    /// The workload's kind and Service name, from its annotations.
    fn shape(&mut self, workload: &Workload) -> Shape {
        let none = Value::Null;
        let annotations = workload.metadata.get("annotations").unwrap_or(&none);
        let kind = match annotations["k8s.score.dev/kind"].as_str() {
            None | Some("Deployment") => "Deployment",
            Some("StatefulSet") => "StatefulSet",
            Some(other) => {
                self.problems.push(problem(
                    "/metadata/annotations/k8s.score.dev~1kind".into(),
                    format!("{other:?}: a workload runs as a Deployment or a StatefulSet"),
                ));
                "Deployment"
            }
        };
        let service = match annotations["k8s.score.dev/service-name"].as_str() {
            None => workload.name().to_string(),
            Some(name) => {
                let label = !name.is_empty()
                    && name.len() <= 63
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !name.starts_with('-')
                    && !name.ends_with('-');
                if !label {
                    self.problems.push(problem(
                        "/metadata/annotations/k8s.score.dev~1service-name".into(),
                        format!("{name:?}: a Service name is 1 to 63 lowercase letters, digits and dashes"),
                    ));
                }
                name.to_string()
            }
        };
        Shape { kind, service }
    }

    /// Container `c` of the pod.
    fn container(&mut self, c: &str, container: &Container) -> Value {
        let base = format!("/containers/{}", pointer_segment(c));
        let image = self.image(c, container, &base);
        let mut env = Vec::new();
        for (var, text) in &container.variables {
            let at = format!("{base}/variables/{}", pointer_segment(var));
            match self.scope.resolve(text) {
                Ok(resolved) => env.push(env_var(
                    var,
                    c,
                    &resolved,
                    &self.secret_name,
                    &mut self.secret_data,
                )),
                Err(e) => self.problems.push(problem(at, e.to_string())),
            }
        }
        let mut mounts = Vec::new();
        for (target, file) in &container.files {
            let at = format!("{base}/files/{}", pointer_segment(target));
            mounts.extend(self.file(c, target, file, &at));
        }
        for (target, volume) in &container.volumes {
            let at = format!("{base}/volumes/{}", pointer_segment(target));
            mounts.extend(self.volume(target, volume, &at));
        }
        let mut out = json!({ "name": c, "image": image });
        if let Some(command) = &container.command {
            out["command"] = json!(command);
        }
        if let Some(args) = &container.args {
            out["args"] = json!(args);
        }
        if !env.is_empty() {
            out["env"] = Value::Array(env);
        }
        if let Some(resources) = &container.resources {
            let at = format!("{base}/resources");
            out["resources"] = quantity::resources(resources, &at, &mut self.problems);
        }
        if let Some(next) = container.before.keys().next() {
            self.problems.push(problem(
                format!("{base}/before/{}", pointer_segment(next)),
                "Wharf does not order the start of a workload's containers yet (on any \
                 target: they all start together); remove `before`, and have the later \
                 container wait for what it needs, or split the work into two workloads",
            ));
        }
        for (field, probe) in [
            ("livenessProbe", &container.liveness_probe),
            ("readinessProbe", &container.readiness_probe),
        ] {
            match probe.as_ref().map(render_probe) {
                None => {}
                Some(Some(p)) => out[field] = p,
                Some(None) => self.problems.push(problem(
                    format!("{base}/{field}"),
                    "a probe needs httpGet or exec",
                )),
            }
        }
        if !mounts.is_empty() {
            out["volumeMounts"] = Value::Array(mounts);
        }
        out
    }

    /// The image of container `c`: the one given at deploy time for it (as
    /// `WORKLOAD/CONTAINER`, as an automation rule gives it, or by its name alone, as
    /// `--image c=REF` does), else its own, else (for `.`) the one given for every
    /// container.
    fn image(&mut self, c: &str, container: &Container, base: &str) -> String {
        let images = self.ctx.images;
        let given = images
            .get(&format!("{}/{c}", self.workload))
            .or_else(|| images.get(c));
        if let Some(given) = given {
            return given.clone();
        }
        if container.image != "." {
            return container.image.clone();
        }
        match images.get("*") {
            Some(image) => image.clone(),
            None => {
                self.problems.push(problem(
                    format!("{base}/image"),
                    format!("the image is \".\": give one at deploy time (--image {c}=REF)"),
                ));
                String::new()
            }
        }
    }

    /// The mount of file `target` of container `c`, whose content goes into the ConfigMap
    /// (or the Secret, when it holds a secret).
    fn file(&mut self, c: &str, target: &str, file: &File, at: &str) -> Option<Value> {
        let key = format!("{c}-{}", hex10(target));
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let (volume, items_at, source) = match file_bytes(file, &self.scope, self.ctx, at) {
            Ok(FileBytes::Plain(bytes)) => {
                self.config_data.insert(key.clone(), encode(&bytes));
                let source = json!({ "configMap": { "name": self.files_name } });
                ("files", "configMap", source)
            }
            Ok(FileBytes::Secret(text)) => {
                self.secret_data
                    .insert(key.clone(), encode(text.as_bytes()));
                let source = json!({ "secret": { "secretName": self.secret_name } });
                ("secrets", "secret", source)
            }
            Err(p) => {
                self.problems.push(p);
                return None;
            }
        };
        let mut item = json!({ "key": key, "path": key });
        match file.mode.as_deref().map(|m| u32::from_str_radix(m, 8)) {
            None => {}
            Some(Ok(m)) => item["mode"] = json!(m),
            Some(Err(_)) => self
                .problems
                .push(problem(format!("{at}/mode"), "not an octal mode like 0644")),
        }
        let entry = self.volumes.entry(volume.to_string()).or_insert_with(|| {
            let mut v = source;
            v["name"] = json!(volume);
            v[items_at]["items"] = json!([]);
            v
        });
        if let Some(items) = entry[items_at]["items"].as_array_mut() {
            items.push(item);
        }
        Some(json!({
            "name": volume, "mountPath": target, "subPath": key, "readOnly": true
        }))
    }

    /// The mount of volume `target`, whose source is a resource's `source` output.
    fn volume(&mut self, target: &str, volume: &Volume, at: &str) -> Option<Value> {
        const EMPTY_DIR: &str = r#"{"emptyDir": {}}"#;
        let at = format!("{at}/source");
        let source = match self.scope.volume_source(&volume.source).map(|r| r.plain()) {
            Ok(Some(uid)) => uid,
            Ok(None) => {
                self.problems
                    .push(problem(at, "a volume source cannot be a secret"));
                return None;
            }
            Err(e) => {
                self.problems.push(problem(at, e.to_string()));
                return None;
            }
        };
        let Some(outputs) = self.outputs.values().find(|o| o.uid == source) else {
            self.problems.push(problem(
                at,
                format!("{source:?} is not a resource of this workload; write ${{resources.NAME}}"),
            ));
            return None;
        };
        let Some(volume_source) = outputs.values.get("source").filter(|s| s.is_object()) else {
            self.problems.push(problem(
                at,
                format!(
                    "resource {source} has no `source` output (a Kubernetes volume source, \
                     like {EMPTY_DIR})"
                ),
            ));
            return None;
        };
        let volume_name = format!("vol-{}", hex10(target));
        let mut v = volume_source.clone();
        v["name"] = json!(volume_name);
        self.volumes.insert(volume_name.clone(), v);
        let mut mount =
            json!({ "name": volume_name, "mountPath": target, "readOnly": volume.read_only });
        if let Some(path) = &volume.path {
            mount["subPath"] = json!(path.trim_start_matches('/'));
        }
        Some(mount)
    }

    /// The ConfigMap and the Secret (when they hold anything), the Service (when the
    /// workload has ports; always for a StatefulSet, whose Service is headless, giving each
    /// replica its own DNS name) and the Deployment or StatefulSet.
    fn objects(self, workload: &Workload, containers: Vec<Value>, shape: &Shape) -> Vec<Value> {
        let name = workload.name();
        let instance = format!("{}-{}-{name}", self.ctx.app, self.ctx.env);
        let labels = json!({
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/instance": instance,
            "app.kubernetes.io/part-of": self.ctx.app,
            "app.kubernetes.io/managed-by": "wharf",
        });
        let metadata = |object: &str| {
            json!({
                "name": object,
                "labels": labels,
                "annotations": { "wharf.dev/workload": name },
            })
        };
        let mut objects = Vec::new();
        if !self.config_data.is_empty() {
            objects.push(json!({
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(&self.files_name),
                "binaryData": self.config_data,
            }));
        }
        if !self.secret_data.is_empty() {
            objects.push(json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": metadata(&self.secret_name),
                "type": "Opaque", "data": self.secret_data,
            }));
        }
        let ports: Vec<Value> = workload
            .service
            .iter()
            .flat_map(|s| &s.ports)
            .map(|(port_name, p)| {
                json!({
                    "name": port_name,
                    "port": p.port,
                    "targetPort": p.target_port.unwrap_or(p.port),
                    "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into()).to_uppercase(),
                })
            })
            .collect();
        let stateful = shape.kind == "StatefulSet";
        if !ports.is_empty() || stateful {
            let mut spec = json!({ "selector": { "app.kubernetes.io/instance": instance } });
            if !ports.is_empty() {
                spec["ports"] = Value::Array(ports);
            }
            if stateful {
                spec["clusterIP"] = json!("None");
            }
            objects.push(json!({
                "apiVersion": "v1", "kind": "Service", "metadata": metadata(&shape.service),
                "spec": spec,
            }));
        }
        let mut pod_annotations: Map<String, Value> = workload
            .metadata
            .get("annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        pod_annotations.insert("wharf.dev/workload".into(), json!(name));
        let mut pod_spec = json!({ "containers": containers });
        if !self.volumes.is_empty() {
            pod_spec["volumes"] = Value::Array(self.volumes.into_values().collect());
        }
        let mut workload_spec = json!({
            "selector": { "matchLabels": { "app.kubernetes.io/instance": instance } },
            "template": {
                "metadata": { "labels": labels, "annotations": pod_annotations },
                "spec": pod_spec,
            },
        });
        if stateful {
            workload_spec["serviceName"] = json!(shape.service);
        }
        objects.push(json!({
            "apiVersion": "apps/v1", "kind": shape.kind, "metadata": metadata(name),
            "spec": workload_spec,
        }));
        objects
    }
}

/// One `env` entry: a value, or a reference into the Secret when any part is secret.
fn env_var(
    var: &str,
    container: &str,
    resolved: &Resolved,
    secret_name: &str,
    secret_data: &mut BTreeMap<String, String>,
) -> Value {
    match resolved.plain() {
        Some(value) => json!({ "name": var, "value": value }),
        None => {
            let key = format!("{container}-env-{var}");
            secret_data.insert(
                key.clone(),
                base64::engine::general_purpose::STANDARD.encode(resolved.expose().as_bytes()),
            );
            json!({ "name": var, "valueFrom": { "secretKeyRef": { "name": secret_name, "key": key } } })
        }
    }
}

enum FileBytes {
    Plain(Vec<u8>),
    Secret(String),
}

fn file_bytes(
    file: &wharf_core::score::File,
    scope: &Scope<'_>,
    ctx: &Context<'_>,
    at: &str,
) -> Result<FileBytes, Problem> {
    if let Some(b64) = &file.binary_content {
        return base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(FileBytes::Plain)
            .map_err(|e| problem(format!("{at}/binaryContent"), format!("not base64: {e}")));
    }
    let text = match (&file.content, &file.source) {
        (Some(content), _) => content.clone(),
        (None, Some(source)) => {
            let bytes = (ctx.read_source)(source).map_err(|e| {
                problem(
                    format!("{at}/source"),
                    format!("cannot read {source:?}: {e}"),
                )
            })?;
            if file.no_expand {
                return Ok(FileBytes::Plain(bytes));
            }
            String::from_utf8(bytes).map_err(|_| {
                problem(
                    format!("{at}/source"),
                    "the file is not UTF-8 text; set noExpand: true or use binaryContent",
                )
            })?
        }
        (None, None) => {
            return Err(problem(
                at.to_string(),
                "a file needs content, binaryContent or source",
            ));
        }
    };
    if file.no_expand {
        return Ok(FileBytes::Plain(text.into_bytes()));
    }
    let resolved = scope
        .resolve(&text)
        .map_err(|e| problem(format!("{at}/content"), e.to_string()))?;
    Ok(match resolved.plain() {
        Some(plain) => FileBytes::Plain(plain.into_bytes()),
        None => FileBytes::Secret(resolved.expose()),
    })
}

/// A Score probe as Kubernetes writes it: httpGet when given, else exec.
fn render_probe(probe: &Value) -> Option<Value> {
    if let Some(http) = probe.get("httpGet") {
        let mut out = json!({ "path": http["path"], "port": http["port"] });
        for key in ["host", "scheme", "httpHeaders"] {
            if let Some(v) = http.get(key) {
                out[key] = v.clone();
            }
        }
        return Some(json!({ "httpGet": out }));
    }
    probe
        .get("exec")
        .map(|exec| json!({ "exec": { "command": exec["command"] } }))
}

/// Objects as a multi-document YAML stream, each preceded by `---`.
pub fn to_yaml(objects: &[Value]) -> String {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&wharf_core::yaml::to_string(object));
    }
    out
}
