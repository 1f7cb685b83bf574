//! The engine: rendering the Score samples into Kubernetes objects (checked against golden
//! files; `WHARF_UPDATE_GOLDEN=1` rewrites them, review the diff before committing), the
//! gitops target, and the provisioning loop with scripted drivers.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use wharf_core::score::load;
use wharf_core::score::resolve::Outputs;
use wharf_engine::render::{Context, kubernetes, to_yaml};

#[path = "engine/fixtures.rs"]
mod fixtures;
#[path = "engine/pipeline.rs"]
mod pipeline;
#[path = "engine/process.rs"]
mod process;

fn samples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/score")
}

fn outputs(uid: &str, values: Value, secrets: Value) -> Outputs {
    Outputs {
        uid: uid.into(),
        values: values.as_object().unwrap().clone(),
        secrets: secrets.as_object().unwrap().clone(),
    }
}

fn render(
    sample: &str,
    outputs: BTreeMap<String, Outputs>,
    images: &[(&str, &str)],
) -> Result<String, Vec<wharf_core::score::Problem>> {
    let text = std::fs::read_to_string(samples().join(sample)).unwrap();
    let (workload, _) = load(&text).unwrap();
    let images: BTreeMap<String, String> = images
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let read = |source: &str| std::fs::read(samples().join(source)).map_err(|e| e.to_string());
    let ctx = Context {
        app: "shop",
        env: "dev",
        images: &images,
        read_source: &read,
    };
    kubernetes(&workload, &outputs, &ctx).map(|objects| to_yaml(&objects))
}

fn golden(name: &str, rendered: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("WHARF_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rendered).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no golden file {}: run with WHARF_UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(rendered, expected, "{name} differs from its golden file");
}

#[test]
fn the_postgres_sample_renders_with_its_password_in_a_secret() {
    let resources = BTreeMap::from([
        (
            "db".to_string(),
            outputs(
                "postgres.default#hello-world.db",
                json!({ "name": "hello", "username": "hello", "host": "127.0.0.1", "port": 5432 }),
                json!({ "password": "s3cret" }),
            ),
        ),
        (
            "dns".to_string(),
            outputs(
                "dns.default#hello-world.dns",
                json!({ "host": "hello.localhost" }),
                json!({}),
            ),
        ),
        (
            "route".to_string(),
            outputs("route.default#hello-world.route", json!({}), json!({})),
        ),
    ]);
    let yaml = render("k8s-init-sample.yaml", resources, &[]).unwrap();
    assert!(
        !yaml.contains("s3cret"),
        "the password appears only base64-encoded in the Secret"
    );
    assert!(yaml.contains("secretKeyRef"), "{yaml}");
    golden("k8s-init-sample.yaml", &yaml);
}

#[test]
fn files_are_mounted_one_by_one_from_a_config_map() {
    let yaml = render("compose-03-files.yaml", BTreeMap::new(), &[]).unwrap();
    assert!(yaml.contains("subPath"), "{yaml}");
    golden("compose-03-files.yaml", &yaml);
}

#[test]
fn what_cannot_render_is_named_not_dropped() {
    // The full sample has a "." image and volume sources that are not resources.
    let problems = render("spec-score-full.yaml", BTreeMap::new(), &[]).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert!(
        paths.contains(&"/containers/container-two2/image"),
        "{problems:#?}"
    );
    assert!(
        paths.contains(&"/containers/container-one1/volumes/~1mnt~1something/source"),
        "{problems:#?}"
    );
    assert!(
        paths.contains(&"/containers/container-one1/files/~1my~1file/source"),
        "file.txt is not shipped: {problems:#?}"
    );
}

mod gitops {
    use super::*;
    use wharf_engine::target::gitops::Gitops;
    use wharf_engine::target::{EnvRef, Target};

    /// Runs a future of the gitops target (its file work goes to tokio's blocking pool).
    fn now<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn objects() -> Vec<Value> {
        let text = std::fs::read_to_string(samples().join("compose-03-files.yaml")).unwrap();
        let (w, _) = load(&text).unwrap();
        let images = BTreeMap::new();
        let read = |source: &str| std::fs::read(samples().join(source)).map_err(|e| e.to_string());
        let ctx = Context {
            app: "shop",
            env: "dev",
            images: &images,
            read_source: &read,
        };
        kubernetes(&w, &BTreeMap::new(), &ctx).unwrap()
    }

    fn git(root: &std::path::Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn apply_writes_one_file_per_object_prunes_and_commits() {
        let root = tempfile::tempdir().unwrap();
        git(root.path(), &["init", "--quiet"]);
        let target = Gitops::new(root.path());
        let env = EnvRef {
            app: "shop".into(),
            env: "dev".into(),
            set: "ab".repeat(32),
        };
        let all = objects();
        let applied = now(target.apply(&env, &all)).unwrap();
        assert_eq!(
            applied.changed,
            ["ConfigMap/hello-world-files", "Deployment/hello-world"]
        );
        let dir = root.path().join("shop/dev");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "configmap-hello-world-files.yaml",
                "deployment-hello-world.yaml",
                "kustomization.yaml"
            ]
        );
        assert!(
            applied.location.contains("at commit"),
            "{}",
            applied.location
        );

        // The same objects again: nothing changed, no new commit.
        let again = now(target.apply(&env, &all)).unwrap();
        assert!(again.changed.is_empty());
        assert!(!again.location.contains("at commit"));

        // Without the ConfigMap: pruned.
        let fewer: Vec<Value> = all
            .iter()
            .filter(|o| o["kind"] != "ConfigMap")
            .cloned()
            .collect();
        let applied = now(target.apply(&env, &fewer)).unwrap();
        assert_eq!(applied.pruned, ["configmap-hello-world-files"]);
        assert!(!dir.join("configmap-hello-world-files.yaml").exists());
        now(target.remove(&env)).unwrap();
        assert!(!dir.exists());
        assert_eq!(
            git(root.path(), &["rev-list", "--count", "HEAD"]).trim(),
            "3"
        );
    }

    #[test]
    fn an_object_without_a_usable_name_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let target = Gitops::new(root.path());
        let env = EnvRef {
            app: "shop".into(),
            env: "dev".into(),
            set: "x".into(),
        };
        let bad = vec![json!({ "kind": "ConfigMap", "metadata": { "name": "../escape" } })];
        let err = now(target.apply(&env, &bad)).unwrap_err();
        assert!(err.to_string().contains("object 0"), "{err}");
        assert!(!root.path().join("shop/dev").exists());
    }
}

mod provision {
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
    /// in-progress N times, `flaky:N` fails retryably N times, `broken` fails for good.
    #[derive(Default)]
    struct Scripted {
        calls: Mutex<Vec<(String, String, Option<Value>)>>,
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
        run(&plan, driver, journal, limits()).await
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
        let keys: std::collections::BTreeSet<&str> =
            db.iter().map(|(_, k, _)| k.as_str()).collect();
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
}
