//! Reaching a cluster: its stored record into a kube client, a kubeconfig ops pasted into
//! a record, and the check ops run before using a cluster.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;
use wharf_store::clusters::{Cluster, Credentials};

/// How long connecting to an API server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an answer may take, for every request but a followed log.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A kube client for `cluster`, with its CA bundle and credentials, whose requests fail
/// when an answer takes longer than `read_timeout` (none for streams that may stay quiet,
/// like a followed log). No request is made.
pub async fn client(
    cluster: &Cluster,
    read_timeout: Option<Duration>,
) -> Result<kube::Client, String> {
    let mut server = json!({ "server": cluster.server });
    if let Some(ca) = &cluster.ca_bundle {
        server["certificate-authority-data"] = json!(STANDARD.encode(ca));
    }
    let user = match &cluster.credentials {
        Credentials::Token(token) => json!({ "token": token }),
        Credentials::ClientCertificate { certificate, key } => json!({
            "client-certificate-data": STANDARD.encode(certificate),
            "client-key-data": STANDARD.encode(key),
        }),
    };
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "wharf",
        "clusters": [{ "name": "wharf", "cluster": server }],
        "users": [{ "name": "wharf", "user": user }],
        "contexts": [{ "name": "wharf", "context": { "cluster": "wharf", "user": "wharf" } }],
    });
    let kubeconfig: Kubeconfig =
        serde_json::from_value(kubeconfig).map_err(|e| format!("cluster {}: {e}", cluster.id))?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| format!("cluster {}: {e}", cluster.id))?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = read_timeout;
    kube::Client::try_from(config).map_err(|e| format!("cluster {}: {e}", cluster.id))
}

/// What a kubeconfig says about reaching its one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromKubeconfig {
    /// The API server's URL.
    pub server: String,
    /// The CA bundle, PEM, when the kubeconfig has one.
    pub ca_bundle: Option<String>,
    /// The credentials.
    pub credentials: Credentials,
}

/// Reads a kubeconfig with one context (or a current context) whose cluster and user are
/// given inline. What would make Wharf run a program (`exec`, `auth-provider`) or read a
/// file of its host (`token-file`, `client-certificate`, `certificate-authority`) is
/// refused: the kubeconfig is data, not instructions for the server. Every problem is
/// listed.
pub fn from_kubeconfig(text: &str) -> Result<FromKubeconfig, Vec<String>> {
    let doc = wharf_core::yaml::to_value(text).map_err(|e| vec![format!("not YAML: {e}")])?;
    let contexts = doc["contexts"].as_array().cloned().unwrap_or_default();
    let context = match (doc["current-context"].as_str(), contexts.len()) {
        (Some(name), _) => contexts.iter().find(|c| c["name"] == name).cloned(),
        (None, 1) => contexts.first().cloned(),
        _ => None,
    };
    let Some(context) = context else {
        return Err(vec![format!(
            "a kubeconfig with one context (or a current-context naming one of its {} contexts)",
            contexts.len()
        )]);
    };
    let named = |list: &str, name: &Value, field: &str| -> Value {
        doc[list]
            .as_array()
            .and_then(|l| l.iter().find(|e| e["name"] == *name))
            .map(|e| e[field].clone())
            .unwrap_or(Value::Null)
    };
    let cluster = named("clusters", &context["context"]["cluster"], "cluster");
    let user = named("users", &context["context"]["user"], "user");
    let mut problems = Vec::new();
    if !cluster.is_object() {
        problems.push(format!(
            "the context's cluster {} is not in clusters",
            context["context"]["cluster"]
        ));
    }
    if !user.is_object() {
        problems.push(format!(
            "the context's user {} is not in users",
            context["context"]["user"]
        ));
    }
    for (what, fields) in [
        (
            &cluster,
            &[
                "certificate-authority",
                "insecure-skip-tls-verify",
                "proxy-url",
            ][..],
        ),
        (
            &user,
            &[
                "exec",
                "auth-provider",
                "token-file",
                "client-certificate",
                "client-key",
                "username",
                "password",
                "as",
                "as-groups",
            ][..],
        ),
    ] {
        for field in fields {
            if what.get(field).is_some() {
                problems.push(format!(
                    "{field}: not accepted; give the credentials inline (token, or \
                     client-certificate-data and client-key-data; certificate-authority-data)"
                ));
            }
        }
    }
    let server = cluster["server"].as_str().unwrap_or_default().to_string();
    if server.is_empty() {
        problems.push("the cluster has no server".into());
    }
    let decoded = |v: &Value, field: &str, problems: &mut Vec<String>| -> Option<String> {
        let text = v[field].as_str()?;
        match STANDARD
            .decode(text)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        {
            Some(pem) => Some(pem),
            None => {
                problems.push(format!("{field}: not base64 of a PEM text"));
                None
            }
        }
    };
    let ca_bundle = decoded(&cluster, "certificate-authority-data", &mut problems);
    let certificate = decoded(&user, "client-certificate-data", &mut problems);
    let key = decoded(&user, "client-key-data", &mut problems);
    let credentials = match (user["token"].as_str(), certificate, key) {
        (Some(token), None, None) => Some(Credentials::Token(token.to_string())),
        (None, Some(certificate), Some(key)) => {
            Some(Credentials::ClientCertificate { certificate, key })
        }
        _ => {
            problems.push(
                "the user needs a token, or client-certificate-data and client-key-data".into(),
            );
            None
        }
    };
    match credentials {
        Some(credentials) if problems.is_empty() => Ok(FromKubeconfig {
            server,
            ca_bundle,
            credentials,
        }),
        _ => Err(problems),
    }
}

/// What `wharf clusters check` reports: the server's version and what the credentials
/// may do.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The API server's version (`v1.33.1`).
    pub version: String,
    /// Each verb on each resource Wharf needs, and whether it is allowed.
    pub access: Vec<Access>,
}

/// One verb on one resource, as the API server answered a SelfSubjectAccessReview.
#[derive(Debug, Clone, Serialize)]
pub struct Access {
    /// `create`, `patch`, `list`...
    pub verb: String,
    /// `namespaces`, `deployments.apps`...
    pub resource: String,
    /// Whether the credentials may.
    pub allowed: bool,
}

/// What the kubernetes target does in a cluster: `(group, resource, verbs)`; the
/// ClusterRole in `examples/kubernetes/wharf-clusterrole.yaml` grants them.
pub const NEEDED: &[(&str, &str, &[&str])] = &[
    ("", "namespaces", &["get", "create", "patch", "delete"]),
    ("", "secrets", &["get", "list", "create", "patch", "delete"]),
    (
        "",
        "configmaps",
        &["get", "list", "create", "patch", "delete"],
    ),
    (
        "",
        "services",
        &["get", "list", "create", "patch", "delete"],
    ),
    ("", "pods", &["get", "list"]),
    ("", "pods/log", &["get"]),
    (
        "apps",
        "deployments",
        &["get", "list", "create", "patch", "delete"],
    ),
    (
        "apps",
        "statefulsets",
        &["get", "list", "create", "patch", "delete"],
    ),
];

/// Connects to the cluster: its version, and for each verb Wharf needs whether the
/// credentials may (asked with SelfSubjectAccessReviews, so any authenticated identity
/// can run the check).
pub async fn check(client: &kube::Client) -> Result<Check, String> {
    let version = client
        .apiserver_version()
        .await
        .map_err(|e| super::describe(&e))?;
    let reviews: Api<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview> =
        Api::all(client.clone());
    let mut access = Vec::new();
    for (group, resource, verbs) in NEEDED {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        for verb in *verbs {
            let review = serde_json::from_value(json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": { "resourceAttributes": {
                    "group": group, "resource": resource, "subresource": subresource,
                    "verb": verb } },
            }))
            .expect("a review deserializes");
            let answer = reviews
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| super::describe(&e))?;
            let name = match (group.is_empty(), subresource.is_empty()) {
                (true, true) => resource.to_string(),
                (true, false) => format!("{resource}/{subresource}"),
                (false, _) => format!("{resource}.{group}"),
            };
            access.push(Access {
                verb: verb.to_string(),
                resource: name,
                allowed: answer.status.is_some_and(|s| s.allowed),
            });
        }
    }
    Ok(Check {
        version: version.git_version,
        access,
    })
}
