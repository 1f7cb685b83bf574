//! The kubernetes target end to end, through `wharf serve` and the CLI, against a
//! Kubernetes API *emulator*: kmock's `KubernetesEmulator` (PyPI) with the runner
//! `tests/kubernetes/emulator.py`, which adds server-side apply of missing objects, label
//! selectors, cluster-scoped paths and a stand-in for the controllers (pods per workload,
//! `ImagePullBackOff` for images under `registry.invalid/`, rollout status). The
//! emulator records every request it gets; the test checks them.
//!
//! What this proves: Wharf's requests and their order, over HTTP, from a real binary, and
//! what developers see from them (status, failures, deletion). What it does not: an
//! emulator checks no schema, no field ownership (an apply is a merge), no RBAC; its
//! controllers are a model. The request-level tests, kubernetes-validate and the live
//! suite (`kubernetes_live`) cover those.

use crate::serve::{Server, start};
use crate::support::Client;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The emulator, stopped when dropped.
struct Emulator {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Emulator {
    fn start(dir: &Path) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join("target/kmock-venv/bin/python");
        assert!(
            python.exists(),
            "kmock is not installed; install it with: python3 -m venv target/kmock-venv && \
             target/kmock-venv/bin/pip install kmock==0.8 (.ci/run does)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("emulator-requests.jsonl");
        let child = Command::new(python)
            .arg(root.join("tests/kubernetes/emulator.py"))
            .args(["--port", &port.to_string(), "--log"])
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while crate::support::get(&format!("{url}/version")).is_none() {
            assert!(Instant::now() < deadline, "the emulator did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url, log }
    }

    /// Every request so far.
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file of examples/hello.
fn example(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/hello")
        .join(file)
}

/// What ops set up: the hello example's platform, and a `route` that the template driver
/// turns into an HTTPRoute to the workload's Service.
const ROUTES: &str = r#"
  - id: template
    plugin: template
resource_types:
  - id: route
    description: An HTTP route from the public gateway to a workload
resource_definitions:
  - id: route
    type: route
    driver: template
    driver_inputs:
      values:
        gateway: public
        templates:
          outputs:
            host: "{{ params.host }}"
          objects:
            - apiVersion: gateway.networking.k8s.io/v1
              kind: HTTPRoute
              metadata:
                name: "{{ context.workloads[0] }}-route"
              spec:
                parentRefs: [{ name: "{{ driver.values.gateway }}" }]
                hostnames: ["{{ params.host }}"]
                rules:
                  - backendRefs: [{ name: "{{ context.workloads[0] }}", port: "{{ params.port }}" }]
    criteria: [{}]
"#;

pub(crate) fn platform(dir: &Path) -> PathBuf {
    let hello = std::fs::read_to_string(example("platform.yaml")).unwrap();
    let (installations, rest) = hello.split_once("resource_types:\n").unwrap();
    let (types, definitions) = rest.split_once("resource_definitions:\n").unwrap();
    let (route_installation, route_rest) = ROUTES.split_once("resource_types:\n").unwrap();
    let (route_types, route_definitions) =
        route_rest.split_once("resource_definitions:\n").unwrap();
    let text = format!(
        "{installations}{}resource_types:\n{types}{route_types}resource_definitions:\n\
         {definitions}{route_definitions}",
        route_installation.trim_start_matches('\n')
    );
    let path = dir.join("platform.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The hello example with a route, its image replaced by `image`.
pub(crate) fn hello(dir: &Path, image: &str) -> PathBuf {
    let score = std::fs::read_to_string(example("score.yaml"))
        .unwrap()
        .replace("python:3.12-slim", image);
    let score = format!(
        "{score}\n  route:\n    type: route\n    params:\n      host: hello.example.com\n      \
         port: 80\n"
    );
    std::fs::copy(example("server.py"), dir.join("server.py")).unwrap();
    let path = dir.join(format!("hello-{}.yaml", image.replace(['/', ':'], "-")));
    std::fs::write(&path, score).unwrap();
    path
}

/// The PATCH requests (server-side applies) among `requests`, as `plural/name`.
fn applied(requests: &[Value]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r["method"] == "PATCH")
        .map(|r| {
            let path = r["path"].as_str().unwrap();
            let parts: Vec<&str> = path.rsplitn(3, '/').collect();
            format!("{}/{}", parts[1], parts[0])
        })
        .collect()
}

fn deploy(wharf: &Client, files: &[&Path]) -> (bool, String) {
    let mut args = vec!["deploy", "--app", "hello", "--env", "dev", "--follow"];
    for f in files {
        args.extend(["-f", f.to_str().unwrap()]);
    }
    let out = wharf.run(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn setup(dir: &Path, emulator: &Emulator) -> (Server, Client) {
    let server = start(dir);
    let wharf = Client::new(&server);
    std::fs::write(dir.join("token"), "emulator-accepts-any-token\n").unwrap();
    let token = dir.join("token");
    wharf.ok(&[
        "clusters",
        "create",
        "emulated",
        "--api-server",
        &emulator.url,
        "--token-file",
        token.to_str().unwrap(),
    ]);
    let target = r#"{"kind": "kubernetes", "cluster": "emulated", "namespace": "{app}-{env}",
                     "ready_timeout_seconds": 30}"#;
    wharf.ok(&["env-types", "create", "k8s", "--target", target]);
    wharf.ok(&["platform", "apply", "-f", platform(dir).to_str().unwrap()]);
    wharf.ok(&["apps", "create", "hello"]);
    wharf.ok(&["envs", "create", "hello", "dev", "--type", "k8s"]);
    (server, wharf)
}

#[test]
#[ignore = "needs kmock: python3 -m venv target/kmock-venv && target/kmock-venv/bin/pip install kmock==0.8 (.ci/run does)"]
fn kubernetes_emulator_deploy_prune_fail_and_delete() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let emulator = Emulator::start(dir);
    let (_server, wharf) = setup(dir, &emulator);

    // The example with its route, and a second workload.
    let score = hello(dir, "python:3.12-slim");
    let extra = dir.join("extra.yaml");
    std::fs::write(
        &extra,
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: extra\ncontainers:\n  main:\n    \
         image: busybox:1.36\n    command: [sleep, '3600']\n",
    )
    .unwrap();
    let (ok, text) = deploy(&wharf, &[&score, &extra]);
    assert!(ok, "{text}");
    applied_with_server_side_apply_in_order(&emulator.requests());
    let status = wharf.ok(&["status", "hello", "dev"]);
    assert!(
        status.contains("hello") && status.contains("extra") && status.contains("ready"),
        "{status}"
    );

    a_dropped_workload_is_pruned(&wharf, &emulator, &score);

    // An image that cannot be pulled: the deployment fails, naming it, and so does the
    // status.
    let bad = hello(dir, "registry.invalid/nope:1");
    let (ok, text) = deploy(&wharf, &[&bad]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("registry.invalid/nope:1") && text.contains("ImagePullBackOff"),
        "{text}"
    );
    let status = wharf.ok(&["status", "hello", "dev"]);
    assert!(status.contains("registry.invalid/nope:1"), "{status}");

    // Deleting the environment deletes its objects and the namespace Wharf created.
    wharf.ok(&["envs", "delete", "hello", "dev"]);
    let requests = emulator.requests();
    assert!(
        requests
            .iter()
            .any(|r| r["method"] == "DELETE" && r["path"] == "/api/v1/namespaces/hello-dev"),
        "the namespace is deleted"
    );
    let envs = wharf.json(&["envs", "list", "hello"]);
    assert!(!envs.to_string().contains("\"dev\""), "{envs}");
    let namespace = crate::support::get(&format!("{}/api/v1/namespaces/hello-dev", emulator.url));
    assert_eq!(namespace.map(|(status, _)| status), Some(404));
}

/// The first deployment's requests: every object applied with server-side apply as
/// `wharf`, unforced, the namespace first, then Secrets and ConfigMaps, Services,
/// workloads; the HTTPRoute templated by the driver, in the namespace, with Wharf's labels.
fn applied_with_server_side_apply_in_order(requests: &[Value]) {
    let patches: Vec<&Value> = requests.iter().filter(|r| r["method"] == "PATCH").collect();
    for p in &patches {
        assert_eq!(p["content_type"], "application/apply-patch+yaml", "{p}");
        assert_eq!(p["query"]["fieldManager"], "wharf", "{p}");
        assert!(p["query"].get("force").is_none(), "not forced: {p}");
    }
    let order = applied(requests);
    let position = |what: &str| {
        order
            .iter()
            .position(|o| o == what)
            .unwrap_or_else(|| panic!("{what} was not applied: {order:?}"))
    };
    let namespace = position("namespaces/hello-dev");
    let secret = position("secrets/hello-secrets");
    let config_map = position("configmaps/hello-files");
    let service = position("services/hello");
    let deployment = position("deployments/hello");
    let route = position("httproutes/hello-route");
    position("deployments/extra");
    assert!(namespace < secret && namespace < config_map, "{order:?}");
    assert!(secret < service && config_map < service, "{order:?}");
    assert!(service < deployment, "{order:?}");
    assert!(namespace < route, "{order:?}");
    let route_body = &patches
        .iter()
        .find(|p| {
            p["path"]
                .as_str()
                .unwrap()
                .ends_with("/httproutes/hello-route")
        })
        .unwrap()["body"];
    assert_eq!(
        route_body["spec"]["rules"][0]["backendRefs"][0],
        serde_json::json!({"name": "hello", "port": 80}),
        "{route_body}"
    );
    assert_eq!(route_body["spec"]["hostnames"][0], "hello.example.com");
    assert_eq!(route_body["metadata"]["namespace"], "hello-dev");
    assert_eq!(route_body["metadata"]["labels"]["wharf.dev/app"], "hello");
    assert_eq!(route_body["metadata"]["labels"]["wharf.dev/env"], "dev");
    assert_eq!(
        route_body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "wharf"
    );
}

/// The example alone: once it is ready, the second workload is deleted, by name, in the
/// environment's namespace, and nothing else.
fn a_dropped_workload_is_pruned(wharf: &Client, emulator: &Emulator, score: &Path) {
    let before = emulator.requests().len();
    let (ok, text) = deploy(wharf, &[score]);
    assert!(ok, "{text}");
    let requests = emulator.requests();
    let deletes: Vec<&str> = requests[before..]
        .iter()
        .filter(|r| r["method"] == "DELETE")
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert!(
        deletes.contains(&"/apis/apps/v1/namespaces/hello-dev/deployments/extra"),
        "{deletes:?}"
    );
    assert!(
        deletes.iter().all(|d| d.contains("/namespaces/hello-dev/")
            && !d.ends_with("/hello")
            && !d.ends_with("/hello-route")),
        "{deletes:?}"
    );
    let selectors: Vec<&str> = requests[before..]
        .iter()
        .filter(|r| r["method"] == "GET")
        .filter_map(|r| r["query"]["labelSelector"].as_str())
        .filter(|s| s.contains("wharf.dev/deployment!="))
        .collect();
    assert!(
        selectors
            .iter()
            .all(|s| s.contains("wharf.dev/app=hello") && s.contains("wharf.dev/env=dev")),
        "{selectors:?}"
    );
    assert!(!selectors.is_empty(), "the prune lists by label");
    let status = wharf.ok(&["status", "hello", "dev"]);
    assert!(!status.contains("extra"), "pruned: {status}");
}
