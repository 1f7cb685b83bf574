//! The real servers the drivers are tested against, each started here on loopback with
//! free ports and its own data, stopped when dropped: PowerDNS, moto (S3 and IAM) and
//! PostgreSQL. A test checks what a driver did in the server itself, through these.

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Fails, saying how to install it, unless `program` is installed. The tests that call
/// this are ignored in a plain `cargo test`; `.ci/run` (which installs the servers) runs
/// them, and so does `cargo test -- --ignored` where they are installed.
fn require(program: &str, install: &str) {
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

/// The header a signed S3 request without a body carries (moto checks it, as S3 does).
pub(crate) const EMPTY_SHA256: &str =
    "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `text` percent-encoded for a form.
fn percent(text: &str) -> String {
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
