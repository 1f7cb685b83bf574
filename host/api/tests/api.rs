//! The API through its router, as a client sees it: status codes and problem documents.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use wharf_api::auth::{self, bootstrap};
use wharf_api::{AppState, router};
use wharf_core::Id;
use wharf_core::roles::Scope;
use wharf_plugins::{Runtime, RuntimeConfig};
use wharf_store::Store;

#[path = "api/access.rs"]
mod access;
#[path = "api/apps.rs"]
mod apps;
#[path = "api/artefacts.rs"]
mod artefacts;
#[path = "api/automation.rs"]
mod automation;
#[path = "api/bounds.rs"]
mod bounds;
#[path = "api/deployments.rs"]
mod deployments;
#[path = "api/environments.rs"]
mod environments;
#[path = "api/matrix.rs"]
pub(crate) mod matrix;
#[path = "api/platform.rs"]
mod platform;
#[path = "api/problems.rs"]
mod problems;
#[path = "api/secondary.rs"]
mod secondary;
#[path = "api/tokens.rs"]
mod tokens;
#[path = "api/users.rs"]
mod users;

fn rand_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    key
}

struct Api {
    state: AppState,
    admin: String,
    _dir: tempfile::TempDir,
}

/// The first-party plugins, as the binary bundles them.
fn bundled() -> &'static [wharf_artifacts::Bundled] {
    wharf_artifacts::BUNDLED
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("wharf.db")).await.unwrap();
    let runtime = Runtime::new(RuntimeConfig::new(dir.path().join("cache"))).unwrap();
    let bundled = bundled();
    let sealer = wharf_store::secrets::Sealer::new(rand_key());
    let engine = wharf_engine::Settings::new(dir.path().join("envs"));
    let state = wharf_server::start(store.clone(), runtime, sealer, bundled, engine)
        .await
        .unwrap();
    let admin = bootstrap(&store, None)
        .await
        .unwrap()
        .expect("a new store bootstraps");
    assert!(
        bootstrap(&store, None).await.unwrap().is_none(),
        "bootstrap happens once"
    );
    Api {
        state,
        admin,
        _dir: dir,
    }
}

impl Api {
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let problem = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v == "application/problem+json");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if status.is_client_error() || status.is_server_error() {
            assert!(problem, "{status} without a problem document: {value}");
        }
        (status, value)
    }

    /// Sends a JSON body that never ends: it begins with `first` and then waits forever.
    /// The answer, and how many times the server polled the body. A server that reads the
    /// body before answering never answers; after 30 s the call panics saying so.
    async fn send_unending(
        &self,
        path: &str,
        token: &str,
        first: &'static [u8],
    ) -> (StatusCode, Value, usize) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = polls.clone();
        let chunks =
            futures_util::stream::poll_fn(move |_| match counted.fetch_add(1, Ordering::SeqCst) {
                0 => std::task::Poll::Ready(Some(Ok::<_, std::io::Error>(
                    bytes::Bytes::from_static(first),
                ))),
                _ => std::task::Poll::Pending,
            });
        let request = Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from_stream(chunks))
            .unwrap();
        let answered = router(self.state.clone()).oneshot(request);
        let response = tokio::time::timeout(std::time::Duration::from_secs(30), answered)
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer in 30 s: the server waits for the body"))
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value, polls.load(Ordering::SeqCst))
    }

    /// Sends `bytes` as the body, with `content_type`.
    async fn send_bytes(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = router(self.state.clone())
            .oneshot(request.body(Body::from(bytes)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// A user with the given bindings and a token for it.
    async fn user(&self, id: &str, bindings: &[(Scope, &str)]) -> String {
        self.user_with(id, bindings, None).await
    }

    /// [`Api::user`], with a token that expired at `expired_at` (Unix seconds).
    async fn user_expiring(&self, id: &str, bindings: &[(Scope, &str)], expired_at: i64) -> String {
        self.user_with(id, bindings, Some(expired_at)).await
    }

    async fn user_with(
        &self,
        id: &str,
        bindings: &[(Scope, &str)],
        expires_at: Option<i64>,
    ) -> String {
        let token = auth::new_token();
        let (id, hash, token_id) = (id.to_string(), token.hash.clone(), token.id.clone());
        let bindings: Vec<(Scope, String)> = bindings
            .iter()
            .map(|(s, r)| (s.clone(), r.to_string()))
            .collect();
        self.state
            .store
            .transaction(move |tx| {
                wharf_store::auth::create_principal(tx, &id, "user", 1)?;
                for (scope, role) in &bindings {
                    wharf_store::auth::bind_role(tx, &id, scope, role)?;
                }
                wharf_store::auth::create_token(tx, &token_id, &id, &hash, 1, expires_at)
            })
            .await
            .unwrap();
        token.secret
    }
}

/// The `detail` of a problem document, or "" when there is none.
fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

/// Asserts that a response is the problem `status` whose detail contains `part`.
#[track_caller]
fn assert_problem((status, body): &(StatusCode, Value), expected: StatusCode, part: &str) {
    assert_eq!(*status, expected, "{body}");
    assert!(detail(body).contains(part), "{body}");
}
