//! `GET /api/v1/apps` under load, beside a bare axum hello-world in the same process and
//! run, both measured by wrk over loopback.
//!
//! The caller is an org member with the viewer role on 50 of 200 apps, so every request
//! authenticates a token, loads the caller's 51 role bindings, lists 200 apps and asks the
//! policy chain about all of them in one batch call, and returns the 50 it may see.
//!
//! Run: `cargo bench -p wharf-api --bench list_apps` (needs `wrk` on the PATH;
//! WHARF_BENCH_SECONDS and WHARF_BENCH_CONNECTIONS change the duration, 10, and the
//! connections, 64).

use serde_json::json;
use std::process::Command;
use wharf_core::roles::Scope;
use wharf_plugins::{Runtime, RuntimeConfig};
use wharf_server::start;
use wharf_store::Store;

struct Result_ {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn millis(text: &str) -> f64 {
    let text = text.trim();
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().expect("a wrk latency") * factor
}

fn wrk(url: &str, token: Option<&str>, seconds: u32, connections: u32) -> Result_ {
    let mut command = Command::new("wrk");
    command.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(t) = token {
        command.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = command
        .arg(url)
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed: {text}");
    assert!(
        !text.contains("Non-2xx"),
        "some responses were errors:\n{text}"
    );
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_string))
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk's output:\n{text}"))
    };
    Result_ {
        requests_per_second: field("Requests/sec:").trim().parse().unwrap(),
        p50_ms: millis(&field("50%")),
        p99_ms: millis(&field("99%")),
    }
}

fn main() {
    let seconds: u32 = std::env::var("WHARF_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let connections: u32 = std::env::var("WHARF_BENCH_CONNECTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (wharf, hello, token) = runtime.block_on(async {
        let store = Store::open(&dir.path().join("wharf.db")).await.unwrap();
        let plugins = Runtime::new(RuntimeConfig::new(dir.path().join("cache"))).unwrap();
        let bundled = wharf_artifacts::BUNDLED;
        let sealer = wharf_store::secrets::Sealer::new([1; 32]);
        let engine = wharf_engine::Settings::new(dir.path().join("envs"));
        let state = start(store.clone(), plugins, sealer, bundled, engine)
            .await
            .unwrap();
        wharf_api::auth::bootstrap(&store, None).await.unwrap();
        let token = wharf_api::auth::new_token();
        let (hash, id) = (token.hash.clone(), token.id.clone());
        store
            .transaction(move |tx| {
                use wharf_store::{apps, auth};
                auth::create_principal(tx, "member", "user", 1)?;
                auth::bind_role(tx, "member", &Scope::Org, "member")?;
                auth::create_token(tx, &id, "member", &hash, 1, None)?;
                for i in 0..200 {
                    let app = wharf_core::Id::new(format!("app-{i:03}")).unwrap();
                    apps::create(
                        tx,
                        &apps::App {
                            id: app.clone(),
                            name: app.to_string(),
                            created_at: 1,
                            created_by: "admin".into(),
                            deleting: false,
                        },
                    )?;
                    if i % 4 == 0 {
                        auth::bind_role(tx, "member", &Scope::App(app), "viewer")?;
                    }
                }
                Ok(())
            })
            .await
            .unwrap();
        let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let wharf = api.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(api, wharf_api::router(state)).await });
        let bare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hello = bare.local_addr().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
        tokio::spawn(async move { axum::serve(bare, app).await });
        (wharf, hello, token.secret)
    });
    // The member sees exactly its 50 apps.
    let check = Command::new("curl")
        .args(["-sf", "-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("http://{wharf}/api/v1/apps?limit=1000"))
        .output();
    if let Ok(out) = check
        && out.status.success()
    {
        let apps: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(apps.len(), 50, "{}", json!(apps));
    }
    let url = format!("http://{wharf}/api/v1/apps");
    wrk(&url, Some(&token), 2, connections); // warm-up
    let list = wrk(&url, Some(&token), seconds, connections);
    let bare = wrk(&format!("http://{hello}/"), None, seconds, connections);
    println!(
        "{connections} connections, {seconds} s each, wrk -t2, on {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| server | req/s | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    for (name, r) in [
        ("GET /api/v1/apps (member, 50 of 200 apps)", &list),
        ("axum hello-world", &bare),
    ] {
        println!(
            "| {name} | {:.0} | {:.2} ms | {:.2} ms |",
            r.requests_per_second, r.p50_ms, r.p99_ms
        );
    }
    println!(
        "ratio: {:.3} of hello-world's req/s; p99 {:.2} ms vs {:.2} ms",
        list.requests_per_second / bare.requests_per_second,
        list.p99_ms,
        bare.p99_ms
    );
}
