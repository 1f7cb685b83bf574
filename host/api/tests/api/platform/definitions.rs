//! Resource definitions: versioned, their secrets sealed, matching that explains itself,
//! and what happens to what they provisioned.

use super::*;

/// Posts `body` to `/api/v1/{path}` as the admin.
async fn post(api: &Api, path: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("{V1}/{path}");
    api.send("POST", &path, Some(&api.admin), Some(body)).await
}

/// What the definitions refer to: the type postgres, the driver installation existing-db,
/// and app shop with its environment dev.
async fn postgres_a_driver_and_shop(api: &Api) {
    for (path, body) in [
        ("resource-types", json!({ "id": "postgres" })),
        (
            "plugin-installations",
            json!({ "id": "existing-db", "plugin": "echo" }),
        ),
        ("apps", json!({ "id": "shop" })),
        (
            "apps/shop/envs",
            json!({ "id": "dev", "env_type": "development" }),
        ),
    ] {
        assert_eq!(post(api, path, body).await.0, StatusCode::CREATED);
    }
}

/// A definition names a resource type that exists and an installation that runs a driver.
async fn a_definition_needs_a_type_and_a_driver(api: &Api) {
    let (status, problem) = post(
        api,
        "resource-definitions",
        json!({ "id": "pg", "type": "mysql", "driver": "existing-db" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        detail(&problem).contains("no resource type \"mysql\""),
        "{problem}"
    );
    let (status, problem) = post(
        api,
        "resource-definitions",
        json!({ "id": "pg", "type": "postgres", "driver": "rbac" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        detail(&problem).contains("does not run a driver"),
        "{problem}"
    );
}

/// The bodies of the definitions and of all their versions, as stored.
async fn stored_definition_bodies(api: &Api) -> Vec<String> {
    api.state
        .store
        .call(|tx| {
            let mut bodies = Vec::new();
            for d in wharf_store::resources::list_definitions(tx)? {
                bodies.push(d.body.to_string());
                for v in wharf_store::resources::definition_versions(tx, &d.id)? {
                    bodies.push(v.content.to_string());
                }
            }
            Ok(bodies)
        })
        .await
        .unwrap()
}

/// At rest, the secret is sealed, in the definition and in its history, and opens with the
/// installation's key.
async fn assert_the_secret_is_sealed_at_rest(api: &Api) {
    let rows = stored_definition_bodies(api).await;
    assert!(rows.iter().all(|b| !b.contains("s3cret")), "{rows:?}");
    let body: Value = serde_json::from_str(&rows[0]).unwrap();
    use base64::Engine as _;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(body["driver_inputs"]["secrets_sealed"].as_str().unwrap())
        .unwrap();
    let opened = api
        .state
        .sealer
        .open(&sealed, "resource-definition/secrets:pg-any")
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&opened).unwrap(),
        json!({ "password": "s3cret" })
    );
}

/// Updates need the current version; every version is kept; secrets survive.
async fn updates_keep_every_version_and_the_secrets(api: &Api, general: &Value) {
    let path = format!("{V1}/resource-definitions/pg-any");
    let mut update = general.clone();
    update["driver_inputs"] = json!({ "values": { "host": "db2" } });
    let (status, _, problem) = send_if_match(api, "PUT", &path, "\"2\"", update.clone()).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{problem}");
    let (status, etag, updated) = send_if_match(api, "PUT", &path, "\"1\"", update).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(etag.as_deref(), Some("\"2\""));
    assert_eq!(updated["driver_values"]["host"], "db2");
    assert_eq!(updated["driver_secret_keys"], json!(["password"]));
    let (_, versions) = api
        .send("GET", &format!("{path}/versions"), Some(&api.admin), None)
        .await;
    let hosts: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["driver_values"]["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["db", "db2"]);
}

/// What is in use cannot be deleted, and the answer says by what.
async fn what_is_in_use_cannot_be_deleted(api: &Api) {
    let admin = Some(api.admin.as_str());
    let (status, problem) = api
        .send(
            "DELETE",
            &format!("{V1}/plugin-installations/existing-db"),
            admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        detail(&problem).contains("resource definition(s) pg-any, pg-shop"),
        "{problem}"
    );
    let (status, problem) = api
        .send(
            "DELETE",
            &format!("{V1}/resource-types/postgres"),
            admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let path = format!("{V1}/resource-definitions/pg-any");
    let (status, _) = api.send("DELETE", &path, admin, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn resource_definitions_are_versioned_and_matching_explains_itself() {
    let api = api().await;
    postgres_a_driver_and_shop(&api).await;
    a_definition_needs_a_type_and_a_driver(&api).await;

    // No definition yet: the match says so.
    let context = json!({ "type": "postgres", "app": "shop", "env": "dev" });
    let (status, problem) = post(&api, "resource-definitions/match", context.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        detail(&problem).contains("definitions of this type: none"),
        "{problem}"
    );

    let general = json!({
        "id": "pg-any", "type": "postgres", "driver": "existing-db",
        "driver_inputs": { "values": { "host": "db" }, "secrets": { "password": "s3cret" } },
        "criteria": [{}]
    });
    let (status, created) = post(&api, "resource-definitions", general.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["driver_secret_keys"], json!(["password"]));
    assert!(
        !created.to_string().contains("s3cret"),
        "secrets are never shown"
    );
    assert_the_secret_is_sealed_at_rest(&api).await;
    let specific = json!({
        "id": "pg-shop", "type": "postgres", "driver": "existing-db",
        "criteria": [{ "app": "shop" }]
    });
    assert_eq!(
        post(&api, "resource-definitions", specific).await.0,
        StatusCode::CREATED
    );
    let (status, matched) = post(&api, "resource-definitions/match", context).await;
    assert_eq!(status, StatusCode::OK, "{matched}");
    assert_eq!(matched["definition"], "pg-shop");
    assert!(
        matched["reason"].as_str().unwrap().contains("names app"),
        "{matched}"
    );
    assert_eq!(matched["context"]["env_type"], "development");

    // A criterion another definition has is a conflict that names it.
    let (status, problem) = post(
        &api,
        "resource-definitions",
        json!({ "id": "pg-twin", "type": "postgres", "driver": "existing-db", "criteria": [{ "app": "shop" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        detail(&problem).contains("already exists on definition pg-shop"),
        "{problem}"
    );

    updates_keep_every_version_and_the_secrets(&api, &general).await;
    what_is_in_use_cannot_be_deleted(&api).await;
}

#[tokio::test]
async fn a_definition_says_whether_what_it_provisioned_is_deleted_or_orphaned() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    for (path, body) in [
        (
            "plugin-installations",
            json!({ "id": "echo", "plugin": "echo" }),
        ),
        ("resource-types", json!({ "id": "postgres" })),
    ] {
        let (status, body) = api
            .send("POST", &format!("{V1}/{path}"), admin, Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let definition = |id: &str, policy: Value| {
        let mut d = json!({ "id": id, "type": "postgres", "driver": "echo",
                            "criteria": [{ "env_type": id }] });
        if !policy.is_null() {
            d["deletion_policy"] = policy;
        }
        d
    };
    for (id, policy, shown) in [
        ("plain", Value::Null, "delete"),
        ("prod", json!("orphan"), "orphan"),
    ] {
        let (status, body) = api
            .send(
                "POST",
                &format!("{V1}/resource-definitions"),
                admin,
                Some(definition(id, policy)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["deletion_policy"], shown);
        let (_, body) = api
            .send(
                "GET",
                &format!("{V1}/resource-definitions/{id}"),
                admin,
                None,
            )
            .await;
        assert_eq!(body["deletion_policy"], shown);
    }
    let (status, body) = api
        .send(
            "POST",
            &format!("{V1}/resource-definitions"),
            admin,
            Some(definition("odd", json!("keep"))),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(detail(&body).contains("deletion_policy"), "{body}");
}
