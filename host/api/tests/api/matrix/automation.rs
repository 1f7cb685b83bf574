//! The matrix's requests for delivery automation: an environment's rules, a plan, pause
//! and resume.

use super::routes::{Payload, Target, V1, score_set};
use serde_json::json;

pub(super) async fn request(t: &Target<'_>) -> (String, Payload) {
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
