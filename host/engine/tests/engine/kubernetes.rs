//! The kubernetes target at the request level: kube's client over an in-process mock
//! service (tower-test) that plays a small API server (objects kept by path, label
//! selectors with `=` and `!=`, server-side apply stored as sent). It proves what Wharf
//! sends: the apply patch's content type, field manager and force flag, the namespace,
//! the order, the labels, the prune's selector; and how it reads rollouts, pods and logs.
//! It is not a Kubernetes API server: no defaulting, no field ownership (a conflict is
//! scripted), no controllers (the tests set the status a controller would).

use crate::fake_kube::{Seen, Server, query_param, status};
use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wharf_core::target::KubernetesSpec;
use wharf_engine::target::kubernetes::Kubernetes;
use wharf_engine::target::{EnvRef, LogQuery, Target, TargetError};

/// A target over the fake server, and the server.
fn target(force: bool) -> (Kubernetes, Arc<Mutex<Server>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = Arc::new(Mutex::new(Server::default()));
    let state = server.clone();
    tokio::spawn(async move {
        while let Some((request, respond)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap();
            let body: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
            };
            let seen = Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().unwrap_or_default().to_string(),
                content_type: parts
                    .headers
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default(),
                body,
            };
            let (code, value, text) = state.lock().unwrap().answer(seen);
            let bytes = match text {
                Some(t) => t.into_bytes(),
                None => serde_json::to_vec(&value).unwrap(),
            };
            respond.send_response(
                Response::builder()
                    .status(StatusCode::from_u16(code).unwrap())
                    .header("content-type", "application/json")
                    .body(Body::from(bytes))
                    .unwrap(),
            );
        }
    });
    let client = kube::Client::new(service, "default");
    let spec = KubernetesSpec {
        cluster: "test".into(),
        namespace: "{app}-{env}".into(),
        force_conflicts: force,
    };
    let target = Kubernetes::new(client, "test", spec).with_poll(Duration::from_millis(5));
    (target, server)
}

fn env(deployment: i64) -> EnvRef {
    EnvRef {
        app: "shop".into(),
        env: "dev".into(),
        set: "s".into(),
        deployment,
    }
}

/// What the renderer makes of a workload `web` with a secret, a file and a port, plus an
/// HPA (a kind Wharf does not render), in an order that is not the order of applying.
fn objects() -> Vec<Value> {
    let labels =
        json!({ "app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web-dev" });
    vec![
        json!({ "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "web", "labels": labels.clone(),
                              "annotations": { "wharf.dev/workload": "web" } },
                "spec": { "replicas": 2,
                          "selector": { "matchLabels": { "app.kubernetes.io/instance": "web-dev" } },
                          "template": { "metadata": { "labels": labels.clone() },
                                        "spec": { "containers": [{ "name": "main", "image": "shop:1" }] } } } }),
        json!({ "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": { "name": "web" }, "spec": { "maxReplicas": 4 } }),
        json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "web" },
                "spec": { "ports": [{ "port": 80 }] } }),
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "web-files" },
                "data": { "a": "b" } }),
        json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "web-env" },
                "stringData": { "PASSWORD": "pw" } }),
    ]
}

fn patches(server: &Arc<Mutex<Server>>) -> Vec<Seen> {
    server
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|s| s.method == "PATCH")
        .cloned()
        .collect()
}

#[tokio::test]
async fn apply_makes_the_namespace_then_applies_in_dependency_order_with_server_side_apply() {
    let (target, server) = target(false);
    let applied = target.apply(&env(7), &objects()).await.unwrap();
    assert_eq!(
        applied.changed,
        [
            "ConfigMap/web-files",
            "Secret/web-env",
            "Service/web",
            "Deployment/web",
            "HorizontalPodAutoscaler/web"
        ]
    );
    assert_eq!(applied.location, "cluster test, namespace shop-dev");
    let patches = patches(&server);
    let paths: Vec<&str> = patches.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/shop-dev",
            "/api/v1/namespaces/shop-dev/configmaps/web-files",
            "/api/v1/namespaces/shop-dev/secrets/web-env",
            "/api/v1/namespaces/shop-dev/services/web",
            "/apis/apps/v1/namespaces/shop-dev/deployments/web",
            "/apis/autoscaling/v2/namespaces/shop-dev/horizontalpodautoscalers/web",
        ]
    );
    for p in &patches {
        assert_eq!(p.content_type, "application/apply-patch+yaml", "{}", p.path);
        assert_eq!(
            query_param(&p.query, "fieldManager").as_deref(),
            Some("wharf"),
            "{}",
            p.path
        );
        assert_eq!(
            query_param(&p.query, "force"),
            None,
            "not forced: {}",
            p.path
        );
    }
    let namespace = &patches[0].body;
    assert_eq!(namespace["metadata"]["labels"]["wharf.dev/app"], "shop");
    assert_eq!(namespace["metadata"]["labels"]["wharf.dev/env"], "dev");
    assert_eq!(
        namespace["metadata"]["annotations"]["wharf.dev/created"],
        "true"
    );
    let kinds: Vec<String> = serde_json::from_str(
        namespace["metadata"]["annotations"]["wharf.dev/kinds"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    let deployment = &patches[4].body;
    assert_eq!(deployment["metadata"]["namespace"], "shop-dev");
    let labels = &deployment["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "wharf");
    assert_eq!(
        labels["app.kubernetes.io/name"], "web",
        "its own labels stay"
    );
    assert_eq!(labels["wharf.dev/deployment"], "7");
    assert!(
        deployment["spec"]["template"]["metadata"]["labels"]["wharf.dev/deployment"].is_null(),
        "the pod template does not change with each deployment"
    );
    // No discovery was needed: every kind is one Wharf knows.
    let seen = server.lock().unwrap().seen.clone();
    assert!(
        seen.iter()
            .all(|r| r.method == "PATCH" || r.path == "/api/v1/namespaces/shop-dev"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_forced_target_says_force_and_a_conflict_names_the_fields_and_the_fix() {
    let (target, server) = target(true);
    target.apply(&env(1), &objects()[2..3]).await.unwrap();
    let service = patches(&server)
        .into_iter()
        .find(|p| p.path.ends_with("/services/web"))
        .unwrap();
    assert_eq!(
        query_param(&service.query, "force").as_deref(),
        Some("true")
    );

    let (target, server) = target_with_conflict();
    let err = target.apply(&env(1), &objects()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("Deployment/web"), "{text}");
    assert!(
        text.contains("conflict with \"kubectl\" using apps/v1: .spec.replicas"),
        "{text}"
    );
    assert!(text.contains("\"force_conflicts\": true"), "{text}");
    assert!(
        matches!(err, TargetError::Object { index: 0, .. }),
        "{err:?}"
    );
    drop(server);
}

fn target_with_conflict() -> (Kubernetes, Arc<Mutex<Server>>) {
    let (target, server) = target(false);
    server.lock().unwrap().scripted.insert(
        "/apis/apps/v1/namespaces/shop-dev/deployments/web".into(),
        (409, status(409, "Conflict",
            "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas")),
    );
    (target, server)
}

#[tokio::test]
async fn objects_for_another_namespace_or_the_whole_cluster_are_refused_before_anything_is_sent() {
    let (target, server) = target(false);
    let mut other = objects();
    other[3]["metadata"]["namespace"] = json!("kube-system");
    let err = target.apply(&env(1), &other).await.unwrap_err().to_string();
    assert!(
        err.contains("object 3: ConfigMap/web-files is for namespace kube-system"),
        "{err}"
    );
    let role =
        vec![json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "x" } })];
    let err = target.apply(&env(1), &role).await.unwrap_err().to_string();
    assert!(err.contains("Namespace/x is cluster-scoped"), "{err}");
    assert!(patches(&server).is_empty(), "nothing was applied");
    // A namespace of another environment is not taken over.
    server.lock().unwrap().objects.insert(
        "/api/v1/namespaces/shop-dev".into(),
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "shop-dev",
                "labels": { "wharf.dev/app": "blog", "wharf.dev/env": "dev" } } }),
    );
    let err = target
        .apply(&env(1), &objects())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("namespace shop-dev belongs to environment dev of app blog"),
        "{err}"
    );
    assert!(patches(&server).is_empty());
}

#[tokio::test]
async fn an_unknown_kind_is_found_by_discovery_and_a_missing_one_is_named() {
    let (target, server) = target(false);
    server.lock().unwrap().objects.insert(
        "/apis/gateway.networking.k8s.io/v1".into(),
        json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "gateway.networking.k8s.io/v1",
                "resources": [{ "name": "httproutes", "singularName": "httproute", "namespaced": true,
                                "kind": "HTTPRoute", "verbs": ["get", "list", "patch", "delete"] }] }),
    );
    let route = json!({ "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                        "metadata": { "name": "web" }, "spec": { "hostnames": ["shop.example.com"] } });
    let applied = target.apply(&env(1), &[route]).await.unwrap();
    assert_eq!(applied.changed, ["HTTPRoute/web"]);
    assert!(
        patches(&server)
            .iter()
            .any(|p| p.path
                == "/apis/gateway.networking.k8s.io/v1/namespaces/shop-dev/httproutes/web")
    );
    let unknown =
        json!({ "apiVersion": "example.com/v1", "kind": "Widget", "metadata": { "name": "w" } });
    let err = target
        .apply(&env(1), &[unknown])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the cluster does not serve Widget in example.com/v1"),
        "{err}"
    );
}

/// Marks the Deployment `web` as a controller would: `available` of its 2 replicas.
fn rolled_out(server: &Arc<Mutex<Server>>, available: i64) {
    let mut s = server.lock().unwrap();
    let d = s
        .objects
        .get_mut("/apis/apps/v1/namespaces/shop-dev/deployments/web")
        .unwrap();
    d["metadata"]["generation"] = json!(1);
    d["status"] = json!({ "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                          "availableReplicas": available });
}

fn pod(name: &str, container_status: Value, conditions: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": name, "namespace": "shop-dev",
                          "labels": { "app.kubernetes.io/instance": "web-dev",
                                      "app.kubernetes.io/name": "web",
                                      "wharf.dev/app": "shop", "wharf.dev/env": "dev" } },
            "spec": { "containers": [{ "name": "main", "image": "shop:1" }] },
            "status": { "containerStatuses": [container_status], "conditions": conditions } })
}

#[tokio::test]
async fn verify_waits_for_the_rollout_and_names_why_it_cannot_finish() {
    let (target, server) = target(false);
    target.apply(&env(1), &objects()).await.unwrap();
    rolled_out(&server, 2);
    let ready = target
        .verify(&env(1), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ready.len(), 1);
    assert!(ready[0].ready, "{ready:?}");
    assert_eq!(ready[0].name, "web");

    // A bad image: the deployment fails at once, naming the image.
    rolled_out(&server, 1);
    server.lock().unwrap().objects.insert(
        "/api/v1/namespaces/shop-dev/pods/web-1".into(),
        pod(
            "web-1",
            json!({ "name": "main", "image": "shop:nope", "ready": false, "restartCount": 0,
                              "imageID": "", "state": { "waiting": { "reason": "ImagePullBackOff",
                              "message": "Back-off pulling image \"shop:nope\"" } } }),
            json!([]),
        ),
    );
    let err = target
        .verify(&env(1), Duration::from_secs(60))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Deployment web (1/2 available, 2 updated): container main cannot pull image shop:1 (ImagePullBackOff"), "{err}");

    // A crash loop: the exit code and the last lines.
    server.lock().unwrap().objects.insert(
        "/api/v1/namespaces/shop-dev/pods/web-1".into(),
        pod("web-1", json!({ "name": "main", "image": "shop:1", "ready": false, "restartCount": 4,
                              "imageID": "", "state": { "waiting": { "reason": "CrashLoopBackOff" } },
                              "lastState": { "terminated": { "exitCode": 3 } } }), json!([])),
    );
    server.lock().unwrap().logs.insert(
        "/api/v1/namespaces/shop-dev/pods/web-1/log/main".into(),
        "starting\nDATABASE_URL is not set\n".into(),
    );
    let err = target
        .verify(&env(1), Duration::from_secs(60))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("container main keeps crashing (exit code 3, 4 restarts)"),
        "{err}"
    );
    assert!(err.ends_with("DATABASE_URL is not set"), "{err}");
    let log = server
        .lock()
        .unwrap()
        .seen
        .iter()
        .rev()
        .find(|s| s.path.ends_with("/log"))
        .cloned()
        .unwrap();
    assert_eq!(query_param(&log.query, "previous").as_deref(), Some("true"));

    // Unschedulable: waited for until the deadline, then named.
    server.lock().unwrap().objects.insert(
        "/api/v1/namespaces/shop-dev/pods/web-1".into(),
        pod("web-1", json!({ "name": "main", "image": "shop:1", "ready": false, "restartCount": 0,
                              "imageID": "", "state": { "waiting": { "reason": "ContainerCreating" } } }),
            json!([{ "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": "0/3 nodes are available: 3 Insufficient cpu." }])),
    );
    let err = target
        .verify(&env(1), Duration::from_millis(50))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("not ready after 0s: Deployment web (1/2 available, 2 updated): pod web-1 cannot be scheduled: 0/3 nodes are available: 3 Insufficient cpu."), "{err}");

    // A failing readiness probe, the same.
    server.lock().unwrap().objects.insert(
        "/api/v1/namespaces/shop-dev/pods/web-1".into(),
        pod(
            "web-1",
            json!({ "name": "main", "image": "shop:1", "ready": false, "restartCount": 0,
                              "imageID": "", "state": { "running": {} } }),
            json!([]),
        ),
    );
    let err = target
        .verify(&env(1), Duration::from_millis(50))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("container main runs but is not ready (its readiness probe fails)"),
        "{err}"
    );

    // The progress deadline passed: the rollout failed.
    {
        let mut s = server.lock().unwrap();
        s.objects.remove("/api/v1/namespaces/shop-dev/pods/web-1");
        let d = s
            .objects
            .get_mut("/apis/apps/v1/namespaces/shop-dev/deployments/web")
            .unwrap();
        d["status"]["conditions"] = json!([{ "type": "Progressing", "status": "False",
                                              "reason": "ProgressDeadlineExceeded" }]);
    }
    let err = target
        .verify(&env(1), Duration::from_secs(60))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("passed its progress deadline"), "{err}");
    let status = target.status(&env(0)).await;
    assert_eq!(status[0].state, wharf_core::status::WorkloadState::Failed);
}

#[tokio::test]
async fn prune_deletes_only_the_environments_objects_of_other_deployments_and_delete_takes_the_namespace()
 {
    let (target, server) = target(false);
    target.apply(&env(1), &objects()).await.unwrap();
    // Something else in the namespace, not Wharf's: never touched.
    server.lock().unwrap().objects.insert(
        "/api/v1/namespaces/shop-dev/configmaps/theirs".into(),
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "theirs",
                "labels": { "wharf.dev/app": "shop", "wharf.dev/env": "dev" } } }),
    );
    // The next set has no HPA and no ConfigMap.
    let next: Vec<Value> = objects()
        .into_iter()
        .filter(|o| o["kind"] != "HorizontalPodAutoscaler" && o["kind"] != "ConfigMap")
        .collect();
    target.apply(&env(2), &next).await.unwrap();
    let mut pruned = target.prune(&env(2)).await.unwrap();
    pruned.sort();
    assert_eq!(
        pruned,
        ["ConfigMap/web-files", "HorizontalPodAutoscaler/web"]
    );
    {
        let s = server.lock().unwrap();
        let lists: Vec<String> = s
            .seen
            .iter()
            .filter(|r| r.method == "GET" && r.query.contains("labelSelector"))
            .map(|r| query_param(&r.query, "labelSelector").unwrap())
            .collect();
        assert!(lists.iter().all(|l| l
            == "app.kubernetes.io/managed-by=wharf,wharf.dev/app=shop,wharf.dev/env=dev,wharf.dev/deployment!=2"), "{lists:?}");
        assert_eq!(
            lists.len(),
            5,
            "every kind applied in the namespace, remembered: {lists:?}"
        );
        assert!(
            s.objects
                .contains_key("/api/v1/namespaces/shop-dev/configmaps/theirs")
        );
        assert!(
            s.objects
                .contains_key("/apis/apps/v1/namespaces/shop-dev/deployments/web")
        );
    }

    target.remove(&env(3)).await.unwrap();
    let s = server.lock().unwrap();
    assert!(
        !s.objects.contains_key("/api/v1/namespaces/shop-dev"),
        "the namespace Wharf made is gone"
    );
    assert!(
        !s.objects
            .contains_key("/apis/apps/v1/namespaces/shop-dev/deployments/web")
    );
    let deletes: Vec<&Seen> = s.seen.iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!(deletes.last().unwrap().path, "/api/v1/namespaces/shop-dev");
    assert!(
        deletes
            .iter()
            .all(|d| d.body["propagationPolicy"] == "Background"),
        "{deletes:?}"
    );
}

#[tokio::test]
async fn a_namespace_wharf_did_not_make_stays_when_the_environment_goes() {
    let (target, server) = target(false);
    server.lock().unwrap().objects.insert(
        "/api/v1/namespaces/shop-dev".into(),
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "shop-dev" } }),
    );
    target.apply(&env(1), &objects()).await.unwrap();
    let ns = &patches(&server)[0].body;
    assert!(
        ns["metadata"]["labels"].is_null()
            && ns["metadata"]["annotations"]["wharf.dev/created"].is_null(),
        "{ns}"
    );
    target.remove(&env(2)).await.unwrap();
    let s = server.lock().unwrap();
    assert!(s.objects.contains_key("/api/v1/namespaces/shop-dev"));
    assert!(
        !s.objects
            .contains_key("/api/v1/namespaces/shop-dev/services/web")
    );
}

#[tokio::test]
async fn logs_interleave_every_pod_and_container_with_its_name() {
    use futures_util::StreamExt;
    let (target, server) = target(false);
    {
        let mut s = server.lock().unwrap();
        for name in ["web-1", "web-2"] {
            s.objects.insert(
                format!("/api/v1/namespaces/shop-dev/pods/{name}"),
                pod(name, json!({ "name": "main", "image": "shop:1", "ready": true, "restartCount": 0, "imageID": "" }), json!([])),
            );
            s.logs.insert(
                format!("/api/v1/namespaces/shop-dev/pods/{name}/log/main"),
                format!("hello from {name}\n"),
            );
        }
    }
    let query = LogQuery {
        workload: Some("web".into()),
        tail: 10,
        follow: false,
    };
    let mut lines: Vec<String> = target.logs(&env(0), query).await.unwrap().collect().await;
    lines.sort();
    assert_eq!(
        lines,
        [
            "[web-1/main] hello from web-1",
            "[web-2/main] hello from web-2"
        ]
    );
    {
        let s = server.lock().unwrap();
        let log = s.seen.iter().find(|r| r.path.ends_with("/log")).unwrap();
        assert_eq!(query_param(&log.query, "tailLines").as_deref(), Some("10"));
        assert_eq!(
            query_param(&log.query, "container").as_deref(),
            Some("main")
        );
        let list = s
            .seen
            .iter()
            .find(|r| r.path == "/api/v1/namespaces/shop-dev/pods")
            .unwrap();
        assert_eq!(
            query_param(&list.query, "labelSelector").as_deref(),
            Some("wharf.dev/app=shop,wharf.dev/env=dev,app.kubernetes.io/name=web")
        );
    }
    let none = LogQuery {
        workload: Some("api".into()),
        tail: 10,
        follow: false,
    };
    let err = target.logs(&env(0), none).await.err().unwrap().to_string();
    assert_eq!(err, "no pods of workload api in namespace shop-dev");
}

#[tokio::test]
async fn pause_holds_the_replicas_at_zero_under_a_manager_of_its_own_and_resume_lets_go() {
    let (target, server) = target(false);
    target.apply(&env(1), &objects()).await.unwrap();
    let before = patches(&server).len();
    target.pause(&env(0)).await.unwrap();
    let claims: Vec<Seen> = patches(&server).split_off(before);
    assert_eq!(claims.len(), 1, "{claims:?}");
    let claim = &claims[0];
    assert_eq!(
        claim.path,
        "/apis/apps/v1/namespaces/shop-dev/deployments/web"
    );
    assert_eq!(claim.content_type, "application/apply-patch+yaml");
    assert_eq!(
        query_param(&claim.query, "fieldManager").as_deref(),
        Some("wharf-pause")
    );
    assert_eq!(query_param(&claim.query, "force").as_deref(), Some("true"));
    // Only the replicas: the manager claims nothing else, so Wharf's fields stay Wharf's.
    assert_eq!(
        claim.body,
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "web" },
                "spec": { "replicas": 0 } })
    );
    let lists: Vec<String> = server
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/deployments"))
        .filter_map(|r| query_param(&r.query, "labelSelector"))
        .collect();
    assert!(
        lists.contains(&"wharf.dev/app=shop,wharf.dev/env=dev".to_string()),
        "{lists:?}"
    );

    // Resuming: the same manager applies the workload without replicas, releasing them.
    server.lock().unwrap().objects.insert(
        "/apis/apps/v1/namespaces/shop-dev/deployments/web".into(),
        json!({ "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "web", "labels": { "wharf.dev/app": "shop", "wharf.dev/env": "dev" } } }),
    );
    let before = patches(&server).len();
    target.resume(&env(0)).await.unwrap();
    let released: Vec<Seen> = patches(&server).split_off(before);
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(
        query_param(&released[0].query, "fieldManager").as_deref(),
        Some("wharf-pause")
    );
    assert!(released[0].body["spec"].is_null(), "{:?}", released[0].body);
}
