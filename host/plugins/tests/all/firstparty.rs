//! First-party drivers through the real runtime.

use crate::{driver, request, runtime};
use serde_json::json;
use wharf_plugins::{Kind, Manifest, PluginFailure, Step};

fn done(step: Step) -> (wharf_plugins::Values, serde_json::Value) {
    match step {
        Step::Done { outputs, state } => (outputs, state),
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
