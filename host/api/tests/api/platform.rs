//! Plugins, resources, the audit log, pages and versions through the API: the helpers the
//! modules below share, and the pages and OpenAPI document here.

use super::*;

#[path = "platform/definitions.rs"]
mod definitions;
#[path = "platform/installations.rs"]
mod installations;
#[path = "platform/policies.rs"]
mod policies;
#[path = "platform/sets.rs"]
mod sets;

const V1: &str = "/api/v1";

/// Uploads a plugin as the admin.
async fn upload(api: &Api, id: &str, kind: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    api.send_bytes(
        "POST",
        &format!("{V1}/plugins?id={id}&kind={kind}"),
        Some(&api.admin),
        "application/wasm",
        bytes,
    )
    .await
}

/// Sends with an `If-Match` header; returns the status, the `ETag` and the body.
async fn send_if_match(
    api: &Api,
    method: &str,
    path: &str,
    if_match: &str,
    body: Value,
) -> (StatusCode, Option<String>, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {}", api.admin))
        .header("content-type", "application/json")
        .header("if-match", if_match)
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router(api.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, etag, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn lists_come_in_pages_linked_by_the_link_header() {
    let api = api().await;
    for i in 0..5 {
        let (status, _) = api
            .send(
                "POST",
                &format!("{V1}/apps"),
                Some(&api.admin),
                Some(json!({ "id": format!("app-{i}") })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut next = Some(format!("{V1}/apps?limit=2"));
    while let Some(uri) = next.take() {
        let request = Request::builder()
            .uri(&uri)
            .header("authorization", format!("Bearer {}", api.admin))
            .body(Body::empty())
            .unwrap();
        let response = router(api.state.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        next = response.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            l[1..l.find('>').unwrap()].to_string()
        });
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let page: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|a| a["id"].as_str().unwrap().to_string()));
    }
    assert_eq!(seen, ["app-0", "app-1", "app-2", "app-3", "app-4"]);
    let (status, problem) = api
        .send("GET", &format!("{V1}/apps?limit=0"), Some(&api.admin), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&problem).starts_with("limit:"), "{problem}");
}

#[tokio::test]
async fn the_openapi_document_is_public_and_describes_errors_and_security() {
    let api = api().await;
    let (status, doc) = api
        .send("GET", &format!("{V1}/openapi.json"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let op = &doc["paths"]["/api/v1/apps"]["post"];
    for status in ["201", "400", "401", "403", "409", "413", "500"] {
        assert!(
            op["responses"][status].is_object(),
            "POST /apps lacks {status}"
        );
    }
    assert_eq!(
        op["responses"]["403"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([]));
}
