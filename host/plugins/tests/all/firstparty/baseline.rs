//! The bundled baseline transformer: defaults, caps, labels and annotations.

use super::bundled;
use crate::runtime;
use serde_json::json;
use wharf_plugins::{Kind, Manifest, TransformContext, TransformerPlugin};

async fn baseline(rt: &wharf_plugins::Runtime) -> TransformerPlugin {
    let b = bundled("baseline");
    match rt
        .install(b.bytes, Manifest::new("baseline", Kind::Transformer))
        .await
        .unwrap()
    {
        wharf_plugins::Plugin::Transformer(t) => t,
        _ => panic!("not a transformer"),
    }
}

fn deployment(
    name: &str,
    replicas: Option<u64>,
    resources: serde_json::Value,
) -> serde_json::Value {
    let mut d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "labels": { "app.kubernetes.io/name": name } },
        "spec": {
            "selector": { "matchLabels": { "app.kubernetes.io/name": name } },
            "template": { "spec": { "containers": [
                { "name": "main", "image": "web:1", "resources": resources }
            ] } }
        }
    });
    if let Some(r) = replicas {
        d["spec"]["replicas"] = json!(r);
    }
    d
}

fn config(enforce: bool) -> serde_json::Value {
    let mut c = json!({
        "defaults": {
            "replicas": 2,
            "requests": { "cpu": "100m", "memory": "128Mi" },
            "limits": { "cpu": "500m", "memory": "512Mi" }
        }
    });
    if enforce {
        c["enforce"] = json!({ "max_replicas": 5, "max": { "cpu": "1", "memory": "1Gi" } });
    }
    c
}

fn text(objects: &[serde_json::Value]) -> Vec<String> {
    objects.iter().map(|o| o.to_string()).collect()
}

#[tokio::test]
async fn defaults_fill_only_what_is_unset_and_untouched_objects_are_byte_identical() {
    let (rt, _dir) = runtime();
    let t = baseline(&rt).await;
    let complete = deployment(
        "full",
        Some(3),
        json!({ "requests": { "cpu": "2", "memory": "4Gi" }, "limits": { "cpu": "4", "memory": "8Gi" } }),
    );
    let objects = vec![
        deployment("bare", None, json!({})),
        complete.clone(),
        json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "web" },
                "spec": { "ports": [{ "port": 80, "targetPort": 8080 }], "selector": { "a": "b" } } }),
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" },
                "data": { "z": "1", "a": "2", "m": "3.50" } }),
    ];
    let input = text(&objects);
    let out = t
        .transform_json(&TransformContext::default(), &config(false), input.clone())
        .await
        .unwrap();
    assert_eq!(out.len(), 4);
    assert_eq!(out[1..], input[1..], "untouched objects changed");
    let bare: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(bare["spec"]["replicas"], 2);
    let resources = &bare["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(
        resources,
        &json!({
            "requests": { "cpu": "100m", "memory": "128Mi" },
            "limits": { "cpu": "500m", "memory": "512Mi" }
        })
    );
}

#[tokio::test]
async fn enforcement_caps_replicas_and_resources() {
    let (rt, _dir) = runtime();
    let t = baseline(&rt).await;
    let big = deployment(
        "big",
        Some(20),
        json!({ "requests": { "cpu": "250m", "memory": "4Gi" }, "limits": { "cpu": "4", "memory": "8Gi" } }),
    );
    let small = deployment(
        "small",
        Some(1),
        json!({ "requests": { "cpu": "100m", "memory": "64Mi" }, "limits": { "cpu": "200m", "memory": "128Mi" } }),
    );
    let out = t
        .transform(
            &TransformContext::default(),
            &config(true),
            &[big, small.clone()],
        )
        .await
        .unwrap();
    assert_eq!(out[0]["spec"]["replicas"], 5);
    let r = &out[0]["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(r["requests"], json!({ "cpu": "250m", "memory": "1Gi" }));
    assert_eq!(r["limits"], json!({ "cpu": "1", "memory": "1Gi" }));
    assert_eq!(out[1], small, "within the caps: unchanged");
}

#[tokio::test]
async fn labels_and_annotations_go_on_every_object() {
    let (rt, _dir) = runtime();
    let t = baseline(&rt).await;
    let config = json!({ "labels": { "team": "pay" }, "annotations": { "owner": "platform" } });
    let out = t
        .transform(
            &TransformContext::default(),
            &config,
            &[
                json!({ "kind": "Service", "metadata": { "name": "s" } }),
                json!({ "kind": "Secret" }),
            ],
        )
        .await
        .unwrap();
    for o in &out {
        assert_eq!(o["metadata"]["labels"]["team"], "pay");
        assert_eq!(o["metadata"]["annotations"]["owner"], "platform");
    }
    let err = t
        .transform(
            &TransformContext::default(),
            &json!({ "defaults": { "limits": { "cpu": "fast" } } }),
            &[],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/defaults/limits/cpu"), "{err}");
}
