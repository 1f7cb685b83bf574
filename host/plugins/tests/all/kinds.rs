//! Well-behaved plugins of each kind, through the typed APIs.

use crate::{Loopback, driver, policy, request, runtime, transformer};
use serde_json::json;
use wharf_plugins::{
    AuthzRequest, Decision, Kind, Manifest, PluginFailure, Principal, RoleBinding, Scope, Step,
    TransformContext,
};

#[tokio::test]
async fn a_driver_describes_itself_validates_and_provisions() {
    let (rt, _dir) = runtime();
    let d = driver(
        &rt,
        wharf_artifacts::TEST_DRIVER,
        Manifest::new("echo", Kind::Driver),
    )
    .await;
    let description = d.describe().await.unwrap();
    assert_eq!(description.info.name, "test-driver");
    assert_eq!(description.info.version, "1.2.3");
    assert_eq!(description.resource_types[0].name, "echo");

    let bad = wharf_plugins::Values {
        values: json!([1]),
        secrets: json!({}),
    };
    let issues = d.validate_config(&bad).await.unwrap();
    assert_eq!(issues[0].path, "/values");
    assert!(
        d.validate_config(&Default::default())
            .await
            .unwrap()
            .is_empty()
    );

    let Step::Done { outputs, state, .. } = d.provision(&request(json!({}))).await.unwrap() else {
        panic!("expected done")
    };
    assert_eq!(outputs.values, json!({ "host": "db.internal" }));
    assert_eq!(outputs.secrets, json!({ "password": "s3cret" }));
    assert_eq!(state, json!({ "key": "k-1" }));
}

#[tokio::test]
async fn a_driver_step_can_be_in_progress_and_resume_with_its_state() {
    let (rt, _dir) = runtime();
    let d = driver(
        &rt,
        wharf_artifacts::TEST_DRIVER,
        Manifest::new("echo", Kind::Driver),
    )
    .await;
    let mut req = request(json!({ "slow": true }));
    let Step::InProgress {
        state,
        retry_after_ms,
        ..
    } = d.provision(&req).await.unwrap()
    else {
        panic!("expected in-progress")
    };
    assert_eq!(retry_after_ms, 250);
    req.state = Some(state);
    assert!(matches!(
        d.provision(&req).await.unwrap(),
        Step::Done { .. }
    ));
}

#[tokio::test]
async fn a_granted_http_call_to_loopback_works_end_to_end() {
    let server = Loopback::start().await;
    let (rt, _dir) = runtime();
    let mut manifest = Manifest::new("echo", Kind::Driver);
    manifest.grants.http.push(server.url());
    let d = driver(&rt, wharf_artifacts::TEST_DRIVER, manifest).await;
    let req = request(json!({ "url": format!("{}/health", server.url()) }));
    let Step::Done { outputs, .. } = d.provision(&req).await.unwrap() else {
        panic!("expected done")
    };
    assert_eq!(outputs.values, json!({ "status": 200, "body": "hello" }));
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn a_driver_error_value_is_the_plugins_own() {
    let (rt, _dir) = runtime();
    let d = driver(
        &rt,
        wharf_artifacts::TEST_HOSTILE,
        Manifest::new("h", Kind::Driver),
    )
    .await;
    let err = d
        .provision(&request(json!({ "behavior": "nonsense" })))
        .await
        .unwrap_err();
    let PluginFailure::Plugin(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.kind, wharf_plugins::ErrorKind::InvalidInput);
    assert!(
        e.message.contains("unknown behavior \"nonsense\""),
        "{}",
        e.message
    );
}

fn principal(bindings: &[(Scope, &str)]) -> Principal {
    Principal {
        id: "alice".into(),
        role_bindings: bindings
            .iter()
            .map(|(scope, role)| RoleBinding {
                scope: scope.clone(),
                role: role.to_string(),
            })
            .collect(),
        ..Default::default()
    }
}

fn authz(principal: &Principal, action: &str, app: &str) -> AuthzRequest {
    AuthzRequest {
        principal: principal.clone().into(),
        action: action.into(),
        target: wharf_plugins::Target {
            app: Some(app.into()),
            ..Default::default()
        },
        attributes: json!({}),
    }
}

#[tokio::test]
async fn a_policy_decides_a_batch_in_order_and_reuses_warm_instances() {
    let (rt, _dir) = runtime();
    let p = policy(&rt).await;
    let config = json!({ "roles": { "deployments.create": "developer" } });
    assert!(p.validate_config(&config).await.unwrap().is_empty());
    assert_eq!(
        p.validate_config(&json!({})).await.unwrap()[0].path,
        "/roles"
    );

    let alice = principal(&[(Scope::App("shop".into()), "developer")]);
    let requests = vec![
        authz(&alice, "deployments.create", "shop"),
        authz(&alice, "deployments.create", "bank"),
        authz(&alice, "apps.delete", "shop"),
    ];
    let before = rt.stats().warm_hits;
    let decisions = p.authorize(&config, &requests).await.unwrap();
    assert_eq!(
        decisions,
        vec![
            Decision::Allow,
            Decision::Deny("deployments.create needs role developer on app bank".into()),
            Decision::Abstain,
        ]
    );
    for _ in 0..3 {
        assert_eq!(p.authorize(&config, &requests).await.unwrap(), decisions);
    }
    assert!(rt.stats().warm_hits - before >= 3, "{:?}", rt.stats());
    assert!(p.authorize(&config, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_transformer_rewrites_objects() {
    let (rt, _dir) = runtime();
    let t = transformer(&rt).await;
    let objects = vec![
        json!({ "kind": "Deployment", "metadata": { "name": "web" }, "spec": {} }),
        json!({ "kind": "Service", "metadata": { "name": "web", "labels": { "a": "b" } } }),
    ];
    let context = TransformContext {
        app: "shop".into(),
        env: "pr-1".into(),
        env_type: "development".into(),
    };
    let out = t
        .transform(&context, &json!({ "labels": { "team": "pay" } }), &objects)
        .await
        .unwrap();
    assert_eq!(out[0]["spec"]["replicas"], 1);
    assert_eq!(out[0]["metadata"]["labels"]["team"], "pay");
    assert_eq!(
        out[1]["metadata"]["labels"],
        json!({ "a": "b", "team": "pay", "wharf.dev/env": "pr-1" })
    );
}
