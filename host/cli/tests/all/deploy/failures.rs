//! What goes wrong in a deployment, and what the user sees: a driver that fails, one
//! that takes its time, a transformer that traps; a server killed while it provisions,
//! which resumes on restart and provisions nothing twice.

use super::counter::{Counter, Counts};
use super::{answers_at, deploy_hello, example, hello_platform};
use crate::serve::{Server, start};
use crate::support::{Client, get, install, post};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[test]
fn failures_fail_the_deployment_with_their_reason_and_the_previous_set_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = hello_platform(&server);
    let counter = Counter::start(None);
    scripted_things(&server, &counter);
    let first = deploy_hello(&wharf, "dev");
    let url = answers_at(&first);

    a_permanent_driver_error_fails_it_and_the_previous_set_serves(&wharf, &url);
    a_resource_in_progress_is_asked_again_until_done(&wharf, &counter);
    a_trapping_transformer_fails_it_at_transform_and_the_server_carries_on(&server, &wharf, &url);
    assert!(server.stop().success());
}

/// The scripted test driver installed for resource type `thing`: class `broken` fails
/// for good, class `slow` is in progress three times, then done.
fn scripted_things(server: &Server, counter: &Counter) {
    install(
        server,
        "scripted",
        "driver",
        wharf_artifacts::TEST_DRIVER,
        Some(&counter.url),
        json!({}),
    );
    post(server, "/api/v1/resource-types", json!({ "id": "thing" }));
    for (class, values) in [
        (
            "broken",
            json!({ "fail": "quota exceeded: at most 3 databases per team" }),
        ),
        (
            "slow",
            json!({ "steps": 3, "retry_after_ms": 20, "counter": counter.url }),
        ),
    ] {
        post(
            server,
            "/api/v1/resource-definitions",
            json!({
                "id": format!("thing-{class}"), "type": "thing", "driver": "scripted",
                "driver_inputs": { "values": values }, "criteria": [{ "class": class }]
            }),
        );
    }
}

/// A permanent driver error: the deployment fails with the driver's message, at
/// provision (the steps after it skipped); the previous set keeps serving.
fn a_permanent_driver_error_fails_it_and_the_previous_set_serves(wharf: &Client, url: &str) {
    let broken = json!([{ "op": "add", "path": "/workloads/hello/resources/quota",
                          "value": { "type": "thing", "class": "broken" } }])
    .to_string();
    let failed = wharf.fails(&[
        "deploy", "--delta", &broken, "--app", "hello", "--env", "dev", "--follow",
    ]);
    assert!(
        failed.contains("deployment 2 of hello/dev failed at provision")
            && failed.contains("quota exceeded: at most 3 databases per team"),
        "{failed}"
    );
    let d = wharf.json(&["deployments", "get", "hello", "dev", "2"]);
    assert_eq!(d["status"], "failed");
    assert_eq!(d["error"]["scope"], "resource");
    assert_eq!(d["error"]["object"], "thing.broken#hello.quota");
    let steps: Vec<&str> = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "done", "done", "done", "failed", "skipped", "skipped", "skipped", "skipped", "skipped"
        ]
    );
    let (status, body) = get(url).unwrap();
    assert!(
        status == 200 && body.contains("(version 1)"),
        "the previous set serves: {body}"
    );
}

/// In progress three times, then done: the deployment completes, the resource created
/// once and then called again with its state until done.
fn a_resource_in_progress_is_asked_again_until_done(wharf: &Client, counter: &Counter) {
    let slow = json!([{ "op": "add", "path": "/workloads/hello/resources/quota",
                        "value": { "type": "thing", "class": "slow" } }])
    .to_string();
    let done = wharf.ok(&[
        "deploy", "--delta", &slow, "--app", "hello", "--env", "dev", "--follow",
    ]);
    assert!(
        done.contains("Deployment 3 of hello/dev succeeded"),
        "{done}"
    );
    // What the driver was asked: created once, then called again with its state until
    // done (three in-progress answers, then done: four calls).
    counter.counts(|c| {
        assert_eq!(c.creates.len(), 1, "{c:?}");
        assert_eq!(
            c.calls
                .iter()
                .filter(|(uid, _)| uid == "hello.quota")
                .count(),
            4,
            "{c:?}"
        );
    });
    let d = wharf.json(&["deployments", "get", "hello", "dev", "3"]);
    assert_eq!(d["status"], "succeeded");
}

/// A transformer that traps fails the deployment at transform; the server carries on,
/// and dev still serves.
fn a_trapping_transformer_fails_it_at_transform_and_the_server_carries_on(
    server: &Server,
    wharf: &Client,
    url: &str,
) {
    install(
        server,
        "trap",
        "transformer",
        wharf_artifacts::TEST_TRANSFORMER,
        None,
        json!({ "trap": true }),
    );
    post(
        server,
        "/api/v1/env-types",
        json!({ "id": "trapped", "transformers": ["trap"] }),
    );
    wharf.ok(&["envs", "create", "hello", "qa", "--type", "trapped"]);
    let score = example().join("score.yaml");
    let trapped = wharf.fails(&[
        "deploy",
        "-f",
        score.to_str().unwrap(),
        "--app",
        "hello",
        "--env",
        "qa",
        "--follow",
    ]);
    assert!(
        trapped.contains("failed at transform") && trapped.contains("plugin trapped"),
        "{trapped}"
    );
    let d = wharf.json(&["deployments", "get", "hello", "qa", "1"]);
    assert_eq!(d["error"]["scope"], "transformer");
    assert_eq!(d["error"]["object"], "trap");
    assert_eq!(server.request("GET", "/readyz", None, "").0, 200);
    assert!(get(url).is_some_and(|(s, _)| s == 200), "dev still serves");
}

#[test]
fn a_server_killed_while_it_provisions_resumes_and_provisions_nothing_twice() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let token = server.token.clone().unwrap();
    let counter = Counter::start(Some(10));
    twenty_resources_deploying(&server, &counter);

    // Kill the server once ten resources were created and journaled, with more asked for.
    ten_journaled_and_more_asked_for(&server, &token, &counter);
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert_eq!(counter.counts(|c| c.creates.len()), 10);
    // Requests the dead server sent and the counter has not read yet are read (and held,
    // so never counted) before the counter lets creates through again.
    std::thread::sleep(Duration::from_millis(500));
    counter.release();

    let server = start(data.path());
    let d = finished(&server, &token, "/api/v1/apps/big/envs/dev/deployments/1");
    assert_eq!(d["status"], "succeeded", "{d}");
    assert_eq!(d["steps"][3]["name"], "provision");
    assert_eq!(d["steps"][3]["detail"]["resumed"], true, "{d}");
    counter.counts(each_resource_created_exactly_once_with_one_key);
    assert!(server.stop().success());
}

/// App `big`'s `dev` deploying one workload with twenty resources of the counting
/// driver: deployment 1.
fn twenty_resources_deploying(server: &Server, counter: &Counter) {
    install(
        server,
        "counting",
        "driver",
        wharf_artifacts::TEST_DRIVER,
        Some(&counter.url),
        json!({}),
    );
    post(server, "/api/v1/resource-types", json!({ "id": "thing" }));
    post(
        server,
        "/api/v1/resource-definitions",
        json!({
            "id": "thing", "type": "thing", "driver": "counting",
            "driver_inputs": { "values": { "counter": counter.url, "steps": 1, "retry_after_ms": 300 } },
            "criteria": [{}]
        }),
    );
    post(server, "/api/v1/apps", json!({ "id": "big" }));
    post(
        server,
        "/api/v1/apps/big/envs",
        json!({ "id": "dev", "env_type": "development" }),
    );
    let resources: serde_json::Map<String, Value> = (1..=20)
        .map(|i| (format!("r{i:02}"), json!({ "type": "thing" })))
        .collect();
    let workload = json!({
        "apiVersion": "score.dev/v1b1",
        "metadata": { "name": "big" },
        "containers": { "main": { "image": "busybox", "command": ["sleep", "600"] } },
        "resources": resources,
    });
    let d = post(
        server,
        "/api/v1/apps/big/envs/dev/deployments",
        json!({ "workloads": [workload] }),
    );
    assert_eq!(d["id"], 1);
}

/// Waits until the counter holds a create while ten resources are journaled (in
/// progress or done).
fn ten_journaled_and_more_asked_for(server: &Server, token: &str, counter: &Counter) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "provisioning did not get going: {:?}",
            counter.counts(|c| c.creates.len())
        );
        let (_, status) =
            server.request("GET", "/api/v1/apps/big/envs/dev/status", Some(token), "");
        let status: Value = serde_json::from_str(&status).unwrap_or(Value::Null);
        let journaled = status["resources"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter(|r| r["status"] == "in-progress" || r["status"] == "done")
                    .count()
            })
            .unwrap_or(0);
        if counter.held() > 0 && journaled >= 10 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The deployment at `path` once it succeeded or failed.
fn finished(server: &Server, token: &str, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, body) = server.request("GET", path, Some(token), "");
        let d: Value = serde_json::from_str(&body).unwrap();
        if d["status"] == "succeeded" || d["status"] == "failed" {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "the deployment did not finish: {d}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every resource was created exactly once, each with one idempotency key of its own
/// that every call for it carried.
fn each_resource_created_exactly_once_with_one_key(c: &Counts) {
    let mut created: Vec<&str> = c.creates.iter().map(|(uid, _)| uid.as_str()).collect();
    created.sort();
    let all: Vec<String> = (1..=20).map(|i| format!("big.r{i:02}")).collect();
    assert_eq!(
        created, all,
        "every resource created exactly once: {:?}",
        c.creates
    );
    for (uid, key) in &c.creates {
        let keys: std::collections::BTreeSet<&str> = c
            .calls
            .iter()
            .filter(|(u, _)| u == uid)
            .map(|(_, k)| k.as_str())
            .collect();
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            [key.as_str()],
            "{uid} saw one key"
        );
    }
    let keys: std::collections::BTreeSet<&str> =
        c.creates.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(keys.len(), 20, "one key per resource");
}
