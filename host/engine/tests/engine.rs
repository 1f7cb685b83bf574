//! The engine: rendering the Score samples into Kubernetes objects (checked against golden
//! files; `WHARF_UPDATE_GOLDEN=1` rewrites them, review the diff before committing), the
//! gitops target, and the provisioning loop with scripted drivers.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use wharf_core::score::load;
use wharf_core::score::resolve::Outputs;
use wharf_engine::render::{Context, kubernetes, to_yaml};

#[path = "engine/fake_kube.rs"]
mod fake_kube;
#[path = "engine/fixtures.rs"]
mod fixtures;
#[path = "engine/kubernetes.rs"]
mod kubernetes;
#[path = "engine/pipeline.rs"]
mod pipeline;
#[path = "engine/process.rs"]
mod process;
#[path = "engine/provision.rs"]
mod provision;

fn samples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/score")
}

fn outputs(uid: &str, values: Value, secrets: Value) -> Outputs {
    Outputs {
        uid: uid.into(),
        values: values.as_object().unwrap().clone(),
        secrets: secrets.as_object().unwrap().clone(),
        objects: Vec::new(),
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

/// Renders the example `name` (examples/NAME/score.yaml) with `outputs` by resource id.
fn render_example(name: &str, outputs: BTreeMap<String, Outputs>) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    let (workload, _) = load(&std::fs::read_to_string(dir.join("score.yaml")).unwrap()).unwrap();
    let read = |source: &str| std::fs::read(dir.join(source)).map_err(|e| e.to_string());
    let images = BTreeMap::new();
    let ctx = Context {
        app: name,
        env: "dev",
        images: &images,
        read_source: &read,
    };
    to_yaml(&kubernetes(&workload, &outputs, &ctx).unwrap())
}

#[test]
fn the_examples_render_for_kubernetes() {
    let hello = render_example(
        "hello",
        BTreeMap::from([
            (
                "session".to_string(),
                outputs(
                    "password.default#hello.session",
                    json!({}),
                    json!({ "password": "pw" }),
                ),
            ),
            (
                "motd".to_string(),
                outputs(
                    "motd.default#hello.motd",
                    json!({ "message": "hi" }),
                    json!({}),
                ),
            ),
        ]),
    );
    assert!(hello.contains("readinessProbe"), "{hello}");
    golden("example-hello.yaml", &hello);
    let shop = render_example(
        "shop",
        BTreeMap::from([
            (
                "db".to_string(),
                outputs(
                    "postgres.default#shop.db",
                    json!({ "host": "db" }),
                    json!({ "url": "postgres://shop:pw@db/shop" }),
                ),
            ),
            (
                "dns".to_string(),
                outputs(
                    "dns.default#shop.dns",
                    json!({ "host": "shop.example.com" }),
                    json!({}),
                ),
            ),
            (
                "files".to_string(),
                outputs(
                    "s3.default#shop.files",
                    json!({ "bucket": "b", "endpoint": "http://s3", "region": "us-east-1",
                            "access_key_id": "AKIA" }),
                    json!({ "secret_access_key": "k" }),
                ),
            ),
        ]),
    );
    assert!(
        !shop.contains("postgres://shop:pw"),
        "secrets stay in the Secret, encoded"
    );
    golden("example-shop.yaml", &shop);
}

/// Renders a Score document given as text, without resources.
fn render_text(score: &str) -> Result<Vec<Value>, Vec<wharf_core::score::Problem>> {
    let (workload, _) = load(score).unwrap();
    let images = BTreeMap::new();
    let read = |_: &str| Err("no files".to_string());
    let ctx = Context {
        app: "shop",
        env: "dev",
        images: &images,
        read_source: &read,
    };
    kubernetes(&workload, &BTreeMap::new(), &ctx)
}

#[test]
fn score_k8s_annotations_make_a_stateful_set_with_its_headless_service() {
    let objects = render_text(
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: db\n  annotations:\n    \
         k8s.score.dev/kind: StatefulSet\n    k8s.score.dev/service-name: db-peers\n\
         containers:\n  main:\n    image: postgres:17\n    resources:\n      limits:\n        \
         cpu: '0.25'\n        memory: 256Mi\n      requests:\n        cpu: '1.0'\n",
    )
    .unwrap();
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Service", "StatefulSet"]);
    assert_eq!(objects[0]["metadata"]["name"], "db-peers");
    assert_eq!(objects[0]["spec"]["clusterIP"], "None");
    assert_eq!(objects[1]["spec"]["serviceName"], "db-peers");
    let resources = &objects[1]["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(
        *resources,
        json!({ "limits": { "cpu": "250m", "memory": "256Mi" }, "requests": { "cpu": "1" } })
    );
    let problems = render_text(
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: db\n  annotations:\n    \
         k8s.score.dev/kind: DaemonSet\ncontainers:\n  main:\n    image: x\n    resources:\n      \
         limits:\n        memory: '1.5'\n    before:\n      side: {ready: started}\n  side:\n    image: y\n",
    )
    .unwrap_err();
    let found: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect();
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found[0].starts_with(
            "/containers/main/resources/limits/memory: \"1.5\": memory is a whole number of bytes"
        ),
        "{found:#?}"
    );
    assert!(
        found[1].starts_with("/containers/main/before/side: Wharf does not order the start"),
        "{found:#?}"
    );
    assert!(
        found[2].starts_with("/metadata/annotations/k8s.score.dev~1kind: \"DaemonSet\""),
        "{found:#?}"
    );
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
            deployment: 1,
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
            deployment: 1,
        };
        let bad = vec![json!({ "kind": "ConfigMap", "metadata": { "name": "../escape" } })];
        let err = now(target.apply(&env, &bad)).unwrap_err();
        assert!(err.to_string().contains("object 0"), "{err}");
        assert!(!root.path().join("shop/dev").exists());
    }
}
