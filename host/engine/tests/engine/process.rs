//! The process target's confinement, on its own: Landlock alone (the workload runs as the
//! user running the tests) keeps a workload in its directory, and a machine that cannot
//! confine starts nothing unless the environment type says so.

use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wharf_engine::target::process::{Options, Process, ProcessSettings};
use wharf_engine::target::{EnvRef, Target};

/// A Deployment running `python3 -c SCRIPT`.
fn deployment(script: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "probe" },
        "spec": { "template": {
            "metadata": { "labels": { "app": "probe" } },
            "spec": { "containers": [{ "name": "main", "image": "python",
                "command": ["python3", "-c", script] }] }
        } }
    })
}

fn env(name: &str) -> EnvRef {
    EnvRef {
        app: "shop".into(),
        env: name.into(),
        set: String::new(),
        deployment: 0,
    }
}

fn sealer() -> wharf_store::secrets::Sealer {
    wharf_store::secrets::Sealer::new([7; 32])
}

/// The data directory's layout: the state, a key, the workloads' root beside them.
fn layout(top: &Path) -> ProcessSettings {
    let data = top.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("secret.key"), "the key").unwrap();
    ProcessSettings::new(data.join("envs"), data.join("workloads"), None, &data)
}

const PROBE: &str = r#"
import json, os
data = os.environ["DATA"]
out = {}
def attempt(name, f):
    try:
        f(); out[name] = "allowed"
    except Exception as e:
        out[name] = type(e).__name__
attempt("key", lambda: open(data + "/secret.key").read())
attempt("state", lambda: os.listdir(data + "/envs"))
attempt("environ", lambda: open("/proc/%d/environ" % os.getppid(), "rb").read())
attempt("signal", lambda: os.kill(os.getppid(), 0))
attempt("tmp", lambda: open("/tmp/wharf-probe-was-here", "w").write("x"))
attempt("own", lambda: open("own.txt", "w").write("x"))
with open("report.json", "w") as f:
    json.dump(out, f)
import time
time.sleep(600)
"#;

#[tokio::test]
async fn landlock_alone_keeps_a_workload_in_its_directory() {
    let top = tempfile::tempdir().unwrap();
    let settings = layout(top.path());
    // Not a skip: a machine that cannot confine would run every workload unconfined.
    assert!(
        settings.confinement.unavailable.is_none(),
        "this machine cannot confine workloads: {:?}",
        settings.confinement.unavailable
    );
    let process = Arc::new(Process::new(&settings, sealer()));
    let target = process.with_options(Options::default());
    let mut object = deployment(PROBE);
    object["spec"]["template"]["spec"]["containers"][0]["env"] = json!([
        { "name": "DATA", "value": top.path().join("data").display().to_string() }
    ]);
    target.apply(&env("dev"), &[object]).await.unwrap();
    let report = process
        .run_dir("shop", "dev")
        .join("workloads/probe/main/report.json");
    let mut waited = 0;
    while !report.exists() && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let logs = std::fs::read_to_string(process.dir("shop", "dev").join("logs/probe.main.log"))
        .unwrap_or_default();
    let found: Value = serde_json::from_slice(
        &std::fs::read(&report).unwrap_or_else(|e| panic!("no report ({e}); the log:\n{logs}")),
    )
    .unwrap();
    process.shutdown().await;
    assert_eq!(found["own"], "allowed", "{found}");
    for denied in ["key", "state", "environ", "tmp"] {
        assert_eq!(found[denied], "PermissionError", "{denied}: {found}");
    }
    assert_eq!(found["signal"], "PermissionError", "{found}");
}

#[tokio::test]
async fn where_workloads_cannot_be_confined_none_starts_unless_the_type_says_unconfined() {
    let top = tempfile::tempdir().unwrap();
    let mut settings = layout(top.path());
    settings.confinement.unavailable = Some("this kernel has no Landlock".into());
    let process = Arc::new(Process::new(&settings, sealer()));
    let confined = process.with_options(Options::default());
    let object = deployment("import time; time.sleep(600)");
    let refused = confined
        .apply(&env("dev"), std::slice::from_ref(&object))
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("this kernel has no Landlock"), "{refused}");
    assert!(refused.contains("\"unconfined\": true"), "{refused}");
    assert!(
        !process.run_dir("shop", "dev").exists(),
        "nothing was written"
    );

    let unconfined = process.with_options(Options {
        unconfined: true,
        ..Options::default()
    });
    unconfined.apply(&env("dev"), &[object]).await.unwrap();
    let ready = unconfined
        .verify(&env("dev"), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(ready[0].ready, "{ready:?}");
    process.shutdown().await;
}
