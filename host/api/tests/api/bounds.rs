//! What a request can make the server do: nothing before it is authorized, and a bounded
//! amount after. A viewer's deployment is refused before its body is read (a body that
//! never ends still gets its 403); a developer's hostile inputs (a JSON Patch that doubles
//! the set with each operation, a YAML alias bomb, a million unclosed placeholders) are
//! each refused with a 400 naming the limit they crossed, while the server goes on
//! answering others; followed streams are capped per principal.

use super::*;
use std::time::{Duration, Instant};

/// App `shop` with environment `dev`, a viewer and a developer (deployer on
/// `development`); their tokens.
async fn shop(api: &Api) -> (String, String) {
    let admin = Some(api.admin.as_str());
    for (path, body) in [
        ("/api/v1/apps", json!({ "id": "shop" })),
        (
            "/api/v1/apps/shop/envs",
            json!({ "id": "dev", "env_type": "development" }),
        ),
    ] {
        let (status, body) = api.send("POST", path, admin, Some(body)).await;
        assert!(status.is_success(), "{body}");
    }
    let app = Scope::App(Id::new("shop").unwrap());
    let viewer = api
        .user("viewer@example.com", &[(app.clone(), "viewer")])
        .await;
    let developer = api
        .user(
            "dev@example.com",
            &[
                (app, "developer"),
                (Scope::EnvType(Id::new("development").unwrap()), "deployer"),
            ],
        )
        .await;
    (viewer, developer)
}

/// Sends raw bytes as a JSON body; the status and how long the server took.
async fn timed(api: &Api, path: &str, token: &str, body: Vec<u8>) -> (StatusCode, Value, Duration) {
    let started = Instant::now();
    let (status, value) = api
        .send_bytes("POST", path, Some(token), "application/json", body)
        .await;
    (status, value, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewers_deployment_is_refused_before_its_body_is_read() {
    let api = api().await;
    let (viewer, _) = shop(&api).await;
    // A body that never ends: a server that read it before deciding would never answer.
    for path in [
        "/api/v1/apps/shop/envs/dev/deployments",
        "/api/v1/apps/shop/sets",
        "/api/v1/apps/shop/sets/abc/deltas",
    ] {
        let (status, body, polls) = api
            .send_unending(path, &viewer, b"{\"workloads\": [\"*a, *a, ")
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains(".create"),
            "{path}: {body}"
        );
        assert_eq!(polls, 0, "{path}: the body was polled {polls} times");
    }
}

/// A Score document (JSON) whose container's variable `X` is `value`.
fn with_variable(value: &str) -> Value {
    json!({
        "apiVersion": "score.dev/v1b1",
        "metadata": { "name": "web" },
        "containers": { "main": { "image": "busybox", "command": ["serve"],
                                  "variables": { "X": value } } },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_get_a_400_naming_their_limit_while_the_server_answers_others() {
    let api = std::sync::Arc::new(api().await);
    let (_, developer) = shop(&api).await;
    let deploy = "/api/v1/apps/shop/envs/dev/deployments";
    let (status, set) = api
        .send(
            "POST",
            "/api/v1/apps/shop/sets",
            Some(&developer),
            Some(json!({ "workloads": [with_variable("v1")] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{set}");
    let delta = format!(
        "/api/v1/apps/shop/sets/{}/deltas",
        set["id"].as_str().unwrap()
    );

    // A YAML alias bomb: ten levels of ten references, 10^10 nodes once expanded.
    let mut bomb = String::from(
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  main:\n    \
         image: busybox\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..10 {
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 10].join(", ")
        ));
    }
    // A delta that copies the workloads into themselves, doubling the set each time.
    let mut doubling =
        vec![json!({ "op": "add", "path": "/workloads/web/metadata/x", "value": [0] })];
    for _ in 0..64 {
        doubling.push(json!({ "op": "copy", "from": "/workloads/web/metadata/x",
                              "path": "/workloads/web/metadata/x/0" }));
    }
    let unclosed = "${".repeat(1_000_000);
    let closed = format!("{}}}", unclosed);
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "an alias bomb",
            deploy,
            json!({ "workloads": [bomb] }),
            "alias replay limit exceeded: total_replayed_events=100001 > 100000",
        ),
        (
            "a patch that doubles the set",
            &delta,
            json!(doubling),
            "larger than 4 MiB",
        ),
        (
            "many operations",
            &delta,
            json!(vec![
                json!({ "op": "test", "path": "/workloads", "value": {} });
                5000
            ]),
            "at most 1000 are applied",
        ),
        (
            "a million unclosed placeholders",
            deploy,
            json!({ "workloads": [with_variable(&unclosed)] }),
            "a variable holds at most 128 KiB",
        ),
        (
            "a million placeholders closed at the end",
            deploy,
            json!({ "workloads": [with_variable(&closed)] }),
            "a variable holds at most 128 KiB",
        ),
    ];
    // Others keep being answered meanwhile: forty health checks, each answered.
    let watching = {
        let api = api.clone();
        tokio::spawn(async move {
            for _ in 0..40 {
                let check = api.send("GET", "/healthz", None, None);
                let (status, _) = tokio::time::timeout(Duration::from_secs(10), check)
                    .await
                    .expect("a health check answered while the hostile inputs are read");
                assert_eq!(status, StatusCode::OK);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    for (what, path, body, says) in cases {
        let (status, answer, took) =
            timed(&api, path, &developer, body.to_string().into_bytes()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert!(answer.to_string().contains(says), "{what}: {answer}");
        eprintln!("{what}: 400 in {took:?}: {}", answer["detail"]);
    }
    watching.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_follows_a_bounded_number_of_streams() {
    let api = api().await;
    let (viewer, developer) = shop(&api).await;
    let logs = "/api/v1/apps/shop/envs/dev/logs?follow=true";
    let open = |token: String| {
        let state = api.state.clone();
        async move {
            let request = Request::builder()
                .uri(logs)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            router(state).oneshot(request).await.unwrap()
        }
    };
    let mut held = Vec::new();
    for _ in 0..8 {
        let response = open(viewer.clone()).await;
        assert_eq!(response.status(), StatusCode::OK);
        held.push(response);
    }
    let ninth = open(viewer.clone()).await;
    assert_eq!(ninth.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = ninth.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains("close one"),
        "{body:?}"
    );
    // Another principal has its own share; a stream closed gives one back.
    assert_eq!(open(developer).await.status(), StatusCode::OK);
    drop(held.pop());
    assert_eq!(open(viewer).await.status(), StatusCode::OK);
}
