//! Score (`score.dev/v1b1`) workloads: parsing, upgrading deprecated forms, validation
//! against the official schema, semantic checks, and placeholders.
//!
//! [`load`] takes the text of a Score file (YAML or JSON) and returns the workload, or
//! every problem found, each with the JSON Pointer of the value at fault. Nothing here
//! knows about resources' outputs: placeholders are checked for what can be known from
//! the file (syntax, roots, declared resources, metadata keys); resolution against
//! provisioned outputs happens when a deployment renders.

pub mod placeholder;
pub mod resolve;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The official JSON Schema of `score.dev/v1b1` (score-spec/spec, Apache-2.0).
pub const SCHEMA: &str = include_str!("../schema/score-v1b1.json");

/// One thing wrong with a Score file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON Pointer to the value at fault (`/containers/main/variables/PORT`); empty for
    /// the whole file.
    pub path: String,
    /// What is wrong, and what to do.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// A JSON Pointer segment (`~` and `/` escaped).
pub fn pointer_segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A workload, as its Score file describes it (deprecated forms upgraded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    /// Always `score.dev/v1b1`.
    pub api_version: String,
    /// `name`, `annotations`, and any other keys.
    pub metadata: Map<String, Value>,
    /// The ports other workloads reach it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// Its containers, by name.
    pub containers: BTreeMap<String, Container>,
    /// The resources it depends on, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Resource>,
}

impl Workload {
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// `service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Ports by name.
    #[serde(default)]
    pub ports: BTreeMap<String, ServicePort>,
}

/// A service port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// The port other workloads connect to.
    pub port: u16,
    /// The container's port (`port` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u16>,
    /// `TCP` (when absent) or `UDP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// A container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The image; `.` means "given at deploy time".
    pub image: String,
    /// Overrides the image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Overrides the image's arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Environment variables (placeholders allowed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Files by target path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, File>,
    /// Volumes by target path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Volume>,
    /// Compute requests and limits, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
    /// Liveness probe, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Value>,
    /// Readiness probe, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Value>,
    /// Containers that start after this one reaches a state: name → `{ready}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub before: BTreeMap<String, Value>,
}

/// A file in a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct File {
    /// A local file, relative to the Score file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Inline text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Inline bytes, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_content: Option<String>,
    /// Octal mode (`0600`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Whether placeholders are left as they are.
    #[serde(default)]
    pub no_expand: bool,
}

/// A volume mounted in a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// `${resources.NAME}`.
    pub source: String,
    /// A sub-path in the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Mounted read-only.
    #[serde(default)]
    pub read_only: bool,
}

/// A resource the workload depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Its type (`postgres`).
    #[serde(rename = "type")]
    pub res_type: String,
    /// Its class (`default` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Its sharing id: resources with the same type, class and id are one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Annotations and other metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Parameters for its driver (placeholders allowed in strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

/// What loading a file noticed without refusing it (deprecated forms upgraded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes(pub Vec<Problem>);

/// Parses, upgrades, validates and checks a Score file. On success returns the workload
/// and notes about upgraded deprecated forms; on failure every problem found.
pub fn load(text: &str) -> Result<(Workload, Notes), Vec<Problem>> {
    from_value(parse(text)?)
}

/// [`load`] for a document already parsed into JSON.
pub fn from_value(mut doc: Value) -> Result<(Workload, Notes), Vec<Problem>> {
    let (notes, mut problems) = upgrade(&mut doc);
    problems.extend(schema_problems(&doc));
    if !problems.is_empty() {
        problems.sort_by(|a, b| a.path.cmp(&b.path));
        return Err(problems);
    }
    let workload: Workload = serde_json::from_value(doc)
        .map_err(|e| vec![problem("", format!("does not fit the Score model: {e}"))])?;
    let problems = semantic_problems(&workload);
    if problems.is_empty() {
        Ok((workload, notes))
    } else {
        Err(problems)
    }
}

/// YAML (of which JSON is a subset) into a JSON value: the first document only, at a
/// bounded cost ([`crate::yaml`]).
fn parse(text: &str) -> Result<Value, Vec<Problem>> {
    match crate::yaml::to_value(text) {
        Err(e) => Err(vec![problem("", format!("not valid YAML or JSON: {e}"))]),
        Ok(Value::Null) => Err(vec![problem(
            "",
            "the file is empty (or holds only comments)",
        )]),
        Ok(value) => Ok(value),
    }
}

/// Rewrites the deprecated array forms of `files` and `volumes` into maps keyed by
/// `target` (renaming `read_only`), noting each change. An entry without a target is a
/// problem (the list is then left as it is).
fn upgrade(doc: &mut Value) -> (Notes, Vec<Problem>) {
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    let Some(containers) = doc.get_mut("containers").and_then(Value::as_object_mut) else {
        return (Notes(notes), problems);
    };
    for (name, container) in containers.iter_mut() {
        for field in ["files", "volumes"] {
            let Some(Value::Array(items)) = container.get(field) else {
                continue;
            };
            let mut map = Map::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                let Some(mut entry) = item.as_object().cloned() else {
                    ok = false;
                    break;
                };
                let Some(Value::String(target)) = entry.remove("target") else {
                    problems.push(problem(
                        format!("/containers/{}/{field}/{i}/target", pointer_segment(name)),
                        format!(
                            "an entry of the list form of {field} needs a target path (or \
                             write {field} as a map keyed by target)"
                        ),
                    ));
                    ok = false;
                    break;
                };
                if field == "volumes"
                    && let Some(read_only) = entry.remove("read_only")
                {
                    entry.insert("readOnly".into(), read_only);
                }
                if field == "files"
                    && let Some(Value::Array(lines)) = entry.get("content")
                {
                    let joined: Vec<&str> = lines.iter().filter_map(Value::as_str).collect();
                    let joined = joined.join("\n");
                    entry.insert("content".into(), Value::String(joined));
                }
                map.insert(target, Value::Object(entry));
            }
            if ok {
                container[field] = Value::Object(map);
                notes.push(problem(
                    format!("/containers/{}/{field}", pointer_segment(name)),
                    format!(
                        "the list form of {field} is deprecated; upgraded to a map keyed by target"
                    ),
                ));
            }
        }
    }
    (Notes(notes), problems)
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA).expect("the bundled schema is JSON");
        jsonschema::draft202012::new(&schema).expect("the bundled schema compiles")
    })
}

/// What the official schema says is wrong, one problem per failing value.
fn schema_problems(doc: &Value) -> Vec<Problem> {
    let mut problems: Vec<Problem> = validator()
        .iter_errors(doc)
        .map(|e| problem(e.instance_path.to_string(), e.to_string()))
        .collect();
    problems.dedup();
    problems
}

/// Checks the schema cannot express: placeholders, `before`.
/// The longest a variable's value may be: Linux passes a process no environment string
/// longer than 128 KiB (`MAX_ARG_STRLEN`).
pub const MAX_VARIABLE_BYTES: usize = 128 << 10;

/// The most a file's content may hold: what one Kubernetes ConfigMap holds.
pub const MAX_FILE_CONTENT_BYTES: usize = 1 << 20;

fn semantic_problems(w: &Workload) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (c, container) in &w.containers {
        let base = format!("/containers/{}", pointer_segment(c));
        for (k, v) in &container.variables {
            let at = format!("{base}/variables/{}", pointer_segment(k));
            if v.len() > MAX_VARIABLE_BYTES {
                problems.push(problem(
                    at,
                    format!(
                        "{} bytes; a variable holds at most {} KiB (what Linux passes to a \
                         process), put larger values in a file",
                        v.len(),
                        MAX_VARIABLE_BYTES >> 10
                    ),
                ));
                continue;
            }
            check_placeholders(w, v, &at, false, &mut problems);
        }
        for (target, file) in &container.files {
            let at = format!("{base}/files/{}", pointer_segment(target));
            if let Some(content) = &file.content {
                if content.len() > MAX_FILE_CONTENT_BYTES {
                    problems.push(problem(
                        format!("{at}/content"),
                        format!(
                            "{} bytes; a file holds at most {} KiB (what a ConfigMap holds)",
                            content.len(),
                            MAX_FILE_CONTENT_BYTES >> 10
                        ),
                    ));
                    continue;
                }
                if !file.no_expand {
                    check_placeholders(w, content, &format!("{at}/content"), false, &mut problems);
                }
            }
        }
        for (target, volume) in &container.volumes {
            let at = format!("{base}/volumes/{}/source", pointer_segment(target));
            check_placeholders(w, &volume.source, &at, true, &mut problems);
        }
        for next in container.before.keys() {
            let at = format!("{base}/before/{}", pointer_segment(next));
            if next == c {
                problems.push(problem(at, "a container cannot start before itself"));
            } else if !w.containers.contains_key(next) {
                problems.push(problem(
                    at,
                    format!("there is no container {next:?} in this workload"),
                ));
            }
        }
    }
    if let Some(cycle) = before_cycle(w) {
        problems.push(problem(
            "/containers",
            format!("`before` forms a cycle: {}", cycle.join(" -> ")),
        ));
    }
    for (r, resource) in &w.resources {
        if let Some(params) = &resource.params {
            let at = format!("/resources/{}/params", pointer_segment(r));
            walk_strings(params, &at, &mut |text, path| {
                check_placeholders(w, text, path, false, &mut problems)
            });
        }
    }
    problems
}

fn walk_strings(value: &Value, path: &str, f: &mut impl FnMut(&str, &str)) {
    match value {
        Value::String(s) => f(s, path),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk_strings(v, &format!("{path}/{i}"), f);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                walk_strings(v, &format!("{path}/{}", pointer_segment(k)), f);
            }
        }
        _ => {}
    }
}

/// Checks the placeholders of one string: syntax, root, declared resources, metadata
/// keys. `volume` allows the two-part `${resources.NAME}` (the resource itself).
fn check_placeholders(w: &Workload, text: &str, path: &str, volume: bool, out: &mut Vec<Problem>) {
    let references = match placeholder::references(text) {
        Ok(r) => r,
        Err(e) => {
            out.push(problem(path, format!("{e}; write $$ for a literal $")));
            return;
        }
    };
    for body in references {
        let segments = placeholder::segments(body);
        match segments[0].as_str() {
            "metadata" => {
                if segments.len() < 2 {
                    out.push(problem(path, format!("${{{body}}}: name a metadata key, like ${{metadata.name}}")));
                    continue;
                }
                let mut at = w.metadata.get(&segments[1]);
                for (i, key) in segments[1..].iter().enumerate() {
                    if i > 0 {
                        at = at.and_then(|v| v.get(key));
                    }
                    match at {
                        Some(_) => {}
                        None => {
                            out.push(problem(path, format!("${{{body}}}: metadata has no key {key:?}")));
                            break;
                        }
                    }
                }
            }
            "resources" => match segments.get(1) {
                None => out.push(problem(path, format!("${{{body}}}: name a resource, like ${{resources.db.host}}"))),
                Some(name) if !w.resources.contains_key(name) => out.push(problem(
                    path,
                    format!(
                        "${{{body}}}: there is no resource {name:?} in this workload (declared: {})",
                        if w.resources.is_empty() {
                            "none".to_string()
                        } else {
                            w.resources.keys().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ),
                )),
                Some(_) if segments.len() == 2 && !volume => out.push(problem(
                    path,
                    format!("${{{body}}}: name one of the resource's outputs, like ${{{body}.host}}"),
                )),
                Some(_) => {}
            },
            other => out.push(problem(
                path,
                format!(
                    "${{{body}}}: unknown root {other:?}; placeholders start with metadata or \
                     resources (write $${{...}} for a literal ${{...}})"
                ),
            )),
        }
    }
}

/// A cycle among `before` edges, if any, as container names.
fn before_cycle(w: &Workload) -> Option<Vec<String>> {
    fn visit<'a>(
        w: &'a Workload,
        node: &'a str,
        stack: &mut Vec<&'a str>,
        done: &mut std::collections::BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = stack[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node);
        if let Some(c) = w.containers.get(node) {
            for next in c.before.keys() {
                if next != node
                    && w.containers.contains_key(next)
                    && let Some(cycle) = visit(w, next, stack, done)
                {
                    return Some(cycle);
                }
            }
        }
        stack.pop();
        done.insert(node);
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for name in w.containers.keys() {
        if let Some(cycle) = visit(w, name, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}
