//! `wharf serve`, run as an operator runs it: first start, a few requests over real HTTP,
//! SIGTERM, and a restart on the same data directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: String,
    pub(crate) token: Option<String>,
    /// What the server wrote to stderr after it started serving (its log).
    pub(crate) log: std::sync::Arc<std::sync::Mutex<String>>,
}

pub(crate) fn start(data: &std::path::Path) -> Server {
    start_with(data, &[])
}

/// [`start`], with more variables in the server's environment.
pub(crate) fn start_with(data: &std::path::Path, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wharf serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut token = None;
    let addr = loop {
        let line = lines.next().expect("wharf serve exited early").unwrap();
        if let Some(t) = line.trim().strip_prefix("wharf_") {
            token.get_or_insert(format!("wharf_{t}"));
        }
        if let Some(addr) = line.strip_prefix("Wharf is serving on http://") {
            break addr.to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe, keeping what it logs.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut log = kept.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    Server {
        child,
        addr,
        token,
        log,
    }
}

impl Drop for Server {
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

impl Server {
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        raw_request(&self.addr, method, path, token, body).expect("the server answers")
    }

    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

/// One HTTP/1.1 request on a new connection; None when the server cannot be reached or
/// hangs up mid-answer.
pub(crate) fn raw_request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

#[test]
fn first_start_bootstraps_an_admin_and_state_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let token = server
        .token
        .clone()
        .expect("the first start prints the admin token");
    assert_eq!(server.request("GET", "/healthz", None, "").0, 200);
    assert_eq!(server.request("GET", "/api/v1/apps", None, "").0, 401);
    // What it keeps is its own: the data directory, the store (and its log) and the key.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| {
            std::fs::metadata(data.path().join(name))
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(""), 0o700, "the data directory");
        for file in [
            "wharf.db",
            "wharf.db-wal",
            "secret.key",
            "plugin-cache/cache.key",
        ] {
            assert_eq!(mode(file), 0o600, "{file}");
        }
    }
    let (status, body) = server.request("POST", "/api/v1/apps", Some(&token), r#"{"id":"shop"}"#);
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.request("GET", "/api/v1/env-types/development", Some(&token), "");
    assert_eq!(
        status, 200,
        "a new Wharf has the development environment type"
    );
    assert!(body.contains(r#""target":{"kind":"process"}"#), "{body}");
    assert!(server.stop().success(), "SIGTERM is a clean shutdown");

    let server = start(data.path());
    assert!(
        server.token.is_none(),
        "the token is shown only on the first start"
    );
    let (status, body) = server.request("GET", "/api/v1/apps/shop", Some(&token), "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"created_by\":\"admin\""), "{body}");
    assert!(server.stop().success());
}

#[test]
fn the_config_file_sets_what_flags_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-config");
    let config = dir.path().join("wharf.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("WHARF_DATA_DIR")
        .env_remove("WHARF_LISTEN")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let serving = lines
        .map(Result::unwrap)
        .find(|l| l.starts_with("Wharf is serving on"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(serving.is_some(), "the server started");
    assert!(
        data.join("wharf.db").exists(),
        "the data directory is the config file's"
    );

    std::fs::write(&config, "listen = \"127.0.0.1:0\"\ncolour = \"red\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not valid") && stderr.contains("colour"),
        "{stderr}"
    );
}
