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
    AuthzRequest, Decision, Kind, Manifest, Plugin, PolicyPlugin, Principal, RoleBinding, Runtime,
    RuntimeConfig, Scope, Target,
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
    let rbac = Rbac::install();
    let requests = Requests::new();
    rbac.assert_allows(&requests);
    let cedar = Cedar::new();
    assert!(cedar.allows(&cedar.entities));
    assert!(cedar.allows(&cedar_entities(&requests.one[0])));
    let mut rego = Rego::new();

    let mut group = c.benchmark_group("policy");
    group.bench_function(BENCHES[0], |b| {
        b.iter(|| native(black_box(&requests.one[0])))
    });
    bench_rbac(&mut group, &rbac, &requests);
    bench_prepared(&mut group, &cedar, &mut rego);
    bench_built_per_request(&mut group, &cedar, &mut rego, &requests.one[0]);
    group.finish();
    c.final_summary();
    print_table(&out);
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// The requests the rbac plugin decides: one, a batch of a hundred, and one whose principal
/// has 98 unrelated bindings in front of the two that matter.
struct Requests {
    one: Vec<AuthzRequest>,
    hundred: Vec<AuthzRequest>,
    crowded: Vec<AuthzRequest>,
}

impl Requests {
    fn new() -> Self {
        Self {
            one: vec![request(0)],
            hundred: (0..100).map(|_| request(0)).collect(),
            crowded: vec![request(98)],
        }
    }
}

/// The bundled rbac plugin, installed in a runtime of its own with a cache in a temporary
/// directory, and the tokio runtime its calls run on (declared last: fields drop in order,
/// and the plugin goes before the runtime it runs on).
struct Rbac {
    policy: PolicyPlugin,
    config: serde_json::Value,
    _runtime: Runtime,
    _dir: tempfile::TempDir,
    tokio: tokio::runtime::Runtime,
}

impl Rbac {
    fn install() -> Self {
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
        let Plugin::Policy(policy) = tokio
            .block_on(rt.install(rbac.bytes, Manifest::new("rbac", Kind::Policy)))
            .expect("install rbac")
        else {
            unreachable!()
        };
        Self {
            policy,
            config: json!({}),
            _runtime: rt,
            _dir: dir,
            tokio,
        }
    }

    /// Every engine measured must allow every request, or the comparison means nothing.
    fn assert_allows(&self, requests: &Requests) {
        for batch in [&requests.one, &requests.hundred, &requests.crowded] {
            let decisions = self
                .tokio
                .block_on(self.policy.authorize(&self.config, batch))
                .expect("authorize");
            assert!(
                decisions.iter().all(|d| *d == Decision::Allow),
                "{decisions:?}"
            );
            assert!(batch.iter().all(native));
        }
    }
}

fn bench_rbac(group: &mut Group<'_>, rbac: &Rbac, requests: &Requests) {
    let (tokio, policy, config) = (&rbac.tokio, &rbac.policy, &rbac.config);
    group.bench_function(BENCHES[1], |b| {
        b.to_async(tokio).iter(|| async {
            policy
                .authorize(config, &requests.one)
                .await
                .expect("authorize")
        })
    });
    group.bench_function(BENCHES[2], |b| {
        b.to_async(tokio).iter_custom(|iters| {
            let hundred = &requests.hundred;
            async move {
                let started = std::time::Instant::now();
                for _ in 0..iters.div_ceil(100) {
                    black_box(policy.authorize(config, hundred).await.expect("authorize"));
                }
                started.elapsed() / (iters.div_ceil(100) * 100) as u32 * iters as u32
            }
        })
    });
    group.bench_function(BENCHES[3], |b| {
        b.to_async(tokio).iter(|| async {
            policy
                .authorize(config, &requests.crowded)
                .await
                .expect("authorize")
        })
    });
}

/// Cedar with its policy parsed once and the entities of the rule's principal prepared.
struct Cedar {
    policies: cedar_policy::PolicySet,
    entities: cedar_policy::Entities,
    authorizer: cedar_policy::Authorizer,
    alice: cedar_policy::EntityUid,
    action: cedar_policy::EntityUid,
    env: cedar_policy::EntityUid,
}

impl Cedar {
    fn new() -> Self {
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
        let uid = |text: &str| cedar_policy::EntityUid::from_str(text).expect("uid");
        Self {
            policies: cedar_policy::PolicySet::from_str(CEDAR_POLICY).expect("cedar policy"),
            entities,
            authorizer: cedar_policy::Authorizer::new(),
            alice: uid(r#"User::"alice""#),
            action: uid(r#"Action::"deployments.create""#),
            env: uid(r#"Environment::"shop/pr-1""#),
        }
    }

    /// The decision for alice deploying to shop/pr-1, the request built each time as an
    /// integration would.
    fn allows(&self, entities: &cedar_policy::Entities) -> bool {
        let request = cedar_policy::Request::new(
            self.alice.clone(),
            self.action.clone(),
            self.env.clone(),
            cedar_policy::Context::empty(),
            None,
        )
        .expect("cedar request");
        self.authorizer
            .is_authorized(&request, &self.policies, entities)
            .decision()
            == cedar_policy::Decision::Allow
    }
}

/// Regorus with the policy loaded, both as the interpreter and compiled for its RVM.
struct Rego {
    engine: regorus::Engine,
    vm: regorus::rvm::vm::RegoVM,
    rule: String,
    input: regorus::Value,
}

impl Rego {
    fn new() -> Self {
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
        Self {
            engine,
            vm,
            rule,
            input,
        }
    }
}

/// Cedar and Rego deciding over inputs prepared before the clock starts.
fn bench_prepared(group: &mut Group<'_>, cedar: &Cedar, rego: &mut Rego) {
    group.bench_function(BENCHES[4], |b| {
        b.iter(|| black_box(cedar.allows(&cedar.entities)))
    });
    let Rego {
        engine,
        vm,
        rule,
        input,
    } = rego;
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
}

/// Cedar and Rego with their input built from Wharf's request inside the measurement, as
/// an integration would have to.
fn bench_built_per_request(
    group: &mut Group<'_>,
    cedar: &Cedar,
    rego: &mut Rego,
    request: &AuthzRequest,
) {
    group.bench_function(BENCHES[7], |b| {
        b.iter(|| black_box(cedar.allows(&cedar_entities(request))))
    });
    assert_eq!(vm_eval(&mut rego.vm, request), regorus::Value::from(true));
    group.bench_function(BENCHES[8], |b| {
        b.iter(|| black_box(vm_eval(&mut rego.vm, request)))
    });
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
