//! Who gets in: the probes need no token, everything else a valid one.

use super::*;

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    let api = api().await;
    assert_eq!(
        api.send("GET", "/healthz", None, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        api.send("GET", "/readyz", None, None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401_with_the_reason() {
    let api = api().await;
    let (status, body) = api.send("GET", "/api/v1/apps", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{body}"
    );
    let (status, body) = api
        .send("GET", "/api/v1/apps", Some("wharf_nope"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "the token is not valid");
}
