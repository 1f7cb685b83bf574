//! The bundled drivers for real systems, against the real servers, started here on
//! loopback with free ports: what a driver did is checked in the system itself.
//!
//! A server that is not installed fails the test when CI=true (`.ci/run` installs them);
//! elsewhere the test says what it skipped and how to enable it, and passes.

use crate::deploy::{Client, post};
use crate::serve::start;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Fails, saying how to install it, unless `program` is installed. The tests that call
/// this are ignored in a plain `cargo test`; `.ci/run` (which installs the servers) runs
/// them, and so does `cargo test -- --ignored` where they are installed.
pub(crate) fn require(program: &str, install: &str) {
    assert!(
        Path::new(program).exists(),
        "{program} is not installed; install it with: {install} (.ci/run does)"
    );
}

/// A port free on 127.0.0.1 for both TCP and UDP.
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One HTTP request with headers; the status and the body.
pub(crate) fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(stream, "{head}\r\n{body}").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    Some((
        status,
        response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    ))
}

/// A PowerDNS authoritative server with the sqlite backend and its HTTP API.
pub(crate) struct PowerDns {
    child: Child,
    dir: tempfile::TempDir,
    pub(crate) api: String,
    pub(crate) key: String,
    dns_port: u16,
    web_port: u16,
}

impl PowerDns {
    const SERVER: &'static str = "/usr/sbin/pdns_server";
    const SCHEMA: &'static str = "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql";

    pub(crate) fn start() -> Self {
        let install = "apt-get install pdns-server pdns-backend-sqlite3 bind9-dnsutils sqlite3";
        require(Self::SERVER, install);
        require("/usr/bin/dig", install);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("pdns.db");
        require("/usr/bin/sqlite3", install);
        let schema = std::fs::File::open(Self::SCHEMA).unwrap();
        let made = Command::new("sqlite3")
            .arg(&db)
            .stdin(schema)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let (dns_port, web_port) = (free_port(), free_port());
        let key = "wharf-test-key".to_string();
        let mut server = Self {
            child: Command::new("true").spawn().unwrap(),
            api: format!("http://127.0.0.1:{web_port}"),
            key,
            dns_port,
            web_port,
            dir,
        };
        server.launch();
        server
    }

    /// Starts the server process (again) on the same ports and database.
    pub(crate) fn launch(&mut self) {
        let dir = self.dir.path();
        std::fs::write(
            dir.join("pdns.conf"),
            format!(
                "launch=gsqlite3\ngsqlite3-database={}\nlocal-address=127.0.0.1\nlocal-port={}\n\
                 api=yes\napi-key={}\nwebserver=yes\nwebserver-address=127.0.0.1\nwebserver-port={}\n\
                 webserver-allow-from=127.0.0.0/8\ndaemon=no\nguardian=no\nsocket-dir={}\n\
                 security-poll-suffix=\ndisable-syslog=yes\n",
                dir.join("pdns.db").display(),
                self.dns_port,
                self.key,
                self.web_port,
                dir.display()
            ),
        )
        .unwrap();
        let _ = self.child.wait();
        self.child = Command::new(Self::SERVER)
            .arg(format!("--config-dir={}", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.zones().is_none() {
            assert!(Instant::now() < deadline, "PowerDNS did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server process (its database stays).
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn zones(&self) -> Option<Value> {
        let (status, body) = http(
            "GET",
            &format!("{}/api/v1/servers/localhost/zones", self.api),
            &[("x-api-key", &self.key)],
            "",
        )?;
        (status == 200).then(|| serde_json::from_str(&body).unwrap())
    }

    pub(crate) fn create_zone(&self, zone: &str) {
        let body = json!({ "name": format!("{zone}."), "kind": "Native",
                           "nameservers": [format!("ns1.{zone}.")] });
        let (status, text) = http(
            "POST",
            &format!("{}/api/v1/servers/localhost/zones", self.api),
            &[
                ("x-api-key", &self.key),
                ("content-type", "application/json"),
            ],
            &body.to_string(),
        )
        .unwrap();
        assert_eq!(status, 201, "{text}");
    }

    /// The A records of `name`, by asking the server over DNS.
    pub(crate) fn dig(&self, name: &str) -> String {
        let out = Command::new("dig")
            .args([
                "+short",
                "@127.0.0.1",
                "-p",
                &self.dns_port.to_string(),
                name,
                "A",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// How many record sets the zone has with `name`.
    pub(crate) fn rrsets(&self, zone: &str, name: &str) -> usize {
        let (_, body) = http(
            "GET",
            &format!("{}/api/v1/servers/localhost/zones/{zone}.", self.api),
            &[("x-api-key", &self.key)],
            "",
        )
        .unwrap();
        let zone: Value = serde_json::from_str(&body).unwrap();
        zone["rrsets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] == format!("{name}."))
            .count()
    }
}

impl Drop for PowerDns {
    fn drop(&mut self) {
        self.stop();
    }
}

fn workload(resources: Value) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let file = dir.join("score.yaml");
    let doc = json!({
        "apiVersion": "score.dev/v1b1",
        "metadata": { "name": "web" },
        "containers": { "main": {
            "image": "busybox",
            "command": ["sh", "-c", "echo host=$HOST; exec sleep 600"],
            "variables": { "HOST": "${resources.dns.host}" },
        } },
        "resources": resources,
    });
    std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    file
}

#[test]
#[ignore = "needs PowerDNS: apt-get install pdns-server pdns-backend-sqlite3 bind9-dnsutils sqlite3 (.ci/run does)"]
fn the_dns_driver_manages_a_record_in_a_real_powerdns() {
    let mut pdns = PowerDns::start();
    pdns.create_zone("example.test");
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = Client::new(&server);
    post(
        &server,
        "/api/v1/plugin-installations",
        json!({ "id": "pdns", "plugin": "dns",
                "config": { "values": { "api_url": pdns.api } },
                "grants": { "http": [pdns.api] } }),
    );
    post(&server, "/api/v1/resource-types", json!({ "id": "dns" }));
    post(
        &server,
        "/api/v1/resource-definitions",
        json!({ "id": "dns", "type": "dns", "driver": "pdns",
                "driver_inputs": { "values": { "zone": "example.test" },
                                   "secrets": { "api_key": pdns.key } },
                "criteria": [{}] }),
    );
    wharf.ok(&["apps", "create", "shop"]);
    wharf.ok(&["envs", "create", "shop", "dev", "--type", "development"]);
    let file = workload(json!({ "dns": { "type": "dns", "params": { "address": "192.0.2.10" } } }));
    let deploy = |wharf: &Client| {
        wharf.ok(&[
            "deploy",
            "-f",
            file.to_str().unwrap(),
            "--app",
            "shop",
            "--env",
            "dev",
            "--follow",
        ])
    };
    deploy(&wharf);
    let status = wharf.json(&["status", "shop", "dev"]);
    let host = status["resources"][0]["outputs"]["host"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}"))
        .to_string();
    assert!(host.ends_with(".example.test"), "{host}");
    assert_eq!(pdns.dig(&host), "192.0.2.10", "the record resolves");
    let logs = wharf.ok(&["logs", "shop", "dev", "web"]);
    assert!(
        logs.contains(&format!("host={host}")),
        "the workload got it: {logs}"
    );

    // Again: the same record, once.
    deploy(&wharf);
    let again = wharf.json(&["status", "shop", "dev"]);
    assert_eq!(again["resources"][0]["outputs"]["host"], host.as_str());
    assert_eq!(pdns.rrsets("example.test", &host), 1);

    // Server down: retried until it is back.
    pdns.stop();
    let delta = json!([{ "op": "replace", "path": "/workloads/web/resources/dns/params/address",
                         "value": "192.0.2.20" }])
    .to_string();
    let queued = wharf.ok(&["deploy", "--delta", &delta, "--app", "shop", "--env", "dev"]);
    assert!(queued.contains("Deployment 3"), "{queued}");
    std::thread::sleep(Duration::from_millis(600));
    pdns.launch();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = wharf.json(&["deployments", "get", "shop", "dev", "3"]);
        if d["status"] == "succeeded" {
            break;
        }
        assert!(d["status"] != "failed" && Instant::now() < deadline, "{d}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(pdns.dig(&host), "192.0.2.20");

    // A wrong key fails for good, saying so.
    post(
        &server,
        "/api/v1/resource-definitions",
        json!({ "id": "dns-wrong", "type": "dns", "driver": "pdns",
                "driver_inputs": { "values": { "zone": "example.test" },
                                   "secrets": { "api_key": "not-the-key" } },
                "criteria": [{ "class": "wrong" }] }),
    );
    let wrong = workload(json!({ "dns": { "type": "dns", "class": "wrong" } }));
    wharf.ok(&["envs", "create", "shop", "qa", "--type", "development"]);
    let failed = wharf.fails(&[
        "deploy",
        "-f",
        wrong.to_str().unwrap(),
        "--app",
        "shop",
        "--env",
        "qa",
        "--follow",
    ]);
    assert!(failed.contains("authentication failed"), "{failed}");
    let d = wharf.json(&["deployments", "get", "shop", "qa", "1"]);
    assert!(
        d["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PermissionDenied"),
        "a permanent error: {d}"
    );

    // A set that no longer uses it: deleted once the set serves without it.
    wharf.ok(&["envs", "create", "shop", "pr-1", "--type", "development"]);
    wharf.ok(&[
        "deploy",
        "-f",
        file.to_str().unwrap(),
        "--app",
        "shop",
        "--env",
        "pr-1",
        "--follow",
    ]);
    let status = wharf.json(&["status", "shop", "pr-1"]);
    let preview = status["resources"][0]["outputs"]["host"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}"))
        .to_string();
    assert_ne!(preview, host);
    assert_eq!(pdns.dig(&preview), "192.0.2.10");
    let without = json!([
        { "op": "remove", "path": "/workloads/web/resources/dns" },
        { "op": "replace", "path": "/workloads/web/containers/main/variables/HOST", "value": "none" },
    ])
    .to_string();
    let out = wharf.ok(&[
        "deploy", "--delta", &without, "--app", "shop", "--env", "pr-1", "--follow",
    ]);
    assert!(
        out.contains("deprovisioned what the set no longer uses: dns.default#web.dns"),
        "{out}"
    );
    assert_eq!(pdns.dig(&preview), "", "the record is gone");
    assert_eq!(pdns.rrsets("example.test", &preview), 0);
    assert_eq!(
        pdns.dig(&host),
        "192.0.2.20",
        "another environment's is not"
    );
    let status = wharf.json(&["status", "shop", "pr-1"]);
    assert_eq!(status["resources"], json!([]), "{status}");
    let logs = wharf.ok(&["logs", "shop", "pr-1", "web"]);
    assert!(logs.contains("host=none"), "{logs}");

    // Deleting the environment deletes the record.
    wharf.ok(&["envs", "delete", "shop", "dev"]);
    assert_eq!(pdns.dig(&host), "");
    assert_eq!(pdns.rrsets("example.test", &host), 0);
    assert!(server.stop().success());
}

#[test]
#[ignore = "needs PowerDNS: apt-get install pdns-server pdns-backend-sqlite3 bind9-dnsutils sqlite3 (.ci/run does)"]
fn without_the_grant_the_dns_driver_is_not_granted_and_nothing_is_reached() {
    let pdns = PowerDns::start();
    pdns.create_zone("example.test");
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = Client::new(&server);
    post(
        &server,
        "/api/v1/plugin-installations",
        json!({ "id": "pdns", "plugin": "dns", "config": { "values": { "api_url": pdns.api } } }),
    );
    post(&server, "/api/v1/resource-types", json!({ "id": "dns" }));
    post(
        &server,
        "/api/v1/resource-definitions",
        json!({ "id": "dns", "type": "dns", "driver": "pdns",
                "driver_inputs": { "values": { "zone": "example.test" },
                                   "secrets": { "api_key": pdns.key } },
                "criteria": [{}] }),
    );
    wharf.ok(&["apps", "create", "shop"]);
    wharf.ok(&["envs", "create", "shop", "dev", "--type", "development"]);
    let file = workload(json!({ "dns": { "type": "dns" } }));
    let failed = wharf.fails(&[
        "deploy",
        "-f",
        file.to_str().unwrap(),
        "--app",
        "shop",
        "--env",
        "dev",
        "--follow",
    ]);
    assert!(
        failed.contains(&format!("not granted: http to {}", pdns.api)),
        "{failed}"
    );
    let (_, zone) = http(
        "GET",
        &format!("{}/api/v1/servers/localhost/zones/example.test.", pdns.api),
        &[("x-api-key", &pdns.key)],
        "",
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&zone).unwrap()["rrsets"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "only the zone's SOA and NS: {zone}"
    );
    assert!(server.stop().success());
}

/// The header a signed S3 request without a body carries (moto checks it, as S3 does).
pub(crate) const EMPTY_SHA256: &str =
    "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `text` percent-encoded for a form.
pub(crate) fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Lets everyone pass `dir` (list nothing): what an operator does with a directory whose
/// subdirectories are handed to workloads.
pub(crate) fn passable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
}

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
    let deploy = |env: &str, file: &Path| {
        wharf.run(&[
            "deploy",
            "-f",
            file.to_str().unwrap(),
            "--app",
            "shop",
            "--env",
            env,
            "--follow",
        ])
    };
    for env in ["dev", "kept", "none"] {
        wharf.ok(&["envs", "create", "shop", env, "--type", "development"]);
    }
    let plain = writer(None);
    let out = deploy("dev", &plain);
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
    assert!(deploy("dev", &plain).status.success());
    assert!(greeting.exists());

    // Without the grant: not granted, and nothing made.
    let out = deploy("none", &writer(Some("ungranted")));
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
    assert!(deploy("kept", &writer(Some("kept"))).status.success());
    let status = wharf.json(&["status", "shop", "kept"]);
    let kept = PathBuf::from(status["resources"][0]["outputs"]["path"].as_str().unwrap());
    wharf.ok(&["envs", "delete", "shop", "dev"]);
    wharf.ok(&["envs", "delete", "shop", "kept"]);
    assert!(!dir.exists(), "deprovisioned: removed");
    assert!(kept.exists(), "retain: kept");
    assert!(server.stop().success());
}

/// moto's S3-compatible server (it accepts any credentials and does not check
/// signatures: the signing is tested against AWS's documented example instead).
pub(crate) struct Moto {
    child: Child,
    program: String,
    port: u16,
    pub(crate) url: String,
}

impl Moto {
    pub(crate) fn start() -> Self {
        let venv =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/moto-venv/bin/moto_server");
        let program = venv.to_string_lossy().into_owned();
        require(
            &program,
            "python3 -m venv target/moto-venv && target/moto-venv/bin/pip install 'moto[server]'",
        );
        require("/usr/bin/curl", "apt-get install curl");
        let port = free_port();
        let mut moto = Self {
            child: Command::new("true").spawn().unwrap(),
            program,
            port,
            url: format!("http://127.0.0.1:{port}"),
        };
        moto.launch();
        moto
    }

    /// Starts the server (again) on the same port; it keeps its data in memory, so a new
    /// one starts empty.
    pub(crate) fn launch(&mut self) {
        let _ = self.child.wait();
        self.child = Command::new(&self.program)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while http("GET", &format!("{}/", self.url), &[], "").is_none() {
            assert!(Instant::now() < deadline, "moto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server.
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An object's content, read with credentials (moto refuses anonymous reads).
    pub(crate) fn object(&self, bucket: &str, key: &str) -> Option<String> {
        self.object_with(("test", "test"), bucket, key)
    }

    /// An object's content, read with `credentials`.
    pub(crate) fn object_with(
        &self,
        credentials: (&str, &str),
        bucket: &str,
        key: &str,
    ) -> Option<String> {
        let out = Command::new("curl")
            .args([
                "-sf",
                "-H",
                EMPTY_SHA256,
                "--aws-sigv4",
                "aws:amz:us-east-1:s3",
                "--user",
            ])
            .arg(format!("{}:{}", credentials.0, credentials.1))
            .arg(format!("{}/{bucket}/{key}", self.url))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// One IAM query (`Action=...`) signed with `key`; the status and the XML.
    pub(crate) fn iam(&self, key: (&str, &str), query: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args([
                "-s",
                "-w",
                "\n%{http_code}",
                "--aws-sigv4",
                "aws:amz:us-east-1:iam",
            ])
            .arg("--user")
            .arg(format!("{}:{}", key.0, key.1))
            .args(["-H", "content-type: application/x-www-form-urlencoded"])
            .arg("--data")
            .arg(format!("{query}&Version=2010-05-08"))
            .arg(format!("{}/", self.url))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or((&text, "0"));
        (status.trim().parse().unwrap_or(0), body.to_string())
    }

    /// Makes moto enforce IAM, as a real store does: an admin user with a key is made
    /// while it still lets anyone in, then every request must be signed by a user whose
    /// policies allow it. Returns the admin's key.
    pub(crate) fn enforce_iam(&self) -> (String, String) {
        let anyone = ("bootstrap", "bootstrap");
        let (status, body) = self.iam(anyone, "Action=CreateUser&UserName=wharf-admin");
        assert_eq!(status, 200, "{body}");
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let (status, body) = self.iam(
            anyone,
            &format!(
                "Action=PutUserPolicy&UserName=wharf-admin&PolicyName=all&PolicyDocument={}",
                percent(policy)
            ),
        );
        assert_eq!(status, 200, "{body}");
        let (status, body) = self.iam(anyone, "Action=CreateAccessKey&UserName=wharf-admin");
        assert_eq!(status, 200, "{body}");
        let field = |name: &str| {
            body.split(&format!("<{name}>"))
                .nth(1)
                .and_then(|b| b.split(&format!("</{name}>")).next())
                .unwrap()
                .to_string()
        };
        let key = (field("AccessKeyId"), field("SecretAccessKey"));
        let (status, body) = http(
            "POST",
            &format!("{}/moto-api/reset-auth", self.url),
            &[],
            "0",
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let (status, _) = self.iam(anyone, "Action=ListUsers");
        assert_eq!(status, 403, "anyone is refused now");
        key
    }

    /// The buckets it holds.
    pub(crate) fn buckets(&self) -> Vec<String> {
        self.buckets_with(("test", "test"))
    }

    /// The buckets it holds, listed with `credentials`.
    pub(crate) fn buckets_with(&self, credentials: (&str, &str)) -> Vec<String> {
        let out = Command::new("curl")
            .args([
                "-sf",
                "-H",
                EMPTY_SHA256,
                "--aws-sigv4",
                "aws:amz:us-east-1:s3",
                "--user",
            ])
            .arg(format!("{}:{}", credentials.0, credentials.1))
            .arg(format!("{}/", self.url))
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        body.split("<Name>")
            .skip(1)
            .filter_map(|b| b.split("</Name>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
#[ignore = "needs moto: python3 -m venv target/moto-venv && target/moto-venv/bin/pip install moto[server] (.ci/run does)"]
fn the_s3_driver_makes_a_bucket_the_workload_writes_to() {
    let mut moto = Moto::start();
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = Client::new(&server);
    for (id, grants) in [
        ("store", json!({ "http": [moto.url] })),
        ("store-ungranted", json!({})),
    ] {
        post(
            &server,
            "/api/v1/plugin-installations",
            json!({ "id": id, "plugin": "s3", "config": { "values": { "endpoint": moto.url } },
                    "grants": grants }),
        );
    }
    post(&server, "/api/v1/resource-types", json!({ "id": "s3" }));
    let definition = |id: &str, driver: &str, class: &str, force: bool| {
        json!({ "id": id, "type": "s3", "driver": driver,
                "driver_inputs": { "values": { "force": force },
                                   "secrets": { "access_key_id": "wharf", "secret_access_key": "s3cr3t" } },
                "criteria": [{ "class": class }] })
    };
    post(
        &server,
        "/api/v1/resource-definitions",
        definition("s3", "store", "default", false),
    );
    post(
        &server,
        "/api/v1/resource-definitions",
        definition("s3-ungranted", "store-ungranted", "ungranted", false),
    );
    let file = |class: &str| {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("score.yaml");
        let doc = json!({
            "apiVersion": "score.dev/v1b1",
            "metadata": { "name": "web" },
            "containers": { "main": {
                "image": "busybox",
                "command": ["sh", "-c",
                    "curl -sf --aws-sigv4 aws:amz:$REGION:s3 --user \"$KEY:$SECRET\" -X PUT -H content-type:text/plain \
                     --data-binary written-by-the-workload \"$ENDPOINT/$BUCKET/greeting\" \
                     && echo uploaded; exec sleep 600"],
                "variables": {
                    "ENDPOINT": "${resources.files.endpoint}", "BUCKET": "${resources.files.bucket}",
                    "REGION": "${resources.files.region}", "KEY": "${resources.files.access_key_id}",
                    "SECRET": "${resources.files.secret_access_key}",
                },
            } },
            "resources": { "files": { "type": "s3", "class": class } },
        });
        std::fs::write(&path, doc.to_string()).unwrap();
        path
    };
    wharf.ok(&["apps", "create", "shop"]);
    for env in ["dev", "qa"] {
        wharf.ok(&["envs", "create", "shop", env, "--type", "development"]);
    }
    let plain = file("default");
    let deploy = |env: &str, f: &Path| {
        wharf.run(&[
            "deploy",
            "-f",
            f.to_str().unwrap(),
            "--app",
            "shop",
            "--env",
            env,
            "--follow",
        ])
    };
    let out = deploy("dev", &plain);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = wharf.json(&["status", "shop", "dev"]);
    let bucket = status["resources"][0]["outputs"]["bucket"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}"))
        .to_string();
    assert_eq!(
        status["resources"][0]["secret_outputs"],
        json!(["access_key_id", "secret_access_key"])
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let object = loop {
        let got = moto.object(&bucket, "greeting");
        if let Some(text) = got {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the workload wrote nothing: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        object,
        "written-by-the-workload",
        "{}",
        wharf.ok(&["logs", "shop", "dev"])
    );
    assert!(deploy("dev", &plain).status.success(), "again");
    assert_eq!(moto.buckets(), [bucket.as_str()], "one bucket, adopted");

    // Not granted: nothing reached.
    let out = deploy("qa", &file("ungranted"));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&format!("not granted: http to {}", moto.url)),
        "{text}"
    );
    assert_eq!(moto.buckets().len(), 1);

    // A bucket with an object is not deleted unless the definition says force.
    let out = wharf.run(&["envs", "delete", "shop", "dev"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("is not empty"),
        "{text}"
    );
    assert_eq!(moto.buckets(), [bucket.as_str()]);
    let (status, body) = server.request(
        "PUT",
        "/api/v1/resource-definitions/s3",
        server.token.as_deref(),
        &definition("s3", "store", "default", true).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    wharf.ok(&["envs", "delete", "shop", "dev"]);
    assert!(moto.buckets().is_empty(), "deleted with what it held");

    // Server down: retried, and done once it is back.
    moto.stop();
    wharf.ok(&["envs", "create", "shop", "later", "--type", "development"]);
    let out = std::thread::scope(|s| {
        let deploying = s.spawn(|| deploy("later", &plain));
        std::thread::sleep(Duration::from_millis(300));
        moto.launch();
        deploying.join().unwrap()
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("retrying"), "{text}");
    assert_eq!(moto.buckets().len(), 1, "made once it was back");
    assert!(server.stop().success());
}

/// A PostgreSQL server of its own, with SCRAM-SHA-256 for every login.
pub(crate) struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub(crate) port: u16,
    pub(crate) password: String,
}

impl Postgres {
    pub(crate) fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| versions.filter_map(Result::ok).map(|e| e.path()).max())
            .map(|v| v.join("bin"))
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        let initdb = bin.join("initdb");
        require(initdb.to_str().unwrap(), "apt-get install postgresql");
        require("/usr/bin/psql", "apt-get install postgresql-client");
        let dir = tempfile::tempdir().unwrap();
        let password = "admin-secret-42".to_string();
        std::fs::write(dir.path().join("pw"), &password).unwrap();
        let server = Self {
            port: free_port(),
            bin,
            dir,
            password,
        };
        if Self::root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(server.dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = server.dir.path().join("data");
        let init = server
            .as_postgres(&server.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "scram-sha-256", "--pwfile"])
            .arg(server.dir.path().join("pw"))
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        server.launch();
        server
    }

    fn root() -> bool {
        // SAFETY: geteuid has no preconditions and no effects.
        unsafe { libc_geteuid() == 0 }
    }

    /// `program` as the `postgres` user when the tests run as root (initdb refuses root).
    fn as_postgres(&self, program: &Path) -> Command {
        if Self::root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    pub(crate) fn launch(&self) {
        let out = self
            .as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-o")
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {}",
                self.port,
                self.dir.path().display()
            ))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn stop(&self) {
        let _ = self
            .as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    /// One statement as the admin, in `database`; its rows as `psql -tA` prints them.
    pub(crate) fn sql(&self, database: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .arg(format!(
                "postgres://postgres:{}@127.0.0.1:{}/{database}",
                self.password, self.port
            ))
            .args(["-tAc", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
#[ignore = "needs PostgreSQL: apt-get install postgresql (.ci/run does)"]
fn the_postgres_driver_gives_the_workload_a_database_of_its_own() {
    let pg = Postgres::start();
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = Client::new(&server);
    let address = format!("127.0.0.1:{}", pg.port);
    // A listener nothing is granted to: it must see no connection.
    let bystander = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    bystander.set_nonblocking(true).unwrap();
    let bystander_port = bystander.local_addr().unwrap().port();
    for (id, port, grants) in [
        ("pg", pg.port, json!({ "sockets": [address] })),
        // Granted another address: the connection to the listener is what is refused.
        (
            "pg-ungranted",
            bystander_port,
            json!({ "sockets": [address] }),
        ),
    ] {
        post(
            &server,
            "/api/v1/plugin-installations",
            json!({ "id": id, "plugin": "postgres",
                    "config": { "values": { "host": "127.0.0.1", "port": port } },
                    "grants": grants }),
        );
    }
    post(
        &server,
        "/api/v1/resource-types",
        json!({ "id": "postgres" }),
    );
    for (id, driver, class, password) in [
        ("postgres", "pg", "default", pg.password.as_str()),
        ("postgres-wrong", "pg", "wrong", "not-the-password"),
        (
            "postgres-ungranted",
            "pg-ungranted",
            "ungranted",
            pg.password.as_str(),
        ),
    ] {
        post(
            &server,
            "/api/v1/resource-definitions",
            json!({ "id": id, "type": "postgres", "driver": driver,
                    "driver_inputs": { "secrets": { "password": password } },
                    "criteria": [{ "class": class }] }),
        );
    }
    let file = |class: &str| {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("score.yaml");
        let doc = json!({
            "apiVersion": "score.dev/v1b1",
            "metadata": { "name": "web" },
            "containers": { "main": {
                "image": "busybox",
                "command": ["sh", "-c",
                    "echo \"url-hash $(printf %s \"$DATABASE_URL\" | sha256sum | cut -c1-16)\"; \
                     psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -qc \
                     'CREATE TABLE IF NOT EXISTS visits (n int); INSERT INTO visits VALUES (1)' \
                     && echo \"visit recorded as $DB_USER\"; exec sleep 600"],
                "variables": { "DATABASE_URL": "${resources.db.url}", "DB_USER": "${resources.db.username}",
                               "RUN": "1" },
            } },
            "resources": { "db": { "type": "postgres", "class": class } },
        });
        std::fs::write(&path, doc.to_string()).unwrap();
        path
    };
    wharf.ok(&["apps", "create", "shop"]);
    for env in ["dev", "qa", "none"] {
        wharf.ok(&["envs", "create", "shop", env, "--type", "development"]);
    }
    let deploy = |env: &str, f: &Path| {
        wharf.run(&[
            "deploy",
            "-f",
            f.to_str().unwrap(),
            "--app",
            "shop",
            "--env",
            env,
            "--follow",
        ])
    };
    let logs_with = |needle: &str, times: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let logs = wharf.ok(&["logs", "shop", "dev", "web"]);
            if logs.matches(needle).count() >= times {
                return logs;
            }
            assert!(Instant::now() < deadline, "no {needle:?} in:\n{logs}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(deploy("dev", &file("default")).status.success());
    let status = wharf.json(&["status", "shop", "dev"]);
    let db = status["resources"][0]["outputs"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}"))
        .to_string();
    let db = db.as_str();
    assert!(db.starts_with("shop_dev_web_db_"), "{db}");
    logs_with(&format!("visit recorded as {db}"), 1);
    assert_eq!(pg.sql(db, "SELECT count(*) FROM visits"), "1");
    assert_eq!(
        pg.sql(
            "postgres",
            &format!("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db}'")
        ),
        db,
        "the role owns its database"
    );

    // Redeploy (the workload restarted by a changed variable): the same database and
    // credentials.
    let delta = json!([{ "op": "replace", "path": "/workloads/web/containers/main/variables/RUN",
                         "value": "2" }])
    .to_string();
    assert!(
        wharf
            .run(&[
                "deploy", "--delta", &delta, "--app", "shop", "--env", "dev", "--follow"
            ])
            .status
            .success()
    );
    let logs = logs_with(&format!("visit recorded as {db}"), 2);
    let hashes: std::collections::BTreeSet<&str> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("url-hash "))
        .collect();
    assert_eq!(hashes.len(), 1, "the credentials did not change: {logs}");
    assert_eq!(pg.sql(db, "SELECT count(*) FROM visits"), "2");
    assert_eq!(
        pg.sql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'")
        ),
        "1"
    );

    // Server down: retryable, then done once it is back.
    pg.stop();
    let delta = json!([{ "op": "replace", "path": "/workloads/web/containers/main/variables/RUN",
                         "value": "3" }])
    .to_string();
    wharf.ok(&["deploy", "--delta", &delta, "--app", "shop", "--env", "dev"]);
    std::thread::sleep(Duration::from_millis(600));
    pg.launch();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = wharf.json(&["deployments", "get", "shop", "dev", "3"]);
        if d["status"] == "succeeded" {
            break;
        }
        assert!(d["status"] != "failed" && Instant::now() < deadline, "{d}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A wrong admin password: a permanent error that says so.
    let out = deploy("qa", &file("wrong"));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("authentication failed"),
        "{text}"
    );
    let d = wharf.json(&["deployments", "get", "shop", "qa", "1"]);
    assert!(
        d["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PermissionDenied"),
        "{d}"
    );

    // Not granted: refused before a connection is made.
    let out = deploy("none", &file("ungranted"));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&format!(
            "not granted: tcp connect to 127.0.0.1:{bystander_port}"
        )),
        "{text}"
    );
    assert!(
        bystander.accept().is_err(),
        "the ungranted listener saw no connection"
    );

    // Deleting the environment drops the database and the role.
    wharf.ok(&["envs", "delete", "shop", "dev"]);
    assert_eq!(
        pg.sql(
            "postgres",
            &format!(
                "SELECT (SELECT count(*) FROM pg_database WHERE datname = '{db}') + \
                    (SELECT count(*) FROM pg_roles WHERE rolname = '{db}')"
            )
        ),
        "0"
    );
    assert!(server.stop().success());
}

/// examples/shop as its README runs it (`wharf up examples/shop`), with platform.yaml
/// pointed at the servers started here: a visit is counted in the database, a receipt put
/// in the bucket, and the host name resolves.
#[test]
#[ignore = "needs PostgreSQL, PowerDNS and moto (.ci/run installs them)"]
fn the_shop_example_runs_on_real_servers() {
    let (pg, pdns, moto) = (Postgres::start(), PowerDns::start(), Moto::start());
    pdns.create_zone("shop.test");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("shop");
    std::fs::create_dir(&app).unwrap();
    for file in ["score.yaml", "shop.py"] {
        std::fs::copy(example.join(file), app.join(file)).unwrap();
    }
    let mut platform = std::fs::read_to_string(example.join("platform.yaml")).unwrap();
    for (from, to) in [
        ("127.0.0.1:5432", format!("127.0.0.1:{}", pg.port)),
        ("port: 5432", format!("port: {}", pg.port)),
        ("admin-secret", pg.password.clone()),
        ("http://127.0.0.1:8081", pdns.api.clone()),
        ("wharf-example-key", pdns.key.clone()),
        ("http://127.0.0.1:5000", moto.url.clone()),
    ] {
        assert!(platform.contains(from), "platform.yaml has {from}");
        platform = platform.replace(from, &to);
    }
    std::fs::write(app.join("platform.yaml"), platform).unwrap();

    let data = tempfile::tempdir().unwrap();
    let logs = || {
        let dir = data.path().join("envs/shop/dev/logs");
        std::fs::read_dir(&dir)
            .map(|files| {
                files
                    .filter_map(Result::ok)
                    .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    };
    let visit = |url: &str, n: u32| {
        let (status, body) = crate::deploy::get(url)
            .unwrap_or_else(|| panic!("the shop answers at {url}; its log:\n{}", logs()));
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains(&format!("visits so far (from the database): {n}\n")),
            "{body}"
        );
        body
    };
    let count = |sql: &str| pg.sql("postgres", sql);
    let mut up = Up::start(data.path(), &app);
    visit(&up.url, 1);
    let resources: Value =
        serde_json::from_str(&up.wharf(&["status", "shop", "dev", "-o", "json"])).unwrap();
    let db = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uid"].as_str().unwrap().starts_with("postgres"))
        .unwrap()["outputs"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let db = db.as_str();
    assert!(db.starts_with("shop_dev_shop_db_"), "{db}");
    let body = visit(&up.url, 2);
    let field = |prefix: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {body}"))
            .to_string()
    };
    let host = field("Welcome to the shop at ");
    assert!(host.ends_with(".shop.test"), "{host}");
    assert_eq!(pdns.dig(&host), "127.0.0.1");
    let bucket = field("receipts in bucket ");
    assert_eq!(moto.object(&bucket, "visits/2").as_deref(), Some("visit 2"));
    assert_eq!(
        pg.sql(db, "SELECT count(*) FROM visits"),
        "2",
        "the visits are in the shop's own database"
    );
    let status = up.wharf(&["status", "shop", "dev"]);
    assert!(
        status.contains(&format!("host={host}")) && status.contains("url=(secret)"),
        "outputs shown, secrets by name only: {status}"
    );

    // Stopped and started again: deployed again, onto the same database, record and bucket.
    up.stop();
    assert!(crate::deploy::get(&up.url).is_none(), "stopped with Wharf");
    let up = Up::start(data.path(), &app);
    visit(&up.url, 3);
    assert_eq!(
        count(&format!(
            "SELECT (SELECT count(*) FROM pg_database WHERE datname = '{db}') || ',' || \
             (SELECT count(*) FROM pg_roles WHERE rolname = '{db}')"
        )),
        "1,1"
    );
    let zone = "shop.test";
    assert_eq!(pdns.rrsets(zone, &host), 1);
    assert_eq!(moto.buckets(), std::slice::from_ref(&bucket));
    assert_eq!(moto.object(&bucket, "visits/3").as_deref(), Some("visit 3"));

    // Deleting the environment removes them from the servers.
    up.wharf(&["envs", "delete", "shop", "dev"]);
    assert_eq!(
        count(&format!(
            "SELECT (SELECT count(*) FROM pg_database WHERE datname = '{db}') + \
             (SELECT count(*) FROM pg_roles WHERE rolname = '{db}')"
        )),
        "0"
    );
    assert_eq!(pdns.dig(&host), "");
    assert_eq!(pdns.rrsets(zone, &host), 0);
    assert!(moto.buckets().is_empty());
    assert!(
        crate::deploy::get(&up.url).is_none(),
        "the workload is gone"
    );
}

/// `wharf up DIR` running: where the app answers, and the login it printed.
struct Up {
    child: Child,
    url: String,
    server: String,
    token: String,
}

impl Up {
    fn start(data: &Path, app: &Path) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .arg("--data-dir")
            .arg(data)
            .arg("up")
            .arg(app)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        let errors = child.stderr.take().unwrap();
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(errors).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let (mut url, mut login) = (None, None);
        let mut seen = String::new();
        while url.is_none() || login.is_none() {
            let line = lines_rx
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("wharf up said no URL and login:\n{seen}"));
            if let Some(u) = line.strip_prefix("shop answers at ") {
                url = Some(u.trim().to_string());
            }
            if let Some(l) = line.strip_prefix("Use the CLI with: wharf login --server ") {
                let (server, token) = l.split_once(" --token ").unwrap();
                login = Some((server.to_string(), token.trim().to_string()));
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        std::thread::spawn(move || for _ in lines_rx {});
        let (server, token) = login.unwrap();
        Self {
            child,
            url: url.unwrap(),
            server,
            token,
        }
    }

    /// A CLI command against it; its standard output, which must succeed.
    fn wharf(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args(args)
            .env("WHARF_SERVER", &self.server)
            .env("WHARF_TOKEN", &self.token)
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "wharf {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGTERM, which must be a clean stop.
    fn stop(&mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Up {
    /// A test that fails halfway leaves no server (nor its workloads) running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}
