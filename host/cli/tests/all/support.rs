//! What the end-to-end tests share: the `wharf` client run as a user runs it against a
//! server, plain requests to the server and to workloads, and test plugins installed
//! through the API.

use crate::serve::{Server, raw_request};
use serde_json::{Value, json};
use std::process::{Command, Output};

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
            url: format!("http://{}", server.addr),
            token: token.to_string(),
            config: tempfile::tempdir().unwrap(),
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

/// `POST`s `body` as the admin; the answer as JSON (null when it is not), which must be a
/// success.
pub(crate) fn post(server: &Server, path: &str, body: Value) -> Value {
    let (status, text) = server.request("POST", path, server.token.as_deref(), &body.to_string());
    assert!((200..300).contains(&status), "POST {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Waits until `done`, at most `timeout`; fails the test naming `what` after that.
pub(crate) fn wait_for(what: &str, timeout: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
