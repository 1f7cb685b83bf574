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

#[path = "api/bounds.rs"]
mod bounds;
#[path = "api/deployments.rs"]
mod deployments;
#[path = "api/matrix.rs"]
pub(crate) mod matrix;
#[path = "api/platform.rs"]
mod platform;
#[path = "api/secondary.rs"]
mod secondary;

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

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    let api = api().await;
    assert_eq!(
        api.send("GET", "/healthz", None, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        api.send("GET", "/readyz", None, None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401_with_the_reason() {
    let api = api().await;
    let (status, body) = api.send("GET", "/api/v1/apps", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{body}"
    );
    let (status, body) = api
        .send("GET", "/api/v1/apps", Some("wharf_nope"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "the token is not valid");
}

#[tokio::test]
async fn the_admin_creates_shows_lists_and_deletes_an_app() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/apps",
            admin,
            Some(json!({ "id": "shop", "name": "Shop" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"], "shop");
    assert_eq!(body["created_by"], "admin");
    let (status, body) = api.send("GET", "/api/v1/apps/shop", admin, None).await;
    assert_eq!(
        (status, body["name"].clone()),
        (StatusCode::OK, json!("Shop"))
    );
    let (status, body) = api
        .send("POST", "/api/v1/apps", admin, Some(json!({ "id": "shop" })))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["detail"], "app shop already exists");
    assert_eq!(
        api.send("DELETE", "/api/v1/apps/shop", admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = api.send("GET", "/api/v1/apps/shop", admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "app shop not found");
}

#[tokio::test]
async fn bad_input_is_a_400_that_names_the_problem() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/apps",
            admin,
            Some(json!({ "id": "Shop!" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("id: id \"Shop!\" contains 'S'"),
        "{body}"
    );
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/apps",
            admin,
            Some(json!({ "id": "shop", "colour": "red" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{body}"
    );
    let (status, _) = api.send("GET", "/api/v1/apps/NOPE", admin, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn roles_decide_through_the_policy_chain() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    for id in ["shop", "bank", "mail"] {
        api.send("POST", "/api/v1/apps", admin, Some(json!({ "id": id })))
            .await;
    }
    let shop = Scope::App(Id::new("shop").unwrap());
    let dev = api
        .user(
            "dev@example.com",
            &[(Scope::Org, "member"), (shop, "developer")],
        )
        .await;
    let (status, body) = api.send("GET", "/api/v1/apps", Some(&dev), None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["shop"],
        "a member sees only the apps it has a role on"
    );
    let (status, body) = api
        .send("DELETE", "/api/v1/apps/shop", Some(&dev), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["detail"],
        "apps.delete denied by policy rbac: apps.delete needs the role owner (or higher) on app shop"
    );
    let (status, _) = api
        .send(
            "POST",
            "/api/v1/apps",
            Some(&dev),
            Some(json!({ "id": "new" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let manager = api
        .user("boss@example.com", &[(Scope::Org, "manager")])
        .await;
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/apps",
            Some(&manager),
            Some(json!({ "id": "new" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The creator owns the app it created.
    assert_eq!(
        api.send("DELETE", "/api/v1/apps/new", Some(&manager), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn env_types_are_ops_territory() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/env-types",
            admin,
            Some(json!({ "id": "development" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "bootstrap made it: {body}");
    assert_eq!(
        body["detail"],
        "environment type development already exists"
    );
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/env-types",
            admin,
            Some(json!({ "id": "qa", "description": "qa" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["target"], json!({ "kind": "process" }));
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/env-types",
            admin,
            Some(json!({ "id": "prod", "target": { "kind": "mainframe" } })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["detail"],
        "/target/kind: unknown target \"mainframe\"; expected \"process\" or \"gitops\""
    );
    assert_eq!(body["problems"][0]["path"], "/target/kind");
    let member = api.user("m@example.com", &[(Scope::Org, "member")]).await;
    let (status, body) = api
        .send("GET", "/api/v1/env-types", Some(&member), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["development", "qa"],
        "the member's own attempts were refused"
    );
    let (status, _) = api
        .send(
            "POST",
            "/api/v1/env-types",
            Some(&member),
            Some(json!({ "id": "staging" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .send(
            "DELETE",
            "/api/v1/env-types/development",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn environments_need_an_app_role_and_deployer_on_their_type() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    api.send("POST", "/api/v1/apps", admin, Some(json!({ "id": "shop" })))
        .await;
    for t in ["development", "production"] {
        api.send("POST", "/api/v1/env-types", admin, Some(json!({ "id": t })))
            .await;
    }
    let shop = Scope::App(Id::new("shop").unwrap());
    let dev = Scope::EnvType(Id::new("development").unwrap());
    let alice = api
        .user(
            "alice@example.com",
            &[(shop, "developer"), (dev, "deployer")],
        )
        .await;
    let alice = Some(alice.as_str());

    let (status, body) = api
        .send(
            "POST",
            "/api/v1/apps/shop/envs",
            alice,
            Some(json!({ "id": "pr-1", "env_type": "development" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["created_by"], "alice@example.com");
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/apps/shop/envs",
            alice,
            Some(json!({ "id": "live", "env_type": "production" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .ends_with("needs the role deployer on environment type production"),
        "{body}"
    );
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/apps/shop/envs",
            admin,
            Some(json!({ "id": "x", "env_type": "staging" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["detail"],
        "env_type: there is no environment type staging"
    );
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/apps/nope/envs",
            admin,
            Some(json!({ "id": "x", "env_type": "development" })),
        )
        .await;
    assert_eq!(
        (status, body["detail"].clone()),
        (StatusCode::NOT_FOUND, json!("app nope not found"))
    );

    let (status, body) = api.send("GET", "/api/v1/apps/shop/envs", alice, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["id"], "pr-1");
    let (status, body) = api
        .send("DELETE", "/api/v1/env-types/development", admin, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["detail"],
        "environment type development is in use by 1 environment(s); delete them first"
    );
    assert_eq!(
        api.send("DELETE", "/api/v1/apps/shop/envs/pr-1", alice, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.send("GET", "/api/v1/apps/shop/envs/pr-1", alice, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.send("DELETE", "/api/v1/env-types/development", admin, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn users_and_role_bindings_follow_the_role_model() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    api.send("POST", "/api/v1/apps", admin, Some(json!({ "id": "shop" })))
        .await;
    let manager = api
        .user("boss@example.com", &[(Scope::Org, "manager")])
        .await;
    let manager = Some(manager.as_str());

    let (status, body) = api
        .send(
            "POST",
            "/api/v1/users",
            manager,
            Some(json!({ "id": "carol@example.com" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/users",
            manager,
            Some(json!({ "id": "has space" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A manager grants org roles below admin, but not admin.
    let member =
        json!({ "principal": "carol@example.com", "scope": { "kind": "org" }, "role": "member" });
    assert_eq!(
        api.send("POST", "/api/v1/role-bindings", manager, Some(member))
            .await
            .0,
        StatusCode::CREATED
    );
    let make_admin =
        json!({ "principal": "carol@example.com", "scope": { "kind": "org" }, "role": "admin" });
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/role-bindings",
            manager,
            Some(make_admin.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("needs the org role admin"),
        "{body}"
    );
    assert_eq!(
        api.send("POST", "/api/v1/role-bindings", admin, Some(make_admin))
            .await
            .0,
        StatusCode::CREATED
    );

    // App roles are the app owner's to grant; a role that does not exist is refused.
    let dev = json!({ "principal": "carol@example.com", "scope": { "kind": "app", "id": "shop" }, "role": "developer" });
    let (status, _) = api
        .send("POST", "/api/v1/role-bindings", manager, Some(dev.clone()))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a manager does not own the app"
    );
    assert_eq!(
        api.send("POST", "/api/v1/role-bindings", admin, Some(dev))
            .await
            .0,
        StatusCode::CREATED
    );
    let bad = json!({ "principal": "carol@example.com", "scope": { "kind": "app", "id": "shop" }, "role": "admin" });
    let (status, body) = api
        .send("POST", "/api/v1/role-bindings", admin, Some(bad))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["detail"],
        "role: there is no role \"admin\" on an app; the roles are owner, developer, viewer"
    );

    let (status, body) = api
        .send(
            "GET",
            "/api/v1/users/carol@example.com/role-bindings",
            manager,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 3, "{body}");
    let (status, _) = api
        .send(
            "DELETE",
            "/api/v1/role-bindings?principal=carol@example.com&scope=app:shop&role=developer",
            admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api
        .send(
            "DELETE",
            "/api/v1/role-bindings?principal=carol@example.com&scope=app:shop&role=developer",
            admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["detail"],
        "role binding developer at app:shop for carol@example.com not found"
    );
    let (status, _) = api
        .send(
            "DELETE",
            "/api/v1/role-bindings?principal=x&scope=galaxy&role=y",
            admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tokens_are_shown_once_revocable_and_guarded() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    let manager = api
        .user("boss@example.com", &[(Scope::Org, "manager")])
        .await;
    let manager = Some(manager.as_str());
    let (status, _) = api
        .send(
            "POST",
            "/api/v1/service-accounts",
            manager,
            Some(json!({ "id": "ci" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Only an admin makes tokens for others: a manager may not (a token is all of its
    // principal's power), even for a principal it manages.
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/principals/ci/tokens",
            manager,
            Some(json!({ "expires_in_days": 30 })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("needs the org role admin"),
        "{body}"
    );
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/principals/ci/tokens",
            admin,
            Some(json!({ "expires_in_days": 30 })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ci = body["token"].as_str().unwrap().to_string();
    let ci_expires = body["expires_at"].as_i64().unwrap();
    assert!(ci.starts_with("wharf_"));
    // The id, which lists and the audit log show, tells nothing of the secret.
    let id = body["id"].as_str().unwrap();
    assert!(
        !ci["wharf_".len()..].starts_with(id),
        "{id} is a prefix of {ci}"
    );
    assert!(!ci.contains(id), "{id} is in {ci}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((ci_expires - now - 30 * 86_400).abs() < 60, "{ci_expires}");

    // A token makes no token that outlives it: asking for longer is refused, asking for
    // nothing gives its own expiry.
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/principals/ci/tokens",
            Some(&ci),
            Some(json!({ "expires_in_days": 60 })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("would outlive the one that makes it"),
        "{body}"
    );
    let (status, body) = api
        .send("POST", "/api/v1/principals/ci/tokens", Some(&ci), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["expires_at"], ci_expires);
    // Tokens live 90 days at most by default, even the admin's (whose own never expires).
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/principals/admin/tokens",
            admin,
            Some(json!({ "expires_in_days": 365 })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("90 days"),
        "{body}"
    );
    let (status, body) = api
        .send("POST", "/api/v1/principals/admin/tokens", admin, None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!((body["expires_at"].as_i64().unwrap() - now - 90 * 86_400).abs() < 60);
    // No one makes a token for another admin, not even an admin.
    let other_admin = api
        .user("root2@example.com", &[(Scope::Org, "admin")])
        .await;
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/principals/admin/tokens",
            Some(&other_admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("another admin"),
        "{body}"
    );

    // The new token works (the service account has no roles: it can still list its tokens).
    let (status, body) = api
        .send("GET", "/api/v1/principals/ci/tokens", Some(&ci), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body[0].get("token").is_none(),
        "a listed token never shows its secret"
    );
    let token_id = body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A manager may not touch the admin's tokens.
    let (status, body) = api
        .send("POST", "/api/v1/principals/admin/tokens", manager, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["detail"].as_str().unwrap().contains("another admin"),
        "{body}"
    );
    let (status, body) = api
        .send("GET", "/api/v1/principals/admin/tokens", manager, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("needs the org role admin"),
        "{body}"
    );

    let path = format!("/api/v1/principals/ci/tokens/{token_id}");
    assert_eq!(
        api.send("DELETE", &path, manager, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = api
        .send("GET", "/api/v1/principals/ci/tokens", Some(&ci), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "the token was revoked");
    assert_eq!(
        api.send("DELETE", &path, admin, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = api
        .send("GET", "/api/v1/principals/nobody/tokens", admin, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/principals/ci/tokens",
            admin,
            Some(json!({ "expires_in_days": 0 })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/principals/ci/tokens",
            admin,
            Some(json!({ "expires": "soon" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `expires`"),
        "{body}"
    );
}

#[tokio::test]
async fn every_error_is_a_problem_document() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    // `send` asserts the problem content type on every 4xx.
    let (status, body) = api.send("GET", "/api/v1/nothing-here", admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "route /api/v1/nothing-here not found");
    let (status, body) = api.send("PUT", "/api/v1/apps", admin, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["detail"], "PUT is not allowed on /api/v1/apps");
    let (status, body) = api.send("GET", "/api/v1/apps/%FF", admin, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("UTF-8"), "{body}");
    let (status, body) = api
        .send("DELETE", "/api/v1/role-bindings?principal=x", admin, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().contains("missing field"),
        "{body}"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_and_every_response_has_a_request_id() {
    let api = api().await;
    let big = "x".repeat(33 << 20);
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/apps")
        .header("authorization", format!("Bearer {}", api.admin))
        .header("content-type", "application/json")
        .header("x-request-id", "req-42")
        .body(Body::from(format!("{{\"id\":\"{big}\"}}")))
        .unwrap();
    let response = router(api.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(response.headers()["x-request-id"], "req-42");

    let request = Request::builder()
        .uri("/healthz")
        .body(Body::empty())
        .unwrap();
    let response = router(api.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(
        response.headers()["x-request-id"].len(),
        16,
        "a generated id"
    );
}
