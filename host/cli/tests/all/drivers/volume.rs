//! The volume driver: a directory under the base it is granted, and nowhere else, kept
//! across deployments and deleted with its environment unless it is to be retained.

use super::{deploy, passable};
use crate::serve::start;
use crate::support::{Client, post};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A workload that writes into its `data` volume.
fn writer(class: Option<&str>) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let file = dir.join("score.yaml");
    let mut resource = json!({ "type": "volume" });
    if let Some(c) = class {
        resource["class"] = json!(c);
    }
    let doc = json!({
        "apiVersion": "score.dev/v1b1",
        "metadata": { "name": "web" },
        "containers": { "main": {
            "image": "busybox",
            "command": ["sh", "-c", "echo hello > \"$DATA/greeting\"; exec sleep 600"],
            "variables": { "DATA": "/data" },
            "volumes": { "/data": { "source": "${resources.data}" } },
        } },
        "resources": { "data": resource },
    });
    std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    file
}

#[test]
fn the_volume_driver_makes_a_directory_under_the_granted_base_only() {
    let base = tempfile::tempdir().unwrap();
    // The base is the operator's, and passable by the workloads' user (when the server
    // runs as root, workloads do not).
    passable(base.path());
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = Client::new(&server);
    let base_path = base.path().to_str().unwrap();
    post(
        &server,
        "/api/v1/plugin-installations",
        json!({ "id": "vol", "plugin": "volume", "config": { "values": { "base": base_path } },
                "grants": { "directories": [base_path] } }),
    );
    post(
        &server,
        "/api/v1/plugin-installations",
        json!({ "id": "vol-ungranted", "plugin": "volume",
                "config": { "values": { "base": base_path } } }),
    );
    post(&server, "/api/v1/resource-types", json!({ "id": "volume" }));
    for (id, driver, class, values) in [
        ("volume", "vol", "default", json!({})),
        ("volume-kept", "vol", "kept", json!({ "retain": true })),
        ("volume-ungranted", "vol-ungranted", "ungranted", json!({})),
    ] {
        post(
            &server,
            "/api/v1/resource-definitions",
            json!({ "id": id, "type": "volume", "driver": driver,
                    "driver_inputs": { "values": values }, "criteria": [{ "class": class }] }),
        );
    }
    wharf.ok(&["apps", "create", "shop"]);
    for env in ["dev", "kept", "none"] {
        wharf.ok(&["envs", "create", "shop", env, "--type", "development"]);
    }
    let plain = writer(None);
    let out = deploy(&wharf, "dev", &plain);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = wharf.json(&["status", "shop", "dev"]);
    let dir = PathBuf::from(status["resources"][0]["outputs"]["path"].as_str().unwrap());
    assert!(
        dir.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("shop-dev-web.data-"),
        "{}",
        dir.display()
    );
    let greeting = dir.join("greeting");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !greeting.exists() {
        assert!(
            Instant::now() < deadline,
            "the workload wrote nothing into {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(&greeting).unwrap(), "hello\n");
    let status = wharf.json(&["status", "shop", "dev"]);
    assert_eq!(
        status["resources"][0]["outputs"]["path"],
        dir.to_str().unwrap()
    );
    // Again: the same directory, its contents kept.
    assert!(deploy(&wharf, "dev", &plain).status.success());
    assert!(greeting.exists());

    // Without the grant: not granted, and nothing made.
    let out = deploy(&wharf, "none", &writer(Some("ungranted")));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("not granted: directory"),
        "{text}"
    );
    assert!(
        !std::fs::read_dir(base.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_str()
            .unwrap()
            .starts_with("shop-none")),
        "nothing made"
    );

    // Deleted with its environment, unless it is to be kept.
    assert!(
        deploy(&wharf, "kept", &writer(Some("kept")))
            .status
            .success()
    );
    let status = wharf.json(&["status", "shop", "kept"]);
    let kept = PathBuf::from(status["resources"][0]["outputs"]["path"].as_str().unwrap());
    wharf.ok(&["envs", "delete", "shop", "dev"]);
    wharf.ok(&["envs", "delete", "shop", "kept"]);
    assert!(!dir.exists(), "deprovisioned: removed");
    assert!(kept.exists(), "retain: kept");
    assert!(server.stop().success());
}
