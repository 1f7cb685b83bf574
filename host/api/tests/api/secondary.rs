//! The checks behind the obvious ones: a clone is a deployment (a freeze stops it), the
//! match explainer tells nothing of an app the caller may not see, and a deployment's
//! annotations reach the policies.

use super::*;

const V1: &str = "/api/v1";

async fn upload(api: &Api, id: &str, kind: &str, file: &str) {
    let (status, body) = api
        .send_bytes(
            "POST",
            &format!("{V1}/plugins?id={id}&kind={kind}"),
            Some(&api.admin),
            "application/wasm",
            std::fs::read(file).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn ok(api: &Api, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = api.send(method, path, Some(&api.admin), Some(body)).await;
    assert!(status.is_success(), "{method} {path}: {status} {answer}");
    answer
}

/// A workload that runs (`sleep`), annotated with `annotations`.
fn sleeper(annotations: Value) -> Value {
    json!({ "workloads": [{
        "apiVersion": "score.dev/v1b1",
        "metadata": { "name": "web", "annotations": annotations },
        "containers": { "main": { "image": "busybox", "command": ["sleep", "600"] } }
    }] })
}

#[tokio::test]
async fn a_clone_is_decided_as_a_deployment_so_a_freeze_stops_it() {
    let api = api().await;
    ok(&api, "POST", &format!("{V1}/apps"), json!({ "id": "shop" })).await;
    ok(
        &api,
        "POST",
        &format!("{V1}/apps/shop/envs"),
        json!({ "id": "dev", "env_type": "development" }),
    )
    .await;
    ok(
        &api,
        "POST",
        &format!("{V1}/env-types"),
        json!({ "id": "staging", "target": { "kind": "process" } }),
    )
    .await;
    let d = ok(
        &api,
        "POST",
        &format!("{V1}/apps/shop/envs/dev/deployments"),
        sleeper(json!({})),
    )
    .await;
    let path = format!("{V1}/apps/shop/envs/dev/deployments/{}", d["id"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, d) = api.send("GET", &path, Some(&api.admin), None).await;
        if d["status"] == "succeeded" {
            break;
        }
        assert!(
            d["status"] != "failed" && std::time::Instant::now() < deadline,
            "{d}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    upload(
        &api,
        "freeze-window",
        "policy",
        wharf_artifacts::FREEZE_WINDOW,
    )
    .await;
    ok(
        &api,
        "POST",
        &format!("{V1}/plugin-installations"),
        json!({ "id": "freeze", "plugin": "freeze-window", "config": {
            "env_types": ["staging"],
            "windows": [{ "name": "release-freeze", "start": "2000-01-01", "end": "2100-01-01" }]
        } }),
    )
    .await;
    // Cloning dev into a frozen type deploys there: refused like a deployment.
    let (status, problem) = api
        .send(
            "POST",
            &format!("{V1}/apps/shop/envs"),
            Some(&api.admin),
            Some(json!({ "id": "st", "env_type": "staging", "from": "dev" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("deployments.create") && detail.contains("release-freeze"),
        "{problem}"
    );
    let (status, _) = api
        .send(
            "GET",
            &format!("{V1}/apps/shop/envs/st"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was created");
    // An empty environment of the type is no deployment: not frozen.
    ok(
        &api,
        "POST",
        &format!("{V1}/apps/shop/envs"),
        json!({ "id": "st", "env_type": "staging" }),
    )
    .await;
    api.state.engine.shutdown().await;
}

#[tokio::test]
async fn the_match_explainer_tells_nothing_of_an_app_the_caller_may_not_see() {
    let api = api().await;
    ok(
        &api,
        "POST",
        &format!("{V1}/apps"),
        json!({ "id": "secret-project" }),
    )
    .await;
    ok(
        &api,
        "POST",
        &format!("{V1}/apps/secret-project/envs"),
        json!({ "id": "prod", "env_type": "development" }),
    )
    .await;
    ok(&api, "POST", &format!("{V1}/apps"), json!({ "id": "mine" })).await;
    let member = api
        .user(
            "member@example.com",
            &[
                (Scope::Org, "member"),
                (Scope::App(Id::new("mine").unwrap()), "viewer"),
            ],
        )
        .await;
    let ask = |app: &str, env: &str| json!({ "type": "postgres", "app": app, "env": env });
    // Whether the environment exists, or not: the same refusal.
    for env in ["prod", "nope"] {
        let (status, problem) = api
            .send(
                "POST",
                &format!("{V1}/resource-definitions/match"),
                Some(&member),
                Some(ask("secret-project", env)),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("environments.get"),
            "{problem}"
        );
    }
    // Its own app: asked and answered (no definition matches here).
    let (status, problem) = api
        .send(
            "POST",
            &format!("{V1}/resource-definitions/match"),
            Some(&member),
            Some(json!({ "type": "postgres", "app": "mine", "env": "dev", "env_type": "development" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("no resource definition"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_deployments_annotations_reach_the_policies() {
    let api = api().await;
    ok(&api, "POST", &format!("{V1}/apps"), json!({ "id": "shop" })).await;
    ok(
        &api,
        "POST",
        &format!("{V1}/apps/shop/envs"),
        json!({ "id": "dev", "env_type": "development" }),
    )
    .await;
    upload(&api, "guard", "policy", wharf_artifacts::TEST_POLICY).await;
    ok(
        &api,
        "POST",
        &format!("{V1}/plugin-installations"),
        json!({ "id": "guard", "plugin": "guard", "config": {
            "roles": {}, "forbid_annotations": ["container.apparmor.security.beta.kubernetes.io/"]
        } }),
    )
    .await;
    let deploy = format!("{V1}/apps/shop/envs/dev/deployments");
    let (status, problem) = api
        .send(
            "POST",
            &deploy,
            Some(&api.admin),
            Some(sleeper(
                json!({ "container.apparmor.security.beta.kubernetes.io/main": "unconfined" }),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains(
            "workload web has annotation container.apparmor.security.beta.kubernetes.io/main"
        ),
        "{problem}"
    );
    let (status, body) = api
        .send(
            "POST",
            &deploy,
            Some(&api.admin),
            Some(sleeper(json!({ "team": "payments" }))),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    api.state.engine.shutdown().await;
}
