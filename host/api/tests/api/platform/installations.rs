//! Uploading plugins and installing them: input that names its problem, network grants the
//! operator decides, and a driver installation's secrets sealed for it alone.

use super::*;

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

/// The installed drivers as the engine calls them, over this API's store.
fn installed_drivers(api: &Api) -> wharf_server::Installed {
    wharf_server::Installed::new(
        api.state.store.clone(),
        api.state.registry.clone(),
        api.state.sealer.clone(),
    )
}

/// Provisions through `installation` for a definition whose driver inputs are the value
/// `db: shop` and no secret.
async fn provision(
    installed: &wharf_server::Installed,
    installation: &str,
) -> Result<wharf_plugins::Step, wharf_plugins::PluginFailure> {
    use wharf_engine::provision::Drivers as _;
    let request = wharf_plugins::DriverRequest {
        context: Default::default(),
        params: json!({}),
        config: serde_json::from_value(json!({ "values": { "db": "shop" }, "secrets": {} }))
            .unwrap(),
        state: None,
        idempotency_key: "k".into(),
    };
    installed.provision(installation, request).await
}

/// What a driver gave, once it is done.
async fn provisioned(
    installed: &wharf_server::Installed,
    installation: &str,
) -> wharf_plugins::Values {
    match provision(installed, installation).await.unwrap() {
        wharf_plugins::Step::Done { outputs, .. } => outputs,
        other => panic!("{other:?}"),
    }
}

/// Installs echo as `vault` with a secret; the secret is shown by name only, and sealed at
/// rest.
async fn install_vault(api: &Api) {
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
}

/// Changes the configuration of installation `id`, at `version`.
async fn patch_config(api: &Api, id: &str, version: &str, config: Value) -> (StatusCode, Value) {
    let path = format!("{V1}/plugin-installations/{id}");
    let (status, _, body) =
        send_if_match(api, "PATCH", &path, version, json!({ "config": config })).await;
    (status, body)
}

/// Secrets a read showed by name, sent back with a change, are kept; given, they are
/// replaced; a configuration of another shape says what is wrong and changes nothing.
async fn secrets_are_kept_or_replaced(api: &Api, installed: &wharf_server::Installed) {
    let shown_back = json!({ "values": { "host": "db2.internal" }, "secret_keys": ["token"] });
    let (status, body) = patch_config(api, "vault", "\"1\"", shown_back).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = provisioned(installed, "vault").await;
    assert_eq!(got.values["host"], "db2.internal");
    assert_eq!(got.secrets, json!({ "token": "t0ken-123" }));
    // Replaced when given.
    let rotated = json!({ "secrets": { "token": "rotated" } });
    let (status, body) = patch_config(api, "vault", "\"2\"", rotated).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["config"]["secret_keys"], json!(["token"]));
    let got = provisioned(installed, "vault").await;
    assert_eq!(got.secrets, json!({ "token": "rotated" }));
    assert_eq!(got.values, json!({ "db": "shop" }), "values: none given");

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
        let (status, body) = patch_config(api, "vault", "\"3\"", config).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(detail(&body), problem);
    }
}

/// Makes installation `copy` of echo and gives it, in the store, vault's sealed configuration.
async fn copy_vaults_sealed_config(api: &Api) {
    let (status, body) = api
        .send(
            "POST",
            &format!("{V1}/plugin-installations"),
            Some(&api.admin),
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
}

#[tokio::test]
async fn a_driver_installations_secrets_are_sealed_and_reach_only_the_driver() {
    let api = api().await;
    install_vault(&api).await;

    // The driver gets them, under the definition's driver inputs.
    let installed = installed_drivers(&api);
    let got = provisioned(&installed, "vault").await;
    assert_eq!(got.values, json!({ "host": "db.internal", "db": "shop" }));
    assert_eq!(got.secrets, json!({ "token": "t0ken-123" }));
    secrets_are_kept_or_replaced(&api, &installed).await;

    // Sealed for this installation: copied to another, it does not open.
    copy_vaults_sealed_config(&api).await;
    let err = provision(&installed, "copy").await.unwrap_err();
    assert!(!err.is_retryable(), "trying again cannot help: {err}");
    let err = err.to_string();
    assert!(err.contains("does not open"), "{err}");
    // Given its secrets again, it works (the old ones need not open).
    let (status, body) = patch_config(
        &api,
        "copy",
        "\"1\"",
        json!({ "secrets": { "token": "new" } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = provisioned(&installed, "copy").await;
    assert_eq!(got.secrets, json!({ "token": "new" }));
    let got = provisioned(&installed, "vault").await;
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
