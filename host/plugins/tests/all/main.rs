//! Integration tests of the plugin runtime, against components built from source in
//! `tests/plugins/` (one test binary, to keep link time down).

mod firstparty;
mod hostile;
mod install;
mod kinds;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tempfile::TempDir;
use wharf_plugins::{
    DriverPlugin, DriverRequest, Kind, Manifest, Plugin, PolicyPlugin, Runtime, RuntimeConfig,
    TransformerPlugin,
};

/// A runtime with its cache in a fresh temporary directory.
pub(crate) fn runtime() -> (Runtime, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(RuntimeConfig::new(dir.path().join("cache"))).unwrap();
    (rt, dir)
}

pub(crate) async fn install(rt: &Runtime, path: &str, manifest: Manifest) -> Plugin {
    rt.install(&wharf_artifacts::read(path), manifest)
        .await
        .unwrap_or_else(|e| panic!("install {path}: {e}"))
}

pub(crate) async fn driver(rt: &Runtime, path: &str, manifest: Manifest) -> DriverPlugin {
    match install(rt, path, manifest).await {
        Plugin::Driver(d) => d,
        _ => panic!("not a driver"),
    }
}

pub(crate) async fn policy(rt: &Runtime) -> PolicyPlugin {
    let manifest = Manifest::new("test-policy", Kind::Policy);
    match install(rt, wharf_artifacts::TEST_POLICY, manifest).await {
        Plugin::Policy(p) => p,
        _ => panic!("not a policy"),
    }
}

pub(crate) async fn transformer(rt: &Runtime) -> TransformerPlugin {
    let manifest = Manifest::new("test-transformer", Kind::Transformer);
    match install(rt, wharf_artifacts::TEST_TRANSFORMER, manifest).await {
        Plugin::Transformer(t) => t,
        _ => panic!("not a transformer"),
    }
}

pub(crate) fn request(params: serde_json::Value) -> DriverRequest {
    serde_json::from_value(serde_json::json!({
        "context": { "app": "shop", "env": "dev", "env_type": "development",
                     "resource_id": "db", "resource_type": "echo", "class": "default" },
        "params": params,
        "config": { "values": { "host": "db.internal" }, "secrets": { "password": "s3cret" } },
        "idempotency_key": "k-1",
    }))
    .unwrap()
}

/// A loopback HTTP server that answers every request with `hello` and counts the
/// connections it accepted.
pub(crate) struct Loopback {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) connections: Arc<AtomicUsize>,
}

impl Loopback {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                        )
                        .await;
                });
            }
        });
        Self { addr, connections }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn accepted(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}
