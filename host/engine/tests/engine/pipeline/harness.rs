//! What the pipeline's tests run on: drivers and transformers that echo, a store with a
//! gitops platform, and deployments queued as the API queues them and followed to their end.

use super::*;

/// Outputs its configuration, like the bundled echo driver.
pub(crate) struct Echoing;

impl Drivers for Echoing {
    fn provision<'a>(
        &'a self,
        _driver: &'a str,
        r: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>> {
        Box::pin(async move {
            Ok(Step::Done {
                objects: r.params["objects"].as_array().cloned().unwrap_or_default(),
                outputs: r.config,
                state: json!({}),
            })
        })
    }

    fn deprovision<'a>(
        &'a self,
        _driver: &'a str,
        _r: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>> {
        Box::pin(async move {
            Ok(Step::Done {
                outputs: Values::default(),
                state: json!({}),
                objects: Vec::new(),
            })
        })
    }
}

/// Changes nothing.
pub(crate) struct Unchanged;

impl Transformers for Unchanged {
    fn transform<'a>(
        &'a self,
        _installation: &'a str,
        _context: TransformContext,
        objects: Vec<Value>,
    ) -> BoxFuture<'a, Result<Vec<Value>, PluginFailure>> {
        Box::pin(async move { Ok(objects) })
    }
}

/// A store with app `shop`, an environment type `gitops` writing under `root`, a driver
/// installation `echo` and a definition per `(type, values, secrets)`.
pub(crate) async fn platform(
    dir: &Path,
    root: &Path,
    sealer: &Sealer,
    definitions: &[(&str, Value, Value)],
) -> Store {
    let store = Store::open(&dir.join("wharf.db")).await.unwrap();
    let target = json!({ "kind": "gitops", "path": root, "prune": true,
                         "secrets": { "external_secrets": { "store": "vault" } } });
    let mut rows = Vec::new();
    for (res_type, values, secrets) in definitions {
        let sealed = sealer.seal(
            secrets.to_string().as_bytes(),
            &resources::secrets_context(res_type),
        );
        use base64::Engine as _;
        rows.push(resources::Definition {
            id: res_type.to_string(),
            res_type: res_type.to_string(),
            driver: "echo".into(),
            body: json!({
                "driver_inputs": {
                    "values": values,
                    "secrets_sealed": base64::engine::general_purpose::STANDARD.encode(sealed),
                },
                "criteria": [{}],
            }),
            version: 1,
            created_at: 1,
            updated_at: 1,
            updated_by: "ops".into(),
        });
    }
    store
        .transaction(move |tx| {
            fixtures::app(tx, "shop")?;
            fixtures::env_type(tx, "gitops", target)?;
            fixtures::driver(tx, "echo")?;
            for d in &rows {
                fixtures::resource_type(tx, &d.res_type)?;
                resources::put_definition(tx, d)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    store
}

/// An engine over `store` with `drivers`, echoing transformers, and its state under `dir`.
pub(crate) fn engine(
    store: &Store,
    sealer: Sealer,
    drivers: Arc<dyn Drivers>,
    dir: &Path,
) -> Engine {
    Engine::new(
        store.clone(),
        sealer,
        drivers,
        Arc::new(Unchanged),
        Settings::new(dir.join("envs")),
    )
}

/// Creates environment `env` and deploys `workloads` to it; returns the finished
/// deployment.
pub(crate) async fn deploy(
    store: &Store,
    engine: &Engine,
    env: &str,
    workloads: Vec<wharf_core::score::Workload>,
) -> Deployment {
    deploy_with_steps(store, engine, env, workloads, StepName::DEPLOY).await
}

/// A deployment of `kind` with steps `names`, queued as the API queues it: its first two
/// steps (accept, authorize) done.
fn queued(env: &str, kind: Kind, set_id: String, images: Value, names: &[StepName]) -> Deployment {
    let mut steps: Vec<deployments::Step> = names
        .iter()
        .map(|n| deployments::Step::pending(*n))
        .collect();
    for s in &mut steps[..2] {
        s.status = StepStatus::Done;
    }
    Deployment {
        app: "shop".into(),
        env: env.into(),
        id: 0,
        kind,
        set_id,
        images,
        comment: String::new(),
        status: Status::Queued,
        error: None,
        created_at_ms: 1,
        created_by: "dev".into(),
        started_at_ms: None,
        finished_at_ms: None,
        steps,
    }
}

/// Wakes the engine for `env` and waits until deployment `id` is no longer running;
/// returns the status it ended with. `what` names it in the timeout's message.
async fn run_to_the_end(
    engine: &Engine,
    mut events: tokio::sync::broadcast::Receiver<wharf_engine::pipeline::Event>,
    env: &str,
    id: i64,
    what: &str,
) -> String {
    engine.wake("shop", env);
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .unwrap_or_else(|_| panic!("{what} finishes"))
            .unwrap();
        if event.env == env
            && event.deployment == id
            && let What::Status { status, .. } = &event.what
            && status != "running"
        {
            return status.to_string();
        }
    }
}

/// [`deploy`], with a deployment of the given steps (as one stored by an older version).
pub(crate) async fn deploy_with_steps(
    store: &Store,
    engine: &Engine,
    env: &str,
    workloads: Vec<wharf_core::score::Workload>,
    names: &'static [StepName],
) -> Deployment {
    let set = Set::new(workloads).unwrap();
    let (e, set_id, body) = (env.to_string(), set.id(), set.to_json());
    let events = engine.subscribe();
    let id = store
        .transaction(move |tx| {
            fixtures::environment(tx, "shop", &e, "gitops")?;
            sets::put(
                tx,
                &sets::StoredSet {
                    app: "shop".into(),
                    id: set_id.clone(),
                    body,
                    created_at: 1,
                    created_by: "dev".into(),
                },
            )?;
            let images = json!({ "container-two2": "nginx:1.27" });
            deployments::create(tx, &queued(&e, Kind::Deploy, set_id, images, names))
        })
        .await
        .unwrap();
    run_to_the_end(engine, events, env, id, "the deployment").await;
    let e = env.to_string();
    store
        .call(move |conn| deployments::get(conn, "shop", &e, id))
        .await
        .unwrap()
        .unwrap()
}

/// Deletes environment `env` as the API does (a deletion deployment); waits for its end.
pub(crate) async fn delete_env(store: &Store, engine: &Engine, env: &str) -> String {
    let events = engine.subscribe();
    let e = env.to_string();
    let id = store
        .transaction(move |tx| {
            wharf_store::envs::mark_deleting(tx, "shop", &e)?;
            let steps = StepName::DELETE;
            deployments::create(
                tx,
                &queued(&e, Kind::Delete, String::new(), json!({}), steps),
            )
        })
        .await
        .unwrap();
    run_to_the_end(engine, events, env, id, "the deletion").await
}

/// Sample `name`, with its files' sources inlined.
pub(crate) fn sample(name: &str) -> wharf_core::score::Workload {
    let text = std::fs::read_to_string(samples().join(name)).unwrap();
    let (mut w, _) = load(&text).unwrap_or_else(|p| panic!("{name}: {p:#?}"));
    // `files.*.source` is inlined by the client when it makes the set, as `wharf deploy`
    // does.
    for c in w.containers.values_mut() {
        for f in c.files.values_mut() {
            if let Some(source) = f.source.take() {
                f.content = Some(std::fs::read_to_string(samples().join(source)).unwrap());
            }
        }
    }
    w
}

/// Everything written for an environment, file by file, as one text.
pub(crate) fn written(root: &Path, env: &str) -> String {
    let dir = root.join("shop").join(env);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            format!(
                "# {}\n{}",
                f.file_name().unwrap().to_string_lossy(),
                std::fs::read_to_string(f).unwrap()
            )
        })
        .collect()
}

pub(crate) fn gitops_golden(name: &str, text: &str) {
    golden(&format!("gitops/{name}"), text);
}

/// A web workload with these resources (YAML lines under `resources:`).
pub(crate) fn web(resources: &str) -> wharf_core::score::Workload {
    load(&format!(
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  main:\n    image: x\nresources:\n{resources}"
    ))
    .unwrap()
    .0
}
