//! Policies installed through the API: they decide the very next request, a failing one
//! never joins the chain, and the last one stays.

use super::*;

/// Uploads the freeze-window example; it describes itself and its configuration.
async fn upload_freeze_window(api: &Api) {
    let freeze = std::fs::read(wharf_artifacts::FREEZE_WINDOW).unwrap();
    let (status, plugin) = upload(api, "freeze-window", "policy", freeze).await;
    assert_eq!(status, StatusCode::CREATED, "{plugin}");
    assert_eq!(plugin["world"], "wharf:plugin/policy@0.2.0");
    assert_eq!(plugin["digest"].as_str().unwrap().len(), 64);
    let (status, shown) = api
        .send(
            "GET",
            &format!("{V1}/plugins/freeze-window"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["description"], plugin["description"]);
    assert!(
        shown["config_schema"]["properties"]["windows"].is_object(),
        "{shown}"
    );
}

/// Installs the freeze-window plugin as `freeze`, with `config`.
async fn install_freeze(api: &Api, config: Value) -> (StatusCode, Value) {
    api.send(
        "POST",
        &format!("{V1}/plugin-installations"),
        Some(&api.admin),
        Some(json!({ "id": "freeze", "plugin": "freeze-window", "config": config })),
    )
    .await
}

/// A freeze of the development environments, from 2000 to 2100.
fn the_long_freeze() -> Value {
    json!({
        "env_types": ["development"],
        "actions": ["environments.create"],
        "windows": [{ "name": "the-long-freeze", "start": "2000-01-01", "end": "2100-01-01" }]
    })
}

/// Disabling needs the current version.
async fn disable_freeze(api: &Api) {
    let path = format!("{V1}/plugin-installations/freeze");
    let (status, _, problem) =
        send_if_match(api, "PATCH", &path, "\"7\"", json!({ "enabled": false })).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{problem}");
    assert!(
        detail(&problem).contains("is at version \"1\""),
        "{problem}"
    );
    let (status, etag, changed) =
        send_if_match(api, "PATCH", &path, "\"1\"", json!({ "enabled": false })).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(etag.as_deref(), Some("\"2\""));
    assert_eq!(changed["enabled"], false);
}

/// The audit log tells the story, filtered by collection.
async fn assert_the_audit_tells_the_story(api: &Api) {
    let admin = Some(api.admin.as_str());
    let (status, events) = api
        .send(
            "GET",
            &format!("{V1}/audit?action=plugins.&principal=admin"),
            admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let story: Vec<(&str, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        story,
        [
            ("plugins.upload", "plugin:freeze-window"),
            ("plugins.install", "installation:freeze"),
            ("plugins.update", "installation:freeze"),
        ]
    );
    let (_, envs) = api
        .send("GET", &format!("{V1}/audit?target=env:shop/"), admin, None)
        .await;
    assert_eq!(envs.as_array().unwrap().len(), 1, "{envs}");
    assert_eq!(envs[0]["action"], "environments.create");
}

#[tokio::test]
async fn a_policy_uploaded_and_installed_through_the_api_decides_the_next_request() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    upload_freeze_window(&api).await;

    // A configuration the plugin rejects is a 400 naming the plugin's complaint.
    let rejected = json!({ "env_types": ["development"], "windows": "soon" });
    let (status, problem) = install_freeze(&api, rejected).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        detail(&problem).contains("/windows must be a list of windows"),
        "{problem}"
    );

    let (status, body) = api
        .send(
            "POST",
            &format!("{V1}/apps"),
            admin,
            Some(json!({ "id": "shop" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, installed) = install_freeze(&api, the_long_freeze()).await;
    assert_eq!(status, StatusCode::CREATED, "{installed}");
    assert_eq!(installed["revision"], 1);

    // The very next request is decided by the new chain: even the admin is frozen.
    let envs = format!("{V1}/apps/shop/envs");
    let env = json!({ "id": "dev", "env_type": "development" });
    let (status, problem) = api.send("POST", &envs, admin, Some(env.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(
        detail(&problem).contains("denied by policy freeze"),
        "{problem}"
    );
    assert!(
        detail(&problem).contains("frozen during the-long-freeze"),
        "{problem}"
    );
    // Other actions are not frozen.
    let (status, _) = api.send("GET", &envs, admin, None).await;
    assert_eq!(status, StatusCode::OK);

    disable_freeze(&api).await;
    let (status, body) = api.send("POST", &envs, admin, Some(env)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_the_audit_tells_the_story(&api).await;
}

#[tokio::test]
async fn the_last_policy_cannot_be_disabled_or_uninstalled() {
    let api = api().await;
    let path = format!("{V1}/plugin-installations/rbac");
    let (status, _, problem) =
        send_if_match(&api, "PATCH", &path, "*", json!({ "enabled": false })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        detail(&problem).contains("last enabled policy"),
        "{problem}"
    );
    let (status, problem) = api.send("DELETE", &path, Some(&api.admin), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, problem) = api
        .send(
            "DELETE",
            &format!("{V1}/plugins/rbac"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    // Still in charge.
    let (status, _) = api
        .send("GET", &format!("{V1}/apps"), Some(&api.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_policy_that_fails_is_refused_before_it_joins_the_chain() {
    let api = api().await;
    let policy = std::fs::read(wharf_artifacts::TEST_POLICY).unwrap();
    assert_eq!(
        upload(&api, "fragile", "policy", policy).await.0,
        StatusCode::CREATED
    );
    let install = |config: Value, enabled: bool| {
        let body =
            json!({ "id": "fragile", "plugin": "fragile", "config": config, "enabled": enabled });
        let api = &api;
        async move {
            api.send(
                "POST",
                &format!("{V1}/plugin-installations"),
                Some(&api.admin),
                Some(body),
            )
            .await
        }
    };
    let (status, problem) = install(json!({ "roles": {}, "panic": true }), true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(
        detail(&problem).contains("a trial decision failed"),
        "{problem}"
    );
    // Installed disabled, it is not asked; enabling it is refused the same way.
    let (status, problem) = install(json!({ "roles": {}, "panic": true }), false).await;
    assert_eq!(status, StatusCode::CREATED, "{problem}");
    let (status, _, problem) = send_if_match(
        &api,
        "PATCH",
        &format!("{V1}/plugin-installations/fragile"),
        "\"1\"",
        json!({ "enabled": true }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(
        detail(&problem).contains("a trial decision failed"),
        "{problem}"
    );
    // The chain is as it was.
    let (status, _) = api
        .send("GET", &format!("{V1}/apps"), Some(&api.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}
