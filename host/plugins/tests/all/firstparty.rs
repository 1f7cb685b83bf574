//! First-party plugins through the real runtime: the drivers and the freeze-window example
//! here, the rbac policy's table and the baseline transformer in their own modules.

mod baseline;
mod rbac_table;

use crate::{driver, request, runtime};
use serde_json::json;
use wharf_plugins::{Kind, Manifest, PluginFailure, Step};

fn done(step: Step) -> (wharf_plugins::Values, serde_json::Value) {
    match step {
        Step::Done { outputs, state, .. } => (outputs, state),
        other => panic!("expected done, got {other:?}"),
    }
}

#[tokio::test]
async fn echo_outputs_its_configuration_with_values_and_secrets_apart() {
    let (rt, _dir) = runtime();
    let echo = driver(
        &rt,
        wharf_artifacts::ECHO,
        Manifest::new("echo", Kind::Driver),
    )
    .await;
    assert_eq!(echo.describe().await.unwrap().info.name, "echo");
    let (outputs, _) = done(echo.provision(&request(json!({}))).await.unwrap());
    assert_eq!(outputs.values, json!({ "host": "db.internal" }));
    assert_eq!(outputs.secrets, json!({ "password": "s3cret" }));
}

#[tokio::test]
async fn password_keeps_its_secret_with_state_and_makes_a_new_one_without() {
    let (rt, _dir) = runtime();
    let d = driver(
        &rt,
        wharf_artifacts::PASSWORD,
        Manifest::new("pw", Kind::Driver),
    )
    .await;
    let mut req = request(json!({ "length": 40, "alphabet": "hex" }));
    let (outputs, state) = done(d.provision(&req).await.unwrap());
    let first = outputs.secrets["password"].as_str().unwrap().to_string();
    assert_eq!(first.len(), 40);
    assert!(first.chars().all(|c| c.is_ascii_hexdigit()), "{first}");
    assert_eq!(outputs.values, json!({ "length": 40 }));

    req.state = Some(state);
    let (again, _) = done(d.provision(&req).await.unwrap());
    assert_eq!(again.secrets["password"], first.as_str());

    req.state = None;
    let (fresh, _) = done(d.provision(&req).await.unwrap());
    assert_ne!(fresh.secrets["password"], first.as_str());

    let err = d
        .provision(&request(json!({ "length": 3 })))
        .await
        .unwrap_err();
    let PluginFailure::Plugin(e) = err else {
        panic!("{err:?}")
    };
    assert!(e.message.contains("params.length"), "{}", e.message);
}

fn bundled(name: &str) -> &'static wharf_artifacts::Bundled {
    wharf_artifacts::BUNDLED
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("{name} is not bundled"))
}

#[tokio::test]
async fn every_bundled_plugin_installs_as_its_kind_and_describes_itself() {
    let (rt, _dir) = runtime();
    assert_eq!(wharf_artifacts::BUNDLED.len(), 9);
    for b in wharf_artifacts::BUNDLED {
        let kind: Kind = b.kind;
        let plugin = rt
            .install(b.bytes, Manifest::new(b.name, kind))
            .await
            .unwrap();
        assert_eq!(plugin.digest(), b.sha256, "{}", b.name);
        let name = match plugin {
            wharf_plugins::Plugin::Driver(d) => d.describe().await.unwrap().info.name,
            wharf_plugins::Plugin::Policy(p) => p.describe().await.unwrap().name,
            wharf_plugins::Plugin::Transformer(t) => t.describe().await.unwrap().name,
        };
        assert_eq!(name, b.name);
    }
}

async fn installed_policy(
    rt: &wharf_plugins::Runtime,
    bytes: &[u8],
) -> wharf_plugins::PolicyPlugin {
    match rt
        .install(bytes, Manifest::new("policy", Kind::Policy))
        .await
        .unwrap()
    {
        wharf_plugins::Plugin::Policy(p) => p,
        _ => panic!("not a policy"),
    }
}

#[tokio::test]
async fn the_freeze_window_example_denies_inside_its_window_and_abstains_otherwise() {
    use wharf_plugins::{AuthzRequest, Decision, Target};
    let (rt, _dir) = runtime();
    let policy =
        installed_policy(&rt, &wharf_artifacts::read(wharf_artifacts::FREEZE_WINDOW)).await;
    let config = json!({
        "env_types": ["production"],
        "windows": [{ "name": "black-friday", "start": "2026-11-27", "end": "2026-12-01T00:00:00Z" }]
    });
    assert!(policy.validate_config(&config).await.unwrap().is_empty());
    let request = |action: &str, env_type: &str, now: &str| AuthzRequest {
        principal: Default::default(),
        action: action.into(),
        target: Target {
            app: Some("shop".into()),
            env_type: Some(env_type.into()),
            ..Default::default()
        },
        attributes: json!({ "now": now }),
    };
    let decisions = policy
        .authorize(
            &config,
            &[
                request("deployments.create", "production", "2026-11-28T10:00:00Z"),
                request("deployments.create", "production", "2026-12-01T00:00:00Z"),
                request("deployments.create", "staging", "2026-11-28T10:00:00Z"),
                request("environments.create", "production", "2026-11-28T10:00:00Z"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        decisions,
        [
            Decision::Deny(
                "deployments to production are frozen during black-friday \
                 (from 2026-11-27 until 2026-12-01T00:00:00Z)"
                    .into()
            ),
            Decision::Abstain,
            Decision::Abstain,
            Decision::Abstain,
        ]
    );
    let any = wharf_plugins::AuthzRequest {
        principal: Default::default(),
        action: "deployments.create".into(),
        target: Default::default(),
        attributes: json!({}),
    };
    let err = policy
        .authorize(&json!({ "windows": 3 }), &[any])
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid freeze-window configuration"),
        "{err}"
    );
}

#[tokio::test]
async fn a_template_error_is_invalid_input_naming_the_template() {
    let (rt, _dir) = runtime();
    let d = driver(
        &rt,
        wharf_artifacts::TEMPLATE,
        Manifest::new("template", Kind::Driver),
    )
    .await;
    let mut req = request(json!({ "name": "orders" }));
    req.config.values = json!({ "templates": { "outputs": {
        "host": "{{ context.resource_id }}.{{ context.env }}.svc",
        "name": "{{ params.name | upper }}",
    } } });
    req.config.secrets = json!({ "templates": { "outputs": { "token": "t-{{ driver.secrets.seed }}" } }, "seed": "42" });
    let (outputs, _) = done(d.provision(&req).await.unwrap());
    assert_eq!(
        outputs.values,
        json!({ "host": "db.dev.svc", "name": "ORDERS" })
    );
    assert_eq!(outputs.secrets, json!({ "token": "t-42" }));

    req.config.values =
        json!({ "templates": { "outputs": { "broken": "{{ params.missing.deeper }}" } } });
    let err = d.provision(&req).await.unwrap_err();
    let PluginFailure::Plugin(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.kind, wharf_plugins::ErrorKind::InvalidInput);
    assert!(
        e.message
            .starts_with("template values.templates.outputs.broken:"),
        "{}",
        e.message
    );
}
