//! Delivery automation at the API: rules are checked and owned by who last changed
//! them, environment types cap preview environments, the reaper warns and deletes,
//! promotions are checked before anything is stored.

use super::*;
use wharf_api::automation::{ReaperSettings, reap};

async fn shop(api: &Api) {
    let admin = Some(api.admin.as_str());
    let (status, body) = api
        .send("POST", "/api/v1/apps", admin, Some(json!({ "id": "shop" })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let env = json!({ "id": "dev", "env_type": "development" });
    let (status, body) = api
        .send("POST", "/api/v1/apps/shop/envs", admin, Some(env))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn rules_are_checked_and_owned_by_who_changed_them_last() {
    let api = api().await;
    shop(&api).await;
    let admin = Some(api.admin.as_str());
    let rules = "/api/v1/apps/shop/envs/dev/rules";
    let (status, body) = api
        .send(
            "POST",
            rules,
            admin,
            Some(json!({ "id": "r", "image": "a b", "ref": "refs/heads/main",
                         "preview": { "name": "pr-{n}", "ttl": "2 days" } })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let detail = body["detail"].as_str().unwrap();
    for expected in ["/image", "/preview/name: {n} stands for", "/preview/ttl"] {
        assert!(detail.contains(expected), "{expected}: {detail}");
    }
    let rule = json!({ "id": "main", "image": "registry.example.com/shop-*",
                       "ref": "refs/heads/main" });
    let (status, body) = api.send("POST", rules, admin, Some(rule)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["owner"], "admin");

    // A developer who changes the admin's rule makes it theirs: it deploys with the
    // developer's rights from then on, never the admin's.
    let developer = api
        .user(
            "dana@example.com",
            &[(Scope::App(Id::new("shop").unwrap()), "developer")],
        )
        .await;
    let (status, body) = api
        .send(
            "PATCH",
            &format!("{rules}/main"),
            Some(&developer),
            Some(json!({ "image": "registry.example.com/dana/*" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["owner"], "dana@example.com");
    let (_, shown) = api.send("GET", &format!("{rules}/main"), admin, None).await;
    assert_eq!(
        (shown["owner"].clone(), shown["image"].clone()),
        (
            json!("dana@example.com"),
            json!("registry.example.com/dana/*")
        )
    );
    let (status, _) = api
        .send("DELETE", &format!("{rules}/main"), Some(&developer), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn environment_types_cap_previews_and_the_reaper_deletes_expired_ones() {
    let api = api().await;
    shop(&api).await;
    let admin = Some(api.admin.as_str());
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/env-types",
            admin,
            Some(json!({ "id": "preview", "previews": { "max_ttl": "1h", "max_per_app": 1 } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["previews"],
        json!({ "max_ttl": "1h", "max_per_app": 1 })
    );
    let envs = "/api/v1/apps/shop/envs";
    let preview = |id: &str, ttl: &str| json!({ "id": id, "env_type": "preview", "ttl": ttl });
    let (status, body) = api
        .send("POST", envs, admin, Some(preview("pr-1", "2h")))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("allows its previews (1h)"),
        "{body}"
    );
    let (status, body) = api
        .send("POST", envs, admin, Some(preview("pr-1", "1s")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["ttl"].clone(), body["state"].clone()),
        (json!("1s"), json!("active"))
    );
    let (status, body) = api
        .send("POST", envs, admin, Some(preview("pr-2", "30m")))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("has 1 preview environments"),
        "{body}"
    );
    let (status, body) = api
        .send(
            "POST",
            envs,
            admin,
            Some(json!({ "id": "pr-3", "env_type": "preview", "ttl": "soon" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Expired: the reaper warns (once) and deletes it; environments without a time to
    // live stay.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let settings = ReaperSettings {
        interval: std::time::Duration::from_secs(1),
        warn_before: std::time::Duration::from_secs(60),
    };
    reap(&api.state, &settings).await.unwrap();
    reap(&api.state, &settings).await.unwrap();
    let (status, _) = api.send("GET", &format!("{envs}/pr-1"), admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.send("GET", &format!("{envs}/dev"), admin, None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, audit) = api
        .send("GET", "/api/v1/audit?target=env:shop/pr-1", admin, None)
        .await;
    let actions: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["principal"].as_str().unwrap().into(),
            )
        })
        .collect();
    let by_reaper = |a: &str| (a.to_string(), "system:reaper".to_string());
    assert!(
        actions.contains(&by_reaper("environments.expiring")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&by_reaper("environments.delete")),
        "{actions:?}"
    );

    // Expiring within the warning time, not yet expired: warned once, however many rounds.
    let soon = json!({ "id": "pr-w", "env_type": "development", "ttl": "1h" });
    let (status, body) = api.send("POST", envs, admin, Some(soon)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let early = ReaperSettings {
        warn_before: std::time::Duration::from_secs(7200),
        ..settings
    };
    for _ in 0..3 {
        reap(&api.state, &early).await.unwrap();
    }
    let (status, _) = api.send("GET", &format!("{envs}/pr-w"), admin, None).await;
    assert_eq!(status, StatusCode::OK, "not expired: not deleted");
    let (_, audit) = api
        .send("GET", "/api/v1/audit?target=env:shop/pr-w", admin, None)
        .await;
    let warnings = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "environments.expiring")
        .count();
    assert_eq!(warnings, 1, "warned once: {audit}");
}

#[tokio::test]
async fn promotions_are_checked_before_anything_is_stored() {
    let api = api().await;
    shop(&api).await;
    let admin = Some(api.admin.as_str());
    let env = json!({ "id": "staging", "env_type": "development" });
    api.send("POST", "/api/v1/apps/shop/envs", admin, Some(env))
        .await;
    let deployments = "/api/v1/apps/shop/envs/staging/deployments";
    for (body, status, says) in [
        (
            json!({ "promote_from": "staging" }),
            StatusCode::BAD_REQUEST,
            "promote from another one",
        ),
        (
            json!({ "promote_from": "dev" }),
            StatusCode::CONFLICT,
            "there is nothing to promote",
        ),
        (
            json!({ "promote_from": "dev", "images": { "web": "x:1" } }),
            StatusCode::BAD_REQUEST,
            "give no images",
        ),
        (
            json!({ "promote_from": "nope" }),
            StatusCode::NOT_FOUND,
            "environment shop/nope",
        ),
        (
            json!({ "rollback_to": 1, "images": { "web": "x:1" } }),
            StatusCode::BAD_REQUEST,
            "earlier deployment's images exactly",
        ),
    ] {
        let (got, answer) = api
            .send("POST", deployments, admin, Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
    let (_, listed) = api.send("GET", deployments, admin, None).await;
    assert_eq!(listed, json!([]));
}
