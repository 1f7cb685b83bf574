//! Outbound events end to end: a receiver started by the test (tests/webhooks/receiver.py)
//! gets each event once, signed, in order; a receiver that is down gets them when it is
//! back; one that never comes back ends in a failed delivery and a disabled webhook; an
//! address the egress rules refuse is never reached.

use crate::serve::start_with;
use crate::support::{Client, wait_for};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_the-test-receivers-shared-secret";

/// The receiver, listening on 127.0.0.1 (at `port`, or one the system picks).
struct Receiver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Receiver {
    fn start(dir: &Path, port: Option<u16>) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/webhooks/receiver.py");
        let (port_file, log) = (dir.join("port"), dir.join("log.jsonl"));
        let _ = std::fs::remove_file(&port_file);
        let mut command = Command::new("python3");
        command.arg(script).arg(&port_file).arg(&log).arg(SECRET);
        if let Some(p) = port {
            command.args(["--port", &p.to_string()]);
        }
        let child = command.spawn().expect("python3 runs the receiver");
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break p;
            }
            assert!(Instant::now() < deadline, "the receiver did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Self { child, port, log }
    }

    fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }

    /// What it received, in order.
    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The events of `env`, as `type subject` (the deployment's number for deployment events).
fn of_env(received: &[Value], env: &str) -> Vec<String> {
    received
        .iter()
        .filter(|e| {
            e["data"]["env"] == env
                || e["subject"]
                    .as_str()
                    .is_some_and(|s| s.ends_with(&format!("/envs/{env}")))
        })
        .map(|e| {
            e["type"]
                .as_str()
                .unwrap()
                .trim_start_matches("dev.wharf.")
                .to_string()
        })
        .collect()
}

#[test]
fn webhooks_get_each_event_once_signed_in_order_and_wait_for_a_receiver_that_is_down() {
    let (data, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = start_with(
        data.path(),
        &[
            ("WHARF_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32"),
            ("WHARF_WEBHOOK_ATTEMPTS", "4"),
            ("WHARF_WEBHOOK_BACKOFF", "1s"),
        ],
    );
    let receiver = Receiver::start(dir.path(), None);
    let wharf = Client::new(&server);
    let platform = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello/platform.yaml");
    wharf.ok(&["platform", "apply", "-f", platform.to_str().unwrap()]);
    wharf.ok(&["apps", "create", "hello"]);
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let created = wharf.ok(&[
        "webhooks",
        "create",
        "--app",
        "hello",
        "--url",
        &url,
        "--events",
        "*",
        "--secret-file",
        secret_file.to_str().unwrap(),
    ]);
    assert!(created.contains("shown this once"), "{created}");
    let hook = wharf.json(&["webhooks", "list", "--app", "hello"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !wharf
            .ok(&["webhooks", "get", &hook, "--app", "hello"])
            .contains(SECRET),
        "the secret is shown once"
    );

    wharf.ok(&["envs", "create", "hello", "dev", "--type", "development"]);
    crate::deploy::deploy_hello(&wharf, "dev");
    wharf.ok(&["envs", "pause", "hello", "dev"]);
    let expected = [
        "environment.created",
        "deployment.started",
        "deployment.succeeded",
        "environment.paused",
    ];
    wait_for("the first events", Duration::from_secs(20), || {
        receiver.received().len() >= expected.len()
    });
    let received = receiver.received();
    assert_eq!(of_env(&received, "dev"), expected, "{received:#?}");
    assert!(received.iter().all(|e| e["valid"] == true), "{received:#?}");
    let deployed = &received[2];
    assert_eq!(deployed["subject"], "deployments/1");
    assert_eq!(
        deployed["headers"]["content-type"],
        "application/cloudevents+json"
    );
    assert_eq!(deployed["headers"]["webhook-id"], deployed["id"]);

    let receiver = down_then_back(&wharf, receiver, dir.path(), &hook, expected.len());
    never_back(&wharf, &receiver);
}

/// While the receiver is down, the events wait; they arrive in order once it is back, each
/// once. Gives the receiver, back.
fn down_then_back(
    wharf: &Client,
    receiver: Receiver,
    dir: &Path,
    hook: &str,
    before: usize,
) -> Receiver {
    let port = receiver.stop();
    wharf.ok(&["envs", "resume", "hello", "dev"]);
    std::thread::sleep(Duration::from_millis(1500));
    let pending = wharf.json(&["webhooks", "deliveries", hook, "--app", "hello"]);
    assert!(pending.to_string().contains("\"pending\""), "{pending}");
    let receiver = Receiver::start(dir, Some(port));
    let all = before + 3;
    wait_for(
        "the events sent while it was down",
        Duration::from_secs(20),
        || receiver.received().len() >= all,
    );
    std::thread::sleep(Duration::from_millis(1000));
    let received = receiver.received();
    assert_eq!(
        of_env(&received, "dev")[before..],
        [
            "environment.resumed",
            "deployment.started",
            "deployment.succeeded"
        ],
        "{received:#?}"
    );
    let ids: std::collections::BTreeSet<&str> =
        received.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), received.len(), "each event once: {received:#?}");
    assert!(received.iter().all(|e| e["valid"] == true));
    let history = wharf.json(&["webhooks", "deliveries", hook, "--app", "hello"]);
    let retried = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["attempts"].as_i64() > Some(1))
        .count();
    assert!(retried >= 1, "{history}");
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered"),
        "{history}"
    );

    receiver
}

/// A receiver that never comes back: a failed delivery, the webhook disabled, no queue
/// growing behind it. An address the egress rules do not allow (127.0.0.2 is not
/// 127.0.0.1/32) is never reached.
fn never_back(wharf: &Client, receiver: &Receiver) {
    let port = receiver.port;
    let gone = wharf.json(&[
        "webhooks",
        "create",
        "--url",
        "http://127.0.0.1:9/hook",
        "--events",
        "*",
    ]);
    let refused = wharf.json(&[
        "webhooks",
        "create",
        "--url",
        &format!("http://127.0.0.2:{port}/"),
        "--events",
        "*",
    ]);
    let (gone, refused) = (
        gone["id"].as_str().unwrap().to_string(),
        refused["id"].as_str().unwrap().to_string(),
    );
    wharf.ok(&["envs", "create", "hello", "qa", "--type", "development"]);
    wait_for("the failed delivery", Duration::from_secs(30), || {
        wharf.json(&["webhooks", "get", &gone])["state"] == "disabled"
            && wharf.json(&["webhooks", "get", &refused])["state"] == "disabled"
    });
    let failed = wharf.json(&["webhooks", "deliveries", &gone]);
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(
        (failed[0]["status"].clone(), failed[0]["attempts"].clone()),
        ("failed".into(), 4.into())
    );
    let reason = wharf.json(&["webhooks", "get", &gone])["disabled_reason"].to_string();
    assert!(reason.contains("4 deliveries failed"), "{reason}");
    let egress = wharf.json(&["webhooks", "deliveries", &refused])[0]["last_error"].to_string();
    assert!(egress.contains("egress rules refuse"), "{egress}");
    wharf.ok(&["envs", "delete", "hello", "qa"]);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        wharf
            .json(&["webhooks", "deliveries", &gone])
            .as_array()
            .unwrap()
            .len(),
        1,
        "no queue grows"
    );
    wait_for("the deletion's event", Duration::from_secs(10), || {
        of_env(&receiver.received(), "qa") == ["environment.created", "environment.deleted"]
    });
}
