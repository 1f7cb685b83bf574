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

/// Deployments of one environment run before the measured ones, to warm up.
const WARM_UP: usize = 5;

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
        let (state, token) = serve(dir.path()).await;
        set_up_the_platform(&state, &token, manifests.path()).await;
        let one = deploy_one_environment(&state, &token, runs).await;
        let concurrent = deploy_at_once(&state, &token, envs).await;
        report(runs, envs, one, concurrent);
    });
}

/// The API state as `wharf serve` builds it, over a store in `dir`, and the admin's token.
async fn serve(dir: &std::path::Path) -> (AppState, String) {
    let store = Store::open(&dir.join("wharf.db")).await.unwrap();
    let plugins = Runtime::new(RuntimeConfig::new(dir.join("cache"))).unwrap();
    let bundled = wharf_artifacts::BUNDLED;
    let sealer = wharf_store::secrets::Sealer::new([1; 32]);
    let settings = wharf_engine::Settings::new(dir.join("envs"));
    let state = start(store.clone(), plugins, sealer, bundled, settings)
        .await
        .unwrap();
    let token = wharf_api::auth::bootstrap(&store, None)
        .await
        .unwrap()
        .unwrap();
    (state, token)
}

/// The drivers, resource types and definitions the workloads use, a gitops environment type
/// writing to `manifests`, and app `shop` with its environment `one`.
async fn set_up_the_platform(state: &AppState, t: &str, manifests: &std::path::Path) {
    for (path, body) in [
        (
            "/api/v1/plugin-installations",
            json!({ "id": "echo", "plugin": "echo" }),
        ),
        (
            "/api/v1/plugin-installations",
            json!({ "id": "password", "plugin": "password" }),
        ),
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
            json!({ "id": "bench", "target": { "kind": "gitops", "path": manifests } }),
        ),
        ("/api/v1/apps", json!({ "id": "shop" })),
        (
            "/api/v1/apps/shop/envs",
            json!({ "id": "one", "env_type": "bench" }),
        ),
    ] {
        send(state, t, "POST", path, body).await;
    }
}

/// The measured runs of one environment deployed again and again.
#[derive(Default)]
struct Runs {
    orchestration: Vec<Duration>,
    whole: Vec<Duration>,
    per_step: std::collections::BTreeMap<String, Vec<Duration>>,
}

/// When one deployment's moments happened, from its events.
struct Timeline {
    posted: Instant,
    running: Instant,
    applying: Instant,
    done: Instant,
    /// How long each step took.
    steps: Vec<(String, Duration)>,
}

async fn deploy_one_environment(state: &AppState, t: &str, runs: usize) -> Runs {
    let mut measured = Runs::default();
    let mut events = state.engine.subscribe();
    for run in 0..runs + WARM_UP {
        let timeline = deploy_and_follow(state, t, &mut events).await;
        if run >= WARM_UP {
            for (name, took) in timeline.steps {
                measured.per_step.entry(name).or_default().push(took);
            }
            measured
                .orchestration
                .push(timeline.applying - timeline.running);
            measured.whole.push(timeline.done - timeline.posted);
        }
    }
    measured
}

/// Deploys the workloads to `shop/one` and follows its events until it succeeded.
async fn deploy_and_follow(
    state: &AppState,
    t: &str,
    events: &mut tokio::sync::broadcast::Receiver<wharf_engine::pipeline::Event>,
) -> Timeline {
    let posted = Instant::now();
    let d = send(
        state,
        t,
        "POST",
        "/api/v1/apps/shop/envs/one/deployments",
        json!({ "workloads": workloads() }),
    )
    .await;
    let id = d["id"].as_i64().unwrap();
    let (mut running, mut applying) = (None, None);
    let mut begun: std::collections::HashMap<String, Instant> = Default::default();
    let mut steps = Vec::new();
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
            What::Status { status, .. } if status == "running" => running = Some(Instant::now()),
            What::Step { name, status, .. } if status == "running" => {
                if name == "apply" {
                    applying = Some(Instant::now());
                }
                begun.insert(name.to_string(), Instant::now());
            }
            What::Step { name, status, .. } if status == "done" => {
                if let Some(b) = begun.get(name.as_str()) {
                    steps.push((name.to_string(), b.elapsed()));
                }
            }
            What::Status { status, error } => {
                assert_eq!(status, "succeeded", "{error:?}");
                break Instant::now();
            }
            _ => {}
        }
    };
    Timeline {
        posted,
        running: running.unwrap(),
        applying: applying.unwrap(),
        done,
        steps,
    }
}

/// Deploys one set to `envs` new environments at once; returns the time until all
/// succeeded.
async fn deploy_at_once(state: &AppState, t: &str, envs: usize) -> Duration {
    let set = send(
        state,
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
            state,
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
            state,
            t,
            "POST",
            &format!("/api/v1/apps/shop/envs/e{i}/deployments"),
            json!({ "set": set }),
        )
        .await;
    }
    wait_until_all_over(&state.store, envs).await;
    started.elapsed()
}

/// Thousands of events: the store says when all are over.
async fn wait_until_all_over(store: &Store, envs: usize) {
    loop {
        let (over, failed): (usize, usize) = store
            .call(move |tx| {
                let (mut over, mut failed) = (0, 0);
                for i in 0..envs {
                    for d in deployments::list(tx, "shop", &format!("e{i}"))? {
                        over += usize::from(d.status.is_final());
                        failed +=
                            usize::from(d.status == wharf_core::status::DeploymentStatus::Failed);
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
}

fn report(runs: usize, envs: usize, mut one: Runs, concurrent: Duration) {
    let orchestration_ms = median(one.orchestration).as_secs_f64() * 1e3;
    let whole_ms = median(one.whole).as_secs_f64() * 1e3;
    println!("deploy: 10 workloads, 20 resources (echo + password), gitops target");
    println!("  orchestration (resolve to transform), median of {runs}: {orchestration_ms:.2} ms");
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
        if let Some(d) = one.per_step.remove(step) {
            println!(
                "    {step:<10} median {:.2} ms",
                median(d).as_secs_f64() * 1e3
            );
        }
    }
    println!(
        "  {envs} environments deployed at once: {:.2} s ({:.1} ms per deployment)",
        concurrent.as_secs_f64(),
        concurrent.as_secs_f64() * 1e3 / envs as f64
    );
}
