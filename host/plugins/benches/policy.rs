//! The policy engine comparison: one rule ("the principal has `developer` on the app and
//! `deployer` on the environment type"), decided by native Rust, by the bundled rbac
//! plugin through the real runtime, by Cedar and by Rego (regorus, interpreter and RVM),
//! in one criterion run. Prints a table of medians and ratios at the end.
//!
//! Run with `cargo bench -p wharf-plugins --bench policy`. Cedar and regorus are
//! dev-dependencies of this crate only: they never reach the host binary.

use criterion::{BatchSize, Criterion};
use serde_json::json;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use wharf_plugins::{
    AuthzRequest, Decision, Kind, Manifest, Plugin, Principal, RoleBinding, Runtime, RuntimeConfig,
    Scope, Target,
};

/// A principal with `developer` on `shop`, `deployer` on `development`, and `extra`
/// unrelated bindings in front of them.
fn principal(extra: usize) -> Principal {
    let mut role_bindings: Vec<RoleBinding> = (0..extra)
        .map(|i| RoleBinding {
            scope: Scope::App(format!("app-{i}")),
            role: "viewer".into(),
        })
        .collect();
    role_bindings.push(RoleBinding {
        scope: Scope::App("shop".into()),
        role: "developer".into(),
    });
    role_bindings.push(RoleBinding {
        scope: Scope::EnvType("development".into()),
        role: "deployer".into(),
    });
    Principal {
        id: "alice".into(),
        role_bindings,
        ..Default::default()
    }
}

fn request(extra: usize) -> AuthzRequest {
    AuthzRequest {
        principal: principal(extra).into(),
        action: "deployments.create".into(),
        target: Target {
            app: Some("shop".into()),
            env: Some("pr-1".into()),
            env_type: Some("development".into()),
            object: None,
        },
        attributes: json!({}),
    }
}

/// The rule in plain Rust, over the same request.
fn native(request: &AuthzRequest) -> bool {
    let (Some(app), Some(env_type)) = (&request.target.app, &request.target.env_type) else {
        return false;
    };
    let bindings = &request.principal.role_bindings;
    request.action == "deployments.create"
        && bindings
            .iter()
            .any(|b| b.role == "developer" && matches!(&b.scope, Scope::App(a) if a == app))
        && bindings
            .iter()
            .any(|b| b.role == "deployer" && matches!(&b.scope, Scope::EnvType(t) if t == env_type))
}

const CEDAR_POLICY: &str = r#"
permit(principal, action == Action::"deployments.create", resource)
when { principal.developer_of.contains(resource.app) && principal.deployer_of.contains(resource.env_type) };
"#;

const REGO_POLICY: &str = r#"
package wharf
import rego.v1

default allow := false

allow if {
    input.action == "deployments.create"
    some b in input.principal.role_bindings
    b.scope == "app"
    b.name == input.target.app
    b.role == "developer"
    some d in input.principal.role_bindings
    d.scope == "env-type"
    d.name == input.target.env_type
    d.role == "deployer"
}
"#;

fn rego_input() -> regorus::Value {
    regorus::Value::from_json_str(
        &json!({
            "action": "deployments.create",
            "principal": { "id": "alice", "role_bindings": [
                { "scope": "app", "name": "shop", "role": "developer" },
                { "scope": "env-type", "name": "development", "role": "deployer" }
            ] },
            "target": { "app": "shop", "env_type": "development" }
        })
        .to_string(),
    )
    .expect("rego input")
}

fn target_dir() -> PathBuf {
    // The bench runs as target/<profile>/deps/policy-<hash>.
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| "target".into())
}

const BENCHES: &[&str] = &[
    "native Rust",
    "rbac plugin, one decision",
    "rbac plugin, batch of 100 (per decision)",
    "rbac plugin, 100 role bindings",
    "cedar-policy 4.14",
    "regorus 0.14 interpreter",
    "regorus 0.14 RVM",
    "cedar-policy 4.14, entities built per request",
    "regorus 0.14 RVM, input built per request",
];

/// The Cedar entities for `request`: what an integration builds from Wharf's principal.
fn cedar_entities(request: &AuthzRequest) -> cedar_policy::Entities {
    let mut developer_of = Vec::new();
    let mut deployer_of = Vec::new();
    for b in &request.principal.role_bindings {
        match (&b.scope, b.role.as_str()) {
            (Scope::App(app), "developer" | "owner") => developer_of.push(app.clone()),
            (Scope::EnvType(t), "deployer") => deployer_of.push(t.clone()),
            _ => {}
        }
    }
    cedar_policy::Entities::from_json_value(
        json!([
            { "uid": { "type": "User", "id": request.principal.id }, "parents": [],
              "attrs": { "developer_of": developer_of, "deployer_of": deployer_of } },
            { "uid": { "type": "Environment", "id": "shop/pr-1" }, "parents": [],
              "attrs": { "app": request.target.app, "env_type": request.target.env_type } }
        ]),
        None,
    )
    .expect("cedar entities")
}

/// The Rego input for `request`.
fn rego_input_of(request: &AuthzRequest) -> regorus::Value {
    let bindings: Vec<serde_json::Value> = request
        .principal
        .role_bindings
        .iter()
        .map(|b| match &b.scope {
            Scope::Org => json!({ "scope": "org", "role": b.role }),
            Scope::App(a) => json!({ "scope": "app", "name": a, "role": b.role }),
            Scope::EnvType(t) => json!({ "scope": "env-type", "name": t, "role": b.role }),
        })
        .collect();
    let input = json!({
        "action": request.action,
        "principal": { "id": request.principal.id, "role_bindings": bindings },
        "target": request.target,
    });
    regorus::Value::from_json_str(&input.to_string()).expect("rego input")
}

fn main() {
    let out = target_dir().join("criterion");
    let mut c = Criterion::default()
        .output_directory(&out)
        .configure_from_args();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio.block_on(async {
        Runtime::new(RuntimeConfig::new(dir.path().join("cache"))).expect("runtime")
    });
    let rbac = wharf_artifacts::BUNDLED
        .iter()
        .find(|b| b.name == "rbac")
        .expect("rbac is bundled");
    let Plugin::Policy(rbac) = tokio
        .block_on(rt.install(rbac.bytes, Manifest::new("rbac", Kind::Policy)))
        .expect("install rbac")
    else {
        unreachable!()
    };
    let config = json!({});

    let one = vec![request(0)];
    let hundred: Vec<AuthzRequest> = (0..100).map(|_| request(0)).collect();
    let crowded = vec![request(98)];
    for batch in [&one, &hundred, &crowded] {
        let decisions = tokio
            .block_on(rbac.authorize(&config, batch))
            .expect("authorize");
        assert!(
            decisions.iter().all(|d| *d == Decision::Allow),
            "{decisions:?}"
        );
        assert!(batch.iter().all(native));
    }

    let policies = cedar_policy::PolicySet::from_str(CEDAR_POLICY).expect("cedar policy");
    let entities = cedar_policy::Entities::from_json_value(
        json!([
            { "uid": { "type": "User", "id": "alice" }, "parents": [],
              "attrs": { "developer_of": ["shop"], "deployer_of": ["development"] } },
            { "uid": { "type": "Environment", "id": "shop/pr-1" }, "parents": [],
              "attrs": { "app": "shop", "env_type": "development" } }
        ]),
        None,
    )
    .expect("cedar entities");
    let authorizer = cedar_policy::Authorizer::new();
    let alice = cedar_policy::EntityUid::from_str(r#"User::"alice""#).expect("uid");
    let action = cedar_policy::EntityUid::from_str(r#"Action::"deployments.create""#).expect("uid");
    let env = cedar_policy::EntityUid::from_str(r#"Environment::"shop/pr-1""#).expect("uid");
    let cedar_request = || {
        cedar_policy::Request::new(
            alice.clone(),
            action.clone(),
            env.clone(),
            cedar_policy::Context::empty(),
            None,
        )
        .expect("cedar request")
    };
    let cedar = |entities: &cedar_policy::Entities| {
        authorizer
            .is_authorized(&cedar_request(), &policies, entities)
            .decision()
            == cedar_policy::Decision::Allow
    };
    assert!(cedar(&entities));
    assert!(cedar(&cedar_entities(&one[0])));

    let input = rego_input();
    let mut engine = regorus::Engine::new();
    engine
        .add_policy("wharf.rego".into(), REGO_POLICY.into())
        .expect("rego policy");
    let rule = "data.wharf.allow".to_string();
    engine.set_input(input.clone());
    assert_eq!(
        engine.eval_rule(rule.clone()).expect("eval"),
        regorus::Value::from(true)
    );
    let compiled = engine
        .compile_with_entrypoint(&rule.as_str().into())
        .expect("compile rego");
    let program = regorus::languages::rego::compiler::Compiler::compile_from_policy(
        &compiled,
        &[rule.as_str()],
    )
    .expect("compile to RVM");
    let mut vm = regorus::rvm::vm::RegoVM::new();
    vm.load_program(program);
    vm.set_input(input.clone());
    assert_eq!(vm.execute().expect("rvm"), regorus::Value::from(true));

    let mut group = c.benchmark_group("policy");
    group.bench_function(BENCHES[0], |b| b.iter(|| native(black_box(&one[0]))));
    group.bench_function(BENCHES[1], |b| {
        b.to_async(&tokio)
            .iter(|| async { rbac.authorize(&config, &one).await.expect("authorize") })
    });
    group.bench_function(BENCHES[2], |b| {
        b.to_async(&tokio).iter_custom(|iters| {
            let (rbac, config, hundred) = (&rbac, &config, &hundred);
            async move {
                let started = std::time::Instant::now();
                for _ in 0..iters.div_ceil(100) {
                    black_box(rbac.authorize(config, hundred).await.expect("authorize"));
                }
                started.elapsed() / (iters.div_ceil(100) * 100) as u32 * iters as u32
            }
        })
    });
    group.bench_function(BENCHES[3], |b| {
        b.to_async(&tokio)
            .iter(|| async { rbac.authorize(&config, &crowded).await.expect("authorize") })
    });
    group.bench_function(BENCHES[4], |b| b.iter(|| black_box(cedar(&entities))));
    group.bench_function(BENCHES[5], |b| {
        b.iter_batched(
            || input.clone(),
            |input| {
                engine.set_input(input);
                black_box(engine.eval_rule(rule.clone()).expect("eval"))
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function(BENCHES[6], |b| {
        b.iter_batched(
            || input.clone(),
            |input| {
                vm.set_input(input);
                black_box(vm.execute().expect("rvm"))
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function(BENCHES[7], |b| {
        b.iter(|| black_box(cedar(&cedar_entities(&one[0]))))
    });
    assert_eq!(vm_eval(&mut vm, &one[0]), regorus::Value::from(true));
    group.bench_function(BENCHES[8], |b| {
        b.iter(|| black_box(vm_eval(&mut vm, &one[0])))
    });
    group.finish();
    c.final_summary();
    print_table(&out);
}

fn vm_eval(vm: &mut regorus::rvm::vm::RegoVM, request: &AuthzRequest) -> regorus::Value {
    vm.set_input(rego_input_of(request));
    vm.execute().expect("rvm")
}

/// Prints the medians criterion just measured, with the ratio of the rbac plugin's single
/// decision to each.
fn print_table(out: &Path) {
    let median = |name: &str| -> Option<f64> {
        // Criterion names the directory after the benchmark (these names need no escaping).
        let text =
            std::fs::read_to_string(out.join("policy").join(name).join("new/estimates.json"))
                .ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["median"]["point_estimate"].as_f64()
    };
    let Some(rbac) = median(BENCHES[1]) else {
        return; // not run (filtered out)
    };
    println!(
        "\n{:<44} {:>12} {:>16}",
        "policy decision", "median", "rbac plugin / x"
    );
    for name in BENCHES {
        if let Some(ns) = median(name) {
            println!("{name:<44} {:>9.3} µs {:>15.2}×", ns / 1000.0, rbac / ns);
        }
    }
}
