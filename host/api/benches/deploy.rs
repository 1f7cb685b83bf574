//! Deployments end to end, in process: the API state as `wharf serve` builds it, the
//! bundled `echo` and `password` drivers in the sandbox, the gitops target.
//!
//! One deployment is 10 workloads with 20 resources (each workload a `password` and an
//! `echo`-backed `config` resource, both in its variables). Measured, from the engine's
//! events as they arrive:
//! - orchestration: from the deployment starting to run to the `apply` step starting
//!   (resolve, provision with 20 driver calls, render, transform: everything but writing
//!   files), median of WHARF_BENCH_RUNS runs (default 50, after 5 to warm up);
//! - the whole deployment, from the POST (accept and authorize included) to succeeded,
//!   with the files written to a tmpfs when there is one (`/dev/shm`);
//! - 200 environments deployed at once (WHARF_BENCH_ENVS): total time until all 200
//!   succeeded.
//!
//! Run: `cargo bench -p wharf-api --bench deploy`.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tower::ServiceExt;
use wharf_api::{AppState, router};
use wharf_engine::pipeline::What;
use wharf_plugins::{Runtime, RuntimeConfig};
use wharf_server::start;
use wharf_store::{Store, deployments};

async fn send(state: &AppState, token: &str, method: &str, path: &str, body: Value) -> Value {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {value}");
    value
}

fn workloads() -> Value {
    let all: Vec<Value> = (0..10)
        .map(|i| {
            json!({
                "apiVersion": "score.dev/v1b1",
                "metadata": { "name": format!("svc-{i}") },
                "containers": { "main": {
                    "image": "ghcr.io/acme/svc:1",
                    "command": ["serve"],
                    "variables": {
                        "TOKEN": "${resources.token.password}",
                        "REGION": "${resources.config.region}",
                    },
                } },
                "service": { "ports": { "http": { "port": 80, "targetPort": 8080 } } },
                "resources": {
                    "token": { "type": "password" },
                    "config": { "type": "config" },
                },
            })
        })
        .collect();
    Value::Array(all)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("WHARF_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let envs: usize = std::env::var("WHARF_BENCH_ENVS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let shm = std::path::Path::new("/dev/shm");
    let manifests = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    runtime.block_on(async {
        let store = Store::open(&dir.path().join("wharf.db")).await.unwrap();
        let plugins = Runtime::new(RuntimeConfig::new(dir.path().join("cache"))).unwrap();
        let bundled = wharf_artifacts::BUNDLED;
        let sealer = wharf_store::secrets::Sealer::new([1; 32]);
        let settings = wharf_engine::Settings::new(dir.path().join("envs"));
        let state = start(store.clone(), plugins, sealer, bundled, settings)
            .await
            .unwrap();
        let token = wharf_api::auth::bootstrap(&store, None).await.unwrap().unwrap();
        let t = token.as_str();
        for (path, body) in [
            ("/api/v1/plugin-installations", json!({ "id": "echo", "plugin": "echo" })),
            ("/api/v1/plugin-installations", json!({ "id": "password", "plugin": "password" })),
            ("/api/v1/resource-types", json!({ "id": "password" })),
            ("/api/v1/resource-types", json!({ "id": "config" })),
            (
                "/api/v1/resource-definitions",
                json!({ "id": "password", "type": "password", "driver": "password", "criteria": [{}] }),
            ),
            (
                "/api/v1/resource-definitions",
                json!({ "id": "config", "type": "config", "driver": "echo",
                        "driver_inputs": { "values": { "region": "eu-west-1" } }, "criteria": [{}] }),
            ),
            (
                "/api/v1/env-types",
                json!({ "id": "bench", "target": { "kind": "gitops", "path": manifests.path() } }),
            ),
            ("/api/v1/apps", json!({ "id": "shop" })),
            ("/api/v1/apps/shop/envs", json!({ "id": "one", "env_type": "bench" })),
        ] {
            send(&state, t, "POST", path, body).await;
        }

        // One environment, deployed again and again.
        let mut orchestration = Vec::new();
        let mut per_step: std::collections::BTreeMap<String, Vec<Duration>> = Default::default();
        let mut whole = Vec::new();
        let mut events = state.engine.subscribe();
        for run in 0..runs + 5 {
            let posted = Instant::now();
            let d = send(
                &state,
                t,
                "POST",
                "/api/v1/apps/shop/envs/one/deployments",
                json!({ "workloads": workloads() }),
            )
            .await;
            let id = d["id"].as_i64().unwrap();
            let (mut running, mut applying) = (None, None);
            let mut begun: std::collections::HashMap<String, Instant> = Default::default();
            let done = loop {
                let e = match events.recv().await {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(e) => panic!("{e}"),
                };
                if e.deployment != id || e.env != "one" {
                    continue;
                }
                match &e.what {
                    What::Status { status, .. } if status == "running" => {
                        running = Some(Instant::now())
                    }
                    What::Step { name, status, .. } if status == "running" => {
                        if name == "apply" {
                            applying = Some(Instant::now());
                        }
                        begun.insert(name.clone(), Instant::now());
                    }
                    What::Step { name, status, .. } if status == "done" => {
                        if let Some(b) = begun.get(name)
                            && run >= 5
                        {
                            per_step.entry(name.clone()).or_default().push(b.elapsed());
                        }
                    }
                    What::Status { status, error } => {
                        assert_eq!(status, "succeeded", "{error:?}");
                        break Instant::now();
                    }
                    _ => {}
                }
            };
            if run >= 5 {
                orchestration.push(applying.unwrap() - running.unwrap());
                whole.push(done - posted);
            }
        }
        let orchestration_ms = median(orchestration).as_secs_f64() * 1e3;
        let whole_ms = median(whole).as_secs_f64() * 1e3;

        // Many environments at once, all of the same set.
        let set = send(
            &state,
            t,
            "POST",
            "/api/v1/apps/shop/sets",
            json!({ "workloads": workloads() }),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        for i in 0..envs {
            send(
                &state,
                t,
                "POST",
                "/api/v1/apps/shop/envs",
                json!({ "id": format!("e{i}"), "env_type": "bench" }),
            )
            .await;
        }
        let started = Instant::now();
        for i in 0..envs {
            send(
                &state,
                t,
                "POST",
                &format!("/api/v1/apps/shop/envs/e{i}/deployments"),
                json!({ "set": set }),
            )
            .await;
        }
        // Thousands of events: the store says when all are over.
        loop {
            let (over, failed): (usize, usize) = store
                .call(move |tx| {
                    let (mut over, mut failed) = (0, 0);
                    for i in 0..envs {
                        for d in deployments::list(tx, "shop", &format!("e{i}"))? {
                            over += usize::from(d.status.is_final());
                            failed += usize::from(d.status == deployments::Status::Failed);
                        }
                    }
                    Ok((over, failed))
                })
                .await
                .unwrap();
            assert_eq!(failed, 0, "a deployment failed");
            if over == envs {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let concurrent = started.elapsed();
        println!("deploy: 10 workloads, 20 resources (echo + password), gitops target");
        println!(
            "  orchestration (resolve to transform), median of {runs}: {orchestration_ms:.2} ms"
        );
        println!("  whole deployment (POST to succeeded, files on tmpfs), median: {whole_ms:.2} ms");
        for step in [
            "resolve",
            "provision",
            "render",
            "transform",
            "apply",
            "verify",
            "prune",
        ] {
            if let Some(d) = per_step.remove(step) {
                println!("    {step:<10} median {:.2} ms", median(d).as_secs_f64() * 1e3);
            }
        }
        println!(
            "  {envs} environments deployed at once: {:.2} s ({:.1} ms per deployment)",
            concurrent.as_secs_f64(),
            concurrent.as_secs_f64() * 1e3 / envs as f64
        );
    });
}
