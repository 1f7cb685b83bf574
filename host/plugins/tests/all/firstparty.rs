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

mod rbac_table {
    use super::*;
    use wharf_plugins::{AuthzRequest, Decision, Principal, RoleBinding, Scope, Target};

    fn principal(id: &str, bindings: &[(&str, &str)]) -> Principal {
        Principal {
            id: id.into(),
            role_bindings: bindings
                .iter()
                .map(|(scope, role)| RoleBinding {
                    scope: match scope.split_once(':') {
                        Some(("app", a)) => Scope::App(a.into()),
                        Some(("env-type", t)) => Scope::EnvType(t.into()),
                        _ => Scope::Org,
                    },
                    role: role.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// (principal, action, app, env type, attributes, expected: "allow" or a part of the
    /// deny reason)
    type Case = (
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        serde_json::Value,
        &'static str,
    );

    fn cases() -> Vec<Case> {
        let none = serde_json::Value::Null;
        let shop = Some("shop");
        let bank = Some("bank");
        let dev = Some("development");
        let prod = Some("production");
        vec![
            ("admin", "apps.create", None, None, none.clone(), "allow"),
            (
                "admin",
                "env-types.create",
                None,
                None,
                none.clone(),
                "allow",
            ),
            (
                "admin",
                "deployments.create",
                shop,
                prod,
                none.clone(),
                "allow",
            ),
            (
                "admin",
                "plugins.install",
                None,
                None,
                none.clone(),
                "allow",
            ),
            (
                "admin",
                "apps.explode",
                shop,
                None,
                none.clone(),
                "unknown action \"apps.explode\"",
            ),
            ("manager", "apps.create", None, None, none.clone(), "allow"),
            (
                "manager",
                "env-types.create",
                None,
                None,
                none.clone(),
                "needs the org role admin",
            ),
            (
                "manager",
                "role-bindings.create",
                None,
                None,
                json!({ "role": "developer" }),
                "allow",
            ),
            (
                "manager",
                "role-bindings.create",
                None,
                None,
                json!({ "role": "admin" }),
                "needs the org role admin",
            ),
            ("manager", "users.create", None, None, none.clone(), "allow"),
            (
                "manager",
                "plugins.install",
                None,
                None,
                none.clone(),
                "needs the org role admin",
            ),
            (
                "manager",
                "apps.get",
                shop,
                None,
                none.clone(),
                "needs the role viewer (or higher) on app shop",
            ),
            ("manager", "audit.read", None, None, none.clone(), "allow"),
            ("member", "apps.list", None, None, none.clone(), "allow"),
            (
                "member",
                "apps.create",
                None,
                None,
                none.clone(),
                "needs the org role manager",
            ),
            (
                "member",
                "env-types.list",
                None,
                None,
                none.clone(),
                "allow",
            ),
            ("member", "plugins.list", None, None, none.clone(), "allow"),
            (
                "member",
                "users.list",
                None,
                None,
                none.clone(),
                "needs the org role manager",
            ),
            (
                "member",
                "resource-definitions.create",
                None,
                None,
                none.clone(),
                "needs the org role admin",
            ),
            ("owner", "apps.delete", shop, None, none.clone(), "allow"),
            (
                "owner",
                "app-members.create",
                shop,
                None,
                none.clone(),
                "allow",
            ),
            (
                "owner",
                "apps.delete",
                bank,
                None,
                none.clone(),
                "on app bank",
            ),
            (
                "owner",
                "deployments.create",
                shop,
                dev,
                none.clone(),
                "needs the role deployer on environment type development",
            ),
            (
                "owner",
                "resources.delete",
                shop,
                None,
                none.clone(),
                "allow",
            ),
            (
                "owner-prod",
                "deployments.create",
                shop,
                prod,
                none.clone(),
                "allow",
            ),
            (
                "owner-prod",
                "deployments.cancel",
                shop,
                prod,
                none.clone(),
                "allow",
            ),
            (
                "developer",
                "workloads.create",
                shop,
                None,
                none.clone(),
                "allow",
            ),
            (
                "developer",
                "apps.delete",
                shop,
                None,
                none.clone(),
                "needs the role owner (or higher) on app shop",
            ),
            (
                "developer",
                "app-members.create",
                shop,
                None,
                none.clone(),
                "needs the role owner",
            ),
            (
                "developer",
                "deployments.create",
                shop,
                dev,
                none.clone(),
                "needs the role deployer on environment type development",
            ),
            (
                "developer",
                "secrets.read",
                shop,
                None,
                none.clone(),
                "allow",
            ),
            (
                "developer",
                "values.update",
                shop,
                None,
                none.clone(),
                "allow",
            ),
            (
                "developer",
                "deployments.list",
                shop,
                None,
                none.clone(),
                "allow",
            ),
            (
                "developer",
                "role-bindings.create",
                None,
                None,
                json!({ "role": "viewer" }),
                "needs the org role manager",
            ),
            (
                "developer",
                "workloads.create",
                None,
                None,
                none.clone(),
                "needs an app in its target",
            ),
            (
                "dev-deployer",
                "deployments.create",
                shop,
                dev,
                none.clone(),
                "allow",
            ),
            (
                "dev-deployer",
                "deployments.create",
                shop,
                prod,
                none.clone(),
                "deployer on environment type production",
            ),
            (
                "dev-deployer",
                "environments.create",
                shop,
                dev,
                none.clone(),
                "allow",
            ),
            (
                "dev-deployer",
                "environments.delete",
                shop,
                dev,
                none.clone(),
                "allow",
            ),
            (
                "dev-deployer",
                "environments.clone",
                shop,
                dev,
                none.clone(),
                "allow",
            ),
            (
                "dev-deployer",
                "environments.create",
                bank,
                dev,
                none.clone(),
                "on app bank",
            ),
            (
                "dev-deployer",
                "deployments.create",
                shop,
                None,
                none.clone(),
                "needs an environment type in its target",
            ),
            ("viewer", "apps.get", shop, None, none.clone(), "allow"),
            ("viewer", "logs.read", shop, None, none.clone(), "allow"),
            (
                "viewer",
                "workloads.update",
                shop,
                None,
                none.clone(),
                "needs the role developer",
            ),
            (
                "viewer",
                "secrets.read",
                shop,
                None,
                none.clone(),
                "needs the role developer",
            ),
            (
                "viewer",
                "deployments.create",
                shop,
                dev,
                none.clone(),
                "needs the role developer",
            ),
            (
                "viewer",
                "deployments.get",
                bank,
                None,
                none.clone(),
                "on app bank",
            ),
            (
                "nobody",
                "apps.list",
                None,
                None,
                none.clone(),
                "needs the org role member",
            ),
            (
                "nobody",
                "apps.get",
                shop,
                None,
                none.clone(),
                "on app shop",
            ),
            (
                "nobody",
                "",
                None,
                None,
                none.clone(),
                "unknown action \"\"",
            ),
        ]
    }

    fn principals(id: &str) -> Principal {
        match id {
            "admin" => principal(id, &[("org", "admin")]),
            "manager" => principal(id, &[("org", "manager")]),
            "member" => principal(id, &[("org", "member")]),
            "owner" => principal(id, &[("org", "member"), ("app:shop", "owner")]),
            "owner-prod" => principal(
                id,
                &[("app:shop", "owner"), ("env-type:production", "deployer")],
            ),
            "developer" => principal(id, &[("org", "member"), ("app:shop", "developer")]),
            "dev-deployer" => principal(
                id,
                &[
                    ("app:shop", "developer"),
                    ("env-type:development", "deployer"),
                    ("app:bank", "viewer"),
                ],
            ),
            "viewer" => principal(id, &[("app:shop", "viewer")]),
            _ => principal(id, &[]),
        }
    }

    #[tokio::test]
    async fn rbac_decides_every_case_of_the_table_through_the_runtime() {
        let (rt, _dir) = runtime();
        let rbac = installed_policy(&rt, bundled("rbac").bytes).await;
        let cases = cases();
        assert!(cases.len() >= 40);
        let requests: Vec<AuthzRequest> = cases
            .iter()
            .map(|(who, action, app, env_type, attributes, _)| AuthzRequest {
                principal: principals(who).into(),
                action: action.to_string(),
                target: Target {
                    app: app.map(Into::into),
                    env_type: env_type.map(Into::into),
                    ..Default::default()
                },
                attributes: if attributes.is_null() {
                    json!({})
                } else {
                    attributes.clone()
                },
            })
            .collect();
        let decisions = rbac.authorize(&json!({}), &requests).await.unwrap();
        let mut wrong = Vec::new();
        for (case, decision) in cases.iter().zip(&decisions) {
            let (who, action, app, env_type, _, expected) = case;
            let ok = match decision {
                Decision::Allow => *expected == "allow",
                Decision::Deny(reason) => *expected != "allow" && reason.contains(expected),
                Decision::Abstain => false,
            };
            if !ok {
                wrong.push(format!(
                    "{who} {action} {app:?} {env_type:?}: expected {expected:?}, got {decision:?}"
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} wrong:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
        // One at a time decides the same as the batch.
        for (request, decision) in requests.iter().zip(&decisions).take(10) {
            let single = rbac
                .authorize(&json!({}), std::slice::from_ref(request))
                .await
                .unwrap();
            assert_eq!(&single[0], decision);
        }
    }

    #[tokio::test]
    async fn rbac_lets_principals_manage_their_own_tokens_and_guards_admins_tokens() {
        let (rt, _dir) = runtime();
        let rbac = installed_policy(&rt, bundled("rbac").bytes).await;
        let ask = |who: &str, action: &str, object: &str, target_is_admin: bool| AuthzRequest {
            principal: principals(who).into(),
            action: action.into(),
            target: Target {
                object: Some(object.into()),
                ..Default::default()
            },
            attributes: json!({ "target_is_admin": target_is_admin }),
        };
        let decisions = rbac
            .authorize(
                &json!({}),
                &[
                    ask("viewer", "tokens.create", "viewer", false),
                    ask("nobody", "tokens.list", "nobody", false),
                    ask("viewer", "tokens.create", "developer", false),
                    ask("manager", "tokens.create", "developer", false),
                    ask("manager", "tokens.delete", "admin", true),
                    ask("admin", "tokens.delete", "root", true),
                    ask("manager", "tokens.delete", "developer", false),
                    ask("admin", "tokens.create", "developer", false),
                    ask("admin", "tokens.create", "root", true),
                ],
            )
            .await
            .unwrap();
        assert_eq!(decisions[0], Decision::Allow, "own token");
        assert_eq!(
            decisions[1],
            Decision::Allow,
            "own tokens, even without roles"
        );
        assert_eq!(
            decisions[2],
            Decision::Deny("tokens.create needs the org role admin (or higher)".into())
        );
        assert_eq!(
            decisions[3],
            Decision::Deny("tokens.create needs the org role admin (or higher)".into()),
            "a manager makes no token for another"
        );
        assert_eq!(
            decisions[4],
            Decision::Deny("tokens.delete needs the org role admin (or higher)".into())
        );
        assert_eq!(decisions[5], Decision::Allow);
        assert_eq!(decisions[6], Decision::Allow, "a manager revokes another's");
        assert_eq!(decisions[7], Decision::Allow, "an admin makes another's");
        assert_eq!(
            decisions[8],
            Decision::Deny(
                "tokens.create: no one may make a token for another admin; they make their own"
                    .into()
            ),
            "not even an admin, for another admin"
        );
    }

    #[tokio::test]
    async fn rbac_refuses_a_configuration() {
        let (rt, _dir) = runtime();
        let rbac = installed_policy(&rt, bundled("rbac").bytes).await;
        assert!(rbac.validate_config(&json!({})).await.unwrap().is_empty());
        let issues = rbac
            .validate_config(&json!({ "admins": ["x"] }))
            .await
            .unwrap();
        assert_eq!(issues[0].path, "/admins");
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

mod baseline {
    use super::*;
    use wharf_plugins::{TransformContext, TransformerPlugin};

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
