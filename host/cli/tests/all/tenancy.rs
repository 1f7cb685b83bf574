//! Tenancy on the process target, tried the way an attacker with a developer's token
//! would: a workload of app `evil` reaches for the server's data directory, database and
//! sealing key (by path, by a relative path, through `/proc`), for another app's files and
//! processes, and for the server itself; every attempt is refused, while the workload
//! itself runs normally.

use crate::serve::{Server, start_with};
use crate::support::{Client, get};
use serde_json::Value;
use std::path::Path;

const KEY: &str = "4b1d4b1d4b1d4b1d4b1d4b1d4b1d4b1d4b1d4b1d4b1d4b1d4b1d4b1d4b1d4b1d";

/// A developer of `app` (with `deployer` on `development`), as the admin makes one.
pub(crate) fn developer(admin: &Client, server: &Server, app: &str) -> Client {
    let user = format!("{app}-dev@example.com");
    admin.ok(&["apps", "create", app]);
    admin.ok(&["users", "create", &user]);
    admin.ok(&[
        "role-bindings",
        "grant",
        &user,
        "developer",
        "--scope",
        &format!("app:{app}"),
    ]);
    admin.ok(&[
        "role-bindings",
        "grant",
        &user,
        "deployer",
        "--scope",
        "env-type:development",
    ]);
    let token = admin.json(&["tokens", "create", &user, "--expires-in-days", "1"]);
    Client::with_token(server, token["token"].as_str().unwrap())
}

/// Deploys the probe as `app/dev` with `vars`; returns what it reports.
fn deploy_probe(dev: &Client, app: &str, dir: &Path, vars: &[(&str, String)]) -> Value {
    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/all/tenancy/probe.py");
    std::fs::copy(&probe, dir.join("probe.py")).unwrap();
    let variables: String = vars
        .iter()
        .map(|(k, v)| format!("      {k}: \"{v}\"\n"))
        .collect();
    let score = dir.join("score.yaml");
    std::fs::write(
        &score,
        format!(
            "apiVersion: score.dev/v1b1\nmetadata:\n  name: probe\ncontainers:\n  main:\n    \
             image: python\n    command: [\"python3\", \"/app/probe.py\"]\n    variables:\n\
             {variables}    files:\n      /app/probe.py:\n        source: probe.py\n        \
             noExpand: true\nservice:\n  ports:\n    http:\n      port: 80\n      \
             targetPort: 8080\n"
        ),
    )
    .unwrap();
    dev.ok(&["envs", "create", app, "dev", "--type", "development"]);
    let out = dev.ok(&[
        "deploy",
        "-f",
        score.to_str().unwrap(),
        "--app",
        app,
        "--env",
        "dev",
        "--follow",
    ]);
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("probe answers at "))
        .unwrap_or_else(|| panic!("no URL in:\n{out}"))
        .trim()
        .to_string();
    let (status, body) = get(&url).expect("the probe answers");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn a_workload_reaches_nothing_of_the_server_nor_of_another_app() {
    let data = tempfile::tempdir().unwrap();
    let server = start_with(data.path(), &[("WHARF_SECRET_KEY", KEY)]);
    let admin = Client::new(&server);
    let victim = developer(&admin, &server, "victim");
    let evil = developer(&admin, &server, "evil");
    let data_dir = data.path().canonicalize().unwrap().display().to_string();
    let server_pid = server.child.id().to_string();
    let work = tempfile::tempdir().unwrap();

    std::fs::create_dir(work.path().join("victim")).unwrap();
    let seen = deploy_probe(
        &victim,
        "victim",
        &work.path().join("victim"),
        &[
            ("DATA_DIR", data_dir.clone()),
            ("SERVER_PID", server_pid.clone()),
        ],
    );
    let victim_dir = seen["cwd"].as_str().unwrap().to_string();
    let victim_pid = seen["pid"].to_string();
    assert!(Path::new(&victim_dir).join("secret.txt").exists());

    std::fs::create_dir(work.path().join("evil")).unwrap();
    let report = deploy_probe(
        &evil,
        "evil",
        &work.path().join("evil"),
        &[
            ("DATA_DIR", data_dir.clone()),
            ("SERVER_PID", server_pid),
            ("VICTIM_DIR", victim_dir.clone()),
            ("VICTIM_PID", victim_pid),
        ],
    );
    let results = &report["results"];
    eprintln!("{}", serde_json::to_string_pretty(results).unwrap());

    // It runs, and writes where it may.
    assert_eq!(results["write its own directory"], "allowed", "{results}");
    // Everything else is refused by the confinement, not missing: a permission error.
    for attempt in [
        "read the sealing key",
        "read the database",
        "list the data directory",
        "read the key by a relative path",
        "read the server's environment",
        "read the parent's environment",
        "read the server's memory map",
        "signal the server",
        "read another environment's file",
        "list another environment's directory",
        "write into another environment",
        "signal another workload",
        "write /tmp",
    ] {
        let outcome = results[attempt].as_str().unwrap_or_default();
        assert!(
            outcome.starts_with("PermissionError"),
            "{attempt}: {outcome}"
        );
    }
    // The server's own secrets are not in its environment.
    let environment: Vec<&str> = results["environment"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        !environment.contains(&"WHARF_SECRET_KEY"),
        "{environment:?}"
    );
    assert!(
        environment.iter().all(|v| !v.starts_with("WHARF_")
            || v.starts_with("WHARF_PORT_")
            || *v == "WHARF_IMAGE"),
        "{environment:?}"
    );
    // Never root: when the server is, workloads run as another user.
    let server_uid = std::fs::metadata(format!("/proc/{}", server.child.id()))
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    assert_ne!(results["uid"], 0, "{results}");
    if server_uid == 0 {
        assert_ne!(report["cwd"].as_str().unwrap().find(&data_dir), Some(0));
    }
    // The victim's files are as they were.
    assert!(!Path::new(&victim_dir).join("planted").exists());
    assert_eq!(
        std::fs::read_to_string(Path::new(&victim_dir).join("secret.txt")).unwrap(),
        "only mine"
    );
    admin.ok(&["envs", "delete", "evil", "dev"]);
    admin.ok(&["envs", "delete", "victim", "dev"]);
}

#[test]
fn deleting_an_app_stops_and_deprovisions_everything_it_had_and_leaves_no_row() {
    use crate::support::post;
    use serde_json::json;
    let base = tempfile::tempdir().unwrap();
    crate::drivers::passable(base.path());
    let data = tempfile::tempdir().unwrap();
    let server = start_with(data.path(), &[]);
    let admin = Client::new(&server);
    let base_path = base.path().to_str().unwrap();
    post(
        &server,
        "/api/v1/plugin-installations",
        json!({ "id": "vol", "plugin": "volume", "config": { "values": { "base": base_path } },
                "grants": { "directories": [base_path] } }),
    );
    post(&server, "/api/v1/resource-types", json!({ "id": "volume" }));
    post(
        &server,
        "/api/v1/resource-definitions",
        json!({ "id": "volume", "type": "volume", "driver": "vol", "criteria": [{}] }),
    );
    let work = tempfile::tempdir().unwrap();
    let score = work.path().join("score.yaml");
    std::fs::write(
        &score,
        json!({
            "apiVersion": "score.dev/v1b1",
            "metadata": { "name": "web" },
            "containers": { "main": { "image": "busybox",
                "command": ["sh", "-c", "echo kept > \"$DATA/file\"; exec sleep 600"],
                "variables": { "DATA": "/data" },
                "volumes": { "/data": { "source": "${resources.data}" } } } },
            "resources": { "data": { "type": "volume" } },
        })
        .to_string(),
    )
    .unwrap();
    admin.ok(&["apps", "create", "shop"]);
    let mut running = Vec::new();
    for env in ["dev", "qa"] {
        admin.ok(&["envs", "create", "shop", env, "--type", "development"]);
        admin.ok(&[
            "deploy",
            "-f",
            score.to_str().unwrap(),
            "--app",
            "shop",
            "--env",
            env,
            "--follow",
        ]);
        let status = admin.json(&["status", "shop", env]);
        let pid = status["workloads"][0]["containers"][0]["pid"]
            .as_u64()
            .unwrap();
        let dir = status["resources"][0]["outputs"]["path"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        assert!(Path::new(&dir).join("file").exists());
        running.push((pid, dir));
    }

    // The app's owner, without deployer on the environments' type, may not delete it:
    // that would delete the environments.
    admin.ok(&["users", "create", "owner@example.com"]);
    admin.ok(&[
        "role-bindings",
        "grant",
        "owner@example.com",
        "owner",
        "--scope",
        "app:shop",
    ]);
    let token = admin.json(&[
        "tokens",
        "create",
        "owner@example.com",
        "--expires-in-days",
        "1",
    ]);
    let owner = Client::with_token(&server, token["token"].as_str().unwrap());
    let refused = owner.fails(&["apps", "delete", "shop"]);
    assert!(
        refused.contains("environments.delete on shop/dev")
            && refused.contains("needs the role deployer"),
        "{refused}"
    );
    assert_eq!(
        admin
            .json(&["envs", "list", "shop"])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Deleted through the engine: processes stopped, resources deprovisioned, no row left.
    admin.ok(&["apps", "delete", "shop"]);
    for (pid, dir) in &running {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z "),
            "process {pid} still runs: {stat}"
        );
        assert!(!Path::new(dir).exists(), "{dir} was deprovisioned");
    }
    assert!(admin.fails(&["apps", "get", "shop"]).contains("not found"));
    let audit = admin.ok(&["audit", "--action", "apps.", "-o", "json"]);
    assert!(audit.contains("apps.deleted"), "{audit}");
    // A new app with the same id starts with nothing of the old one.
    admin.ok(&["apps", "create", "shop"]);
    assert_eq!(admin.json(&["envs", "list", "shop"]), serde_json::json!([]));
    assert_eq!(admin.json(&["sets", "list", "shop"]), serde_json::json!([]));
    assert!(server.stop().success());
}
