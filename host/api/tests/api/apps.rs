//! Apps: their lifecycle, and who may see and change them.

use super::*;

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
