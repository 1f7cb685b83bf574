//! The `wharf plugin` commands, run as a user runs them: the real binary, its output and
//! its exit code.

use std::process::{Command, Output};

fn wharf(data: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wharf"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("run wharf")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_prints_the_plugins_metadata() {
    let data = tempfile::tempdir().unwrap();
    let out = wharf(
        data.path(),
        &[
            "plugin",
            "check",
            wharf_artifacts::TEST_DRIVER,
            "--kind",
            "driver",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "driver");
    assert_eq!(json["info"]["name"], "test-driver");
    assert_eq!(json["resource_types"][0]["name"], "echo");
    assert_eq!(json["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn check_names_the_wrong_world_and_fails() {
    let data = tempfile::tempdir().unwrap();
    let out = wharf(
        data.path(),
        &[
            "plugin",
            "check",
            wharf_artifacts::TEST_POLICY,
            "--kind",
            "driver",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("is not a valid driver plugin"), "{err}");
    assert!(err.contains("install it as kind policy"), "{err}");
}

#[test]
fn call_runs_a_provision_in_the_sandbox() {
    let data = tempfile::tempdir().unwrap();
    let input = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/requests/provision.json"
    );
    let out = wharf(
        data.path(),
        &[
            "plugin",
            "call",
            wharf_artifacts::TEST_DRIVER,
            "--kind",
            "driver",
            "--export",
            "provision",
            "--input",
            input,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "done");
    assert_eq!(json["outputs"]["values"]["host"], "db.internal");
}

#[test]
fn call_reports_a_denied_capability() {
    let data = tempfile::tempdir().unwrap();
    let input = data.path().join("req.json");
    std::fs::write(
        &input,
        r#"{"params": {"behavior": "http", "url": "http://127.0.0.1:9/x"}}"#,
    )
    .unwrap();
    let out = wharf(
        data.path(),
        &[
            "plugin",
            "call",
            wharf_artifacts::TEST_HOSTILE,
            "--kind",
            "driver",
            "--export",
            "provision",
            "--input",
            input.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("not granted: http to http://127.0.0.1:9"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_json_is_named() {
    let data = tempfile::tempdir().unwrap();
    let input = data.path().join("bad.json");
    std::fs::write(&input, "{ nope").unwrap();
    let out = wharf(
        data.path(),
        &[
            "plugin",
            "call",
            wharf_artifacts::TEST_DRIVER,
            "--kind",
            "driver",
            "--export",
            "provision",
            "--input",
            input.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("bad.json is not valid JSON"));
}

#[test]
fn list_bundled_shows_every_first_party_plugin_with_its_digest() {
    let data = tempfile::tempdir().unwrap();
    let out = wharf(data.path(), &["plugin", "list-bundled"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    for (name, kind) in [
        ("rbac", "policy"),
        ("echo", "driver"),
        ("password", "driver"),
        ("template", "driver"),
        ("baseline", "transformer"),
        ("dns", "driver"),
        ("volume", "driver"),
        ("s3", "driver"),
        ("postgres", "driver"),
    ] {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing from:\n{table}"));
        assert!(line.contains(kind), "{line}");
        let digest = line.split_whitespace().last().unwrap();
        assert_eq!(digest.len(), 64, "{line}");
    }
    let out = wharf(data.path(), &["plugin", "list-bundled", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 9);
}

#[test]
fn a_bundled_plugin_can_be_called_by_name() {
    let data = tempfile::tempdir().unwrap();
    let input = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/requests/provision.json"
    );
    let out = wharf(
        data.path(),
        &[
            "plugin",
            "call",
            "bundled:echo",
            "--kind",
            "driver",
            "--export",
            "provision",
            "--input",
            input,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outputs"]["secrets"]["password"], "change-me");
    let out = wharf(
        data.path(),
        &["plugin", "check", "bundled:nope", "--kind", "policy"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no bundled plugin \"nope\"; bundled: baseline, dns, echo"));
}

#[test]
fn the_freeze_window_example_passes_check() {
    let data = tempfile::tempdir().unwrap();
    let out = wharf(
        data.path(),
        &[
            "plugin",
            "check",
            wharf_artifacts::FREEZE_WINDOW,
            "--kind",
            "policy",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["info"]["name"], "freeze-window");
    assert_eq!(
        json["info"]["config_schema"]["required"],
        serde_json::json!(["env_types", "windows"])
    );
}
