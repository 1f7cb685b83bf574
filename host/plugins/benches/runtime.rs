//! Benchmarks of the plugin runtime: instantiation, policy decisions, a transformer call,
//! and compiling versus loading a plugin from the cache.
//!
//! Run with `cargo bench -p wharf-plugins`; results are summarized in BENCHMARKS.md.

use criterion::{BatchSize, Criterion, criterion_main};
use serde_json::json;
use wharf_plugins::{
    AuthzRequest, DriverPlugin, Kind, Manifest, Plugin, PolicyPlugin, Principal, RoleBinding,
    Runtime, RuntimeConfig, Scope, Target, TransformContext, TransformerPlugin,
};

fn runtime(dir: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig::new(dir.join("cache"))).expect("runtime")
}

fn request(bindings: usize) -> AuthzRequest {
    let mut role_bindings: Vec<RoleBinding> = (0..bindings.saturating_sub(1))
        .map(|i| RoleBinding {
            scope: Scope::App(format!("app-{i}")),
            role: "viewer".into(),
        })
        .collect();
    role_bindings.push(RoleBinding {
        scope: Scope::App("shop".into()),
        role: "developer".into(),
    });
    AuthzRequest {
        principal: Principal {
            id: "alice".into(),
            role_bindings,
            ..Default::default()
        }
        .into(),
        action: "deployments.create".into(),
        target: Target {
            app: Some("shop".into()),
            ..Default::default()
        },
        attributes: json!({}),
    }
}

fn deployments(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": { "name": format!("web-{i}"), "labels": { "app.kubernetes.io/name": "web" } },
                "spec": {
                    "selector": { "matchLabels": { "app.kubernetes.io/name": "web" } },
                    "template": {
                        "metadata": { "labels": { "app.kubernetes.io/name": "web" } },
                        "spec": { "containers": [{
                            "name": "web", "image": "registry.example/web:1.2.3",
                            "ports": [{ "containerPort": 8080 }],
                            "env": [{ "name": "PORT", "value": "8080" }]
                        }] }
                    }
                }
            })
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let plugins = Plugins::install();
    bench_driver(c, &plugins);
    bench_policy(c, &plugins);
    bench_transformer(c, &plugins);
    bench_install(c, &plugins.tokio);
}

/// The test plugins of each kind installed in one runtime, and the tokio runtime their calls
/// run on (declared last: fields drop in order, and the plugins go before it).
struct Plugins {
    driver: DriverPlugin,
    policy: PolicyPlugin,
    transformer: TransformerPlugin,
    _runtime: Runtime,
    _dir: tempfile::TempDir,
    tokio: tokio::runtime::Runtime,
}

impl Plugins {
    fn install() -> Self {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio");
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio.block_on(async { runtime(dir.path()) });
        let install = |path: &str, kind: Kind| {
            let bytes = wharf_artifacts::read(path);
            tokio
                .block_on(rt.install(&bytes, Manifest::new("bench", kind)))
                .expect("install")
        };
        let Plugin::Driver(driver) = install(wharf_artifacts::TEST_DRIVER, Kind::Driver) else {
            unreachable!()
        };
        let Plugin::Policy(policy) = install(wharf_artifacts::TEST_POLICY, Kind::Policy) else {
            unreachable!()
        };
        let Plugin::Transformer(transformer) =
            install(wharf_artifacts::TEST_TRANSFORMER, Kind::Transformer)
        else {
            unreachable!()
        };
        Self {
            driver,
            policy,
            transformer,
            _runtime: rt,
            _dir: dir,
            tokio,
        }
    }
}

fn bench_driver(c: &mut Criterion, plugins: &Plugins) {
    let driver = &plugins.driver;
    c.bench_function("driver: fresh instance + describe", |b| {
        b.to_async(&plugins.tokio)
            .iter(|| async { driver.describe().await.expect("describe") })
    });
}

fn bench_policy(c: &mut Criterion, plugins: &Plugins) {
    let (tokio, policy) = (&plugins.tokio, &plugins.policy);
    let config = json!({ "roles": { "deployments.create": "developer" } });
    let one = vec![request(1)];
    c.bench_function("policy: one decision (warm instance)", |b| {
        b.to_async(tokio)
            .iter(|| async { policy.authorize(&config, &one).await.expect("authorize") })
    });
    let (cold_policy, _cold_runtime, _cold_dir) = cold_policy(tokio);
    c.bench_function("policy: one decision (fresh instance)", |b| {
        b.to_async(tokio).iter(|| async {
            cold_policy
                .authorize(&config, &one)
                .await
                .expect("authorize")
        })
    });
    let hundred: Vec<AuthzRequest> = (0..100).map(|_| request(1)).collect();
    c.bench_function("policy: batch of 100 decisions (warm instance)", |b| {
        b.to_async(tokio).iter(|| async {
            policy
                .authorize(&config, &hundred)
                .await
                .expect("authorize")
        })
    });
    let crowded = vec![request(100)];
    c.bench_function(
        "policy: one decision, 100 role bindings (warm instance)",
        |b| {
            b.to_async(tokio).iter(|| async {
                policy
                    .authorize(&config, &crowded)
                    .await
                    .expect("authorize")
            })
        },
    );
}

/// The test policy in a runtime that keeps no warm instance, so every call instantiates.
fn cold_policy(tokio: &tokio::runtime::Runtime) -> (PolicyPlugin, Runtime, tempfile::TempDir) {
    let cold_dir = tempfile::tempdir().expect("tempdir");
    let mut cold_config = RuntimeConfig::new(cold_dir.path().join("cache"));
    cold_config.warm_instances = 0;
    let cold = tokio.block_on(async { Runtime::new(cold_config).expect("runtime") });
    let Plugin::Policy(cold_policy) = tokio
        .block_on(cold.install(
            &wharf_artifacts::read(wharf_artifacts::TEST_POLICY),
            Manifest::new("bench", Kind::Policy),
        ))
        .expect("install")
    else {
        unreachable!()
    };
    (cold_policy, cold, cold_dir)
}

fn bench_transformer(c: &mut Criterion, plugins: &Plugins) {
    let transformer = &plugins.transformer;
    let objects = deployments(50);
    let context = TransformContext {
        app: "shop".into(),
        env: "pr-1".into(),
        env_type: "development".into(),
    };
    let tconfig = json!({ "labels": { "team": "payments" } });
    c.bench_function("transformer: 50 Deployments (warm instance)", |b| {
        b.to_async(&plugins.tokio).iter(|| async {
            transformer
                .transform(&context, &tconfig, &objects)
                .await
                .expect("transform")
        })
    });
}

/// Installing compiles a plugin once; a second runtime on the same cache loads it instead.
fn bench_install(c: &mut Criterion, tokio: &tokio::runtime::Runtime) {
    let bytes = wharf_artifacts::read(wharf_artifacts::TEST_POLICY);
    let mut group = c.benchmark_group("install");
    group.sample_size(10);
    group.bench_function("compile (empty cache)", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                let rt = tokio.block_on(async { runtime(dir.path()) });
                tokio
                    .block_on(rt.install(&bytes, Manifest::new("p", Kind::Policy)))
                    .expect("install");
                assert_eq!(rt.stats().compiles, 1);
            },
            BatchSize::PerIteration,
        )
    });
    let warm_dir = tempfile::tempdir().expect("tempdir");
    tokio
        .block_on(runtime(warm_dir.path()).install(&bytes, Manifest::new("p", Kind::Policy)))
        .expect("install");
    let cached = tokio.block_on(async { runtime(warm_dir.path()) });
    group.bench_function("load from cache", |b| {
        b.iter(|| {
            tokio
                .block_on(cached.install(&bytes, Manifest::new("p", Kind::Policy)))
                .expect("install")
        })
    });
    group.finish();
    assert_eq!(cached.stats().compiles, 0);
}

/// The benchmark groups (criterion's macros generate undocumented items).
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(runtime_benches, super::benches);
}

criterion_main!(group::runtime_benches);
