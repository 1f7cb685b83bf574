//! The authorization suite. The matrix: every route of the API, as every kind of caller,
//! in three places: on the app where the caller holds its role, on another app (its role
//! is on app `home`), and on an environment of another type (`staging`, where the
//! deployer has no `deployer`). A caller the rbac plugin's documented grants allow there
//! gets a 2xx; any other gets a 403, and a caller without a valid token a 401. The route
//! list is checked against the router's own (the OpenAPI document is generated from the
//! same route registrations), so a new route that is not in this matrix fails the build's
//! tests.
//!
//! Beside it: the decisions that depend on attributes (whose token, which role a binding
//! grants and where), and that no work is done before authorization (a denied caller's
//! unparseable body is a 403, not a 400).

use super::*;
use std::collections::BTreeSet;

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    Manager,
    Member,
    Owner,
    Developer,
    Viewer,
    /// App developer and `deployer` on the `development` environment type.
    Deployer,
    /// A user with no role.
    Nobody,
    NoToken,
    Revoked,
    Expired,
}

const EVERYONE: [Who; 11] = [
    Who::Admin,
    Who::Manager,
    Who::Member,
    Who::Owner,
    Who::Developer,
    Who::Viewer,
    Who::Deployer,
    Who::Nobody,
    Who::NoToken,
    Who::Revoked,
    Who::Expired,
];

/// Where a case acts, relative to where its caller holds its app role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// On the caller's app, of type `development` (where the deployer is `deployer`).
    Own,
    /// On an app where the caller holds no role (its role is on app `home`).
    OtherApp,
    /// On the caller's app, in an environment of type `staging`.
    OtherEnvType,
}

const PLACES: [Place; 3] = [Place::Own, Place::OtherApp, Place::OtherEnvType];

/// Every route: method, path as registered, the action the rbac table must allow (None:
/// public).
const ROUTES: &[(&str, &str, Option<&str>)] = &[
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

/// The rbac plugin's documented grants: action → what it needs, from its README.
fn documented_needs() -> Vec<(String, String)> {
    let readme = include_str!("../../../../plugins/rbac/README.md");
    let actions = readme
        .split("## Actions")
        .nth(1)
        .expect("the README has an Actions section");
    actions
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let action = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((action.to_string(), cells.get(2)?.to_string()))
        })
        .collect()
}

/// Whether the documented grant `need` allows `who` at `place` (on a principal that is
/// neither itself nor an admin, granting a role that is not admin).
fn allows(need: &str, who: Who, place: Place) -> bool {
    let org = match who {
        Who::Admin => 3,
        Who::Manager => 2,
        Who::Member => 1,
        _ => 0,
    };
    let app = match (who, place) {
        (_, Place::OtherApp) => 0,
        (Who::Owner, _) => 3,
        (Who::Developer | Who::Deployer, _) => 2,
        (Who::Viewer, _) => 1,
        _ => 0,
    };
    if org == 3 {
        return true;
    }
    if need.starts_with("the principal itself; else org admin") {
        return false; // the target is another principal, and only an admin may
    }
    if need.starts_with("the principal itself") {
        return org >= 2;
    }
    let need = need.split(" (").next().unwrap();
    let (base, deployer) = match need.split_once(" + ") {
        Some((base, "env type deployer")) => (base, true),
        Some((_, other)) => panic!("unknown need {other:?}"),
        None => (need, false),
    };
    let level = |role: &str| match role {
        "admin" | "owner" => 3,
        "manager" | "developer" => 2,
        "member" | "viewer" => 1,
        other => panic!("unknown role {other:?}"),
    };
    let base_ok = match base.split_once(' ') {
        Some(("org", role)) => org >= level(role),
        Some(("app", role)) => app >= level(role),
        _ => panic!("unknown need {base:?}"),
    };
    base_ok && (!deployer || (who == Who::Deployer && place != Place::OtherEnvType))
}

/// A request body.
enum Body_ {
    None,
    Json(Value),
    Wasm(Vec<u8>),
}

/// Prepares (as the admin) what case `n` acts on, and returns the request; `env_type` is
/// the type of the case's environments.
async fn request(
    api: &Api,
    method: &str,
    route: &str,
    n: usize,
    app: &str,
    env_type: &str,
) -> (String, Body_) {
    let admin = Some(api.admin.as_str());
    let ok = |(status, body): (StatusCode, Value)| {
        assert!(status.is_success(), "setup failed: {status} {body}");
    };
    let freeze = std::fs::read(wharf_artifacts::FREEZE_WINDOW).unwrap();
    let base = "/api/v1";
    match (method, route) {
        (_, "/healthz" | "/readyz" | "/api/v1/openapi.json") => (route.to_string(), Body_::None),
        ("GET", "/api/v1/apps") => (format!("{base}/apps"), Body_::None),
        ("POST", "/api/v1/apps") => (
            format!("{base}/apps"),
            Body_::Json(json!({ "id": format!("new-{n}") })),
        ),
        ("GET" | "DELETE", "/api/v1/apps/{app}") => (format!("{base}/apps/{app}"), Body_::None),
        ("GET", "/api/v1/apps/{app}/envs") => (format!("{base}/apps/{app}/envs"), Body_::None),
        ("POST", "/api/v1/apps/{app}/envs") => (
            format!("{base}/apps/{app}/envs"),
            Body_::Json(json!({ "id": "other", "env_type": env_type })),
        ),
        ("GET" | "DELETE", "/api/v1/apps/{app}/envs/{env}") => {
            (format!("{base}/apps/{app}/envs/e"), Body_::None)
        }
        ("GET", "/api/v1/env-types") => (format!("{base}/env-types"), Body_::None),
        ("POST", "/api/v1/env-types") => (
            format!("{base}/env-types"),
            Body_::Json(json!({ "id": format!("t-{n}") })),
        ),
        ("GET", "/api/v1/env-types/{env_type}") => {
            (format!("{base}/env-types/development"), Body_::None)
        }
        ("PUT", "/api/v1/env-types/{env_type}") => {
            let id = format!("changed-{n}");
            ok(api
                .send(
                    "POST",
                    &format!("{base}/env-types"),
                    admin,
                    Some(json!({ "id": id })),
                )
                .await);
            (
                format!("{base}/env-types/{id}"),
                Body_::Json(json!({ "description": "changed" })),
            )
        }
        ("GET", "/api/v1/apps/{app}/envs/{env}/deployments") => {
            (format!("{base}/apps/{app}/envs/e/deployments"), Body_::None)
        }
        ("POST", "/api/v1/apps/{app}/envs/{env}/deployments") => (
            format!("{base}/apps/{app}/envs/e/deployments"),
            Body_::Json(score_set("web", "serve")),
        ),
        (
            "GET",
            "/api/v1/apps/{app}/envs/{env}/deployments/{id}"
            | "/api/v1/apps/{app}/envs/{env}/deployments/{id}/events",
        ) => {
            // A deployment that fails at once (there is no program `serve`), so that its
            // event stream ends.
            let (status, d) = api
                .send(
                    "POST",
                    &format!("{base}/apps/{app}/envs/e/deployments"),
                    admin,
                    Some(score_set("web", "serve")),
                )
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{d}");
            let path = format!("{base}/apps/{app}/envs/e/deployments/{}", d["id"]);
            if route.ends_with("/events") {
                (format!("{path}/events"), Body_::None)
            } else {
                (path, Body_::None)
            }
        }
        ("GET", "/api/v1/apps/{app}/envs/{env}/status") => {
            (format!("{base}/apps/{app}/envs/e/status"), Body_::None)
        }
        ("GET", "/api/v1/apps/{app}/envs/{env}/logs") => {
            (format!("{base}/apps/{app}/envs/e/logs"), Body_::None)
        }
        ("DELETE", "/api/v1/env-types/{env_type}") => {
            let id = format!("gone-{n}");
            ok(api
                .send(
                    "POST",
                    &format!("{base}/env-types"),
                    admin,
                    Some(json!({ "id": id })),
                )
                .await);
            (format!("{base}/env-types/{id}"), Body_::None)
        }
        ("GET", "/api/v1/users") => (format!("{base}/users"), Body_::None),
        ("POST", "/api/v1/users") => (
            format!("{base}/users"),
            Body_::Json(json!({ "id": format!("u-{n}@example.com") })),
        ),
        ("GET", "/api/v1/users/{user}") => (format!("{base}/users/target"), Body_::None),
        ("GET", "/api/v1/users/{user}/role-bindings") => {
            (format!("{base}/users/target/role-bindings"), Body_::None)
        }
        ("POST", "/api/v1/role-bindings") => {
            let id = format!("b-{n}");
            ok(api
                .send(
                    "POST",
                    &format!("{base}/users"),
                    admin,
                    Some(json!({ "id": id })),
                )
                .await);
            (
                format!("{base}/role-bindings"),
                Body_::Json(
                    json!({ "principal": id, "scope": { "kind": "org" }, "role": "member" }),
                ),
            )
        }
        ("DELETE", "/api/v1/role-bindings") => {
            let id = format!("b-{n}");
            ok(api
                .send(
                    "POST",
                    &format!("{base}/users"),
                    admin,
                    Some(json!({ "id": id })),
                )
                .await);
            ok(api
                .send(
                    "POST",
                    &format!("{base}/role-bindings"),
                    admin,
                    Some(json!({ "principal": id, "scope": { "kind": "org" }, "role": "member" })),
                )
                .await);
            (
                format!("{base}/role-bindings?principal={id}&scope=org&role=member"),
                Body_::None,
            )
        }
        ("GET", "/api/v1/service-accounts") => (format!("{base}/service-accounts"), Body_::None),
        ("POST", "/api/v1/service-accounts") => (
            format!("{base}/service-accounts"),
            Body_::Json(json!({ "id": format!("ci-{n}") })),
        ),
        ("GET" | "POST", "/api/v1/principals/{principal}/tokens") => {
            (format!("{base}/principals/target/tokens"), Body_::None)
        }
        ("DELETE", "/api/v1/principals/{principal}/tokens/{token}") => {
            let (status, token) = api
                .send(
                    "POST",
                    &format!("{base}/principals/target/tokens"),
                    admin,
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::CREATED);
            (
                format!(
                    "{base}/principals/target/tokens/{}",
                    token["id"].as_str().unwrap()
                ),
                Body_::None,
            )
        }
        ("GET", "/api/v1/plugins") => (format!("{base}/plugins"), Body_::None),
        ("POST", "/api/v1/plugins") => (
            format!("{base}/plugins?id=up-{n}&kind=policy"),
            Body_::Wasm(freeze),
        ),
        ("GET", "/api/v1/plugins/{plugin}") => (format!("{base}/plugins/rbac"), Body_::None),
        ("DELETE", "/api/v1/plugins/{plugin}") => {
            let (status, body) = api
                .send_bytes(
                    "POST",
                    &format!("{base}/plugins?id=gone-{n}&kind=policy"),
                    admin,
                    "application/wasm",
                    freeze,
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            (format!("{base}/plugins/gone-{n}"), Body_::None)
        }
        ("GET", "/api/v1/plugin-installations") => {
            (format!("{base}/plugin-installations"), Body_::None)
        }
        ("POST", "/api/v1/plugin-installations") => (
            format!("{base}/plugin-installations"),
            Body_::Json(json!({ "id": format!("i-{n}"), "plugin": "echo" })),
        ),
        ("GET", "/api/v1/plugin-installations/{installation}") => {
            (format!("{base}/plugin-installations/rbac"), Body_::None)
        }
        ("PATCH" | "DELETE", "/api/v1/plugin-installations/{installation}") => {
            let id = format!("i-{n}");
            ok(api
                .send(
                    "POST",
                    &format!("{base}/plugin-installations"),
                    admin,
                    Some(json!({ "id": id, "plugin": "echo" })),
                )
                .await);
            let body = if method == "PATCH" {
                Body_::Json(json!({ "enabled": false }))
            } else {
                Body_::None
            };
            (format!("{base}/plugin-installations/{id}"), body)
        }
        ("GET", "/api/v1/resource-types") => (format!("{base}/resource-types"), Body_::None),
        ("POST", "/api/v1/resource-types") => (
            format!("{base}/resource-types"),
            Body_::Json(json!({ "id": format!("rt-{n}") })),
        ),
        ("GET", "/api/v1/resource-types/{resource_type}") => {
            (format!("{base}/resource-types/rt"), Body_::None)
        }
        ("DELETE", "/api/v1/resource-types/{resource_type}") => {
            let id = format!("rt-{n}");
            ok(api
                .send(
                    "POST",
                    &format!("{base}/resource-types"),
                    admin,
                    Some(json!({ "id": id })),
                )
                .await);
            (format!("{base}/resource-types/{id}"), Body_::None)
        }
        ("GET", "/api/v1/resource-definitions") => {
            (format!("{base}/resource-definitions"), Body_::None)
        }
        ("POST", "/api/v1/resource-definitions") => (
            format!("{base}/resource-definitions"),
            Body_::Json(definition(&format!("def-{n}"), app)),
        ),
        ("GET", "/api/v1/resource-definitions/{definition}") => {
            (format!("{base}/resource-definitions/def-base"), Body_::None)
        }
        ("GET", "/api/v1/resource-definitions/{definition}/versions") => (
            format!("{base}/resource-definitions/def-base/versions"),
            Body_::None,
        ),
        ("PUT" | "DELETE", "/api/v1/resource-definitions/{definition}") => {
            let id = format!("def-{n}");
            ok(api
                .send(
                    "POST",
                    &format!("{base}/resource-definitions"),
                    admin,
                    Some(definition(&id, app)),
                )
                .await);
            let body = if method == "PUT" {
                Body_::Json(definition(&id, app))
            } else {
                Body_::None
            };
            (format!("{base}/resource-definitions/{id}"), body)
        }
        ("POST", "/api/v1/resource-definitions/match") => (
            format!("{base}/resource-definitions/match"),
            Body_::Json(json!({ "type": "rt", "app": app, "env": "e" })),
        ),
        ("GET", "/api/v1/audit") => (format!("{base}/audit"), Body_::None),
        ("GET", "/api/v1/apps/{app}/sets") => (format!("{base}/apps/{app}/sets"), Body_::None),
        ("POST", "/api/v1/apps/{app}/sets") => (
            format!("{base}/apps/{app}/sets"),
            Body_::Json(score_set("web", "serve")),
        ),
        (
            "GET" | "POST",
            "/api/v1/apps/{app}/sets/{set}" | "/api/v1/apps/{app}/sets/{set}/deltas",
        )
        | ("GET", "/api/v1/apps/{app}/sets/{set}/diff") => {
            let (status, set) = api
                .send(
                    "POST",
                    &format!("{base}/apps/{app}/sets"),
                    admin,
                    Some(score_set("web", "serve")),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{set}");
            let id = set["id"].as_str().unwrap();
            match route {
                "/api/v1/apps/{app}/sets/{set}" => {
                    (format!("{base}/apps/{app}/sets/{id}"), Body_::None)
                }
                "/api/v1/apps/{app}/sets/{set}/diff" => (
                    format!("{base}/apps/{app}/sets/{id}/diff?to={id}"),
                    Body_::None,
                ),
                _ => (
                    format!("{base}/apps/{app}/sets/{id}/deltas"),
                    Body_::Json(json!([{ "op": "replace",
                        "path": "/workloads/web/containers/main/command/0", "value": "serve-v2" }])),
                ),
            }
        }
        other => panic!("no request for route {other:?}: add it to the matrix"),
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

/// The routes the router serves, from the OpenAPI document generated with it.
fn router_routes() -> BTreeSet<(String, String)> {
    let doc = wharf_api::openapi();
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

#[test]
fn every_route_is_in_the_matrix() {
    let served = router_routes();
    let matrix: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&matrix).collect();
    let stale: Vec<_> = matrix.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "routes not covered by the RBAC matrix: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "matrix rows for routes that do not exist: {stale:?}"
    );
    let needs = documented_needs();
    for (_, _, action) in ROUTES {
        if let Some(action) = action {
            assert!(
                needs.iter().any(|(a, _)| a == action),
                "{action} is not in the rbac plugin's documented actions"
            );
        }
    }
}

#[tokio::test]
async fn every_route_as_every_caller_gets_what_the_rbac_grants_say() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    let v1 = "/api/v1";
    // What every case can refer to.
    for (path, body) in [
        ("apps", json!({ "id": "home" })),
        (
            "env-types",
            json!({ "id": "staging", "target": { "kind": "process" } }),
        ),
        ("users", json!({ "id": "target" })),
        ("resource-types", json!({ "id": "rt" })),
        (
            "plugin-installations",
            json!({ "id": "echo-i", "plugin": "echo" }),
        ),
        (
            "resource-definitions",
            json!({ "id": "def-base", "type": "rt", "driver": "echo-i", "criteria": [{}] }),
        ),
    ] {
        let (status, body) = api
            .send("POST", &format!("{v1}/{path}"), admin, Some(body))
            .await;
        assert!(status.is_success(), "{path}: {status} {body}");
    }
    let mut tokens = std::collections::HashMap::new();
    for who in EVERYONE {
        let id = format!("{who:?}").to_lowercase();
        let token = match who {
            Who::Admin => Some(api.admin.clone()),
            Who::Manager => Some(api.user(&id, &[(Scope::Org, "manager")]).await),
            Who::Member => Some(api.user(&id, &[(Scope::Org, "member")]).await),
            Who::Owner | Who::Developer | Who::Viewer | Who::Nobody => {
                Some(api.user(&id, &[]).await)
            }
            Who::Deployer => Some(
                api.user(
                    &id,
                    &[(Scope::EnvType(Id::new("development").unwrap()), "deployer")],
                )
                .await,
            ),
            Who::NoToken => None,
            Who::Revoked => {
                let token = api.user(&id, &[(Scope::Org, "admin")]).await;
                let principal = id.clone();
                api.state
                    .store
                    .call(move |tx| {
                        for t in wharf_store::auth::list_tokens(tx, &principal)? {
                            wharf_store::auth::revoke_token(tx, &principal, &t.id, 5)?;
                        }
                        Ok(())
                    })
                    .await
                    .unwrap();
                Some(token)
            }
            Who::Expired => Some(api.user_expiring(&id, &[(Scope::Org, "admin")], 5).await),
        };
        tokens.insert(format!("{who:?}"), (id, token));
    }
    let needs = documented_needs();
    let mut failures = Vec::new();
    let mut cases = 0;
    let all: Vec<(&str, &str, Option<&str>, Who, Place)> = ROUTES
        .iter()
        .flat_map(|&(m, p, a)| {
            EVERYONE
                .iter()
                .flat_map(move |&w| PLACES.iter().map(move |&place| (m, p, a, w, place)))
        })
        .collect();
    let (mut allowed, mut denied) = (0, 0);
    for (n, (method, route, action, who, place)) in all.into_iter().enumerate() {
        let env_type = match place {
            Place::OtherEnvType => "staging",
            _ => "development",
        };
        cases += 1;
        // Each case has an app of its own, with an environment, where its caller holds
        // its app role.
        let app = format!("c{n}");
        let (status, body) = api
            .send(
                "POST",
                &format!("{v1}/apps"),
                admin,
                Some(json!({ "id": app })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = api
            .send(
                "POST",
                &format!("{v1}/apps/{app}/envs"),
                admin,
                Some(json!({ "id": "e", "env_type": env_type })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (principal, token) = tokens[&format!("{who:?}")].clone();
        let app_role = match who {
            Who::Owner => Some("owner"),
            Who::Developer | Who::Deployer => Some("developer"),
            Who::Viewer => Some("viewer"),
            _ => None,
        };
        // Elsewhere, the role is on app `home`: not on the case's app.
        let role_app = match place {
            Place::OtherApp => "home",
            _ => app.as_str(),
        };
        if let Some(role) = app_role {
            let (status, body) = api
                .send(
                    "POST",
                    &format!("{v1}/role-bindings"),
                    admin,
                    Some(json!({ "principal": principal, "scope": { "kind": "app", "id": role_app }, "role": role })),
                )
                .await;
            assert!(status.is_success(), "{body}");
        }
        let (uri, body) = request(&api, method, route, n, &app, env_type).await;
        let (status, response) = match body {
            Body_::None => api.send(method, &uri, token.as_deref(), None).await,
            Body_::Json(v) => api.send(method, &uri, token.as_deref(), Some(v)).await,
            Body_::Wasm(bytes) => {
                api.send_bytes(method, &uri, token.as_deref(), "application/wasm", bytes)
                    .await
            }
        };
        let expected = match (action, who) {
            (None, _) => "2xx",
            (Some(_), Who::NoToken | Who::Revoked | Who::Expired) => "401",
            (Some(action), _) => {
                let need = |action: &str| &needs.iter().find(|(a, _)| a == action).unwrap().1;
                // Deleting an app deletes its environments, each authorized as such.
                // Explaining a match tells whether the environment exists: only to those
                // who may see it.
                let also = match (method, route) {
                    ("DELETE", "/api/v1/apps/{app}") => Some("environments.delete"),
                    ("POST", "/api/v1/resource-definitions/match") => Some("environments.get"),
                    _ => None,
                };
                if allows(need(action), who, place)
                    && also.is_none_or(|a| allows(need(a), who, place))
                {
                    "2xx"
                } else {
                    "403"
                }
            }
        };
        match expected {
            "2xx" => allowed += 1,
            "403" => denied += 1,
            _ => {}
        }
        let good = match expected {
            "2xx" => status.is_success(),
            "401" => status == StatusCode::UNAUTHORIZED,
            _ => status == StatusCode::FORBIDDEN,
        };
        if !good {
            failures.push(format!(
                "{method} {uri} as {who:?} ({place:?}): expected {expected}, got {status}: \
                 {response}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(cases, ROUTES.len() * EVERYONE.len() * PLACES.len());
    eprintln!(
        "{cases} cases: {} routes x {} callers x {} places; {allowed} allowed, {denied} \
         denied, the rest public or unauthenticated",
        ROUTES.len(),
        EVERYONE.len(),
        PLACES.len()
    );
    // The grants are neither all-allow nor all-deny: both outcomes were exercised.
    assert!(
        allowed > 100 && denied > 100,
        "{allowed} allowed, {denied} denied"
    );
}

#[tokio::test]
async fn decisions_that_depend_on_attributes_follow_the_grants() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    for app in ["a", "b"] {
        let (status, body) = api
            .send("POST", "/api/v1/apps", admin, Some(json!({ "id": app })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let callers = [
        ("root2", vec![(Scope::Org, "admin")]),
        ("manager", vec![(Scope::Org, "manager")]),
        ("member", vec![(Scope::Org, "member")]),
        (
            "owner-a",
            vec![(Scope::App(Id::new("a").unwrap()), "owner")],
        ),
    ];
    let mut tokens = std::collections::HashMap::new();
    for (id, bindings) in &callers {
        tokens.insert(*id, api.user(id, bindings).await);
    }
    api.user("plain", &[]).await;
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut check = |what: String, status: StatusCode, allowed: bool, body: &Value| {
        cases += 1;
        let good = if allowed {
            status.is_success()
        } else {
            status == StatusCode::FORBIDDEN
        };
        if !good {
            failures.push(format!(
                "{what}: expected {}, got {status}: {body}",
                if allowed { "2xx" } else { "403" }
            ));
        }
    };

    // Tokens: one's own, another principal's, another admin's.
    for (caller, _) in &callers {
        let token = tokens[caller].as_str();
        for (whose, principal) in [
            ("own", *caller),
            ("another's", "plain"),
            ("an admin's", "admin"),
        ] {
            let org = match *caller {
                "root2" => 3,
                "manager" => 2,
                "member" => 1,
                _ => 0,
            };
            let own = whose == "own";
            let admin_target = whose == "an admin's" || (own && org == 3);
            let path = format!("/api/v1/principals/{principal}/tokens");
            let (status, body) = api.send("GET", &path, Some(token), None).await;
            check(
                format!("{caller} lists {whose} tokens"),
                status,
                own || (org >= 2 && !admin_target) || org == 3,
                &body,
            );
            let (status, body) = api.send("POST", &path, Some(token), None).await;
            check(
                format!("{caller} makes {whose} token"),
                status,
                own || (org == 3 && !admin_target),
                &body,
            );
        }
    }

    // Role bindings: which role, at which scope.
    /// A binding: what it grants, where, and which callers may.
    type Grant = (&'static str, Value, fn(&str) -> bool);
    let grants: [Grant; 5] = [
        ("org member", json!({ "kind": "org" }), |c| {
            matches!(c, "root2" | "manager")
        }),
        ("org admin", json!({ "kind": "org" }), |c| c == "root2"),
        (
            "developer on app a",
            json!({ "kind": "app", "id": "a" }),
            |c| matches!(c, "root2" | "owner-a"),
        ),
        (
            "developer on app b",
            json!({ "kind": "app", "id": "b" }),
            |c| c == "root2",
        ),
        (
            "deployer on development",
            json!({ "kind": "env-type", "id": "development" }),
            |c| matches!(c, "root2" | "manager"),
        ),
    ];
    for (caller, _) in &callers {
        let token = tokens[caller].as_str();
        for (what, scope, may) in &grants {
            let role = what
                .split(' ')
                .nth(usize::from(what.starts_with("org")))
                .unwrap();
            let binding = json!({ "principal": "plain", "scope": scope, "role": role });
            let (status, body) = api
                .send("POST", "/api/v1/role-bindings", Some(token), Some(binding))
                .await;
            check(
                format!("{caller} grants {what}"),
                status,
                may(caller),
                &body,
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{cases} attribute-dependent cases");
}

#[tokio::test]
async fn a_denied_caller_costs_no_parse() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    for (path, body) in [
        ("/api/v1/apps", json!({ "id": "shop" })),
        ("/api/v1/apps", json!({ "id": "home" })),
        (
            "/api/v1/apps/shop/envs",
            json!({ "id": "dev", "env_type": "development" }),
        ),
    ] {
        let (status, body) = api.send("POST", path, admin, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let viewer = api
        .user(
            "viewer",
            &[(Scope::App(Id::new("shop").unwrap()), "viewer")],
        )
        .await;
    let other = api
        .user(
            "other",
            &[
                (Scope::App(Id::new("home").unwrap()), "developer"),
                (Scope::EnvType(Id::new("development").unwrap()), "deployer"),
            ],
        )
        .await;
    let member = api.user("member", &[(Scope::Org, "member")]).await;
    // Routes whose target is in their path read their body only once the caller may act.
    let routes = [
        "/api/v1/apps/shop/envs/dev/deployments",
        "/api/v1/apps/shop/sets",
        "/api/v1/apps/shop/sets/0123/deltas",
        "/api/v1/plugins?id=up&kind=policy",
    ];
    let mut cases = 0;
    for route in routes {
        for (who, token) in [
            ("viewer", &viewer),
            ("another app's developer", &other),
            ("member", &member),
        ] {
            let garbage = b"{\"workloads\": [\"\\u00zz, *".repeat(10_000);
            let started = std::time::Instant::now();
            let (status, body) = api
                .send_bytes("POST", route, Some(token), "application/json", garbage)
                .await;
            let took = started.elapsed();
            assert_eq!(status, StatusCode::FORBIDDEN, "{route} as {who}: {body}");
            assert!(
                took < std::time::Duration::from_millis(50),
                "{route} as {who}: {took:?}"
            );
            cases += 1;
        }
    }
    eprintln!("{cases} denied callers, no body parsed");
}
