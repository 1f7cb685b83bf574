//! Plugins, resources, the audit log, pages and versions through the API.

use super::*;

const V1: &str = "/api/v1";

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

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_policy_uploaded_and_installed_through_the_api_decides_the_next_request() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    let freeze = std::fs::read(wharf_artifacts::FREEZE_WINDOW).unwrap();
    let (status, plugin) = upload(&api, "freeze-window", "policy", freeze).await;
    assert_eq!(status, StatusCode::CREATED, "{plugin}");
    assert_eq!(plugin["world"], "wharf:plugin/policy@0.1.0");
    assert_eq!(plugin["digest"].as_str().unwrap().len(), 64);
    let (status, shown) = api
        .send("GET", &format!("{V1}/plugins/freeze-window"), admin, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["description"], plugin["description"]);
    assert!(
        shown["config_schema"]["properties"]["windows"].is_object(),
        "{shown}"
    );

    // A configuration the plugin rejects is a 400 naming the plugin's complaint.
    let (status, problem) = api
        .send(
            "POST",
            &format!("{V1}/plugin-installations"),
            admin,
            Some(json!({ "id": "freeze", "plugin": "freeze-window",
                         "config": { "env_types": ["development"], "windows": "soon" } })),
        )
        .await;
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
    let config = json!({
        "env_types": ["development"],
        "actions": ["environments.create"],
        "windows": [{ "name": "the-long-freeze", "start": "2000-01-01", "end": "2100-01-01" }]
    });
    let (status, installed) = api
        .send(
            "POST",
            &format!("{V1}/plugin-installations"),
            admin,
            Some(json!({ "id": "freeze", "plugin": "freeze-window", "config": config })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{installed}");
    assert_eq!(installed["revision"], 1);

    // The very next request is decided by the new chain: even the admin is frozen.
    let env = json!({ "id": "dev", "env_type": "development" });
    let (status, problem) = api
        .send(
            "POST",
            &format!("{V1}/apps/shop/envs"),
            admin,
            Some(env.clone()),
        )
        .await;
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
    let (status, _) = api
        .send("GET", &format!("{V1}/apps/shop/envs"), admin, None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // Disabling needs the current version.
    let path = format!("{V1}/plugin-installations/freeze");
    let (status, _, problem) =
        send_if_match(&api, "PATCH", &path, "\"7\"", json!({ "enabled": false })).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{problem}");
    assert!(
        detail(&problem).contains("is at version \"1\""),
        "{problem}"
    );
    let (status, etag, changed) =
        send_if_match(&api, "PATCH", &path, "\"1\"", json!({ "enabled": false })).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(etag.as_deref(), Some("\"2\""));
    assert_eq!(changed["enabled"], false);

    let (status, body) = api
        .send("POST", &format!("{V1}/apps/shop/envs"), admin, Some(env))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The audit log tells the story, filtered by collection.
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

#[tokio::test]
async fn bad_plugin_input_is_a_400_that_names_the_cause() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    let (status, problem) = upload(&api, "junk", "policy", b"this is not wasm".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&problem).contains("component:"), "{problem}");
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let (status, problem) = upload(&api, "core", "policy", core_module).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&problem).contains("core"), "{problem}");
    let freeze = std::fs::read(wharf_artifacts::FREEZE_WINDOW).unwrap();
    let (status, problem) = upload(&api, "wrong-kind", "driver", freeze.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        detail(&problem).contains("install it as kind policy"),
        "{problem}"
    );
    let (status, problem) = upload(&api, "Bad_Id", "policy", freeze.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&problem).starts_with("id:"), "{problem}");
    let (status, problem) = upload(&api, "fw", "gadget", freeze.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&problem).starts_with("kind:"), "{problem}");
    let (status, problem) = api
        .send_bytes(
            "POST",
            &format!("{V1}/plugins?id=fw&kind=policy&http=https://example.com"),
            admin,
            "application/wasm",
            freeze.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&problem).contains("get no network"), "{problem}");
    let (status, problem) = api
        .send_bytes(
            "POST",
            &format!("{V1}/plugins?id=fw&kind=policy&colour=red"),
            admin,
            "application/wasm",
            freeze.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&problem).contains("colour"), "{problem}");
    // The same id twice.
    assert_eq!(
        upload(&api, "fw", "policy", freeze.clone()).await.0,
        StatusCode::CREATED
    );
    let (status, problem) = upload(&api, "fw", "policy", freeze).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        detail(&problem).contains("plugin fw already exists"),
        "{problem}"
    );

    // Installations.
    for (body, field) in [
        (
            json!({ "id": "x", "plugin": "nothing" }),
            "plugin: there is no plugin nothing",
        ),
        (
            json!({ "id": "x", "plugin": "fw", "colour": 1 }),
            "unknown field `colour`",
        ),
        (
            json!({ "id": "x", "plugin": "fw", "enabled": "yes" }),
            "enabled: invalid type",
        ),
        (
            json!({ "id": "x", "plugin": "fw", "config": [] }),
            "config: must be a JSON object",
        ),
        (
            json!({ "id": "x", "plugin": "echo", "grants": { "http": ["https://example.com"] } }),
            "grants.http: plugin echo does not request",
        ),
    ] {
        let (status, problem) = api
            .send(
                "POST",
                &format!("{V1}/plugin-installations"),
                admin,
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert!(detail(&problem).contains(field), "{body}: {problem}");
    }
    let (status, _, problem) = send_if_match(
        &api,
        "PATCH",
        &format!("{V1}/plugin-installations/rbac"),
        "3",
        json!({ "position": 1 }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&problem).starts_with("If-Match:"), "{problem}");
}

#[tokio::test]
async fn resource_definitions_are_versioned_and_matching_explains_itself() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    let post = |path: &str, body: Value| {
        let path = format!("{V1}/{path}");
        let api = &api;
        async move { api.send("POST", &path, admin, Some(body)).await }
    };
    assert_eq!(
        post("resource-types", json!({ "id": "postgres" })).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        post(
            "plugin-installations",
            json!({ "id": "existing-db", "plugin": "echo" })
        )
        .await
        .0,
        StatusCode::CREATED
    );
    assert_eq!(
        post("apps", json!({ "id": "shop" })).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        post(
            "apps/shop/envs",
            json!({ "id": "dev", "env_type": "development" })
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let (status, problem) = post(
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
        "resource-definitions",
        json!({ "id": "pg", "type": "postgres", "driver": "rbac" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        detail(&problem).contains("does not run a driver"),
        "{problem}"
    );

    // No definition yet: the match says so.
    let context = json!({ "type": "postgres", "app": "shop", "env": "dev" });
    let (status, problem) = post("resource-definitions/match", context.clone()).await;
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
    let (status, created) = post("resource-definitions", general.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["driver_secret_keys"], json!(["password"]));
    assert!(
        !created.to_string().contains("s3cret"),
        "secrets are never shown"
    );
    // At rest, the secret is sealed, in the definition and in its history, and opens
    // with the installation's key.
    // As stored: the typed reads give the rows' bodies, sealed.
    let rows: Vec<String> = api
        .state
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
        .unwrap();
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
    let specific = json!({
        "id": "pg-shop", "type": "postgres", "driver": "existing-db",
        "criteria": [{ "app": "shop" }]
    });
    assert_eq!(
        post("resource-definitions", specific).await.0,
        StatusCode::CREATED
    );
    let (status, matched) = post("resource-definitions/match", context.clone()).await;
    assert_eq!(status, StatusCode::OK, "{matched}");
    assert_eq!(matched["definition"], "pg-shop");
    assert!(
        matched["reason"].as_str().unwrap().contains("names app"),
        "{matched}"
    );
    assert_eq!(matched["context"]["env_type"], "development");

    // A criterion another definition has is a conflict that names it.
    let (status, problem) = post(
        "resource-definitions",
        json!({ "id": "pg-twin", "type": "postgres", "driver": "existing-db", "criteria": [{ "app": "shop" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        detail(&problem).contains("already exists on definition pg-shop"),
        "{problem}"
    );

    // Updates need the current version; every version is kept; secrets survive.
    let path = format!("{V1}/resource-definitions/pg-any");
    let mut update = general.clone();
    update["driver_inputs"] = json!({ "values": { "host": "db2" } });
    let (status, _, problem) = send_if_match(&api, "PUT", &path, "\"2\"", update.clone()).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{problem}");
    let (status, etag, updated) = send_if_match(&api, "PUT", &path, "\"1\"", update).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(etag.as_deref(), Some("\"2\""));
    assert_eq!(updated["driver_values"]["host"], "db2");
    assert_eq!(updated["driver_secret_keys"], json!(["password"]));
    let (_, versions) = api
        .send("GET", &format!("{path}/versions"), admin, None)
        .await;
    let hosts: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["driver_values"]["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["db", "db2"]);

    // What is in use cannot be deleted, and the answer says by what.
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
    let (status, _) = api.send("DELETE", &path, admin, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
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

#[tokio::test]
async fn sets_are_content_addressed_and_deltas_make_new_ones() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    assert_eq!(
        api.send(
            "POST",
            &format!("{V1}/apps"),
            admin,
            Some(json!({ "id": "shop" }))
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let sets = format!("{V1}/apps/shop/sets");
    let yaml = "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  main:\n    \
                image: busybox\n    command: [serve]\n";
    let (status, first) = api
        .send("POST", &sets, admin, Some(json!({ "workloads": [yaml] })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let id = first["id"].as_str().unwrap().to_string();
    // The same workloads as JSON: the same set.
    let (status, again) = api
        .send(
            "POST",
            &sets,
            admin,
            Some(super::matrix::score_set("web", "serve")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], first["id"]);

    let delta = json!([{ "op": "replace", "path": "/workloads/web/containers/main/command/0", "value": "serve-v2" }]);
    let (status, second) = api
        .send("POST", &format!("{sets}/{id}/deltas"), admin, Some(delta))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second_id = second["id"].as_str().unwrap();
    assert_ne!(second_id, id);
    assert_eq!(
        second["workloads"]["web"]["containers"]["main"]["command"],
        json!(["serve-v2"])
    );
    let (_, diff) = api
        .send(
            "GET",
            &format!("{sets}/{id}/diff?to={second_id}"),
            admin,
            None,
        )
        .await;
    assert_eq!(
        diff,
        json!([{ "op": "replace", "path": "/workloads/web/containers/main/command/0", "value": "serve-v2" }])
    );
    let (_, listed) = api.send("GET", &sets, admin, None).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn broken_score_files_list_every_problem_and_store_nothing() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    api.send(
        "POST",
        &format!("{V1}/apps"),
        admin,
        Some(json!({ "id": "shop" })),
    )
    .await;
    let sets = format!("{V1}/apps/shop/sets");
    let broken = [
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  main:\n    image: x\n    \
         variables:\n      PORT: 3000\n",
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: api\ncontainers:\n  main:\n    image: x\n    \
         variables:\n      DB: ${resources.db.host}\n",
        "not: [valid\n",
    ];
    let good =
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: ok\ncontainers:\n  main:\n    image: x\n";
    let (status, problem) = api
        .send(
            "POST",
            &sets,
            admin,
            Some(json!({ "workloads": [good, broken[0], broken[1], broken[2]] })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let paths: Vec<&str> = problem["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/workloads/1/containers/main/variables/PORT",
            "/workloads/2/containers/main/variables/DB",
            "/workloads/3"
        ],
        "{problem}"
    );
    assert!(
        detail(&problem).contains("there is no resource \"db\""),
        "{problem}"
    );
    let (_, listed) = api.send("GET", &sets, admin, None).await;
    assert_eq!(listed, json!([]), "nothing stored");
    let (status, problem) = api
        .send(
            "POST",
            &sets,
            admin,
            Some(json!({ "workloads": [good, good] })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&problem).contains("already in the set"), "{problem}");
}

#[tokio::test]
async fn a_driver_that_requests_any_origin_gets_what_the_operator_grants_and_no_more() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    let driver = std::fs::read(wharf_artifacts::TEST_DRIVER).unwrap();
    let (status, body) = api
        .send_bytes(
            "POST",
            &format!("{V1}/plugins?id=anywhere&kind=driver&http=*&sockets=*"),
            admin,
            "application/wasm",
            driver,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api
        .send(
            "POST",
            &format!("{V1}/plugin-installations"),
            admin,
            Some(json!({ "id": "site", "plugin": "anywhere",
                         "grants": { "http": ["http://127.0.0.1:8081"], "sockets": ["127.0.0.1:5432"] } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["grants"]["http"], json!(["http://127.0.0.1:8081"]));
    let (status, body) = api
        .send(
            "POST",
            &format!("{V1}/plugin-installations"),
            admin,
            Some(json!({ "id": "bad", "plugin": "anywhere", "grants": { "http": ["not a url"] } })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a grant must still be an origin: {body}"
    );
    let freeze = std::fs::read(wharf_artifacts::FREEZE_WINDOW).unwrap();
    let (status, body) = api
        .send_bytes(
            "POST",
            &format!("{V1}/plugins?id=nosy&kind=policy&http=*"),
            admin,
            "application/wasm",
            freeze,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().contains("get no network"),
        "{body}"
    );
}

#[tokio::test]
async fn a_driver_installations_secrets_are_sealed_and_reach_only_the_driver() {
    use wharf_engine::provision::Drivers as _;
    let api = api().await;
    let admin = Some(api.admin.as_str());
    let (status, body) = api
        .send(
            "POST",
            &format!("{V1}/plugin-installations"),
            admin,
            Some(json!({ "id": "vault", "plugin": "echo",
                         "config": { "values": { "host": "db.internal" },
                                     "secrets": { "token": "t0ken-123" } } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let shown = json!({ "values": { "host": "db.internal" }, "secret_keys": ["token"] });
    assert_eq!(body["config"], shown);
    let (status, body) = api
        .send(
            "GET",
            &format!("{V1}/plugin-installations/vault"),
            admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["config"], shown, "secrets are shown by name only");
    let (_, list) = api
        .send("GET", &format!("{V1}/plugin-installations"), admin, None)
        .await;
    assert!(!list.to_string().contains("t0ken-123"), "{list}");
    let stored: Vec<String> = api
        .state
        .store
        .call(|tx| {
            Ok(wharf_store::plugins::installations(tx)?
                .into_iter()
                .map(|i| i.config.to_string())
                .collect())
        })
        .await
        .unwrap();
    assert!(
        stored.iter().all(|c| !c.contains("t0ken-123")),
        "sealed at rest: {stored:?}"
    );

    // The driver gets them, under the definition's driver inputs.
    let installed = wharf_server::Installed::new(
        api.state.store.clone(),
        api.state.registry.clone(),
        api.state.sealer.clone(),
    );
    let call = |installation: &'static str| {
        let installed = &installed;
        async move {
            let request = wharf_plugins::DriverRequest {
                context: Default::default(),
                params: json!({}),
                config: serde_json::from_value(
                    json!({ "values": { "db": "shop" }, "secrets": {} }),
                )
                .unwrap(),
                state: None,
                idempotency_key: "k".into(),
            };
            installed.provision(installation, request).await
        }
    };
    let outputs = |step: wharf_plugins::Step| match step {
        wharf_plugins::Step::Done { outputs, .. } => outputs,
        other => panic!("{other:?}"),
    };
    let got = outputs(call("vault").await.unwrap());
    assert_eq!(got.values, json!({ "host": "db.internal", "db": "shop" }));
    assert_eq!(got.secrets, json!({ "token": "t0ken-123" }));

    // What a read showed, sent back with a change: the secrets are kept.
    let path = format!("{V1}/plugin-installations/vault");
    let (status, _, body) = send_if_match(
        &api,
        "PATCH",
        &path,
        "\"1\"",
        json!({ "config": { "values": { "host": "db2.internal" }, "secret_keys": ["token"] } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = outputs(call("vault").await.unwrap());
    assert_eq!(got.values["host"], "db2.internal");
    assert_eq!(got.secrets, json!({ "token": "t0ken-123" }));
    // Replaced when given.
    let (status, _, body) = send_if_match(
        &api,
        "PATCH",
        &path,
        "\"2\"",
        json!({ "config": { "secrets": { "token": "rotated" } } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["config"]["secret_keys"], json!(["token"]));
    let got = outputs(call("vault").await.unwrap());
    assert_eq!(got.secrets, json!({ "token": "rotated" }));
    assert_eq!(got.values, json!({ "db": "shop" }), "values: none given");

    // A configuration of another shape says what is wrong; nothing changes.
    for (config, problem) in [
        (
            json!({ "values": {}, "sekrets": {} }),
            "config.sekrets: a driver's configuration has only values and secrets",
        ),
        (
            json!({ "secrets": "x" }),
            "config.secrets: must be a JSON object",
        ),
    ] {
        let (status, _, body) =
            send_if_match(&api, "PATCH", &path, "\"3\"", json!({ "config": config })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(detail(&body), problem);
    }

    // Sealed for this installation: copied to another, it does not open.
    let (status, body) = api
        .send(
            "POST",
            &format!("{V1}/plugin-installations"),
            admin,
            Some(json!({ "id": "copy", "plugin": "echo" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    api.state
        .store
        .transaction(|tx| {
            let vault = wharf_store::plugins::installation_by_id(tx, "vault")?.unwrap();
            let mut copy = wharf_store::plugins::installation_by_id(tx, "copy")?.unwrap();
            copy.config = vault.config;
            wharf_store::plugins::update(tx, &copy)
        })
        .await
        .unwrap();
    let err = call("copy").await.unwrap_err();
    assert!(!err.is_retryable(), "trying again cannot help: {err}");
    let err = err.to_string();
    assert!(err.contains("does not open"), "{err}");
    // Given its secrets again, it works (the old ones need not open).
    let (status, _, body) = send_if_match(
        &api,
        "PATCH",
        &format!("{V1}/plugin-installations/copy"),
        "\"1\"",
        json!({ "config": { "secrets": { "token": "new" } } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = outputs(call("copy").await.unwrap());
    assert_eq!(got.secrets, json!({ "token": "new" }));
    let got = outputs(call("vault").await.unwrap());
    assert_eq!(got.secrets, json!({ "token": "rotated" }));
}

#[tokio::test]
async fn secrets_an_installation_kept_in_clear_are_sealed_at_the_next_start() {
    use wharf_engine::provision::Drivers as _;
    let api = api().await;
    // As a Wharf that did not seal installation secrets stored it.
    api.state
        .store
        .call(|tx| {
            wharf_store::plugins::install(
                tx,
                &wharf_store::plugins::Installation {
                    id: "old".into(),
                    plugin: "echo".into(),
                    config: json!({ "values": { "host": "h" }, "secrets": { "token": "clear-t0ken" } }),
                    grants: json!({}),
                    enabled: true,
                    position: 50,
                    revision: 3,
                    created_at: 1,
                    updated_at: 1,
                    updated_by: "ops".into(),
                },
            )
        })
        .await
        .unwrap();
    let bundled = bundled();
    let runtime = Runtime::new(RuntimeConfig::new(api._dir.path().join("cache"))).unwrap();
    let state = wharf_server::start(
        api.state.store.clone(),
        runtime,
        api.state.sealer.clone(),
        bundled,
        wharf_engine::Settings::new(api._dir.path().join("envs")),
    )
    .await
    .unwrap();
    let (config, revision): (String, i64) = state
        .store
        .call(|tx| {
            let old = wharf_store::plugins::installation_by_id(tx, "old")?.unwrap();
            Ok((old.config.to_string(), old.revision))
        })
        .await
        .unwrap();
    assert!(!config.contains("clear-t0ken"), "{config}");
    assert_eq!(revision, 3, "what it holds is unchanged");
    for file in ["wharf.db", "wharf.db-wal"] {
        let bytes = std::fs::read(api._dir.path().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(11).any(|w| w == b"clear-t0ken"),
            "no clear text left in {file}"
        );
    }
    let installed = wharf_server::Installed::new(state.store.clone(), state.registry, state.sealer);
    let step = installed
        .provision(
            "old",
            wharf_plugins::DriverRequest {
                context: Default::default(),
                params: json!({}),
                config: Default::default(),
                state: None,
                idempotency_key: "k".into(),
            },
        )
        .await
        .unwrap();
    let wharf_plugins::Step::Done { outputs, .. } = step else {
        panic!("{step:?}")
    };
    assert_eq!(outputs.secrets, json!({ "token": "clear-t0ken" }));
    assert_eq!(outputs.values, json!({ "host": "h" }));
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
