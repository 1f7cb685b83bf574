//! The provisioning loop with scripted drivers: in-progress steps, retries with their
//! backoff (on the paused clock), permanent failures, the store journal, deprovisioning.

use super::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use wharf_core::graph;
use wharf_engine::provision::{
    Assignment, Drivers, Entry, Journal, Limits, Plan, Progress, ProvisionError, Provisioned,
    deprovision, idempotency_key, run,
};
use wharf_engine::target::BoxFuture;
use wharf_plugins::{DriverRequest, ErrorKind, PluginError, PluginFailure, Step, Values};

/// A driver whose behaviour per resource id is scripted: `slow:N` answers
/// in-progress N times, `flaky:N` fails retryably N times saying when to retry, `down:N`
/// fails retryably N times without saying, `broken` fails for good.
#[derive(Default)]
struct Scripted {
    calls: Mutex<Vec<(String, String, Option<Value>)>>,
    /// When each provision call came, on tokio's clock.
    at: Mutex<Vec<tokio::time::Instant>>,
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Drivers for Scripted {
    fn provision<'a>(
        &'a self,
        _driver: &'a str,
        r: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>> {
        Box::pin(async move {
            self.at.lock().unwrap().push(tokio::time::Instant::now());
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            let id = r.context.resource_id.clone();
            let previous = self
                .calls
                .lock()
                .unwrap()
                .iter()
                .filter(|(i, _, _)| *i == id)
                .count();
            self.calls.lock().unwrap().push((
                id.clone(),
                r.idempotency_key.clone(),
                r.state.clone(),
            ));
            let script = r.params["script"].as_str().unwrap_or("").to_string();
            let (kind, n) = script
                .split_once(':')
                .map_or((script.as_str(), 0), |(k, n)| (k, n.parse().unwrap()));
            let done = Step::Done {
                outputs: Values {
                    values: json!({ "host": format!("{id}.local"), "seen": r.params.clone() }),
                    secrets: json!({ "password": "pw" }),
                },
                state: json!({ "created": true }),
                objects: Vec::new(),
            };
            match kind {
                "slow" if previous < n => Ok(Step::InProgress {
                    state: json!({ "step": previous + 1 }),
                    message: "creating".into(),
                    retry_after_ms: 1,
                }),
                "flaky" if previous < n => Err(PluginFailure::Plugin(PluginError {
                    kind: ErrorKind::Unavailable,
                    message: "the database server is restarting".into(),
                    retry_after_ms: Some(1),
                })),
                "down" if previous < n => Err(PluginFailure::Plugin(PluginError {
                    kind: ErrorKind::Unavailable,
                    message: "connection refused".into(),
                    retry_after_ms: None,
                })),
                "broken" => Err(PluginFailure::Plugin(PluginError {
                    kind: ErrorKind::InvalidInput,
                    message: "size must be at most 100".into(),
                    retry_after_ms: None,
                })),
                _ => Ok(done),
            }
        })
    }

    fn deprovision<'a>(
        &'a self,
        _driver: &'a str,
        r: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push((
                format!("-{}", r.context.resource_id),
                r.idempotency_key.clone(),
                r.state.clone(),
            ));
            Ok(Step::Done {
                outputs: Values::default(),
                state: json!({}),
                objects: Vec::new(),
            })
        })
    }
}

#[derive(Default)]
struct Recorded(Mutex<Vec<(String, Progress)>>);

impl Journal for Recorded {
    fn record<'a>(&'a self, entry: Entry<'a>) -> BoxFuture<'a, Result<(), String>> {
        self.0
            .lock()
            .unwrap()
            .push((entry.uid.to_string(), entry.progress.clone()));
        Box::pin(async { Ok(()) })
    }
}

fn workload(resources: &str) -> wharf_core::score::Workload {
    load(&format!(
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  main:\n    image: x\nresources:\n{resources}"
    ))
    .unwrap()
    .0
}

fn limits() -> Limits {
    Limits {
        concurrency: 2,
        base_delay: std::time::Duration::from_millis(1),
        max_delay: std::time::Duration::from_millis(10),
        ..Limits::default()
    }
}

async fn go(
    w: wharf_core::score::Workload,
    driver: &Scripted,
    journal: &Recorded,
) -> Result<BTreeMap<String, Outputs>, ProvisionError> {
    go_with(w, driver, journal, limits()).await
}

async fn go_with(
    w: wharf_core::score::Workload,
    driver: &Scripted,
    journal: &Recorded,
    limits: Limits,
) -> Result<BTreeMap<String, Outputs>, ProvisionError> {
    let graph = graph::build(std::slice::from_ref(&w)).unwrap();
    let assignments: BTreeMap<String, Assignment> = graph
        .nodes
        .keys()
        .map(|uid| {
            (
                uid.clone(),
                Assignment {
                    definition: "def".into(),
                    driver: "test".into(),
                    config: Values::default(),
                },
            )
        })
        .collect();
    let workloads = BTreeMap::from([(w.name().to_string(), w.clone())]);
    let previous = BTreeMap::new();
    let plan = Plan {
        graph: &graph,
        workloads: &workloads,
        assignments: &assignments,
        previous: &previous,
        finished: &BTreeMap::new(),
        app: "shop",
        env: "dev",
        env_type: "development",
    };
    run(&plan, driver, journal, limits).await
}

#[tokio::test]
async fn in_progress_and_retryable_steps_complete_and_dependents_see_outputs() {
    let w = workload(
        "  db:\n    type: postgres\n    params:\n      script: slow:3\n  cache:\n    type: redis\n    \
         params:\n      script: flaky:2\n  app:\n    type: config\n    params:\n      \
         dsn: postgres://${resources.db.host}/x\n      port: 1\n",
    );
    let (driver, journal) = (Scripted::default(), Recorded::default());
    let outputs = go(w, &driver, &journal).await.unwrap();
    assert_eq!(outputs.len(), 3);
    let app = &outputs["config.default#web.app"];
    assert_eq!(
        app.values["seen"]["dsn"], "postgres://web.db.local/x",
        "params resolved from db's outputs"
    );
    assert_eq!(app.values["seen"]["port"], 1, "numbers keep their type");
    let calls = driver.calls.lock().unwrap().clone();
    let db: Vec<_> = calls.iter().filter(|(id, _, _)| id == "web.db").collect();
    assert_eq!(db.len(), 4, "in-progress three times, then done");
    assert_eq!(
        db[3].2,
        Some(json!({ "step": 3 })),
        "each call gets the previous step's state"
    );
    let keys: std::collections::BTreeSet<&str> = db.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(keys.len(), 1, "one idempotency key per resource");
    assert_eq!(
        db[0].1,
        idempotency_key("shop", "dev", "postgres.default#web.db")
    );
    assert_eq!(
        calls.iter().filter(|(id, _, _)| id == "web.cache").count(),
        3,
        "two retries"
    );
    assert!(
        driver.most.load(Ordering::SeqCst) <= 2,
        "the concurrency bound holds"
    );
    let last_of_app = calls
        .iter()
        .rposition(|(id, _, _)| id == "web.app")
        .unwrap();
    let last_of_db = calls.iter().rposition(|(id, _, _)| id == "web.db").unwrap();
    assert!(
        last_of_db < last_of_app,
        "a dependent runs after what it depends on"
    );
    let recorded = journal.0.lock().unwrap();
    assert_eq!(
        recorded
            .iter()
            .filter(|(_, p)| matches!(p, Progress::InProgress { .. }))
            .count(),
        3
    );
    assert_eq!(
        recorded
            .iter()
            .filter(|(_, p)| matches!(p, Progress::Retrying { .. }))
            .count(),
        2
    );
    assert_eq!(
        recorded
            .iter()
            .filter(|(_, p)| matches!(p, Progress::Done { .. }))
            .count(),
        3
    );
}

#[tokio::test]
async fn a_permanent_failure_fails_fast_with_the_drivers_message() {
    let w = workload("  db:\n    type: postgres\n    params:\n      script: broken\n");
    let (driver, journal) = (Scripted::default(), Recorded::default());
    let err = go(w, &driver, &journal).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("resource postgres.default#web.db (definition def): "),
        "{err}"
    );
    assert!(
        err.to_string().contains("size must be at most 100"),
        "{err}"
    );
    assert_eq!(
        driver.calls.lock().unwrap().len(),
        1,
        "no retry for a permanent error"
    );
    let flaky = workload("  db:\n    type: postgres\n    params:\n      script: flaky:99\n");
    let (driver, journal) = (Scripted::default(), Recorded::default());
    let err = go(flaky, &driver, &journal).await.unwrap_err();
    assert!(
        err.to_string().contains("gave up after 8 attempts"),
        "{err}"
    );
    assert_eq!(driver.calls.lock().unwrap().len(), 8);
}

/// The gaps between a resource's calls, each less the 5 ms the scripted driver takes.
fn gaps(driver: &Scripted) -> Vec<std::time::Duration> {
    let at = driver.at.lock().unwrap();
    at.windows(2)
        .map(|w| w[1] - w[0] - std::time::Duration::from_millis(5))
        .collect()
}

/// With the default limits, a driver that keeps failing without saying when to retry is
/// called 8 times, the delays doubling from 400 ms with jitter (50% to 100% of each), so a
/// server has 25 to 51 s to come back. Tokio's clock is paused: no real time passes.
#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_with_jitter_and_give_up_after_eight_attempts() {
    let defaults = Limits::default();
    assert_eq!(defaults.max_attempts, 8);
    let started = tokio::time::Instant::now();
    let w = workload("  db:\n    type: postgres\n    params:\n      script: down:99\n");
    let (driver, journal) = (Scripted::default(), Recorded::default());
    let err = go_with(w, &driver, &journal, defaults).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("connection refused (gave up after 8 attempts)"),
        "{err}"
    );
    let gaps = gaps(&driver);
    assert_eq!(gaps.len(), 7, "8 calls");
    for (i, gap) in gaps.iter().enumerate() {
        let full = defaults.base_delay * (1 << (i + 1));
        assert!(
            *gap >= full / 2 && *gap <= full,
            "delay {} is {gap:?}, not within 50-100% of {full:?}",
            i + 1
        );
    }
    let waited: std::time::Duration = gaps.iter().sum();
    assert!(
        waited >= std::time::Duration::from_millis(25_400)
            && waited <= std::time::Duration::from_millis(50_800),
        "{waited:?}"
    );
    assert!(
        started.elapsed() >= waited,
        "the paused clock advanced by the delays"
    );
    let retrying: Vec<u32> = journal
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, p)| match p {
            Progress::Retrying { attempts, .. } => Some(*attempts),
            _ => None,
        })
        .collect();
    assert_eq!(
        retrying,
        (1..8).collect::<Vec<_>>(),
        "each retry is recorded"
    );
}

/// A driver's `retry_after_ms` is honoured as given, capped at the largest delay; a driver
/// that comes back within the attempts succeeds.
#[tokio::test(start_paused = true)]
async fn a_drivers_retry_after_is_honoured_and_capped() {
    let limits = Limits {
        max_delay: std::time::Duration::from_millis(500),
        ..Limits::default()
    };
    let w = workload("  db:\n    type: postgres\n    params:\n      script: flaky:3\n");
    let (driver, journal) = (Scripted::default(), Recorded::default());
    go_with(w, &driver, &journal, limits).await.unwrap();
    assert_eq!(gaps(&driver), vec![std::time::Duration::from_millis(1); 3]);
    let w = workload("  db:\n    type: postgres\n    params:\n      script: down:3\n");
    let limits = Limits {
        base_delay: std::time::Duration::from_secs(1),
        max_delay: std::time::Duration::from_millis(500),
        ..Limits::default()
    };
    let (driver, journal) = (Scripted::default(), Recorded::default());
    go_with(w, &driver, &journal, limits).await.unwrap();
    for gap in gaps(&driver) {
        assert!(
            gap >= std::time::Duration::from_millis(250)
                && gap <= std::time::Duration::from_millis(500),
            "capped at 500 ms: {gap:?}"
        );
    }
}

#[tokio::test]
async fn the_store_journal_keeps_state_and_seals_secrets() {
    use wharf_core::status::ResourceState as Status;
    use wharf_engine::journal::StoreJournal;
    use wharf_store::provisioned;
    use wharf_store::secrets::Sealer;
    let store = wharf_store::Store::open_in_memory().await.unwrap();
    store
        .transaction(|tx| {
            crate::fixtures::app(tx, "shop")?;
            crate::fixtures::env_type(tx, "development", json!({}))?;
            crate::fixtures::environment(tx, "shop", "dev", "development")
        })
        .await
        .unwrap();
    let sealer = Sealer::new([9; 32]);
    let journal = StoreJournal::new(store.clone(), sealer.clone(), "shop", "dev", 1);
    let driver = Scripted::default();
    let graph = graph::build(&[workload(
        "  db:\n    type: postgres\n    params:\n      script: slow:2\n",
    )])
    .unwrap();
    let assignments: BTreeMap<String, Assignment> = graph
        .nodes
        .keys()
        .map(|uid| {
            (
                uid.clone(),
                Assignment {
                    definition: "def".into(),
                    driver: "test".into(),
                    config: Values::default(),
                },
            )
        })
        .collect();
    let w = workload("  db:\n    type: postgres\n    params:\n      script: slow:2\n");
    let workloads = BTreeMap::from([("web".to_string(), w)]);
    let previous = BTreeMap::new();
    let plan = Plan {
        graph: &graph,
        workloads: &workloads,
        assignments: &assignments,
        previous: &previous,
        finished: &BTreeMap::new(),
        app: "shop",
        env: "dev",
        env_type: "development",
    };
    run(&plan, &driver, &journal, limits()).await.unwrap();
    let records = store
        .call(move |conn| provisioned::list(conn, &sealer, "shop", "dev"))
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, Status::Done);
    assert_eq!(records[0].state, Some(json!({ "created": true })));
    assert_eq!(records[0].secrets, json!({ "password": "pw" }));
    assert_eq!(records[0].outputs["host"], "web.db.local");
    assert_eq!(records[0].deployment, 1);
    assert_eq!(records[0].definition, "def");
    let uid = records[0].uid.clone();
    let raw: Vec<u8> = store
        .call(move |tx| provisioned::stored_secrets(tx, "shop", "dev", &uid))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !raw.windows(8).any(|w| w == b"password"),
        "secrets are sealed at rest"
    );
}

#[tokio::test]
async fn deprovisioning_goes_in_reverse_dependency_order_with_the_same_keys() {
    let mut resources = Vec::new();
    for (uid, deps) in [
        ("db.default#a", vec![]),
        ("user.default#b", vec!["db.default#a"]),
        ("grant.default#c", vec!["user.default#b", "db.default#a"]),
    ] {
        resources.push(Provisioned {
            uid: uid.into(),
            definition: "def".into(),
            driver: "test".into(),
            depends_on: deps.into_iter().map(String::from).collect(),
            params: json!({}),
            state: Some(json!({ "of": uid })),
            config: Values::default(),
        });
    }
    let (driver, journal) = (Scripted::default(), Recorded::default());
    let gone = deprovision(
        &resources,
        ("shop", "dev", "development"),
        &driver,
        &journal,
        limits(),
    )
    .await
    .unwrap();
    assert_eq!(gone, ["grant.default#c", "user.default#b", "db.default#a"]);
    let calls = driver.calls.lock().unwrap().clone();
    assert_eq!(
        calls
            .iter()
            .map(|(id, _, _)| id.as_str())
            .collect::<Vec<_>>(),
        ["-c", "-b", "-a"]
    );
    assert_eq!(calls[2].1, idempotency_key("shop", "dev", "db.default#a"));
    assert_eq!(
        calls[2].2,
        Some(json!({ "of": "db.default#a" })),
        "with its state"
    );
}
