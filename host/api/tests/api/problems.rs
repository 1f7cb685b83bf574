//! Errors as a client sees them: problem documents that name what to fix, bounded bodies
//! and a request id on every response.

use super::*;

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
