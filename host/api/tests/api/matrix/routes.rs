//! The matrix's routes: every route the router serves, and for each the request a case
//! sends, with what the admin prepares for it to act on.

use super::*;

pub(super) const V1: &str = "/api/v1";

/// Every route: method, path as registered, the action the rbac table must allow (None:
/// public).
pub(super) const BASE_ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
    ("GET", "/api/v1/openapi.json", None),
    ("GET", "/api/v1/apps", Some("apps.list")),
    ("POST", "/api/v1/apps", Some("apps.create")),
    ("GET", "/api/v1/apps/{app}", Some("apps.get")),
    ("DELETE", "/api/v1/apps/{app}", Some("apps.delete")),
    ("GET", "/api/v1/apps/{app}/envs", Some("environments.list")),
    (
        "POST",
        "/api/v1/apps/{app}/envs",
        Some("environments.create"),
    ),
    (
        "GET",
        "/api/v1/apps/{app}/envs/{env}",
        Some("environments.get"),
    ),
    (
        "DELETE",
        "/api/v1/apps/{app}/envs/{env}",
        Some("environments.delete"),
    ),
    ("GET", "/api/v1/artefacts", Some("artefacts.list")),
    ("POST", "/api/v1/artefacts", Some("artefacts.create")),
    ("GET", "/api/v1/artefacts/{artefact}", Some("artefacts.get")),
    ("GET", "/api/v1/clusters", Some("clusters.list")),
    ("POST", "/api/v1/clusters", Some("clusters.create")),
    ("GET", "/api/v1/clusters/{cluster}", Some("clusters.get")),
    (
        "DELETE",
        "/api/v1/clusters/{cluster}",
        Some("clusters.delete"),
    ),
    (
        "POST",
        "/api/v1/clusters/{cluster}/check",
        Some("clusters.check"),
    ),
    ("GET", "/api/v1/env-types", Some("env-types.list")),
    ("POST", "/api/v1/env-types", Some("env-types.create")),
    ("GET", "/api/v1/env-types/{env_type}", Some("env-types.get")),
    (
        "DELETE",
        "/api/v1/env-types/{env_type}",
        Some("env-types.delete"),
    ),
    (
        "PUT",
        "/api/v1/env-types/{env_type}",
        Some("env-types.update"),
    ),
    (
        "GET",
        "/api/v1/apps/{app}/envs/{env}/deployments",
        Some("deployments.list"),
    ),
    (
        "POST",
        "/api/v1/apps/{app}/envs/{env}/deployments",
        Some("deployments.create"),
    ),
    (
        "GET",
        "/api/v1/apps/{app}/envs/{env}/deployments/{id}",
        Some("deployments.get"),
    ),
    (
        "GET",
        "/api/v1/apps/{app}/envs/{env}/deployments/{id}/events",
        Some("deployments.get"),
    ),
    (
        "GET",
        "/api/v1/apps/{app}/envs/{env}/status",
        Some("environments.get"),
    ),
    (
        "GET",
        "/api/v1/apps/{app}/envs/{env}/logs",
        Some("logs.read"),
    ),
    ("GET", "/api/v1/users", Some("users.list")),
    ("POST", "/api/v1/users", Some("users.create")),
    ("GET", "/api/v1/users/{user}", Some("users.get")),
    (
        "GET",
        "/api/v1/users/{user}/role-bindings",
        Some("role-bindings.list"),
    ),
    (
        "POST",
        "/api/v1/role-bindings",
        Some("role-bindings.create"),
    ),
    (
        "DELETE",
        "/api/v1/role-bindings",
        Some("role-bindings.delete"),
    ),
    (
        "GET",
        "/api/v1/service-accounts",
        Some("service-accounts.list"),
    ),
    (
        "POST",
        "/api/v1/service-accounts",
        Some("service-accounts.create"),
    ),
    (
        "GET",
        "/api/v1/principals/{principal}/tokens",
        Some("tokens.list"),
    ),
    (
        "POST",
        "/api/v1/principals/{principal}/tokens",
        Some("tokens.create"),
    ),
    (
        "DELETE",
        "/api/v1/principals/{principal}/tokens/{token}",
        Some("tokens.delete"),
    ),
    ("GET", "/api/v1/plugins", Some("plugins.list")),
    ("POST", "/api/v1/plugins", Some("plugins.upload")),
    ("GET", "/api/v1/plugins/{plugin}", Some("plugins.get")),
    ("DELETE", "/api/v1/plugins/{plugin}", Some("plugins.delete")),
    ("GET", "/api/v1/plugin-installations", Some("plugins.list")),
    (
        "POST",
        "/api/v1/plugin-installations",
        Some("plugins.install"),
    ),
    (
        "GET",
        "/api/v1/plugin-installations/{installation}",
        Some("plugins.get"),
    ),
    (
        "PATCH",
        "/api/v1/plugin-installations/{installation}",
        Some("plugins.update"),
    ),
    (
        "DELETE",
        "/api/v1/plugin-installations/{installation}",
        Some("plugins.delete"),
    ),
    ("GET", "/api/v1/resource-types", Some("resource-types.list")),
    (
        "POST",
        "/api/v1/resource-types",
        Some("resource-types.create"),
    ),
    (
        "GET",
        "/api/v1/resource-types/{resource_type}",
        Some("resource-types.get"),
    ),
    (
        "DELETE",
        "/api/v1/resource-types/{resource_type}",
        Some("resource-types.delete"),
    ),
    (
        "GET",
        "/api/v1/resource-definitions",
        Some("resource-definitions.list"),
    ),
    (
        "POST",
        "/api/v1/resource-definitions",
        Some("resource-definitions.create"),
    ),
    (
        "GET",
        "/api/v1/resource-definitions/{definition}",
        Some("resource-definitions.get"),
    ),
    (
        "PUT",
        "/api/v1/resource-definitions/{definition}",
        Some("resource-definitions.update"),
    ),
    (
        "DELETE",
        "/api/v1/resource-definitions/{definition}",
        Some("resource-definitions.delete"),
    ),
    (
        "GET",
        "/api/v1/resource-definitions/{definition}/versions",
        Some("resource-definitions.get"),
    ),
    (
        "POST",
        "/api/v1/resource-definitions/match",
        Some("resource-definitions.list"),
    ),
    ("GET", "/api/v1/audit", Some("audit.read")),
    ("GET", "/api/v1/apps/{app}/sets", Some("sets.list")),
    ("POST", "/api/v1/apps/{app}/sets", Some("sets.create")),
    ("GET", "/api/v1/apps/{app}/sets/{set}", Some("sets.get")),
    (
        "POST",
        "/api/v1/apps/{app}/sets/{set}/deltas",
        Some("sets.create"),
    ),
    (
        "GET",
        "/api/v1/apps/{app}/sets/{set}/diff",
        Some("sets.get"),
    ),
];

/// A request body.
pub(super) enum Payload {
    None,
    Json(Value),
    Wasm(Vec<u8>),
}

/// One case, as the request builders see it.
pub(super) struct Target<'a> {
    pub(super) api: &'a Api,
    pub(super) method: &'a str,
    pub(super) route: &'a str,
    /// The case's number, which makes the names it creates unique.
    pub(super) n: usize,
    /// The case's own app, with its environment `e`.
    pub(super) app: &'a str,
    /// The type of the case's environments.
    pub(super) env_type: &'a str,
}

impl Target<'_> {
    /// Creates `body` at `/api/v1/{path}` as the admin, for the case to act on.
    pub(super) async fn prepare(&self, path: &str, body: Value) {
        let (status, body) = self
            .api
            .send(
                "POST",
                &format!("{V1}/{path}"),
                Some(&self.api.admin),
                Some(body),
            )
            .await;
        assert!(status.is_success(), "setup failed: {status} {body}");
    }

    pub(super) fn unknown(&self) -> ! {
        panic!(
            "no request for route {:?}: add it to the matrix",
            (self.method, self.route)
        )
    }
}

/// Prepares (as the admin) what the case acts on, and returns its request: the URI and the
/// body.
pub(super) async fn request(t: &Target<'_>) -> (String, Payload) {
    let group = t
        .route
        .strip_prefix("/api/v1/")
        .and_then(|rest| rest.split('/').next());
    let automation = ["/rules", "/plan", "/pause", "/resume", "/webhooks"];
    match group {
        Some("webhooks") => super::automation::request(t).await,
        Some("apps") if automation.iter().any(|a| t.route.contains(a)) => {
            super::automation::request(t).await
        }
        Some("apps") if t.route.contains("/sets") => sets(t).await,
        Some("apps") => apps_and_environments(t).await,
        Some("env-types") => env_types(t).await,
        Some("clusters") => clusters(t).await,
        Some("artefacts") => artefacts(t),
        Some("users" | "role-bindings" | "service-accounts" | "principals") => principals(t).await,
        Some("plugins" | "plugin-installations") => plugins(t).await,
        Some("resource-types" | "resource-definitions") => resources(t).await,
        _ => public_and_audit(t),
    }
}

fn public_and_audit(t: &Target<'_>) -> (String, Payload) {
    match (t.method, t.route) {
        (_, "/healthz" | "/readyz" | "/api/v1/openapi.json") => {
            (t.route.to_string(), Payload::None)
        }
        ("GET", "/api/v1/audit") => (format!("{V1}/audit"), Payload::None),
        _ => t.unknown(),
    }
}

async fn apps_and_environments(t: &Target<'_>) -> (String, Payload) {
    let (app, n, env_type) = (t.app, t.n, t.env_type);
    match (t.method, t.route) {
        ("GET", "/api/v1/apps") => (format!("{V1}/apps"), Payload::None),
        ("POST", "/api/v1/apps") => (
            format!("{V1}/apps"),
            Payload::Json(json!({ "id": format!("new-{n}") })),
        ),
        ("GET" | "DELETE", "/api/v1/apps/{app}") => (format!("{V1}/apps/{app}"), Payload::None),
        ("GET", "/api/v1/apps/{app}/envs") => (format!("{V1}/apps/{app}/envs"), Payload::None),
        ("POST", "/api/v1/apps/{app}/envs") => (
            format!("{V1}/apps/{app}/envs"),
            Payload::Json(json!({ "id": "other", "env_type": env_type })),
        ),
        ("GET" | "DELETE", "/api/v1/apps/{app}/envs/{env}") => {
            (format!("{V1}/apps/{app}/envs/e"), Payload::None)
        }
        ("GET", "/api/v1/apps/{app}/envs/{env}/deployments") => {
            (format!("{V1}/apps/{app}/envs/e/deployments"), Payload::None)
        }
        ("POST", "/api/v1/apps/{app}/envs/{env}/deployments") => (
            format!("{V1}/apps/{app}/envs/e/deployments"),
            Payload::Json(score_set("web", "serve")),
        ),
        (
            "GET",
            "/api/v1/apps/{app}/envs/{env}/deployments/{id}"
            | "/api/v1/apps/{app}/envs/{env}/deployments/{id}/events",
        ) => {
            let path = a_failed_deployment(t).await;
            if t.route.ends_with("/events") {
                (format!("{path}/events"), Payload::None)
            } else {
                (path, Payload::None)
            }
        }
        ("GET", "/api/v1/apps/{app}/envs/{env}/status") => {
            (format!("{V1}/apps/{app}/envs/e/status"), Payload::None)
        }
        ("GET", "/api/v1/apps/{app}/envs/{env}/logs") => {
            (format!("{V1}/apps/{app}/envs/e/logs"), Payload::None)
        }
        _ => t.unknown(),
    }
}

/// The path of a deployment that fails at once (there is no program `serve`), so that its
/// event stream ends.
async fn a_failed_deployment(t: &Target<'_>) -> String {
    let app = t.app;
    let (status, d) = t
        .api
        .send(
            "POST",
            &format!("{V1}/apps/{app}/envs/e/deployments"),
            Some(&t.api.admin),
            Some(score_set("web", "serve")),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{d}");
    format!("{V1}/apps/{app}/envs/e/deployments/{}", d["id"])
}

async fn env_types(t: &Target<'_>) -> (String, Payload) {
    let n = t.n;
    match (t.method, t.route) {
        ("GET", "/api/v1/env-types") => (format!("{V1}/env-types"), Payload::None),
        ("POST", "/api/v1/env-types") => (
            format!("{V1}/env-types"),
            Payload::Json(json!({ "id": format!("t-{n}") })),
        ),
        ("GET", "/api/v1/env-types/{env_type}") => {
            (format!("{V1}/env-types/development"), Payload::None)
        }
        ("PUT", "/api/v1/env-types/{env_type}") => {
            let id = format!("changed-{n}");
            t.prepare("env-types", json!({ "id": id })).await;
            (
                format!("{V1}/env-types/{id}"),
                Payload::Json(json!({ "description": "changed" })),
            )
        }
        ("DELETE", "/api/v1/env-types/{env_type}") => {
            let id = format!("gone-{n}");
            t.prepare("env-types", json!({ "id": id })).await;
            (format!("{V1}/env-types/{id}"), Payload::None)
        }
        _ => t.unknown(),
    }
}

/// Artefacts: each case pushes an image of its own; artefact 1 is prepared for every case.
fn artefacts(t: &Target<'_>) -> (String, Payload) {
    match (t.method, t.route) {
        ("GET", "/api/v1/artefacts") => (format!("{V1}/artefacts"), Payload::None),
        ("POST", "/api/v1/artefacts") => (
            format!("{V1}/artefacts"),
            Payload::Json(json!({
                "image": format!("registry.example.com/shop/api@sha256:{:064x}", t.n),
                "ref": "refs/heads/main",
            })),
        ),
        ("GET", "/api/v1/artefacts/{artefact}") => (format!("{V1}/artefacts/1"), Payload::None),
        _ => t.unknown(),
    }
}

/// A cluster no environment type uses; its API server does not answer (port 9 of
/// loopback), so a check reports the failure.
async fn clusters(t: &Target<'_>) -> (String, Payload) {
    let n = t.n;
    let cluster =
        |id: String| json!({ "id": id, "server": "http://127.0.0.1:9", "token": "t0ken" });
    match (t.method, t.route) {
        ("GET", "/api/v1/clusters") => (format!("{V1}/clusters"), Payload::None),
        ("POST", "/api/v1/clusters") => (
            format!("{V1}/clusters"),
            Payload::Json(cluster(format!("c-{n}"))),
        ),
        ("GET" | "DELETE", "/api/v1/clusters/{cluster}")
        | ("POST", "/api/v1/clusters/{cluster}/check") => {
            let id = format!("k-{n}");
            t.prepare("clusters", cluster(id.clone())).await;
            let path = format!("{V1}/clusters/{id}");
            match t.method {
                "POST" => (format!("{path}/check"), Payload::None),
                _ => (path, Payload::None),
            }
        }
        _ => t.unknown(),
    }
}

/// Users, their role bindings, service accounts and tokens.
async fn principals(t: &Target<'_>) -> (String, Payload) {
    let n = t.n;
    match (t.method, t.route) {
        ("GET", "/api/v1/users") => (format!("{V1}/users"), Payload::None),
        ("POST", "/api/v1/users") => (
            format!("{V1}/users"),
            Payload::Json(json!({ "id": format!("u-{n}@example.com") })),
        ),
        ("GET", "/api/v1/users/{user}") => (format!("{V1}/users/target"), Payload::None),
        ("GET", "/api/v1/users/{user}/role-bindings") => {
            (format!("{V1}/users/target/role-bindings"), Payload::None)
        }
        ("POST", "/api/v1/role-bindings") => {
            let id = format!("b-{n}");
            t.prepare("users", json!({ "id": id })).await;
            (
                format!("{V1}/role-bindings"),
                Payload::Json(
                    json!({ "principal": id, "scope": { "kind": "org" }, "role": "member" }),
                ),
            )
        }
        ("DELETE", "/api/v1/role-bindings") => {
            let id = format!("b-{n}");
            t.prepare("users", json!({ "id": id })).await;
            let binding = json!({ "principal": id, "scope": { "kind": "org" }, "role": "member" });
            t.prepare("role-bindings", binding).await;
            (
                format!("{V1}/role-bindings?principal={id}&scope=org&role=member"),
                Payload::None,
            )
        }
        ("GET", "/api/v1/service-accounts") => (format!("{V1}/service-accounts"), Payload::None),
        ("POST", "/api/v1/service-accounts") => (
            format!("{V1}/service-accounts"),
            Payload::Json(json!({ "id": format!("ci-{n}") })),
        ),
        ("GET" | "POST", "/api/v1/principals/{principal}/tokens") => {
            (format!("{V1}/principals/target/tokens"), Payload::None)
        }
        ("DELETE", "/api/v1/principals/{principal}/tokens/{token}") => {
            let (status, token) = t
                .api
                .send(
                    "POST",
                    &format!("{V1}/principals/target/tokens"),
                    Some(&t.api.admin),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::CREATED);
            let id = token["id"].as_str().unwrap();
            (format!("{V1}/principals/target/tokens/{id}"), Payload::None)
        }
        _ => t.unknown(),
    }
}

/// Plugins and their installations.
async fn plugins(t: &Target<'_>) -> (String, Payload) {
    let (method, n) = (t.method, t.n);
    let freeze = || std::fs::read(wharf_artifacts::FREEZE_WINDOW).unwrap();
    match (method, t.route) {
        ("GET", "/api/v1/plugins") => (format!("{V1}/plugins"), Payload::None),
        ("POST", "/api/v1/plugins") => (
            format!("{V1}/plugins?id=up-{n}&kind=policy"),
            Payload::Wasm(freeze()),
        ),
        ("GET", "/api/v1/plugins/{plugin}") => (format!("{V1}/plugins/rbac"), Payload::None),
        ("DELETE", "/api/v1/plugins/{plugin}") => {
            let (status, body) = t
                .api
                .send_bytes(
                    "POST",
                    &format!("{V1}/plugins?id=gone-{n}&kind=policy"),
                    Some(&t.api.admin),
                    "application/wasm",
                    freeze(),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            (format!("{V1}/plugins/gone-{n}"), Payload::None)
        }
        ("GET", "/api/v1/plugin-installations") => {
            (format!("{V1}/plugin-installations"), Payload::None)
        }
        ("POST", "/api/v1/plugin-installations") => (
            format!("{V1}/plugin-installations"),
            Payload::Json(json!({ "id": format!("i-{n}"), "plugin": "echo" })),
        ),
        ("GET", "/api/v1/plugin-installations/{installation}") => {
            (format!("{V1}/plugin-installations/rbac"), Payload::None)
        }
        ("PATCH" | "DELETE", "/api/v1/plugin-installations/{installation}") => {
            let id = format!("i-{n}");
            let installation = json!({ "id": id, "plugin": "echo" });
            t.prepare("plugin-installations", installation).await;
            let body = if method == "PATCH" {
                Payload::Json(json!({ "enabled": false }))
            } else {
                Payload::None
            };
            (format!("{V1}/plugin-installations/{id}"), body)
        }
        _ => t.unknown(),
    }
}

/// Resource types and definitions.
async fn resources(t: &Target<'_>) -> (String, Payload) {
    let (method, n, app) = (t.method, t.n, t.app);
    match (method, t.route) {
        ("GET", "/api/v1/resource-types") => (format!("{V1}/resource-types"), Payload::None),
        ("POST", "/api/v1/resource-types") => (
            format!("{V1}/resource-types"),
            Payload::Json(json!({ "id": format!("rt-{n}") })),
        ),
        ("GET", "/api/v1/resource-types/{resource_type}") => {
            (format!("{V1}/resource-types/rt"), Payload::None)
        }
        ("DELETE", "/api/v1/resource-types/{resource_type}") => {
            let id = format!("rt-{n}");
            t.prepare("resource-types", json!({ "id": id })).await;
            (format!("{V1}/resource-types/{id}"), Payload::None)
        }
        ("GET", "/api/v1/resource-definitions") => {
            (format!("{V1}/resource-definitions"), Payload::None)
        }
        ("POST", "/api/v1/resource-definitions") => (
            format!("{V1}/resource-definitions"),
            Payload::Json(definition(&format!("def-{n}"), app)),
        ),
        ("GET", "/api/v1/resource-definitions/{definition}") => {
            (format!("{V1}/resource-definitions/def-base"), Payload::None)
        }
        ("GET", "/api/v1/resource-definitions/{definition}/versions") => (
            format!("{V1}/resource-definitions/def-base/versions"),
            Payload::None,
        ),
        ("PUT" | "DELETE", "/api/v1/resource-definitions/{definition}") => {
            let id = format!("def-{n}");
            t.prepare("resource-definitions", definition(&id, app))
                .await;
            let body = if method == "PUT" {
                Payload::Json(definition(&id, app))
            } else {
                Payload::None
            };
            (format!("{V1}/resource-definitions/{id}"), body)
        }
        ("POST", "/api/v1/resource-definitions/match") => (
            format!("{V1}/resource-definitions/match"),
            Payload::Json(json!({ "type": "rt", "app": app, "env": "e" })),
        ),
        _ => t.unknown(),
    }
}

/// Sets of workloads, their deltas and diffs.
async fn sets(t: &Target<'_>) -> (String, Payload) {
    let app = t.app;
    match (t.method, t.route) {
        ("GET", "/api/v1/apps/{app}/sets") => (format!("{V1}/apps/{app}/sets"), Payload::None),
        ("POST", "/api/v1/apps/{app}/sets") => (
            format!("{V1}/apps/{app}/sets"),
            Payload::Json(score_set("web", "serve")),
        ),
        (
            "GET" | "POST",
            "/api/v1/apps/{app}/sets/{set}" | "/api/v1/apps/{app}/sets/{set}/deltas",
        )
        | ("GET", "/api/v1/apps/{app}/sets/{set}/diff") => {
            let (status, set) = t
                .api
                .send(
                    "POST",
                    &format!("{V1}/apps/{app}/sets"),
                    Some(&t.api.admin),
                    Some(score_set("web", "serve")),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{set}");
            let id = set["id"].as_str().unwrap();
            match t.route {
                "/api/v1/apps/{app}/sets/{set}" => {
                    (format!("{V1}/apps/{app}/sets/{id}"), Payload::None)
                }
                "/api/v1/apps/{app}/sets/{set}/diff" => (
                    format!("{V1}/apps/{app}/sets/{id}/diff?to={id}"),
                    Payload::None,
                ),
                _ => (
                    format!("{V1}/apps/{app}/sets/{id}/deltas"),
                    Payload::Json(json!([{ "op": "replace",
                        "path": "/workloads/web/containers/main/command/0", "value": "serve-v2" }])),
                ),
            }
        }
        _ => t.unknown(),
    }
}

/// A set body with one workload.
pub(crate) fn score_set(name: &str, command: &str) -> Value {
    json!({ "workloads": [{
        "apiVersion": "score.dev/v1b1",
        "metadata": { "name": name },
        "containers": { "main": { "image": "busybox", "command": [command] } }
    }] })
}

fn definition(id: &str, app: &str) -> Value {
    json!({
        "id": id, "type": "rt", "driver": "echo-i",
        "criteria": [{ "app": app, "res_id": id }]
    })
}
