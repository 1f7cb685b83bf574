//! A deployment of a set: `resolve`, `provision`, `render`, `transform`, `apply`,
//! `verify`, then `prune` what the set no longer uses.

use super::run::{Failed, Run};
use super::{StepError, failure, prune};
use crate::provision::{self, Assignment, Plan};
use crate::render;
use crate::target::{EnvRef, Target};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use wharf_core::graph::{self, DefinitionRef};
use wharf_core::score::Workload;
use wharf_core::score::resolve::Outputs;
use wharf_core::set::Set;
use wharf_core::status::{ErrorScope, ResourceState, Step};
use wharf_core::target::{InvalidTarget, TargetSpec};
use wharf_plugins::{TransformContext, Values};
use wharf_store::deployments::Deployment;
use wharf_store::{envs, provisioned, resources, sets};

/// What a deployment needs from the store before it starts.
pub(super) struct Context {
    pub(super) env_type: envs::EnvType,
    pub(super) workloads: Vec<Workload>,
    pub(super) definitions: Vec<(resources::Definition, Value)>,
    pub(super) records: Vec<provisioned::Record>,
}

/// The set's resource graph, with the definition and driver configuration of each
/// resource.
pub(super) struct Resolved {
    pub(super) context: Context,
    graph: graph::Graph,
    pub(super) assignments: BTreeMap<String, Assignment>,
}

impl Resolved {
    pub(super) fn env_type(&self) -> &str {
        self.context.env_type.id.as_str()
    }
}

/// Carries out a deployment of a set, step by step.
pub(super) async fn deploy(run: &Run<'_>) -> Result<(), Failed> {
    let resolved = run.step(Step::Resolve, resolve(run)).await?;
    let outputs = run.step(Step::Provision, provision(run, &resolved)).await?;
    let objects = run
        .step(Step::Render, async { render(run, &resolved, &outputs) })
        .await?;
    let objects = run
        .step(Step::Transform, transform(run, &resolved, objects))
        .await?;
    let (target, timeout) = run
        .step(Step::Apply, apply(run, &resolved, &objects))
        .await?;
    run.step(Step::Verify, verify(run, &*target, timeout))
        .await?;
    if run.has(Step::Prune) {
        let pruned = prune::after_deploy(run, &resolved, &outputs, &*target);
        run.step(Step::Prune, async { Ok(((), pruned.await)) })
            .await?;
    }
    Ok(())
}

/// Waits for the workloads to be ready, at most `timeout`.
async fn verify(
    run: &Run<'_>,
    target: &dyn Target,
    timeout: Duration,
) -> Result<((), Value), StepError> {
    let statuses = target
        .verify(&reference(&run.d), timeout)
        .await
        .map_err(|e| failure(ErrorScope::Workload, "", e.to_string()))?;
    Ok(((), json!({ "workloads": statuses })))
}

pub(super) fn reference(d: &Deployment) -> EnvRef {
    EnvRef {
        app: d.app.clone(),
        env: d.env.clone(),
        set: d.set_id.clone(),
        deployment: d.id,
    }
}

/// Reads the set, the environment's type and resources and every definition, then
/// assigns each resource of the set's graph a definition.
async fn resolve(run: &Run<'_>) -> Result<(Resolved, Value), StepError> {
    let context = load(run).await?;
    let mut graph = graph::build_with(&context.workloads, &context.env_type.resources)
        .map_err(|e| failure(ErrorScope::Set, &run.d.set_id, e.to_string()))?;
    let refs: Vec<DefinitionRef> = context
        .definitions
        .iter()
        .map(|(d, inputs)| DefinitionRef {
            id: d.id.clone(),
            res_type: d.res_type.clone(),
            criteria: serde_json::from_value(d.body["criteria"].clone()).unwrap_or_default(),
            inputs: inputs.clone(),
        })
        .collect();
    let env_type = context.env_type.id.to_string();
    let chosen = graph::match_definitions(&mut graph, &refs, &run.d.app, &run.d.env, &env_type)
        .map_err(|errors| {
            let message = errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            failure(ErrorScope::Resource, errors[0].object(), message)
        })?;
    let mut assignments = BTreeMap::new();
    for (uid, definition) in &chosen {
        let (d, inputs) = context
            .definitions
            .iter()
            .find(|(d, _)| d.id == *definition)
            .expect("a chosen definition is one of them");
        let node = &graph.nodes[uid];
        let at = |m| failure(ErrorScope::Resource, uid, m);
        allowed_params(node, d).map_err(at)?;
        let rewritten = graph::definition_inputs(inputs, &node.id)
            .map_err(at)?
            .rewritten;
        assignments.insert(
            uid.clone(),
            Assignment {
                definition: d.id.clone(),
                driver: d.driver.clone(),
                config: Values {
                    values: rewritten["values"].clone(),
                    secrets: rewritten["secrets"].clone(),
                },
            },
        );
    }
    let plan: BTreeMap<&String, Value> = assignments
        .iter()
        .map(|(uid, a)| {
            let chosen = json!({ "definition": a.definition, "driver": a.driver });
            (uid, chosen)
        })
        .collect();
    let detail = json!({ "resources": plan });
    let resolved = Resolved {
        context,
        graph,
        assignments,
    };
    Ok((resolved, detail))
}

/// What the deployment reads from the store, in one transaction.
async fn load(run: &Run<'_>) -> Result<Context, StepError> {
    let (app, env, set_id) = (run.d.app.clone(), run.d.env.clone(), run.d.set_id.clone());
    let sealer = run.inner.sealer.clone();
    let (env_type, body, definitions, records) = run
        .inner
        .store(move |conn| {
            let gone = |object: String, what: &str| {
                Ok(Err(failure(ErrorScope::Environment, object, what)))
            };
            let Some(environment) = envs::get(conn, &app, &env)? else {
                return gone(format!("{app}/{env}"), "the environment is gone");
            };
            let Some(env_type) = envs::get_type(conn, environment.env_type.as_str())? else {
                return gone(
                    environment.env_type.to_string(),
                    "the environment type is gone",
                );
            };
            let Some(set) = sets::get(conn, &app, &set_id)? else {
                return Ok(Err(failure(
                    ErrorScope::Set,
                    set_id,
                    "the set is not stored",
                )));
            };
            let definitions = resources::list_definitions(conn)?
                .into_iter()
                .map(|d| {
                    let inputs = resources::driver_inputs(&sealer, &d)?;
                    Ok((d, inputs))
                })
                .collect::<Result<Vec<_>, wharf_store::Error>>()?;
            let records = provisioned::list(conn, &sealer, &app, &env)?;
            Ok(Ok((env_type, set.body, definitions, records)))
        })
        .await??;
    let set = Set::from_stored(body).map_err(|e| {
        let message = format!("the stored set cannot be read: {e}");
        failure(ErrorScope::Set, &run.d.set_id, message)
    })?;
    Ok(Context {
        env_type,
        workloads: set.workloads.into_values().collect(),
        definitions,
        records,
    })
}

/// The drivers provision every resource of the graph, in dependency order; what this
/// deployment finished before a restart is not provisioned again.
async fn provision(
    run: &Run<'_>,
    resolved: &Resolved,
) -> Result<(BTreeMap<String, Outputs>, Value), StepError> {
    let records = &resolved.context.records;
    let previous: BTreeMap<String, Value> = records
        .iter()
        .filter_map(|r| Some((r.uid.clone(), r.state.clone()?)))
        .collect();
    let finished: BTreeMap<String, Outputs> = records
        .iter()
        .filter(|r| r.deployment == run.d.id && r.status == ResourceState::Done)
        .map(|r| (r.uid.clone(), prune::outputs_of(r)))
        .collect();
    let workloads: BTreeMap<String, Workload> = resolved
        .context
        .workloads
        .iter()
        .map(|w| (w.name().to_string(), w.clone()))
        .collect();
    let plan = Plan {
        graph: &resolved.graph,
        workloads: &workloads,
        assignments: &resolved.assignments,
        previous: &previous,
        finished: &finished,
        app: &run.d.app,
        env: &run.d.env,
        env_type: resolved.env_type(),
    };
    let limits = run.inner.settings.limits;
    let outputs = provision::run(&plan, run.inner.drivers.as_ref(), &run.journal(), limits)
        .await
        .map_err(|e| failure(ErrorScope::Resource, e.uid(), e.to_string()))?;
    let detail = json!({ "resources": outputs.len(), "finished_before_restart": finished.len() });
    Ok((outputs, detail))
}

/// Renders every workload with its resources' outputs.
fn render(
    run: &Run<'_>,
    resolved: &Resolved,
    outputs: &BTreeMap<String, Outputs>,
) -> Result<(Vec<Value>, Value), StepError> {
    let images: BTreeMap<String, String> =
        serde_json::from_value(run.d.images.clone()).unwrap_or_default();
    let no_sources = |source: &str| -> Result<Vec<u8>, String> {
        Err(format!(
            "{source:?} was not included when the set was made; `wharf deploy` and `wharf sets \
             create` inline the files that a Score file's `source` names"
        ))
    };
    let ctx = render::Context {
        app: &run.d.app,
        env: &run.d.env,
        images: &images,
        read_source: &no_sources,
    };
    let mut objects = Vec::new();
    for w in &resolved.context.workloads {
        let names: BTreeMap<String, Outputs> = resolved
            .graph
            .nodes
            .values()
            .flat_map(|n| {
                n.declared_by
                    .iter()
                    .filter(|(wl, _)| wl == w.name())
                    .filter_map(|(_, name)| Some((name.clone(), outputs.get(&n.uid)?.clone())))
            })
            .collect();
        let rendered = render::kubernetes(w, &names, &ctx).map_err(|problems| {
            let message = problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            failure(ErrorScope::Workload, w.name(), message)
        })?;
        objects.extend(rendered);
    }
    let from_drivers = driver_objects(outputs, &mut objects)?;
    let detail = json!({ "objects": objects.len(), "from_drivers": from_drivers });
    Ok((objects, detail))
}

/// Adds the objects the drivers returned with their resources to the workloads' objects,
/// each annotated with its resource (`wharf.dev/resource`); gives their `Kind/name`s. Two
/// objects of one kind and name are refused, naming both.
fn driver_objects(
    outputs: &BTreeMap<String, Outputs>,
    objects: &mut Vec<Value>,
) -> Result<Vec<String>, StepError> {
    let key = |o: &Value| {
        format!(
            "{}/{}",
            o["kind"].as_str().unwrap_or_default(),
            o["metadata"]["name"].as_str().unwrap_or_default()
        )
    };
    let mut owners: BTreeMap<String, String> = objects
        .iter()
        .map(|o| (key(o), "the workloads".to_string()))
        .collect();
    let mut added = Vec::new();
    for (uid, o) in outputs {
        for object in &o.objects {
            let name = key(object);
            if let Some(owner) = owners.insert(name.clone(), format!("resource {uid}")) {
                return Err(failure(
                    ErrorScope::Resource,
                    uid,
                    format!(
                        "its driver returned {name}, which {owner} already have; each object \
                         of an environment needs its own kind and name (change the name the \
                         definition's driver gives it)"
                    ),
                ));
            }
            let mut object = object.clone();
            let malformed = || {
                let message = format!(
                    "its driver returned {name} whose metadata or metadata.annotations is not \
                     an object"
                );
                failure(ErrorScope::Resource, uid, message)
            };
            let metadata = object
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
                .ok_or_else(malformed)?;
            let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
            if annotations.is_null() {
                *annotations = json!({});
            }
            annotations
                .as_object_mut()
                .ok_or_else(malformed)?
                .insert("wharf.dev/resource".into(), json!(uid));
            objects.push(object);
            added.push(name);
        }
    }
    Ok(added)
}

/// The environment type's transformers rewrite the objects, in order.
async fn transform(
    run: &Run<'_>,
    resolved: &Resolved,
    mut objects: Vec<Value>,
) -> Result<(Vec<Value>, Value), StepError> {
    let context = TransformContext {
        app: run.d.app.clone(),
        env: run.d.env.clone(),
        env_type: resolved.env_type().to_string(),
    };
    let transformers = &resolved.context.env_type.transformers;
    for installation in transformers {
        objects = run
            .inner
            .transformers
            .transform(installation, context.clone(), objects)
            .await
            .map_err(|e| {
                let message = wharf_core::error_chain(&e);
                failure(ErrorScope::Transformer, installation, message)
            })?;
    }
    let detail = json!({ "transformers": transformers, "objects": objects.len() });
    Ok((objects, detail))
}

/// The environment type's target takes the objects; gives the target and how long
/// `verify` waits for readiness.
async fn apply(
    run: &Run<'_>,
    resolved: &Resolved,
    objects: &[Value],
) -> Result<((Arc<dyn Target>, Duration), Value), StepError> {
    let spec = TargetSpec::parse(&resolved.context.env_type.target).map_err(|problems| {
        let message = InvalidTarget(problems).to_string();
        failure(ErrorScope::Target, resolved.env_type(), message)
    })?;
    let target = run
        .inner
        .target(&spec)
        .await
        .map_err(|e| failure(ErrorScope::Target, spec.kind_name(), e.to_string()))?;
    let applied = target
        .apply(&reference(&run.d), objects)
        .await
        .map_err(|e| failure(ErrorScope::Target, target.kind(), e.to_string()))?;
    let detail = json!({
        "target": target.kind(),
        "changed": applied.changed,
        "pruned": applied.pruned,
        "ignored": applied.ignored,
        "location": applied.location,
    });
    let timeout = spec
        .ready_timeout_seconds
        .map_or(run.inner.settings.ready_timeout, Duration::from_secs);
    Ok(((target, timeout), detail))
}

/// Checks that the params a workload gave a resource are ones its definition lets
/// through (`allow_params`; every param but `name` when absent).
fn allowed_params(node: &graph::Node, definition: &resources::Definition) -> Result<(), String> {
    let Some(params) = node.params.as_ref().and_then(Value::as_object) else {
        return Ok(());
    };
    let listed: Option<Vec<&str>> = definition.body["allow_params"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    for key in params.keys() {
        let allowed = match &listed {
            Some(list) => list.contains(&key.as_str()),
            None => key != "name",
        };
        if !allowed {
            let lets = match &listed {
                Some(list) if list.is_empty() => "no params".to_string(),
                Some(list) => list.join(", "),
                None => "every param but name".to_string(),
            };
            return Err(format!(
                "params.{key}: resource definition {} does not let workloads set it (it lets \
                 {lets}); leave it out, or ask ops to add it to the definition's allow_params",
                definition.id
            ));
        }
    }
    Ok(())
}
