//! The `wharf` client against a real `wharf serve`: login, every kind of object, a policy
//! uploaded and installed from the command line, and the audit log.

use crate::serve::start;
use std::process::{Command, Output};

struct Cli {
    config: tempfile::TempDir,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args(args)
            .env("XDG_CONFIG_HOME", self.config.path())
            .env_remove("WHARF_SERVER")
            .env_remove("WHARF_TOKEN")
            .output()
            .expect("run wharf")
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "wharf {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "wharf {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn the_client_drives_a_real_server_end_to_end() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let token = server.token.clone().unwrap();
    let url = format!("http://{}", server.addr);
    let cli = Cli {
        config: tempfile::tempdir().unwrap(),
    };

    // Before login there is nothing to talk to; a wrong token is refused with the reason.
    assert!(cli.fails(&["apps", "list"]).contains("wharf login"));
    let refused = cli.fails(&["login", "--server", &url, "--token", "wharf_nope"]);
    assert!(
        refused.contains("the server refused the token"),
        "{refused}"
    );
    cli.ok(&["login", "--server", &url, "--token", &token]);
    let saved = cli.config.path().join("wharf/config.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&saved).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the saved token is readable by its owner only"
        );
    }

    // Apps, environment types, environments, in all three output formats.
    cli.ok(&["apps", "create", "shop", "--name", "The Shop"]);
    let table = cli.ok(&["apps", "list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("shop  The Shop  admin"), "{table}");
    cli.ok(&[
        "env-types",
        "create",
        "staging",
        "--description",
        "Pre-production",
    ]);
    let types = json(&cli.ok(&["env-types", "list", "-o", "json"]));
    let ids: Vec<&str> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["development", "staging"]);
    let env = cli.ok(&[
        "envs",
        "create",
        "shop",
        "dev",
        "--type",
        "development",
        "-o",
        "yaml",
    ]);
    assert!(env.contains("env_type: development"), "{env}");

    // Users and role bindings.
    cli.ok(&["users", "create", "alice@example.com"]);
    cli.ok(&[
        "role-bindings",
        "grant",
        "alice@example.com",
        "developer",
        "--scope",
        "app:shop",
    ]);
    let bindings = json(&cli.ok(&["role-bindings", "list", "alice@example.com", "-o", "json"]));
    assert_eq!(bindings[0]["scope"]["id"], "shop");
    assert_eq!(bindings[0]["role"], "developer");
    let created = json(&cli.ok(&[
        "tokens",
        "create",
        "alice@example.com",
        "--expires-in-days",
        "1",
        "-o",
        "json",
    ]));
    assert!(created["token"].as_str().unwrap().starts_with("wharf_"));

    // A policy from a file, installed, deciding the next command; then disabled.
    let uploaded = cli.ok(&[
        "plugins",
        "upload",
        wharf_artifacts::FREEZE_WINDOW,
        "--id",
        "freeze-window",
        "--kind",
        "policy",
    ]);
    assert!(uploaded.contains("wharf:plugin/policy@0.2.0"), "{uploaded}");
    let rejected = cli.fails(&[
        "installations",
        "create",
        "freeze",
        "--plugin",
        "freeze-window",
        "--config",
        r#"{"windows": []}"#,
    ]);
    assert!(rejected.contains("/env_types"), "{rejected}");
    let config = r#"{"env_types": ["staging"], "actions": ["environments.create"],
                     "windows": [{"name": "release-freeze", "start": "2000-01-01", "end": "2100-01-01"}]}"#;
    cli.ok(&[
        "installations",
        "create",
        "freeze",
        "--plugin",
        "freeze-window",
        "--config",
        config,
    ]);
    let denied = cli.fails(&["envs", "create", "shop", "stg", "--type", "staging"]);
    assert!(denied.contains("denied by policy freeze"), "{denied}");
    assert!(denied.contains("frozen during release-freeze"), "{denied}");
    assert!(denied.contains("(403)"), "{denied}");
    let disabled = json(&cli.ok(&["installations", "disable", "freeze", "-o", "json"]));
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["revision"], 2);
    cli.ok(&["envs", "create", "shop", "stg", "--type", "staging"]);

    // Resources.
    cli.ok(&["resource-types", "create", "postgres"]);
    cli.ok(&["installations", "create", "existing", "--plugin", "echo"]);
    cli.ok(&[
        "resource-definitions", "create",
        r#"{"id": "pg", "type": "postgres", "driver": "existing", "criteria": [{"env_type": "staging"}]}"#,
    ]);
    let matched = json(&cli.ok(&[
        "resource-definitions",
        "match",
        "--type",
        "postgres",
        "--app",
        "shop",
        "--env",
        "stg",
        "-o",
        "json",
    ]));
    assert_eq!(matched["definition"], "pg");
    let stale = cli.fails(&[
        "resource-definitions",
        "update",
        "--if-version",
        "9",
        r#"{"id": "pg", "type": "postgres", "driver": "existing", "criteria": [{}]}"#,
    ]);
    assert!(stale.contains("(412)"), "{stale}");

    // Sets from Score files; a broken file lists every problem with its path.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("score.yaml");
    std::fs::write(
        &good,
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  main:\n    image: busybox\n",
    )
    .unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: w\ncontainers:\n  main:\n    image: x\n    \
         variables:\n      PORT: 3000\n",
    )
    .unwrap();
    let set = json(&cli.ok(&[
        "sets",
        "create",
        "shop",
        "-f",
        good.to_str().unwrap(),
        "-o",
        "json",
    ]));
    assert_eq!(set["id"].as_str().unwrap().len(), 64);
    let refused = cli.fails(&["sets", "create", "shop", "-f", broken.to_str().unwrap()]);
    assert!(refused.contains("/workloads/0/metadata/name:"), "{refused}");
    assert!(
        refused.contains("/workloads/0/containers/main/variables/PORT:"),
        "{refused}"
    );

    // The audit log has it all, by whom.
    let audit = json(&cli.ok(&["audit", "--action", "plugins.", "-o", "json"]));
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "plugins.upload",
            "plugins.install",
            "plugins.update",
            "plugins.install"
        ]
    );
    let table = cli.ok(&["audit", "--target", "env:shop/"]);
    assert_eq!(
        table.lines().count(),
        3,
        "a header and two environments: {table}"
    );

    assert!(server.stop().success());
    let gone = cli.fails(&["apps", "list"]);
    assert!(gone.contains("cannot reach the Wharf server"), "{gone}");
}

/// CI's part: a service account pushes the image it built, by digest, and it is listed by
/// ref; a tag alone is refused with what to do.
#[test]
fn ci_pushes_artefacts_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let admin = crate::support::Client::new(&server);
    admin.ok(&["service-accounts", "create", "ci"]);
    admin.ok(&["role-bindings", "grant", "ci", "member", "--scope", "org"]);
    let token = admin.json(&["tokens", "create", "ci", "--expires-in-days", "1"]);
    let ci = crate::support::Client::with_token(&server, token["token"].as_str().unwrap());
    let image = format!("registry.example.com/shop/api@sha256:{}", "7".repeat(64));
    let pushed = ci.json(&[
        "artefacts",
        "push",
        &image,
        "--ref",
        "refs/heads/main",
        "--commit",
        "0a1b2c3",
    ]);
    assert_eq!(pushed["image"], image.as_str());
    let again = ci.json(&["artefacts", "push", &image, "--ref", "refs/heads/main"]);
    assert_eq!(
        (again["id"].clone(), again["pushes"].clone()),
        (pushed["id"].clone(), serde_json::json!(2))
    );
    let listed = ci.ok(&["artefacts", "list", "--ref", "refs/heads/main"]);
    assert!(
        listed.contains(&image) && listed.contains("0a1b2c3"),
        "{listed}"
    );
    let refused = ci.fails(&["artefacts", "push", "registry.example.com/shop/api:latest"]);
    assert!(refused.contains("has no digest"), "{refused}");
}
