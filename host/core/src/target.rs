//! Targets: where an environment type's environments run, as its `target` says. Parsed once,
//! when the environment type is created or changed, into a [`TargetSpec`] that lists every
//! problem of a bad one; the engine builds its target from the same type.
//!
//! ```json
//! {"kind": "process", "unconfined": false, "read_only": ["/opt/py"]}
//! {"kind": "gitops", "path": "/srv/manifests", "prune": true,
//!  "secrets": {"sops": {"age": ["age1..."]}}}
//! {"kind": "kubernetes", "cluster": "prod-eu", "namespace": "{app}-{env}",
//!  "force_conflicts": false}
//! ```
//!
//! Every kind also takes `ready_timeout_seconds` (1 to 3600): how long a deployment waits
//! for its workloads to be ready.

use serde_json::{Map, Value, json};
use std::path::PathBuf;

/// Where an environment type's environments run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// What runs them, with its settings.
    pub kind: TargetKind,
    /// How long a deployment waits for readiness, when not the engine's default.
    pub ready_timeout_seconds: Option<u64>,
}

/// The kinds of target, with their settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// Local processes on the Wharf host.
    Process(ProcessSpec),
    /// Manifests written to a directory (a git work tree) for Argo CD or Flux.
    Gitops(GitopsSpec),
    /// A Kubernetes cluster, one namespace per environment.
    Kubernetes(KubernetesSpec),
}

/// The kubernetes target's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesSpec {
    /// The cluster, a platform object (`/api/v1/clusters/{id}`).
    pub cluster: String,
    /// Each environment's namespace, `{app}` and `{env}` replaced (`{app}-{env}`).
    pub namespace: String,
    /// Takes over fields another field manager owns, instead of failing the apply with
    /// the conflict (kubectl's `--force-conflicts`).
    pub force_conflicts: bool,
}

impl KubernetesSpec {
    /// The namespace of `app`'s environment `env`: the template with both replaced. A name
    /// longer than a namespace may be (63) keeps its first 54 characters and ends with 8 hex
    /// digits of its SHA-256, so that it stays unique.
    pub fn namespace_for(&self, app: &str, env: &str) -> String {
        let name = self.namespace.replace("{app}", app).replace("{env}", env);
        if name.len() <= 63 {
            return name;
        }
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
        format!("{}-{}", name[..54].trim_end_matches('-'), &digest[..8])
    }
}

/// The process target's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Runs workloads without confinement (where the machine cannot confine them, or a
    /// workload needs the machine): ops' explicit choice.
    pub unconfined: bool,
    /// More directories workloads may read and execute from.
    pub read_only: Vec<PathBuf>,
}

/// The gitops target's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitopsSpec {
    /// The directory written to, absolute.
    pub path: PathBuf,
    /// Deprovision what a new set no longer uses once it is written (the target cannot
    /// tell when the cluster stops running the old set).
    pub prune: bool,
    /// What is written for a Secret; none: a set with a Secret is refused.
    pub secrets: Option<GitopsSecrets>,
}

/// How the gitops target writes a Secret, never in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitopsSecrets {
    /// Encrypted with SOPS for these age recipients (`age1...`).
    Sops {
        /// The recipients.
        age: Vec<String>,
    },
    /// An External Secrets Operator `ExternalSecret` reading each key from a store.
    ExternalSecrets {
        /// The store's name.
        store: String,
        /// `SecretStore` or `ClusterSecretStore`.
        store_kind: String,
        /// The remote key, with `{app}`, `{env}` and `{name}` replaced.
        key: String,
    },
}

/// A problem of a target: the JSON Pointer of the value at fault (under the target), and
/// what to fix.
pub type Problem = (String, String);

/// A stored target that no longer parses (written by an older Wharf, or by hand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the environment type's target is not valid: {}", list(.0))]
pub struct InvalidTarget(pub Vec<Problem>);

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|(path, message)| format!("target{path}: {message}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl TargetSpec {
    /// The local process target, with nothing configured.
    pub fn process() -> Self {
        Self {
            kind: TargetKind::Process(ProcessSpec::default()),
            ready_timeout_seconds: None,
        }
    }

    /// The target `value` describes, or every problem it has.
    pub fn parse(value: &Value) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let Some(object) = value.as_object() else {
            return Err(vec![(
                String::new(),
                "expected an object with \"kind\", like {\"kind\": \"process\"}".into(),
            )]);
        };
        let ready_timeout_seconds = match object.get("ready_timeout_seconds") {
            None => None,
            Some(t) => match t.as_u64().filter(|t| (1..=3600).contains(t)) {
                Some(t) => Some(t),
                None => {
                    problems.push(field(
                        "ready_timeout_seconds",
                        "a whole number of seconds from 1 to 3600",
                    ));
                    None
                }
            },
        };
        let kind = match object.get("kind").and_then(Value::as_str) {
            Some("process") => {
                unknown(object, &["unconfined", "read_only"], &mut problems);
                Some(TargetKind::Process(ProcessSpec {
                    unconfined: boolean(object, "unconfined", &mut problems),
                    read_only: paths(object, "read_only", &mut problems),
                }))
            }
            Some("gitops") => {
                unknown(object, &["path", "prune", "secrets"], &mut problems);
                let path = match object.get("path").and_then(Value::as_str) {
                    Some(p) if p.starts_with('/') => PathBuf::from(p),
                    _ => {
                        problems.push(field(
                            "path",
                            "the absolute path of the directory to write to",
                        ));
                        PathBuf::new()
                    }
                };
                Some(TargetKind::Gitops(GitopsSpec {
                    path,
                    prune: boolean(object, "prune", &mut problems),
                    secrets: secrets(object.get("secrets"), &mut problems),
                }))
            }
            Some("kubernetes") => {
                unknown(
                    object,
                    &["cluster", "namespace", "force_conflicts"],
                    &mut problems,
                );
                Some(TargetKind::Kubernetes(kubernetes(object, &mut problems)))
            }
            Some(other) => {
                problems.push(field(
                    "kind",
                    &format!(
                        "unknown target {other:?}; expected \"process\", \"gitops\" or \"kubernetes\""
                    ),
                ));
                None
            }
            None => {
                problems.push(field(
                    "kind",
                    "required: \"process\", \"gitops\" or \"kubernetes\"",
                ));
                None
            }
        };
        match kind {
            Some(kind) if problems.is_empty() => Ok(Self {
                kind,
                ready_timeout_seconds,
            }),
            _ => Err(problems),
        }
    }

    /// The target as JSON, as it is stored and shown.
    pub fn to_json(&self) -> Value {
        let mut out = match &self.kind {
            TargetKind::Process(p) => {
                let mut o = json!({ "kind": "process" });
                if p.unconfined {
                    o["unconfined"] = json!(true);
                }
                if !p.read_only.is_empty() {
                    o["read_only"] = json!(p.read_only);
                }
                o
            }
            TargetKind::Gitops(g) => {
                let mut o = json!({ "kind": "gitops", "path": g.path });
                if g.prune {
                    o["prune"] = json!(true);
                }
                match &g.secrets {
                    Some(GitopsSecrets::Sops { age }) => {
                        o["secrets"] = json!({ "sops": { "age": age } });
                    }
                    Some(GitopsSecrets::ExternalSecrets {
                        store,
                        store_kind,
                        key,
                    }) => {
                        o["secrets"] = json!({ "external_secrets": {
                            "store": store, "store_kind": store_kind, "key": key } });
                    }
                    None => {}
                }
                o
            }
            TargetKind::Kubernetes(k) => {
                let mut o = json!({ "kind": "kubernetes", "cluster": k.cluster,
                                    "namespace": k.namespace });
                if k.force_conflicts {
                    o["force_conflicts"] = json!(true);
                }
                o
            }
        };
        if let Some(t) = self.ready_timeout_seconds {
            out["ready_timeout_seconds"] = json!(t);
        }
        out
    }

    /// The kind's name (`process`, `gitops`, `kubernetes`).
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            TargetKind::Process(_) => "process",
            TargetKind::Gitops(_) => "gitops",
            TargetKind::Kubernetes(_) => "kubernetes",
        }
    }

    /// The cluster the target deploys to, for the kubernetes target.
    pub fn cluster(&self) -> Option<&str> {
        match &self.kind {
            TargetKind::Kubernetes(k) => Some(&k.cluster),
            _ => None,
        }
    }
}

fn field(name: &str, message: &str) -> Problem {
    (format!("/{name}"), message.to_string())
}

/// Each field of `object` that is neither `kind`, `ready_timeout_seconds` nor `known`.
fn unknown(object: &Map<String, Value>, known: &[&str], problems: &mut Vec<Problem>) {
    for k in object.keys() {
        if !["kind", "ready_timeout_seconds"].contains(&k.as_str()) && !known.contains(&k.as_str())
        {
            problems.push(field(
                k,
                &format!(
                    "unknown field; this target takes {}",
                    known
                        .iter()
                        .chain(&["ready_timeout_seconds"])
                        .map(|k| format!("{k:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
}

fn boolean(object: &Map<String, Value>, name: &str, problems: &mut Vec<Problem>) -> bool {
    match object.get(name) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.push(field(name, "true or false"));
            false
        }
    }
}

fn paths(object: &Map<String, Value>, name: &str, problems: &mut Vec<Problem>) -> Vec<PathBuf> {
    let Some(value) = object.get(name) else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        problems.push(field(name, "a list of absolute paths"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(p) if p.starts_with('/') && !p.split('/').any(|s| s == "..") => {
                out.push(PathBuf::from(p));
            }
            _ => problems.push((
                format!("/{name}/{i}"),
                "an absolute path without `..`".into(),
            )),
        }
    }
    out
}

fn kubernetes(object: &Map<String, Value>, problems: &mut Vec<Problem>) -> KubernetesSpec {
    let cluster = match object.get("cluster").and_then(Value::as_str) {
        Some(c) if crate::Id::new(c).is_ok() => c.to_string(),
        _ => {
            problems.push(field(
                "cluster",
                "required: the id of a cluster (see /api/v1/clusters)",
            ));
            String::new()
        }
    };
    let namespace = match object.get("namespace") {
        None => "{app}-{env}".to_string(),
        Some(Value::String(t)) => {
            let bare = t.replace("{app}", "a").replace("{env}", "e");
            let label = !bare.is_empty()
                && bare
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !bare.starts_with('-')
                && !bare.ends_with('-');
            if !label || !(t.contains("{env}")) {
                problems.push(field(
                    "namespace",
                    "a namespace name of lowercase letters, digits and dashes with {env} \
                     (and usually {app}) in it, like \"{app}-{env}\": each environment needs \
                     its own namespace",
                ));
            }
            t.clone()
        }
        Some(_) => {
            problems.push(field("namespace", "a string like \"{app}-{env}\""));
            String::new()
        }
    };
    KubernetesSpec {
        cluster,
        namespace,
        force_conflicts: boolean(object, "force_conflicts", problems),
    }
}

fn secrets(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<GitopsSecrets> {
    let value = value?;
    let shape = "one of {\"sops\": {\"age\": [\"age1...\"]}} or {\"external_secrets\": {\"store\": \"...\"}}";
    let Some(object) = value.as_object().filter(|o| o.len() == 1) else {
        problems.push(field("secrets", shape));
        return None;
    };
    if let Some(sops) = object.get("sops") {
        let age: Vec<String> = sops["age"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if age.is_empty() || sops["age"].as_array().is_some_and(|a| a.len() != age.len()) {
            problems.push((
                "/secrets/sops/age".into(),
                "a list of age recipients (age1...)".into(),
            ));
        }
        for (i, r) in age.iter().enumerate() {
            // An X25519 recipient is `age1` and 58 bech32 characters.
            let bech32 = |c: char| "qpzry9x8gf2tvdw0s3jn54khce6mua7l".contains(c);
            if !(r.len() == 62 && r.starts_with("age1") && r[4..].chars().all(bech32)) {
                problems.push((
                    format!("/secrets/sops/age/{i}"),
                    format!("{r:?} is not an age recipient (age1 and 58 characters)"),
                ));
            }
        }
        return Some(GitopsSecrets::Sops { age });
    }
    if let Some(external) = object.get("external_secrets") {
        let store = external["store"].as_str().unwrap_or_default().to_string();
        if store.is_empty() {
            problems.push((
                "/secrets/external_secrets/store".into(),
                "required: the name of the SecretStore or ClusterSecretStore".into(),
            ));
        }
        let store_kind = external["store_kind"]
            .as_str()
            .unwrap_or("ClusterSecretStore")
            .to_string();
        if !matches!(store_kind.as_str(), "SecretStore" | "ClusterSecretStore") {
            problems.push((
                "/secrets/external_secrets/store_kind".into(),
                "SecretStore or ClusterSecretStore".into(),
            ));
        }
        let key = external["key"]
            .as_str()
            .unwrap_or("{app}/{env}/{name}")
            .to_string();
        return Some(GitopsSecrets::ExternalSecrets {
            store,
            store_kind,
            key,
        });
    }
    problems.push(field("secrets", shape));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_read_once_with_its_settings() {
        let t = TargetSpec::parse(&json!({ "kind": "process", "unconfined": true,
                                           "read_only": ["/opt/py"] }))
        .unwrap();
        assert_eq!(
            t.kind,
            TargetKind::Process(ProcessSpec {
                unconfined: true,
                read_only: vec!["/opt/py".into()]
            })
        );
        let recipient = format!("age1{}", "q".repeat(58));
        let g = json!({ "kind": "gitops", "path": "/srv/m", "prune": true,
                        "secrets": { "sops": { "age": [recipient] } },
                        "ready_timeout_seconds": 30 });
        let t = TargetSpec::parse(&g).unwrap();
        assert_eq!(t.ready_timeout_seconds, Some(30));
        assert_eq!(
            TargetSpec::parse(&t.to_json()).unwrap(),
            t,
            "it round-trips"
        );
        let k = TargetSpec::parse(&json!({ "kind": "kubernetes", "cluster": "prod-eu" })).unwrap();
        assert_eq!(k.cluster(), Some("prod-eu"));
        assert_eq!(TargetSpec::parse(&k.to_json()).unwrap(), k);
        let TargetKind::Kubernetes(k) = k.kind else {
            unreachable!()
        };
        assert_eq!(k.namespace_for("shop", "pr-42"), "shop-pr-42");
        let long = k.namespace_for(&"a".repeat(50), &"b".repeat(50));
        assert_eq!(long.len(), 63);
        assert!(long.starts_with(&"a".repeat(50)), "{long}");
        assert_ne!(long, k.namespace_for(&"a".repeat(50), &"b".repeat(49)));
    }

    #[test]
    fn a_bad_target_lists_every_problem() {
        let problems = TargetSpec::parse(&json!({
            "kind": "gitops", "path": "relative", "prune": "yes", "color": "red",
            "ready_timeout_seconds": 0, "secrets": { "sops": { "age": ["age1nope"] } }
        }))
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/ready_timeout_seconds",
                "/color",
                "/path",
                "/prune",
                "/secrets/sops/age/0"
            ]
        );
        let problems = TargetSpec::parse(&json!({ "kind": "kubernetes", "namespace": "shared",
                                                  "force_conflicts": 1 }))
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["/cluster", "/namespace", "/force_conflicts"]);
        assert!(problems[1].1.contains("{env}"), "{problems:?}");
        let problems = TargetSpec::parse(&json!({ "kind": "cluster" })).unwrap_err();
        assert!(problems[0].1.contains("unknown target \"cluster\""));
        assert!(TargetSpec::parse(&json!("process")).is_err());
    }
}
