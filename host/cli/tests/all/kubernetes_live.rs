//! The kubernetes target against a real cluster, run only when `WHARF_TEST_KUBECONFIG`
//! names a kubeconfig (one context, credentials inline, as kind and k3d write them):
//!
//! ```sh
//! kind create cluster && kind get kubeconfig > /tmp/kind.kubeconfig
//! WHARF_TEST_KUBECONFIG=/tmp/kind.kubeconfig \
//!     cargo test -p wharf-cli --test all -- --ignored kubernetes_live
//! ```
//!
//! It deploys the hello example to namespace `wharf-live-hello-live`, checks the rollout,
//! the status and the logs, deploys an update, prunes a workload the next set drops, fails
//! a rollout on an image that cannot be pulled (the message names it), and deletes the
//! environment (the namespace goes). `.ci/run` leaves it out: no cluster can run there.

use crate::serve::start;
use crate::support::Client;
use std::path::Path;

/// A file of examples/hello.
fn example(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/hello")
        .join(file)
        .to_string_lossy()
        .into_owned()
}

#[test]
#[ignore = "needs a Kubernetes cluster: set WHARF_TEST_KUBECONFIG (see the module's doc)"]
fn kubernetes_live_deploy_update_prune_fail_and_delete() {
    let kubeconfig = std::env::var("WHARF_TEST_KUBECONFIG")
        .expect("WHARF_TEST_KUBECONFIG names the kubeconfig of the cluster to test against");
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = Client::new(&server);
    wharf.ok(&["clusters", "create", "live", "--kubeconfig", &kubeconfig]);
    let check = wharf.ok(&["clusters", "check", "live"]);
    assert!(check.contains("Kubernetes v1."), "{check}");
    let target = r#"{"kind": "kubernetes", "cluster": "live", "namespace": "wharf-live-{app}-{env}",
                     "ready_timeout_seconds": 300}"#;
    wharf.ok(&["env-types", "create", "live-k8s", "--target", target]);
    wharf.ok(&["platform", "apply", "-f", &example("platform.yaml")]);
    wharf.ok(&["apps", "create", "hello"]);
    wharf.ok(&["envs", "create", "hello", "live", "--type", "live-k8s"]);
    let deploy = |extra: &[&str]| {
        let mut args = vec!["deploy", "--app", "hello", "--env", "live", "--follow"];
        args.extend_from_slice(extra);
        wharf.run(&args)
    };

    // The example and a second workload; then the example alone: the second is pruned.
    let extra = data.path().join("extra.yaml");
    std::fs::write(
        &extra,
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: extra\ncontainers:\n  main:\n    \
         image: busybox:1.36\n    command: [sleep, '3600']\n",
    )
    .unwrap();
    let both = deploy(&["-f", &example("score.yaml"), "-f", extra.to_str().unwrap()]);
    assert!(
        both.status.success(),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
    let status = wharf.ok(&["status", "hello", "live"]);
    assert!(
        status.contains("extra") && status.contains("ready"),
        "{status}"
    );
    let logs = wharf.ok(&["logs", "hello", "live", "hello"]);
    assert!(logs.contains("[hello-"), "{logs}");
    let alone = deploy(&["-f", &example("score.yaml")]);
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    let status = wharf.ok(&["status", "hello", "live"]);
    assert!(!status.contains("extra"), "pruned: {status}");

    // An image that cannot be pulled: the deployment fails naming it.
    let score = std::fs::read_to_string(example("score.yaml")).unwrap();
    let bad_score = data.path().join("score.yaml");
    std::fs::write(
        &bad_score,
        score.replace("python:3.12-slim", "registry.invalid/nope:1"),
    )
    .unwrap();
    std::fs::copy(example("server.py"), data.path().join("server.py")).unwrap();
    let bad = deploy(&["-f", bad_score.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&bad.stdout),
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(!bad.status.success(), "{text}");
    assert!(text.contains("registry.invalid/nope:1"), "{text}");

    wharf.ok(&["envs", "delete", "hello", "live"]);
    let gone = wharf.json(&["envs", "list", "hello"]);
    assert!(gone.to_string().find("\"live\"").is_none(), "{gone}");
}
