//! Users and role bindings: who may grant which role, where.

use super::*;

const CAROL: &str = "carol@example.com";

/// Binds `role` at `scope` to carol, as the holder of `caller`.
async fn bind_carol(
    api: &Api,
    caller: Option<&str>,
    scope: Value,
    role: &str,
) -> (StatusCode, Value) {
    let binding = json!({ "principal": CAROL, "scope": scope, "role": role });
    api.send("POST", "/api/v1/role-bindings", caller, Some(binding))
        .await
}

async fn unbind(api: &Api, query: &str) -> (StatusCode, Value) {
    let path = format!("/api/v1/role-bindings?{query}");
    api.send("DELETE", &path, Some(&api.admin), None).await
}

/// A manager makes users; an id that is not one is refused.
async fn a_manager_makes_carol(api: &Api, manager: Option<&str>) {
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/users",
            manager,
            Some(json!({ "id": CAROL })),
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
}

/// A manager grants org roles below admin, but not admin.
async fn org_roles_below_admin_are_a_managers_to_grant(api: &Api, manager: Option<&str>) {
    let org = json!({ "kind": "org" });
    assert_eq!(
        bind_carol(api, manager, org.clone(), "member").await.0,
        StatusCode::CREATED
    );
    let refused = bind_carol(api, manager, org.clone(), "admin").await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "needs the org role admin");
    assert_eq!(
        bind_carol(api, Some(&api.admin), org, "admin").await.0,
        StatusCode::CREATED
    );
}

/// App roles are the app owner's to grant; a role that does not exist is refused.
async fn app_roles_are_the_owners_to_grant(api: &Api, manager: Option<&str>) {
    let shop = json!({ "kind": "app", "id": "shop" });
    let (status, _) = bind_carol(api, manager, shop.clone(), "developer").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a manager does not own the app"
    );
    let admin = Some(api.admin.as_str());
    assert_eq!(
        bind_carol(api, admin, shop.clone(), "developer").await.0,
        StatusCode::CREATED
    );
    let (status, body) = bind_carol(api, admin, shop, "admin").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["detail"],
        "role: there is no role \"admin\" on an app; the roles are owner, developer, viewer"
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

    a_manager_makes_carol(&api, manager).await;
    org_roles_below_admin_are_a_managers_to_grant(&api, manager).await;
    app_roles_are_the_owners_to_grant(&api, manager).await;

    let (status, body) = api
        .send(
            "GET",
            &format!("/api/v1/users/{CAROL}/role-bindings"),
            manager,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 3, "{body}");
    let developer_on_shop = format!("principal={CAROL}&scope=app:shop&role=developer");
    assert_eq!(
        unbind(&api, &developer_on_shop).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = unbind(&api, &developer_on_shop).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["detail"],
        "role binding developer at app:shop for carol@example.com not found"
    );
    let (status, _) = unbind(&api, "principal=x&scope=galaxy&role=y").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
