//! Environment types are the operators'; environments need a role on their app and
//! `deployer` on their type.

use super::*;

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
        "/target/kind: unknown target \"mainframe\"; expected \"process\", \"gitops\" or \"kubernetes\""
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
