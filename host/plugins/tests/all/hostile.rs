//! Hostile plugins are contained, reported with the right failure, and do not stop a
//! well-behaved call running on the same runtime at the same time.

use crate::{Loopback, driver, request, runtime};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use wharf_plugins::{DriverPlugin, Kind, Limits, Manifest, PluginFailure, Runtime, Step};

/// Runs the hostile behavior while a well-behaved driver call runs on the same runtime,
/// and returns the hostile call's failure and how long it took.
async fn contained(rt: &Runtime, manifest: Manifest, params: Value) -> (PluginFailure, Duration) {
    let hostile = driver(rt, wharf_artifacts::TEST_HOSTILE, manifest).await;
    let good = driver(
        rt,
        wharf_artifacts::TEST_DRIVER,
        Manifest::new("good", Kind::Driver),
    )
    .await;
    let hostile_call = async {
        let started = Instant::now();
        let result = hostile.provision(&request(params)).await;
        (result, started.elapsed())
    };
    let good_call = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        good.provision(&request(json!({}))).await
    };
    let ((result, elapsed), good_result) = tokio::join!(hostile_call, good_call);
    assert!(
        matches!(good_result, Ok(Step::Done { .. })),
        "the well-behaved call failed: {good_result:?}"
    );
    (result.expect_err("the hostile call succeeded"), elapsed)
}

fn manifest(limits: Limits) -> Manifest {
    Manifest {
        limits,
        ..Manifest::new("hostile", Kind::Driver)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_stops_within_its_cpu_budget() {
    let (rt, _dir) = runtime();
    // Warm up compilation so that only the call is timed.
    let _ = driver(
        &rt,
        wharf_artifacts::TEST_HOSTILE,
        Manifest::new("w", Kind::Driver),
    )
    .await;
    let limits = Limits {
        cpu_ms: 300,
        ..Limits::default()
    };
    let (failure, elapsed) = contained(&rt, manifest(limits), json!({ "behavior": "loop" })).await;
    assert_eq!(
        failure,
        PluginFailure::CpuBudgetExceeded {
            budget: Duration::from_millis(300)
        }
    );
    // Stopped by its budget, not by the default 60 s wall-clock timeout.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_timeout_bounds_a_call() {
    let (rt, _dir) = runtime();
    let limits = Limits {
        cpu_ms: 60_000,
        wall_ms: 300,
        ..Limits::default()
    };
    let (failure, elapsed) = contained(&rt, manifest(limits), json!({ "behavior": "loop" })).await;
    assert_eq!(
        failure,
        PluginFailure::Timeout {
            after: Duration::from_millis(300)
        }
    );
    // Stopped at its own timeout, long before the 60 s CPU budget.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_growth_stops_at_the_cap() {
    let (rt, _dir) = runtime();
    let limits = Limits {
        memory_bytes: 32 << 20,
        ..Limits::default()
    };
    let (failure, _) = contained(&rt, manifest(limits), json!({ "behavior": "memory" })).await;
    let PluginFailure::MemoryLimit { limit, requested } = failure else {
        panic!("{failure:?}")
    };
    assert_eq!(limit, 32 << 20);
    assert!(requested > limit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_is_a_trap() {
    let (rt, _dir) = runtime();
    let (failure, _) = contained(
        &rt,
        manifest(Limits::default()),
        json!({ "behavior": "recursion" }),
    )
    .await;
    let PluginFailure::Trap { message } = failure else {
        panic!("{failure:?}")
    };
    assert!(message.contains("call stack exhausted"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_a_trap_that_carries_the_panic_message() {
    let (rt, _dir) = runtime();
    let (failure, _) = contained(
        &rt,
        manifest(Limits::default()),
        json!({ "behavior": "panic" }),
    )
    .await;
    let PluginFailure::Trap { message } = failure else {
        panic!("{failure:?}")
    };
    assert!(
        message.contains("the hostile plugin panics on purpose"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_megabyte_output_is_refused() {
    let (rt, _dir) = runtime();
    let (failure, _) = contained(
        &rt,
        manifest(Limits::default()),
        json!({ "behavior": "big-output", "mib": 8 }),
    )
    .await;
    let PluginFailure::OutputTooLarge { bytes, limit } = failure else {
        panic!("{failure:?}")
    };
    assert_eq!(limit, 4 << 20);
    assert!(bytes > 8 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_to_an_ungranted_host_is_refused_before_connecting() {
    let server = Loopback::start().await;
    let other = Loopback::start().await;
    let (rt, _dir) = runtime();
    let mut m = manifest(Limits::default());
    m.grants.http.push(other.url());
    let params = json!({ "behavior": "http", "url": format!("{}/x", server.url()) });
    let (failure, _) = contained(&rt, m, params).await;
    assert_eq!(
        failure,
        PluginFailure::CapabilityDenied {
            capability: format!("http to {}", server.url())
        }
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.accepted(), 0, "the denied server saw a connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_connect_without_a_grant_is_refused_before_connecting() {
    let server = Loopback::start().await;
    let (rt, _dir) = runtime();
    let params = json!({ "behavior": "socket", "addr": server.addr.to_string() });
    let (failure, _) = contained(&rt, manifest(Limits::default()), params).await;
    assert_eq!(
        failure,
        PluginFailure::CapabilityDenied {
            capability: "tcp sockets (no address is granted)".into()
        }
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.accepted(), 0, "the denied server saw a connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_connect_to_an_ungranted_address_is_refused_before_connecting() {
    let server = Loopback::start().await;
    let other = Loopback::start().await;
    let (rt, _dir) = runtime();
    let mut m = manifest(Limits::default());
    m.grants.sockets.push(other.addr.to_string());
    let params = json!({ "behavior": "socket", "addr": server.addr.to_string() });
    let (failure, _) = contained(&rt, m, params).await;
    assert_eq!(
        failure,
        PluginFailure::CapabilityDenied {
            capability: format!("tcp connect to {}", server.addr)
        }
    );
    assert_eq!(server.accepted(), 0, "the denied server saw a connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_socket_connects() {
    let server = Loopback::start().await;
    let (rt, _dir) = runtime();
    let mut m = manifest(Limits::default());
    m.grants.sockets.push(server.addr.to_string());
    let d: DriverPlugin = driver(&rt, wharf_artifacts::TEST_HOSTILE, m).await;
    let params = json!({ "behavior": "socket", "addr": server.addr.to_string() });
    let step = d.provision(&request(params)).await.unwrap();
    assert!(matches!(step, Step::Done { .. }), "{step:?}");
    assert_eq!(server.accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_drivers_never_starve_authorization() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = wharf_plugins::RuntimeConfig::new(dir.path().join("cache"));
    config.max_calls = 1;
    let rt = Runtime::new(config).unwrap();
    let limits = Limits {
        cpu_ms: 1_000,
        ..Limits::default()
    };
    let hostile = driver(&rt, wharf_artifacts::TEST_HOSTILE, manifest(limits)).await;
    let policy = crate::policy(&rt).await;
    let busy = async {
        let started = Instant::now();
        let result = hostile
            .provision(&request(json!({ "behavior": "loop" })))
            .await;
        (result, started.elapsed())
    };
    let authorize = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let decisions = policy
            .authorize(&json!({ "roles": {} }), &[])
            .await
            .expect("authorize");
        (decisions, started.elapsed())
    };
    let ((busy, busy_for), (decisions, waited)) = tokio::join!(busy, authorize);
    assert!(
        matches!(busy, Err(PluginFailure::CpuBudgetExceeded { .. })),
        "{busy:?}"
    );
    assert!(decisions.is_empty());
    // The only driver slot was taken for a second; the policy call did not wait for it.
    assert!(waited < busy_for / 2, "authorization waited {waited:?}");
}
