//! Delivery automation through `wharf serve` and the client on the process target: CI's
//! service account pushes artefacts, rules deploy them (to the environment, or to a
//! preview environment that expires), environments pause and resume, releases are
//! promoted under a policy.

use crate::deploy::{answers_at, deploy_file};
use crate::serve::{Server, start_with};
use crate::support::{Client, get, install, wait_for};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The reaper looks every second and warns four seconds before an environment expires.
const FAST_REAPER: [(&str, &str); 2] = [
    ("WHARF_REAPER_INTERVAL", "1s"),
    ("WHARF_EXPIRY_WARNING", "4s"),
];

/// The hello example with its image named `registry.example/hello:1`, so that a rule for
/// that repository updates it; the process target tells the command its image, whose
/// tag the example serves as its version.
fn hello_score(dir: &Path) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello");
    std::fs::copy(example.join("server.py"), dir.join("server.py")).unwrap();
    let score = std::fs::read_to_string(example.join("score.yaml"))
        .unwrap()
        .replace("image: python:3.12-slim", "image: registry.example/hello:1");
    std::fs::write(dir.join("score.yaml"), score).unwrap();
    dir.join("score.yaml")
}

/// A server with the hello platform, app hello and its `dev` environment running version
/// 1; the admin's client and the URL hello answers at.
fn hello_running(server: &Server, dir: &Path) -> (Client, String) {
    let wharf = Client::new(server);
    let platform = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello/platform.yaml");
    wharf.ok(&["platform", "apply", "-f", platform.to_str().unwrap()]);
    wharf.ok(&["apps", "create", "hello"]);
    wharf.ok(&["envs", "create", "hello", "dev", "--type", "development"]);
    let score = hello_score(dir);
    let url = answers_at(&deploy_file(&wharf, &score, "dev"));
    assert!(body(&url).contains("(version 1)"));
    (wharf, url)
}

/// What the workload at `url` answers.
fn body(url: &str) -> String {
    get(url).map(|(_, b)| b).unwrap_or_default()
}

/// A service account `ci`, org member, and a client with its token.
fn ci(server: &Server, admin: &Client) -> Client {
    admin.ok(&["service-accounts", "create", "ci"]);
    admin.ok(&["role-bindings", "grant", "ci", "member", "--scope", "org"]);
    let token = admin.json(&["tokens", "create", "ci", "--expires-in-days", "1"]);
    Client::with_token(server, token["token"].as_str().unwrap())
}

/// `wharf artefacts push registry.example/hello:TAG@sha256:... --ref REF` as CI.
fn push(ci: &Client, tag: &str, git_ref: &str) -> Value {
    let digit = tag.chars().next().unwrap();
    let image = format!(
        "registry.example/hello:{tag}@sha256:{}",
        digit.to_string().repeat(64)
    );
    ci.json(&[
        "artefacts",
        "push",
        &image,
        "--ref",
        git_ref,
        "--commit",
        "0a1b2c3d",
    ])
}

fn deployments(wharf: &Client, env: &str) -> Vec<Value> {
    wharf
        .json(&["deployments", "list", "hello", env])
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_rule_deploys_what_ci_pushes_and_a_freeze_stops_it() {
    let (data, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = start_with(data.path(), &[]);
    let (admin, url) = hello_running(&server, dir.path());
    let ci = ci(&server, &admin);
    admin.ok(&[
        "rules",
        "create",
        "hello",
        "dev",
        "main",
        "--image",
        "registry.example/hello*",
        "--ref",
        "refs/heads/main",
        "--pusher",
        "ci",
    ]);
    assert!(
        admin
            .ok(&["rules", "list", "hello", "dev"])
            .contains("refs/heads/main")
    );

    // A principal of another app pushing a matching image makes hello deploy nothing,
    // and learns nothing of hello's rules; hello's members see why.
    admin.ok(&["apps", "create", "other"]);
    admin.ok(&["service-accounts", "create", "intruder"]);
    for (role, scope) in [("member", "org"), ("developer", "app:other")] {
        admin.ok(&["role-bindings", "grant", "intruder", role, "--scope", scope]);
    }
    let token = admin.json(&["tokens", "create", "intruder", "--expires-in-days", "1"]);
    let intruder = Client::with_token(&server, token["token"].as_str().unwrap());
    let sneaked = push(&intruder, "6", "refs/heads/main");
    assert!(sneaked.get("outcomes").is_none(), "{sneaked}");
    let seen = admin.json(&["artefacts", "get", &sneaked["id"].to_string()]);
    assert_eq!(seen["outcomes"][0]["outcome"], "ignored", "{seen}");
    let reason = seen["outcomes"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("pushed by intruder, who is not one of the rule's pushers (ci)"),
        "{seen}"
    );
    assert_eq!(deployments(&admin, "dev").len(), 1);

    // A matching push: deployment 2, by the rule's owner, saying which rule and artefact.
    let pushed = push(&ci, "2", "refs/heads/main");
    assert_eq!(pushed["outcomes"][0]["outcome"], "deployed", "{pushed}");
    assert_eq!(pushed["outcomes"][0]["deployment"], 2, "{pushed}");
    admin.ok(&["deployments", "follow", "hello", "dev", "2"]);
    assert!(
        body(&url).contains("Hello from hello (version 2)"),
        "{}",
        body(&url)
    );
    let d = admin.json(&["deployments", "get", "hello", "dev", "2"]);
    assert_eq!(d["created_by"], "admin");
    let comment = d["comment"].as_str().unwrap();
    assert!(
        comment.contains("automation rule dev/main")
            && comment.contains(&format!("artefact {}", pushed["id"])),
        "{comment}"
    );
    assert_eq!(
        d["images"]["hello/web"],
        pushed["image"]
            .as_str()
            .unwrap()
            .replace("hello@", "hello:2@")
    );
    let audited = admin.json(&["audit", "--action", "deployments.create"]);
    assert!(
        audited.to_string().contains("automation rule dev/main"),
        "{audited}"
    );

    // A push from another ref deploys nothing.
    let other = push(&ci, "3", "refs/heads/feature");
    assert!(other.get("outcomes").is_none(), "{other}");
    assert_eq!(deployments(&admin, "dev").len(), 2);
    assert!(body(&url).contains("(version 2)"));

    // A paused rule does nothing either.
    admin.ok(&["rules", "pause", "hello", "dev", "main"]);
    assert!(push(&ci, "5", "refs/heads/main").get("outcomes").is_none());
    admin.ok(&["rules", "resume", "hello", "dev", "main"]);

    // A freeze on the environment type stops a matching push; the reason is kept with
    // the artefact.
    install(
        &server,
        "freeze-window",
        "policy",
        wharf_artifacts::FREEZE_WINDOW,
        None,
        json!({ "env_types": ["development"],
                "windows": [{ "name": "year-end", "start": "2000-01-01", "end": "2100-01-01" }] }),
    );
    let frozen = push(&ci, "4", "refs/heads/main");
    let outcome = &frozen["outcomes"][0];
    assert_eq!(outcome["outcome"], "refused", "{frozen}");
    let reason = outcome["reason"].as_str().unwrap();
    assert!(reason.contains("frozen during year-end"), "{reason}");
    let shown = ci.ok(&["artefacts", "get", &frozen["id"].to_string()]);
    assert!(
        shown.contains("refused") && shown.contains("year-end"),
        "{shown}"
    );
    assert_eq!(deployments(&admin, "dev").len(), 2);
    assert!(body(&url).contains("(version 2)"));
}

#[test]
fn a_preview_made_by_a_rule_serves_expires_and_is_deleted() {
    let (data, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = start_with(data.path(), &FAST_REAPER);
    let (admin, _) = hello_running(&server, dir.path());
    let ci = ci(&server, &admin);
    admin.ok(&[
        "rules",
        "create",
        "hello",
        "dev",
        "previews",
        "--image",
        "registry.example/hello*",
        "--ref",
        "refs/pull/*/head",
        "--preview",
        "pr-{n}",
        "--ttl",
        "12s",
    ]);
    // No pushers named: a developer of the app triggers it.
    admin.ok(&[
        "role-bindings",
        "grant",
        "ci",
        "developer",
        "--scope",
        "app:hello",
    ]);
    // A preview rule whose name a ref turns into an environment that is not a preview
    // (a branch named dev) deploys nothing there.
    admin.ok(&[
        "rules",
        "create",
        "hello",
        "dev",
        "branches",
        "--image",
        "registry.example/hello*",
        "--ref",
        "refs/heads/*",
        "--preview",
        "{n}",
        "--ttl",
        "1h",
    ]);
    let branch = push(&ci, "5", "refs/heads/dev");
    assert_eq!(branch["outcomes"][0]["outcome"], "refused", "{branch}");
    assert!(
        branch["outcomes"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("is not a preview"),
        "{branch}"
    );
    assert_eq!(deployments(&admin, "dev").len(), 1);
    admin.ok(&["rules", "delete", "hello", "dev", "branches"]);

    let pushed = push(&ci, "7", "refs/pull/7/head");
    assert_eq!(pushed["outcomes"][0]["env"], "pr-7", "{pushed}");
    assert_eq!(pushed["outcomes"][0]["deployment"], 1, "{pushed}");
    admin.ok(&["deployments", "follow", "hello", "pr-7", "1"]);
    let status = admin.json(&["status", "hello", "pr-7"]);
    let url = status["workloads"][0]["endpoints"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(body(&url).contains("(version 7)"), "{}", body(&url));
    let listed = admin.ok(&["envs", "list", "hello"]);
    assert!(
        listed.contains("pr-7") && listed.contains("ttl 12s"),
        "{listed}"
    );
    let process_dir = data.path().join("envs/hello/pr-7");
    assert!(process_dir.exists(), "{}", process_dir.display());

    // A deployment extends its time to live.
    let before = admin.json(&["envs", "get", "hello", "pr-7"])["expires_at"]
        .as_i64()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let again = push(&ci, "8", "refs/pull/7/head");
    assert_eq!(again["outcomes"][0]["deployment"], 2, "{again}");
    admin.ok(&["deployments", "follow", "hello", "pr-7", "2"]);
    let after = admin.json(&["envs", "get", "hello", "pr-7"])["expires_at"]
        .as_i64()
        .unwrap();
    assert!(after > before, "{before} -> {after}");

    // The warning first, then the deletion: workloads stopped, resources deprovisioned.
    wait_for("the preview's deletion", Duration::from_secs(40), || {
        !admin
            .run(&["envs", "get", "hello", "pr-7"])
            .status
            .success()
            && !process_dir.exists()
    });
    assert!(get(&url).is_none(), "the preview still answers");
    let audit = admin.json(&["audit", "--target", "env:hello/pr-7"]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let warned = actions.iter().position(|a| *a == "environments.expiring");
    let deleted = actions.iter().position(|a| *a == "environments.deleted");
    assert!(warned.is_some() && deleted.is_some(), "{actions:?}");
    let deletion = &audit.as_array().unwrap()[deleted.unwrap()];
    let gone = deletion["detail"]["deprovisioned"].to_string();
    assert!(
        gone.contains("password.default#hello.session"),
        "{deletion}"
    );
    let seq = |i: usize| audit[i]["seq"].as_i64().unwrap();
    assert!(seq(warned.unwrap()) < seq(deleted.unwrap()), "{audit}");
    assert_eq!(audit[deleted.unwrap()]["principal"], "system:reaper");
}

/// The value of `var` in the environment of process `pid`.
fn environ(pid: u64, var: &str) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    bytes
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix(&format!("{var}=")).map(str::to_string))
}

fn workload_pid(wharf: &Client, env: &str) -> u64 {
    let status = wharf.json(&["status", "hello", env]);
    status["workloads"][0]["containers"][0]["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no pid in {status}"))
}

#[test]
fn a_paused_environment_stops_its_workloads_keeps_its_resources_and_resumes() {
    let (data, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = start_with(data.path(), &[]);
    let (admin, url) = hello_running(&server, dir.path());
    let pid = workload_pid(&admin, "dev");
    let secret = environ(pid, "SESSION_SECRET").expect("the workload's secret");

    let paused = admin.ok(&["envs", "pause", "hello", "dev"]);
    assert!(paused.contains("paused environment hello/dev"), "{paused}");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the process still runs"
    );
    assert!(get(&url).is_none(), "the port still answers");
    let listed = admin.ok(&["envs", "list", "hello"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("dev") && l.contains("paused")),
        "{listed}"
    );
    let shown = admin.json(&["envs", "get", "hello", "dev"]);
    assert_eq!(
        (shown["state"].clone(), shown["paused_by"].clone()),
        (json!("paused"), json!("admin"))
    );
    let status = admin.json(&["status", "hello", "dev"]);
    assert!(
        status["resources"]
            .to_string()
            .contains("password.default#hello.session"),
        "{status}"
    );

    // A deployment is refused, saying how to resume.
    let score = dir.path().join("score.yaml");
    let refused = admin.fails(&[
        "deploy",
        "-f",
        score.to_str().unwrap(),
        "--app",
        "hello",
        "--env",
        "dev",
    ]);
    assert!(
        refused.contains("is paused") && refused.contains("wharf envs resume hello dev"),
        "{refused}"
    );

    // A restarted Wharf leaves it stopped.
    let token = server.token.clone().unwrap();
    server.stop();
    let server = start_with(data.path(), &[]);
    let admin = Client::with_token(&server, &token);
    assert_eq!(
        admin.json(&["envs", "get", "hello", "dev"])["state"],
        "paused"
    );
    let status = admin.json(&["status", "hello", "dev"]);
    assert!(
        status["workloads"].as_array().unwrap().is_empty(),
        "{status}"
    );
    assert!(get(&url).is_none(), "the restarted Wharf started it");

    admin.ok(&["envs", "resume", "hello", "dev"]);
    assert!(body(&url).contains("(version 1)"), "{}", body(&url));
    let again = workload_pid(&admin, "dev");
    assert_ne!(again, pid);
    assert_eq!(
        environ(again, "SESSION_SECRET").as_deref(),
        Some(secret.as_str()),
        "the same credentials"
    );
    assert_eq!(
        admin.json(&["envs", "get", "hello", "dev"])["state"],
        "active"
    );
}

#[test]
fn promotion_deploys_exactly_what_ran_and_a_policy_can_require_staging() {
    let (data, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = start_with(data.path(), &[]);
    let (admin, _) = hello_running(&server, dir.path());
    for (env, env_type) in [("staging", "staging"), ("production", "production")] {
        admin.ok(&["env-types", "create", env_type]);
        admin.ok(&["envs", "create", "hello", env, "--type", env_type]);
    }
    // dev runs version 2 by an image given at deploy time.
    let score = dir.path().join("score.yaml");
    admin.ok(&[
        "deploy",
        "-f",
        score.to_str().unwrap(),
        "--app",
        "hello",
        "--env",
        "dev",
        "--image",
        "web=registry.example/hello:2",
        "--follow",
    ]);

    let plan = admin.ok(&[
        "promote", "hello", "--from", "dev", "--to", "staging", "--plan",
    ]);
    assert!(plan.contains("promotion of deployment 2 of dev"), "{plan}");
    assert!(
        plan.contains("web: (none) -> registry.example/hello:2"),
        "{plan}"
    );
    assert!(
        plan.contains("create password.default#hello.session"),
        "{plan}"
    );
    assert!(
        deployments(&admin, "staging").is_empty(),
        "a plan deploys nothing"
    );

    let out = admin.ok(&[
        "promote", "hello", "--from", "dev", "--to", "staging", "--follow",
    ]);
    let url = answers_at(&out);
    assert!(body(&url).contains("(version 2)"), "{}", body(&url));
    let (source, promoted) = (
        &deployments(&admin, "dev")[0],
        &deployments(&admin, "staging")[0],
    );
    assert_eq!(
        (&source["set"], &source["images"]),
        (&promoted["set"], &promoted["images"])
    );
    let d = admin.json(&["deployments", "get", "hello", "staging", "1"]);
    assert_eq!(d["steps"][0]["detail"]["promotion"]["deployment"], 2, "{d}");
    // Its own resources: staging's password is not dev's.
    let (dev_pid, staging_pid) = (workload_pid(&admin, "dev"), workload_pid(&admin, "staging"));
    assert_ne!(
        environ(dev_pid, "SESSION_SECRET"),
        environ(staging_pid, "SESSION_SECRET")
    );

    install(
        &server,
        "promotion-gate",
        "policy",
        wharf_artifacts::PROMOTION_GATE,
        None,
        json!({ "env_types": ["production"], "from": ["staging"] }),
    );
    let refused = admin.fails(&["promote", "hello", "--from", "dev", "--to", "production"]);
    assert!(
        refused.contains("production takes only promotions from staging; this one is from dev"),
        "{refused}"
    );
    let direct = admin.fails(&[
        "deploy",
        "-f",
        score.to_str().unwrap(),
        "--app",
        "hello",
        "--env",
        "production",
    ]);
    assert!(direct.contains("wharf promote"), "{direct}");
    assert!(deployments(&admin, "production").is_empty());
    let out = admin.ok(&[
        "promote",
        "hello",
        "--from",
        "staging",
        "--to",
        "production",
        "--follow",
    ]);
    assert!(body(&answers_at(&out)).contains("(version 2)"));
}
