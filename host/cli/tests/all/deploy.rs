//! Deployments on the real binary, as a developer and an operator drive them: the example
//! app deployed on the process target, changed by a delta, rolled back and deleted; a
//! server killed and restarted; `wharf up`. What goes wrong (a driver that fails, one that
//! takes its time, a transformer that traps, a server killed while it provisions) is in
//! [`failures`].

mod counter;
mod failures;

use crate::serve::{Server, start};
use crate::support::{Client, get};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// examples/hello, the app `wharf up` deploys by default.
fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello")
}

/// The URL `wharf deploy --follow` says the workload answers at.
pub(crate) fn answers_at(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("hello answers at "))
        .unwrap_or_else(|| panic!("no URL in:\n{output}"))
        .trim()
        .to_string()
}

/// The example's platform applied, its app and `dev` environment created.
fn hello_platform(server: &Server) -> Client {
    let wharf = Client::new(server);
    let platform = example().join("platform.yaml");
    wharf.ok(&["platform", "apply", "-f", platform.to_str().unwrap()]);
    wharf.ok(&["apps", "create", "hello"]);
    wharf.ok(&["envs", "create", "hello", "dev", "--type", "development"]);
    wharf
}

/// `wharf deploy -f examples/hello/score.yaml --app hello --env ENV --follow`: its output.
pub(crate) fn deploy_hello(wharf: &Client, env: &str) -> String {
    deploy_file(wharf, &example().join("score.yaml"), env)
}

/// `wharf deploy -f SCORE --app hello --env ENV --follow`: its output.
pub(crate) fn deploy_file(wharf: &Client, score: &Path, env: &str) -> String {
    wharf.ok(&[
        "deploy",
        "-f",
        score.to_str().unwrap(),
        "--app",
        "hello",
        "--env",
        env,
        "--follow",
    ])
}

fn pid_alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn the_example_app_deploys_changes_rolls_back_and_is_deleted() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = Client::new(&server);
    platform_apply_creates_what_is_missing_and_keeps_what_exists(&wharf);
    wharf.ok(&["apps", "create", "hello"]);
    wharf.ok(&["envs", "create", "hello", "dev", "--type", "development"]);

    let url = deployed_it_answers_with_the_outputs_injected(&wharf);
    followed_after_its_end_it_still_shows_each_resource(&wharf);
    let pid = ready_with_its_secret_not_shown(&wharf);
    let logs = wharf.ok(&["logs", "hello", "dev", "hello"]);
    assert!(logs.contains("GET / 200"), "{logs}");

    let set_two = a_delta_serves_the_change_at_the_same_address(&wharf, &url, pid);
    a_rollback_serves_the_first_set_again(&wharf, &url, &set_two);
    a_clone_runs_on_a_port_of_its_own_and_is_deleted_alone(&wharf, &url);
    deleting_it_stops_the_workload_and_deprovisions_its_resources(&wharf, data.path(), &url);
    let gone = wharf.fails(&["envs", "get", "hello", "dev"]);
    assert!(gone.contains("not found"), "{gone}");
    assert!(server.stop().success());
    assert_eq!(
        rows_left(data.path(), "hello", "dev"),
        (false, 0, 0),
        "no row of the environment is left"
    );
}

/// `wharf platform apply` creates what the file describes, and keeps what exists.
fn platform_apply_creates_what_is_missing_and_keeps_what_exists(wharf: &Client) {
    let platform = example().join("platform.yaml");
    let applied = wharf.ok(&["platform", "apply", "-f", platform.to_str().unwrap()]);
    assert!(
        applied.contains("created resource_definitions motd"),
        "{applied}"
    );
    let again = wharf.ok(&["platform", "apply", "-f", platform.to_str().unwrap()]);
    assert!(
        again.contains("kept installations echo (it exists)"),
        "{again}"
    );
}

/// Deploy: each step is shown done, and the workload answers with the outputs injected
/// and the secret not shown. Returns where it answers.
fn deployed_it_answers_with_the_outputs_injected(wharf: &Client) -> String {
    let first = deploy_hello(wharf, "dev");
    assert!(
        first.contains("Deployment 1 of hello/dev succeeded"),
        "{first}"
    );
    for step in [
        "resolve",
        "provision",
        "render",
        "transform",
        "apply",
        "verify",
        "prune",
    ] {
        assert!(
            first
                .lines()
                .any(|l| l.trim_start().starts_with(step) && l.contains("done")),
            "{step} is shown done:\n{first}"
        );
    }
    let url = answers_at(&first);
    let (status, body) = get(&url).expect("the workload answers");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Hello from hello (version 1)"), "{body}");
    assert!(
        body.contains("message of the day: Ship small changes often."),
        "the echo driver's output is injected: {body}"
    );
    assert!(body.contains("session secret: 40 characters"), "{body}");
    url
}

/// Followed after its end, a deployment still shows each resource it provisioned.
fn followed_after_its_end_it_still_shows_each_resource(wharf: &Client) {
    let again = wharf.ok(&["deployments", "follow", "hello", "dev", "1"]);
    for uid in ["motd.default#hello.motd", "password.default#hello.session"] {
        assert!(
            again.lines().any(|l| l.trim() == format!("{uid} done")),
            "{uid} shown done:\n{again}"
        );
    }
    assert!(
        again.contains("Deployment 1 of hello/dev succeeded"),
        "{again}"
    );
}

/// The status: the workload ready, the secret output named but not shown. Returns the
/// workload's process id, which is alive.
fn ready_with_its_secret_not_shown(wharf: &Client) -> u64 {
    let status = wharf.json(&["status", "hello", "dev"]);
    assert_eq!(status["workloads"][0]["ready"], true, "{status}");
    let session = status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uid"] == "password.default#hello.session")
        .unwrap();
    assert_eq!(session["secret_outputs"], json!(["password"]));
    assert_eq!(
        session["outputs"],
        json!({ "length": 40 }),
        "no secret in the status"
    );
    let pid = status["workloads"][0]["containers"][0]["pid"]
        .as_u64()
        .unwrap();
    assert!(pid_alive(pid));
    pid
}

/// A delta that changes the command: a new deployment serves the change, at the same
/// address, and the old process was stopped. Returns the new deployment's set.
fn a_delta_serves_the_change_at_the_same_address(wharf: &Client, url: &str, pid: u64) -> Value {
    let delta = json!([{ "op": "replace", "path": "/workloads/hello/containers/web/command",
                         "value": ["python3", "/app/server.py", "2"] }])
    .to_string();
    let second = wharf.ok(&[
        "deploy", "--delta", &delta, "--app", "hello", "--env", "dev", "--follow",
    ]);
    assert!(
        second.contains("Deployment 2 of hello/dev succeeded"),
        "{second}"
    );
    assert_eq!(answers_at(&second), url, "the local port is kept");
    let (_, body) = get(url).unwrap();
    assert!(body.contains("(version 2)"), "{body}");
    assert!(!pid_alive(pid), "the old process was stopped");
    wharf.json(&["deployments", "get", "hello", "dev", "2"])["set"].clone()
}

/// Rollback: the first set serves again, as the newest deployment.
fn a_rollback_serves_the_first_set_again(wharf: &Client, url: &str, set_two: &Value) {
    let third = wharf.ok(&[
        "rollback", "--app", "hello", "--env", "dev", "--to", "1", "--follow",
    ]);
    assert!(
        third.contains("Deployment 3 of hello/dev succeeded"),
        "{third}"
    );
    let (_, body) = get(url).unwrap();
    assert!(body.contains("(version 1)"), "{body}");
    let list = wharf.json(&["deployments", "list", "hello", "dev"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["id"], 3, "newest first");
    assert_eq!(
        list[0]["set"], list[2]["set"],
        "the rollback deployed the first set"
    );
    assert_ne!(&list[0]["set"], set_two);
}

/// A clone runs the same set on a port of its own; deleted, it leaves dev running.
fn a_clone_runs_on_a_port_of_its_own_and_is_deleted_alone(wharf: &Client, url: &str) {
    let clone = wharf.ok(&[
        "envs",
        "create",
        "hello",
        "pr-1",
        "--type",
        "development",
        "--from",
        "dev",
    ]);
    assert!(
        clone.contains("Deployment 1 of hello/pr-1 succeeded"),
        "{clone}"
    );
    let clone_url = answers_at(&clone);
    assert_ne!(clone_url, url);
    let (_, body) = get(&clone_url).unwrap();
    assert!(
        body.contains("(version 1)"),
        "the clone runs dev's current set: {body}"
    );
    wharf.ok(&["envs", "delete", "hello", "pr-1"]);
    assert!(get(&clone_url).is_none());
    assert!(get(url).is_some_and(|(s, _)| s == 200));
}

/// Delete: processes gone, resources deprovisioned (as the audit log says), nothing left
/// in the data directory.
fn deleting_it_stops_the_workload_and_deprovisions_its_resources(
    wharf: &Client,
    data: &Path,
    url: &str,
) {
    let pid = wharf.json(&["status", "hello", "dev"])["workloads"][0]["containers"][0]["pid"]
        .as_u64()
        .unwrap();
    let deleted = wharf.ok(&["envs", "delete", "hello", "dev"]);
    assert!(
        deleted.contains("hello/dev is deleted")
            || deleted.contains("deleted environment hello/dev"),
        "{deleted}"
    );
    let audit = wharf.json(&[
        "audit",
        "--action",
        "environments.deleted",
        "--target",
        "env:hello/dev",
    ]);
    let mut gone: Vec<&str> = audit[0]["detail"]["deprovisioned"]
        .as_array()
        .unwrap_or_else(|| panic!("{audit}"))
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    gone.sort();
    assert_eq!(
        gone,
        ["motd.default#hello.motd", "password.default#hello.session"],
        "the drivers deprovisioned both resources"
    );
    assert!(!pid_alive(pid), "the workload's process is gone");
    assert!(get(url).is_none(), "nothing answers at {url} any more");
    assert!(
        !data.join("envs/hello").exists(),
        "the environment's files are gone"
    );
}

/// What the stopped server's database still holds of an environment: whether anything
/// is provisioned, how many deployments, how many environments of the app.
fn rows_left(data: &Path, app: &'static str, env: &'static str) -> (bool, usize, usize) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = wharf_store::Store::open(&data.join("wharf.db"))
            .await
            .unwrap();
        store
            .call(move |tx| {
                Ok((
                    wharf_store::provisioned::any(tx, app, env)?,
                    wharf_store::deployments::list(tx, app, env)?.len(),
                    wharf_store::envs::list(tx, app)?.len(),
                ))
            })
            .await
            .unwrap()
    })
}

#[test]
fn workloads_run_again_after_the_server_is_killed_and_restarted() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = hello_platform(&server);
    let out = deploy_hello(&wharf, "dev");
    let url = answers_at(&out);
    let pid = wharf.json(&["status", "hello", "dev"])["workloads"][0]["containers"][0]["pid"]
        .as_u64()
        .unwrap();
    let token = server.token.clone();
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert!(
        pid_alive(pid),
        "a killed server leaves its processes behind"
    );

    let mut server = start(data.path());
    server.token = token;
    let wharf = Client::new(&server);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = wharf.json(&["status", "hello", "dev"]);
        if status["workloads"][0]["ready"] == true {
            break status;
        }
        assert!(Instant::now() < deadline, "not running again: {status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let new_pid = status["workloads"][0]["containers"][0]["pid"]
        .as_u64()
        .unwrap();
    assert_ne!(new_pid, pid);
    assert!(
        !pid_alive(pid),
        "the process the killed server left was stopped"
    );
    assert_eq!(
        status["workloads"][0]["endpoints"][0],
        url.as_str(),
        "on the same port"
    );
    let (status, body) = get(&url).unwrap();
    assert!(
        status == 200 && body.contains("message of the day"),
        "{body}"
    );
    assert!(server.stop().success());
    assert!(!pid_alive(new_pid), "a clean stop stops the workloads");
}

#[test]
fn wharf_up_deploys_the_example_and_stops_it_with_the_server() {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .arg("--data-dir")
        .arg(data.path())
        .args(["up", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let said = BufReader::new(child.stderr.take().unwrap()).lines();
    let (tell, told) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in said.map_while(Result::ok) {
            let _ = tell.send(line);
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("wharf up printed where hello answers")
            .unwrap();
        if let Some(url) = line.strip_prefix("hello answers at ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let (status, body) = get(&url).expect("hello answers");
    assert_eq!(status, 200);
    assert!(
        body.contains("message of the day: Ship small changes often."),
        "{body}"
    );
    signs_in_to_the_web_ui_as_it_says(&told);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "Ctrl-C or SIGTERM is a clean stop"
    );
    assert!(get(&url).is_none(), "the workload stopped with Wharf");
}

/// `wharf up` says where the web UI is and which token signs in there; a browser's sign-in
/// with it (the form's CSRF cookie, then the form) opens a session that shows the app.
fn signs_in_to_the_web_ui_as_it_says(said: &std::sync::mpsc::Receiver<String>) {
    let line = loop {
        let line = said
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("wharf up says where the web UI is");
        if line.starts_with("Open the web UI at ") {
            break line;
        }
    };
    let rest = line.trim_start_matches("Open the web UI at ");
    let (ui, token) = rest
        .split_once(" and sign in with the token ")
        .unwrap_or_else(|| panic!("{line}"));
    let jar = tempfile::NamedTempFile::new().unwrap();
    let jar = jar.path().to_str().unwrap();
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-b", jar, "-c", jar])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    curl(&["-o", "/dev/null", &format!("{ui}login")]);
    let cookies = std::fs::read_to_string(jar).unwrap();
    let csrf = cookies
        .lines()
        .find_map(|l| l.split('\t').skip_while(|f| *f != "wharf_login").nth(1))
        .unwrap_or_else(|| panic!("no sign-in cookie: {cookies}"));
    let signed_in = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "--data-urlencode",
        &format!("csrf={csrf}"),
        "--data-urlencode",
        &format!("token={}", token.trim()),
        "--data-urlencode",
        "next=/ui/",
        &format!("{ui}login"),
    ]);
    assert_eq!(signed_in, format!("303 {ui}"), "signed in");
    let apps = curl(&[ui]);
    assert!(
        apps.contains("<h1>Apps</h1>") && apps.contains(">hello</a>"),
        "{apps}"
    );
}

/// Objects a driver returns (a route's HTTPRoute, templated by the template driver) are
/// Kubernetes objects: the process target runs the workload and says it does not deploy
/// them.
#[test]
fn the_process_target_says_which_objects_from_drivers_it_does_not_deploy() {
    let data = tempfile::tempdir().unwrap();
    let server = crate::serve::start(data.path());
    let wharf = Client::new(&server);
    let work = tempfile::tempdir().unwrap();
    let platform = crate::kubernetes_emulator::platform(work.path());
    wharf.ok(&["platform", "apply", "-f", platform.to_str().unwrap()]);
    wharf.ok(&["apps", "create", "hello"]);
    wharf.ok(&["envs", "create", "hello", "dev", "--type", "development"]);
    let score = crate::kubernetes_emulator::hello(work.path(), "python:3.12-slim");
    let out = deploy_file(&wharf, &score, "dev");
    assert!(
        out.contains("the process target does not deploy HTTPRoute/hello-route"),
        "{out}"
    );
    let (status, body) = get(&answers_at(&out)).unwrap();
    assert!(status == 200 && body.contains("Hello from hello"), "{body}");
}
