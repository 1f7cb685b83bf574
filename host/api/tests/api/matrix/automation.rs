//! The matrix's requests for delivery automation: an environment's rules, a plan, pause
//! and resume, webhooks.

use super::routes::{Payload, Target, V1, score_set};
use axum::http::StatusCode;
use serde_json::json;

/// The routes of delivery automation: method, path as registered, the action.
#[rustfmt::skip]
pub(super) const ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/api/v1/apps/{app}/envs/{env}/rules", Some("automation-rules.list")),
    ("POST", "/api/v1/apps/{app}/envs/{env}/rules", Some("automation-rules.create")),
    ("GET", "/api/v1/apps/{app}/envs/{env}/rules/{rule}", Some("automation-rules.get")),
    ("PATCH", "/api/v1/apps/{app}/envs/{env}/rules/{rule}", Some("automation-rules.update")),
    ("DELETE", "/api/v1/apps/{app}/envs/{env}/rules/{rule}", Some("automation-rules.delete")),
    ("POST", "/api/v1/apps/{app}/envs/{env}/plan", Some("deployments.list")),
    ("POST", "/api/v1/apps/{app}/envs/{env}/pause", Some("environments.pause")),
    ("POST", "/api/v1/apps/{app}/envs/{env}/resume", Some("environments.resume")),
    ("GET", "/api/v1/webhooks", Some("webhooks.list")),
    ("POST", "/api/v1/webhooks", Some("webhooks.create")),
    ("GET", "/api/v1/webhooks/{webhook}", Some("webhooks.get")),
    ("PATCH", "/api/v1/webhooks/{webhook}", Some("webhooks.update")),
    ("DELETE", "/api/v1/webhooks/{webhook}", Some("webhooks.delete")),
    ("GET", "/api/v1/webhooks/{webhook}/deliveries", Some("webhooks.get")),
    ("GET", "/api/v1/apps/{app}/webhooks", Some("webhooks.list")),
    ("POST", "/api/v1/apps/{app}/webhooks", Some("webhooks.create")),
    ("GET", "/api/v1/apps/{app}/webhooks/{webhook}", Some("webhooks.get")),
    ("PATCH", "/api/v1/apps/{app}/webhooks/{webhook}", Some("webhooks.update")),
    ("DELETE", "/api/v1/apps/{app}/webhooks/{webhook}", Some("webhooks.delete")),
    ("GET", "/api/v1/apps/{app}/webhooks/{webhook}/deliveries", Some("webhooks.get")),
];

pub(super) async fn request(t: &Target<'_>) -> (String, Payload) {
    if t.route.contains("/webhooks") {
        return webhooks(t).await;
    }
    let app = t.app;
    let env = format!("{V1}/apps/{app}/envs/e");
    let rule = json!({ "id": "r", "image": "registry.example.com/shop-*",
                       "ref": "refs/heads/main" });
    match (t.method, t.route) {
        ("GET", "/api/v1/apps/{app}/envs/{env}/rules") => (format!("{env}/rules"), Payload::None),
        ("POST", "/api/v1/apps/{app}/envs/{env}/rules") => {
            (format!("{env}/rules"), Payload::Json(rule))
        }
        ("GET" | "DELETE", "/api/v1/apps/{app}/envs/{env}/rules/{rule}") => {
            t.prepare(&format!("apps/{app}/envs/e/rules"), rule).await;
            (format!("{env}/rules/r"), Payload::None)
        }
        ("PATCH", "/api/v1/apps/{app}/envs/{env}/rules/{rule}") => {
            t.prepare(&format!("apps/{app}/envs/e/rules"), rule).await;
            (
                format!("{env}/rules/r"),
                Payload::Json(json!({ "paused": true })),
            )
        }
        ("POST", "/api/v1/apps/{app}/envs/{env}/plan") => (
            format!("{env}/plan"),
            Payload::Json(score_set("web", "serve")),
        ),
        ("POST", "/api/v1/apps/{app}/envs/{env}/pause") => (format!("{env}/pause"), Payload::None),
        ("POST", "/api/v1/apps/{app}/envs/{env}/resume") => {
            t.prepare(&format!("apps/{app}/envs/e/pause"), json!({}))
                .await;
            (format!("{env}/resume"), Payload::None)
        }
        _ => t.unknown(),
    }
}

/// Webhooks, org-wide and of the case's app: a case that acts on one creates its own (the
/// server makes its id). No event happens to them, so nothing is delivered.
async fn webhooks(t: &Target<'_>) -> (String, Payload) {
    let collection = if t.route.starts_with("/api/v1/apps/") {
        format!("{V1}/apps/{}/webhooks", t.app)
    } else {
        format!("{V1}/webhooks")
    };
    let hook = json!({ "url": format!("https://hooks.example.com/{}", t.n), "events": ["*"] });
    if !t.route.starts_with("/api/v1/apps/") {
        // The org may have 20 webhooks: each case starts from none.
        let admin = Some(t.api.admin.as_str());
        let (_, held) = t.api.send("GET", &collection, admin, None).await;
        for w in held.as_array().into_iter().flatten() {
            let path = format!("{collection}/{}", w["id"].as_str().unwrap());
            t.api.send("DELETE", &path, admin, None).await;
        }
    }
    let rest = t
        .route
        .rsplit_once("/webhooks")
        .map_or("", |(_, rest)| rest);
    match (t.method, rest) {
        ("GET", "") => (collection, Payload::None),
        ("POST", "") => (collection, Payload::Json(hook)),
        ("GET" | "PATCH" | "DELETE", "/{webhook}") | ("GET", "/{webhook}/deliveries") => {
            let (status, created) = t
                .api
                .send("POST", &collection, Some(&t.api.admin), Some(hook))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            let path = format!("{collection}/{}", created["id"].as_str().unwrap());
            match (t.method, rest) {
                ("PATCH", _) => (path, Payload::Json(json!({ "active": false }))),
                (_, "/{webhook}/deliveries") => (format!("{path}/deliveries"), Payload::None),
                _ => (path, Payload::None),
            }
        }
        _ => t.unknown(),
    }
}
