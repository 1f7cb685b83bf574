//! Deployments on the real binary, as a developer and an operator drive them: the example
//! app deployed on the process target, changed by a delta, rolled back and deleted; a
//! driver that fails, one that takes its time, a transformer that traps; and a server
//! killed while it provisions.

use crate::serve::{Server, raw_request, start};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub(crate) fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello")
}

/// Runs the `wharf` client against a server.
pub(crate) struct Client {
    url: String,
    token: String,
    config: tempfile::TempDir,
}

impl Client {
    pub(crate) fn new(server: &Server) -> Self {
        Self {
            url: format!("http://{}", server.addr),
            token: server.token.clone().expect("a new server prints its token"),
            config: tempfile::tempdir().unwrap(),
        }
    }

    /// A client of `server` that presents `token`.
    pub(crate) fn with_token(server: &Server, token: &str) -> Self {
        Self {
            token: token.to_string(),
            ..Self::new(server)
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args(args)
            .env("XDG_CONFIG_HOME", self.config.path())
            .env("WHARF_SERVER", &self.url)
            .env("WHARF_TOKEN", &self.token)
            .output()
            .expect("run wharf")
    }

    /// Runs and expects success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "wharf {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects failure; returns stdout and stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "wharf {args:?} succeeded:\n{text}");
        text
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// `GET url`, None when nothing answers there.
pub(crate) fn get(url: &str) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (addr, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    raw_request(addr, "GET", path, None, "")
}

/// The URL `wharf deploy --follow` says the workload answers at.
fn answers_at(output: &str) -> String {
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
fn deploy_hello(wharf: &Client, env: &str) -> String {
    let score = example().join("score.yaml");
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
    let dir = example();
    let platform = dir.join("platform.yaml");
    let score = dir.join("score.yaml");
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
    wharf.ok(&["apps", "create", "hello"]);
    wharf.ok(&["envs", "create", "hello", "dev", "--type", "development"]);

    // Deploy: the workload answers, with the outputs injected and the secret not shown.
    let first = wharf.ok(&[
        "deploy",
        "-f",
        score.to_str().unwrap(),
        "--app",
        "hello",
        "--env",
        "dev",
        "--follow",
    ]);
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
    // Followed after its end, a deployment still shows each resource it provisioned.
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
    let logs = wharf.ok(&["logs", "hello", "dev", "hello"]);
    assert!(logs.contains("GET / 200"), "{logs}");

    // A delta that changes the command: a new deployment serves the change, at the same
    // address.
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
    let (_, body) = get(&url).unwrap();
    assert!(body.contains("(version 2)"), "{body}");
    assert!(!pid_alive(pid), "the old process was stopped");
    let set_two = wharf.json(&["deployments", "get", "hello", "dev", "2"])["set"].clone();

    // Rollback: the first set serves again.
    let third = wharf.ok(&[
        "rollback", "--app", "hello", "--env", "dev", "--to", "1", "--follow",
    ]);
    assert!(
        third.contains("Deployment 3 of hello/dev succeeded"),
        "{third}"
    );
    let (_, body) = get(&url).unwrap();
    assert!(body.contains("(version 1)"), "{body}");
    let list = wharf.json(&["deployments", "list", "hello", "dev"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["id"], 3, "newest first");
    assert_eq!(
        list[0]["set"], list[2]["set"],
        "the rollback deployed the first set"
    );
    assert_ne!(list[0]["set"], set_two);

    // A clone runs the same set on a port of its own; deleted, it leaves dev running.
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
    assert!(get(&url).is_some_and(|(s, _)| s == 200));

    // Delete: processes gone, resources deprovisioned, nothing left in the data dir.
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
    assert!(get(&url).is_none(), "nothing answers at {url} any more");
    assert!(
        !data.path().join("envs/hello").exists(),
        "the environment's files are gone"
    );
    let gone = wharf.fails(&["envs", "get", "hello", "dev"]);
    assert!(gone.contains("not found"), "{gone}");
    assert!(server.stop().success());
    let leftovers = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = wharf_store::Store::open(&data.path().join("wharf.db"))
            .await
            .unwrap();
        store
            .call(|tx| {
                Ok((
                    wharf_store::provisioned::any(tx, "hello", "dev")?,
                    wharf_store::deployments::list(tx, "hello", "dev")?.len(),
                    wharf_store::envs::list(tx, "hello")?.len(),
                ))
            })
            .await
            .unwrap()
    });
    assert_eq!(
        leftovers,
        (false, 0, 0),
        "no row of the environment is left"
    );
}

/// Uploads a test component with an HTTP grant to `counter` (when given) and installs it.
pub(crate) fn install(
    server: &Server,
    id: &str,
    kind: &str,
    path: &str,
    counter: Option<&str>,
    config: Value,
) {
    let token = server.token.as_deref();
    let bytes = std::fs::read(path).unwrap();
    let grant = counter.map(|c| format!("&http={c}")).unwrap_or_default();
    let (status, body) = upload(
        &server.addr,
        &format!("/api/v1/plugins?id={id}&kind={kind}{grant}"),
        token.unwrap(),
        &bytes,
    );
    assert_eq!(status, 201, "{body}");
    let mut installation = json!({ "id": id, "plugin": id, "config": config });
    if let Some(c) = counter {
        installation["grants"] = json!({ "http": [c] });
    }
    let (status, body) = server.request(
        "POST",
        "/api/v1/plugin-installations",
        token,
        &installation.to_string(),
    );
    assert_eq!(status, 201, "{body}");
}

fn upload(addr: &str, path: &str, token: &str, bytes: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/wasm\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    stream.write_all(bytes).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    (
        status,
        response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

pub(crate) fn post(server: &Server, path: &str, body: Value) -> Value {
    let (status, text) = server.request("POST", path, server.token.as_deref(), &body.to_string());
    assert!((200..300).contains(&status), "POST {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[test]
fn failures_fail_the_deployment_with_their_reason_and_the_previous_set_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = hello_platform(&server);
    let counter = Counter::start(None);
    install(
        &server,
        "scripted",
        "driver",
        wharf_artifacts::TEST_DRIVER,
        Some(&counter.url),
        json!({}),
    );
    post(&server, "/api/v1/resource-types", json!({ "id": "thing" }));
    for (class, values) in [
        (
            "broken",
            json!({ "fail": "quota exceeded: at most 3 databases per team" }),
        ),
        (
            "slow",
            json!({ "steps": 3, "retry_after_ms": 20, "counter": counter.url }),
        ),
    ] {
        post(
            &server,
            "/api/v1/resource-definitions",
            json!({
                "id": format!("thing-{class}"), "type": "thing", "driver": "scripted",
                "driver_inputs": { "values": values }, "criteria": [{ "class": class }]
            }),
        );
    }
    let first = deploy_hello(&wharf, "dev");
    let url = answers_at(&first);

    // A permanent driver error: the deployment fails with the driver's message; the
    // previous set keeps serving.
    let broken = json!([{ "op": "add", "path": "/workloads/hello/resources/quota",
                          "value": { "type": "thing", "class": "broken" } }])
    .to_string();
    let failed = wharf.fails(&[
        "deploy", "--delta", &broken, "--app", "hello", "--env", "dev", "--follow",
    ]);
    assert!(
        failed.contains("deployment 2 of hello/dev failed at provision")
            && failed.contains("quota exceeded: at most 3 databases per team"),
        "{failed}"
    );
    let d = wharf.json(&["deployments", "get", "hello", "dev", "2"]);
    assert_eq!(d["status"], "failed");
    assert_eq!(d["error"]["scope"], "resource");
    assert_eq!(d["error"]["object"], "thing.broken#hello.quota");
    let steps: Vec<&str> = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "done", "done", "done", "failed", "skipped", "skipped", "skipped", "skipped", "skipped"
        ]
    );
    let (status, body) = get(&url).unwrap();
    assert!(
        status == 200 && body.contains("(version 1)"),
        "the previous set serves: {body}"
    );

    // In progress three times, then done: the deployment completes.
    let slow = json!([{ "op": "add", "path": "/workloads/hello/resources/quota",
                        "value": { "type": "thing", "class": "slow" } }])
    .to_string();
    let done = wharf.ok(&[
        "deploy", "--delta", &slow, "--app", "hello", "--env", "dev", "--follow",
    ]);
    assert!(
        done.contains("Deployment 3 of hello/dev succeeded"),
        "{done}"
    );
    // What the driver was asked: created once, then called again with its state until
    // done (three in-progress answers, then done: four calls).
    counter.counts(|c| {
        assert_eq!(c.creates.len(), 1, "{c:?}");
        assert_eq!(
            c.calls
                .iter()
                .filter(|(uid, _)| uid == "hello.quota")
                .count(),
            4,
            "{c:?}"
        );
    });
    let d = wharf.json(&["deployments", "get", "hello", "dev", "3"]);
    assert_eq!(d["status"], "succeeded");

    // A transformer that traps fails the deployment at transform; the server carries on.
    install(
        &server,
        "trap",
        "transformer",
        wharf_artifacts::TEST_TRANSFORMER,
        None,
        json!({ "trap": true }),
    );
    post(
        &server,
        "/api/v1/env-types",
        json!({ "id": "trapped", "transformers": ["trap"] }),
    );
    wharf.ok(&["envs", "create", "hello", "qa", "--type", "trapped"]);
    let score = example().join("score.yaml");
    let trapped = wharf.fails(&[
        "deploy",
        "-f",
        score.to_str().unwrap(),
        "--app",
        "hello",
        "--env",
        "qa",
        "--follow",
    ]);
    assert!(
        trapped.contains("failed at transform") && trapped.contains("plugin trapped"),
        "{trapped}"
    );
    let d = wharf.json(&["deployments", "get", "hello", "qa", "1"]);
    assert_eq!(d["error"]["scope"], "transformer");
    assert_eq!(d["error"]["object"], "trap");
    assert_eq!(server.request("GET", "/readyz", None, "").0, 200);
    assert!(get(&url).is_some_and(|(s, _)| s == 200), "dev still serves");
    assert!(server.stop().success());
}

/// A test's counter of what the driver was asked: `create` and `delete` by resource and
/// idempotency key, and every `call`. Until `release`, it holds creates after the first
/// `hold_after`, without answering (and without counting them).
pub(crate) struct Counter {
    pub(crate) url: String,
    state: std::sync::Arc<(std::sync::Mutex<Counts>, std::sync::Condvar)>,
}

#[derive(Default, Debug)]
pub(crate) struct Counts {
    pub(crate) creates: Vec<(String, String)>,
    pub(crate) calls: Vec<(String, String)>,
    pub(crate) deletes: Vec<(String, String)>,
    held: usize,
    hold_after: Option<usize>,
    released: bool,
}

impl Counter {
    pub(crate) fn start(hold_after: Option<usize>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = std::sync::Arc::new((
            std::sync::Mutex::new(Counts {
                hold_after,
                ..Counts::default()
            }),
            std::sync::Condvar::new(),
        ));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve_count(stream, &shared));
            }
        });
        Self { url, state }
    }

    pub(crate) fn counts<R>(&self, f: impl FnOnce(&Counts) -> R) -> R {
        f(&self.state.0.lock().unwrap())
    }

    pub(crate) fn held(&self) -> usize {
        self.counts(|c| c.held)
    }

    /// Stops holding: held requests are dropped unanswered, new ones answered.
    pub(crate) fn release(&self) {
        self.state.0.lock().unwrap().released = true;
        self.state.1.notify_all();
    }
}

fn serve_count(
    mut stream: std::net::TcpStream,
    shared: &(std::sync::Mutex<Counts>, std::sync::Condvar),
) {
    use std::io::{BufRead, BufReader, Write};
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Headers until the blank line (the requests have no body).
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    let target = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let (event, query) = target
        .trim_start_matches('/')
        .split_once('?')
        .unwrap_or((&target, ""));
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    };
    let entry = (param("uid"), param("key"));
    let (lock, wake) = shared;
    let mut counts = lock.lock().unwrap();
    match event {
        "create" => {
            if counts.hold_after.is_some_and(|n| counts.creates.len() >= n) && !counts.released {
                counts.held += 1;
                while !counts.released {
                    counts = wake.wait(counts).unwrap();
                }
                // Asked by a server that is gone: dropped, never answered, not counted.
                return;
            }
            counts.creates.push(entry);
        }
        "delete" => counts.deletes.push(entry),
        _ => counts.calls.push(entry),
    }
    drop(counts);
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    // Whatever the client still sends (an empty chunked body) is read before closing: a
    // socket closed with unread data is reset, and the client could miss the answer.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = std::io::copy(&mut reader, &mut std::io::sink());
}

#[test]
fn a_server_killed_while_it_provisions_resumes_and_provisions_nothing_twice() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let token = server.token.clone().unwrap();
    let counter = Counter::start(Some(10));
    install(
        &server,
        "counting",
        "driver",
        wharf_artifacts::TEST_DRIVER,
        Some(&counter.url),
        json!({}),
    );
    post(&server, "/api/v1/resource-types", json!({ "id": "thing" }));
    post(
        &server,
        "/api/v1/resource-definitions",
        json!({
            "id": "thing", "type": "thing", "driver": "counting",
            "driver_inputs": { "values": { "counter": counter.url, "steps": 1, "retry_after_ms": 300 } },
            "criteria": [{}]
        }),
    );
    post(&server, "/api/v1/apps", json!({ "id": "big" }));
    post(
        &server,
        "/api/v1/apps/big/envs",
        json!({ "id": "dev", "env_type": "development" }),
    );
    let resources: serde_json::Map<String, Value> = (1..=20)
        .map(|i| (format!("r{i:02}"), json!({ "type": "thing" })))
        .collect();
    let workload = json!({
        "apiVersion": "score.dev/v1b1",
        "metadata": { "name": "big" },
        "containers": { "main": { "image": "busybox", "command": ["sleep", "600"] } },
        "resources": resources,
    });
    let d = post(
        &server,
        "/api/v1/apps/big/envs/dev/deployments",
        json!({ "workloads": [workload] }),
    );
    assert_eq!(d["id"], 1);

    // Kill the server once ten resources were created and journaled, with more asked for.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "provisioning did not get going: {:?}",
            counter.counts(|c| c.creates.len())
        );
        let (_, status) =
            server.request("GET", "/api/v1/apps/big/envs/dev/status", Some(&token), "");
        let status: Value = serde_json::from_str(&status).unwrap_or(Value::Null);
        let journaled = status["resources"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter(|r| r["status"] == "in-progress" || r["status"] == "done")
                    .count()
            })
            .unwrap_or(0);
        if counter.held() > 0 && journaled >= 10 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert_eq!(counter.counts(|c| c.creates.len()), 10);
    // Requests the dead server sent and the counter has not read yet are read (and held,
    // so never counted) before the counter lets creates through again.
    std::thread::sleep(Duration::from_millis(500));
    counter.release();

    let server = start(data.path());
    let deadline = Instant::now() + Duration::from_secs(120);
    let d = loop {
        let (_, body) = server.request(
            "GET",
            "/api/v1/apps/big/envs/dev/deployments/1",
            Some(&token),
            "",
        );
        let d: Value = serde_json::from_str(&body).unwrap();
        if d["status"] == "succeeded" || d["status"] == "failed" {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "the deployment did not finish: {d}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(d["status"], "succeeded", "{d}");
    assert_eq!(d["steps"][3]["name"], "provision");
    assert_eq!(d["steps"][3]["detail"]["resumed"], true, "{d}");
    counter.counts(|c| {
        let mut created: Vec<&str> = c.creates.iter().map(|(uid, _)| uid.as_str()).collect();
        created.sort();
        let all: Vec<String> = (1..=20).map(|i| format!("big.r{i:02}")).collect();
        assert_eq!(
            created, all,
            "every resource created exactly once: {:?}",
            c.creates
        );
        for (uid, key) in &c.creates {
            let keys: std::collections::BTreeSet<&str> = c
                .calls
                .iter()
                .filter(|(u, _)| u == uid)
                .map(|(_, k)| k.as_str())
                .collect();
            assert_eq!(
                keys.into_iter().collect::<Vec<_>>(),
                [key.as_str()],
                "{uid} saw one key"
            );
        }
        let keys: std::collections::BTreeSet<&str> =
            c.creates.iter().map(|(_, k)| k.as_str()).collect();
        assert_eq!(keys.len(), 20, "one key per resource");
    });
    assert!(server.stop().success());
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
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
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
