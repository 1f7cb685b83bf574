//! Tokens: shown once, revocable, never outliving the token that makes them, and guarded by
//! who may make them for whom.

use super::*;

fn tokens_of(principal: &str) -> String {
    format!("/api/v1/principals/{principal}/tokens")
}

/// Asks for a token of `principal`, as the holder of `caller`.
async fn make_token(
    api: &Api,
    caller: Option<&str>,
    principal: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    api.send("POST", &tokens_of(principal), caller, body).await
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A token the admin made for the service account `ci`.
struct CiToken {
    secret: String,
    expires_at: i64,
    id: String,
}

/// A manager (its token), after it made the service account `ci`.
async fn a_manager_with_a_service_account(api: &Api) -> String {
    let manager = api
        .user("boss@example.com", &[(Scope::Org, "manager")])
        .await;
    let (status, _) = api
        .send(
            "POST",
            "/api/v1/service-accounts",
            Some(&manager),
            Some(json!({ "id": "ci" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    manager
}

/// The admin makes `ci` a token for 30 days: its secret is shown, and its id, which lists and
/// the audit log show, tells nothing of the secret.
async fn the_admin_makes_ci_a_token(api: &Api) -> CiToken {
    let thirty_days = Some(json!({ "expires_in_days": 30 }));
    let (status, body) = make_token(api, Some(&api.admin), "ci", thirty_days).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let secret = body["token"].as_str().unwrap().to_string();
    let expires_at = body["expires_at"].as_i64().unwrap();
    assert!(secret.starts_with("wharf_"));
    let id = body["id"].as_str().unwrap().to_string();
    assert!(
        !secret["wharf_".len()..].starts_with(&id),
        "{id} is a prefix of {secret}"
    );
    assert!(!secret.contains(&id), "{id} is in {secret}");
    assert!(
        (expires_at - now() - 30 * 86_400).abs() < 60,
        "{expires_at}"
    );
    CiToken {
        secret,
        expires_at,
        id,
    }
}

/// Asking for longer than the maker lives is refused; asking for nothing gives its expiry.
async fn a_token_makes_no_token_that_outlives_it(api: &Api, ci: &CiToken) {
    let longer = Some(json!({ "expires_in_days": 60 }));
    let refused = make_token(api, Some(&ci.secret), "ci", longer).await;
    assert_problem(
        &refused,
        StatusCode::BAD_REQUEST,
        "would outlive the one that makes it",
    );
    let (status, body) = make_token(api, Some(&ci.secret), "ci", None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["expires_at"], ci.expires_at);
}

/// Tokens live 90 days at most by default, even the admin's (whose own never expires).
async fn tokens_live_90_days_at_most(api: &Api) {
    let admin = Some(api.admin.as_str());
    let a_year = Some(json!({ "expires_in_days": 365 }));
    let refused = make_token(api, admin, "admin", a_year).await;
    assert_problem(&refused, StatusCode::BAD_REQUEST, "90 days");
    let (status, body) = make_token(api, admin, "admin", None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!((body["expires_at"].as_i64().unwrap() - now() - 90 * 86_400).abs() < 60);
}

/// The service account has no roles, yet its token lists its own tokens, none with its
/// secret; returns the id of the one the admin made.
async fn ci_lists_its_tokens_without_secrets(api: &Api, ci: &CiToken) -> String {
    let (status, body) = api
        .send("GET", &tokens_of("ci"), Some(&ci.secret), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body[0].get("token").is_none(),
        "a listed token never shows its secret"
    );
    body.as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == ci.id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn a_manager_may_not_touch_the_admins_tokens(api: &Api, manager: &str) {
    let made = make_token(api, Some(manager), "admin", None).await;
    assert_problem(&made, StatusCode::FORBIDDEN, "another admin");
    let listed = api
        .send("GET", &tokens_of("admin"), Some(manager), None)
        .await;
    assert_problem(&listed, StatusCode::FORBIDDEN, "needs the org role admin");
}

/// The manager revokes the token; it no longer works, and is gone for the admin too.
async fn a_revoked_token_no_longer_works(api: &Api, manager: &str, ci: &CiToken, token_id: &str) {
    let path = format!("{}/{token_id}", tokens_of("ci"));
    assert_eq!(
        api.send("DELETE", &path, Some(manager), None).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = api
        .send("GET", &tokens_of("ci"), Some(&ci.secret), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "the token was revoked");
    assert_eq!(
        api.send("DELETE", &path, Some(&api.admin), None).await.0,
        StatusCode::NOT_FOUND
    );
}

async fn bad_token_requests_name_the_problem(api: &Api) {
    let admin = Some(api.admin.as_str());
    let (status, _) = api.send("GET", &tokens_of("nobody"), admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = make_token(api, admin, "ci", Some(json!({ "expires_in_days": 0 }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let unknown = make_token(api, admin, "ci", Some(json!({ "expires": "soon" }))).await;
    assert_problem(&unknown, StatusCode::BAD_REQUEST, "unknown field `expires`");
}

#[tokio::test]
async fn tokens_are_shown_once_revocable_and_guarded() {
    let api = api().await;
    let manager = a_manager_with_a_service_account(&api).await;

    // Only an admin makes tokens for others: a manager may not (a token is all of its
    // principal's power), even for a principal it manages.
    let thirty_days = Some(json!({ "expires_in_days": 30 }));
    let refused = make_token(&api, Some(&manager), "ci", thirty_days).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "needs the org role admin");
    let ci = the_admin_makes_ci_a_token(&api).await;

    a_token_makes_no_token_that_outlives_it(&api, &ci).await;
    tokens_live_90_days_at_most(&api).await;
    // No one makes a token for another admin, not even an admin.
    let other_admin = api
        .user("root2@example.com", &[(Scope::Org, "admin")])
        .await;
    let refused = make_token(&api, Some(&other_admin), "admin", None).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "another admin");

    let token_id = ci_lists_its_tokens_without_secrets(&api, &ci).await;
    a_manager_may_not_touch_the_admins_tokens(&api, &manager).await;
    a_revoked_token_no_longer_works(&api, &manager, &ci, &token_id).await;
    bad_token_requests_name_the_problem(&api).await;
}
