//! Artefacts: what CI pushes, how a push is checked, and who may push.

use super::*;

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

#[tokio::test]
async fn ci_pushes_an_image_once_however_often_it_is_pushed_and_lists_it_by_ref() {
    let api = api().await;
    let ci = api.user("ci", &[(Scope::Org, "member")]).await;
    let ci = Some(ci.as_str());
    let image = format!("registry.example.com/shop/api:1.4.2@{}", digest(1));
    let push = |git_ref: &str| json!({ "image": image, "ref": git_ref, "commit": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567" });
    let (status, first) = api
        .send(
            "POST",
            "/api/v1/artefacts",
            ci,
            Some(push("refs/heads/main")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["repository"], "registry.example.com/shop/api");
    assert_eq!(
        first["image"],
        format!("registry.example.com/shop/api@{}", digest(1))
    );
    assert_eq!(
        (first["tag"].as_str(), first["pushed_by"].as_str()),
        (Some("1.4.2"), Some("ci"))
    );
    let (status, again) = api
        .send(
            "POST",
            "/api/v1/artefacts",
            ci,
            Some(push("refs/tags/v1.4.2")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the same image: {again}");
    assert_eq!(
        (again["id"].clone(), again["pushes"].clone()),
        (first["id"].clone(), json!(2))
    );
    assert_eq!(again["ref"], "refs/tags/v1.4.2");
    let other = json!({ "image": format!("registry.example.com/web@{}", digest(2)), "ref": "refs/heads/main" });
    let (status, _) = api.send("POST", "/api/v1/artefacts", ci, Some(other)).await;
    assert_eq!(status, StatusCode::CREATED);

    let (_, all) = api.send("GET", "/api/v1/artefacts", ci, None).await;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let (_, shop) = api
        .send(
            "GET",
            "/api/v1/artefacts?repository=registry.example.com/shop/",
            ci,
            None,
        )
        .await;
    assert_eq!(shop.as_array().unwrap().len(), 1, "{shop}");
    let (_, main) = api
        .send("GET", "/api/v1/artefacts?ref=refs/heads/main", ci, None)
        .await;
    assert_eq!(main[0]["repository"], "registry.example.com/web", "{main}");
    let (_, page) = api.send("GET", "/api/v1/artefacts?limit=1", ci, None).await;
    let (_, next) = api
        .send(
            "GET",
            &format!("/api/v1/artefacts?limit=1&after={}", page[0]["id"]),
            ci,
            None,
        )
        .await;
    assert_eq!(next[0]["repository"], "registry.example.com/web");
    let path = format!("/api/v1/artefacts/{}", first["id"]);
    let (status, shown) = api.send("GET", &path, ci, None).await;
    assert_eq!(
        (status, shown["pushes"].clone()),
        (StatusCode::OK, json!(2))
    );
    let (_, audit) = api
        .send(
            "GET",
            "/api/v1/audit?action=artefacts.create",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(
        audit.as_array().unwrap().len(),
        3,
        "each push is audited: {audit}"
    );
}

#[tokio::test]
async fn a_tag_alone_or_a_malformed_push_is_refused_saying_what_to_fix() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/artefacts",
            admin,
            Some(json!({ "image": "registry.example.com/shop/api:latest" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("has no digest") && detail.contains("IMAGE@sha256:"),
        "{detail}"
    );
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/artefacts",
            admin,
            Some(json!({ "image": "Shop/API@sha256:abc", "ref": "main", "commit": "zz" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let detail = body["detail"].as_str().unwrap();
    for part in ["image:", "ref: \"main\"", "commit: \"zz\""] {
        assert!(detail.contains(part), "{part}: {detail}");
    }
    let (_, all) = api.send("GET", "/api/v1/artefacts", admin, None).await;
    assert_eq!(all, json!([]), "nothing stored");
    let (status, _) = api.send("GET", "/api/v1/artefacts/999", admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.send("GET", "/api/v1/artefacts/abc", admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
