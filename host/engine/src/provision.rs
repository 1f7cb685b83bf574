//! The provisioning loop: every node of a resource graph, in dependency order, through
//! its driver's step protocol.
//!
//! Nodes of one dependency level run concurrently, at most `concurrency` at a time. Each
//! node calls its driver with the state of its previous step and an idempotency key that
//! is stable for the resource in its environment (so a redeploy or a resumed deployment
//! never provisions twice). `in-progress` is called again after the driver's
//! `retry_after_ms`; retryable failures (an unavailable system, a rate limit, a timeout)
//! are retried with exponential backoff and jitter up to `max_attempts`; any other
//! failure fails the node at once with the driver's message. Every step's result goes to
//! the [`Journal`] before the loop acts on it.
//!
//! A node's params may refer to other resources' outputs (`${resources.db.host}`); they
//! are resolved, in the context of the workload that declared them, once those resources
//! are done.

use crate::target::BoxFuture;
use futures_util::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use wharf_core::graph::Graph;
use wharf_core::score::Workload;
use wharf_core::score::resolve::{Outputs, Scope};
use wharf_plugins::{DriverRequest, PluginFailure, ResourceContext, Step, Values};

/// Calls drivers: the host implements it over its installed plugins.
pub trait Drivers: Send + Sync {
    /// One `provision` step of the driver installation `driver`.
    fn provision<'a>(
        &'a self,
        driver: &'a str,
        request: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>>;

    /// One `deprovision` step of the driver installation `driver`.
    fn deprovision<'a>(
        &'a self,
        driver: &'a str,
        request: DriverRequest,
    ) -> BoxFuture<'a, Result<Step, PluginFailure>>;
}

/// Whether a resource is being provisioned or deprovisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Created or updated.
    Provision,
    /// Deleted.
    Deprovision,
}

/// One step's result, with what the journal needs to keep about its resource.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The resource.
    pub uid: &'a str,
    /// Provisioning or deprovisioning.
    pub operation: Operation,
    /// Its definition.
    pub definition: &'a str,
    /// Its driver installation.
    pub driver: &'a str,
    /// What it depends on.
    pub depends_on: &'a BTreeSet<String>,
    /// Its params, resolved.
    pub params: &'a Value,
    /// Where it is.
    pub progress: &'a Progress,
}

/// Where each step's result is kept before the loop acts on it.
pub trait Journal: Send + Sync {
    /// Records a step of a resource.
    fn record<'a>(&'a self, entry: Entry<'a>) -> BoxFuture<'a, Result<(), String>>;
}

/// Where a resource is in the loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// The driver is working; call again.
    InProgress {
        /// State to pass back.
        state: Value,
        /// What the driver says is happening.
        message: String,
        /// Calls so far.
        calls: u32,
    },
    /// A retryable failure; trying again.
    Retrying {
        /// The failure.
        message: String,
        /// Failed attempts so far.
        attempts: u32,
    },
    /// Ready (or, when deprovisioning, gone).
    Done {
        /// Its outputs.
        outputs: Values,
        /// State to keep for the next deployment.
        state: Value,
        /// Kubernetes objects to deploy with the workloads.
        objects: Vec<Value>,
    },
    /// Failed for good.
    Failed {
        /// The driver's message.
        message: String,
    },
}

/// How a resource is provisioned: which driver installation, with what configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The resource definition chosen.
    pub definition: String,
    /// Its driver installation.
    pub driver: String,
    /// The definition's driver inputs, with references to other resources' outputs
    /// written for a scope of resources by uid (see
    /// [`wharf_core::graph::definition_inputs`]); literal dollars are `$$`.
    pub config: Values,
}

/// Everything one run needs.
pub struct Plan<'a> {
    /// The graph.
    pub graph: &'a Graph,
    /// The workloads, by name (for resolving params in their declaring workload).
    pub workloads: &'a BTreeMap<String, Workload>,
    /// Each node's driver and configuration, by uid.
    pub assignments: &'a BTreeMap<String, Assignment>,
    /// State kept from earlier deployments (or from an in-progress step before a
    /// restart), by uid.
    pub previous: &'a BTreeMap<String, Value>,
    /// Outputs of resources this same deployment finished before a restart: not
    /// provisioned again.
    pub finished: &'a BTreeMap<String, Outputs>,
    /// The app.
    pub app: &'a str,
    /// The environment.
    pub env: &'a str,
    /// Its type.
    pub env_type: &'a str,
}

/// Limits of a run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Nodes provisioned at once.
    pub concurrency: usize,
    /// Attempts per node for retryable failures.
    pub max_attempts: u32,
    /// `in-progress` steps per node before giving up.
    pub max_steps: u32,
    /// First retry delay; doubled each attempt.
    pub base_delay: Duration,
    /// Largest retry delay (also caps a driver's `retry_after_ms`).
    pub max_delay: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            concurrency: 16,
            max_attempts: 8,
            max_steps: 1000,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    /// A node failed.
    #[error("resource {uid} (definition {definition}): {message}")]
    Node {
        /// The resource.
        uid: String,
        /// Its definition.
        definition: String,
        /// What failed.
        message: String,
    },
    /// The plan is incomplete (a node without an assignment).
    #[error("resource {0} has no resource definition")]
    Unassigned(String),
    /// The journal could not record a step; nothing more is done.
    #[error("recording the progress of {uid} failed: {message}")]
    Journal {
        /// The resource.
        uid: String,
        /// Why.
        message: String,
    },
}

impl ProvisionError {
    /// The resource it is about.
    pub fn uid(&self) -> &str {
        match self {
            Self::Node { uid, .. } | Self::Journal { uid, .. } | Self::Unassigned(uid) => uid,
        }
    }
}

/// The idempotency key of a resource in an environment: stable across deployments.
pub fn idempotency_key(app: &str, env: &str, uid: &str) -> String {
    hex::encode(&Sha256::digest(format!("{app}/{env}/{uid}").as_bytes())[..16])
}

/// Provisions every node of the plan; returns each node's outputs by uid, with the
/// uid set.
pub async fn run(
    plan: &Plan<'_>,
    drivers: &dyn Drivers,
    journal: &dyn Journal,
    limits: Limits,
) -> Result<BTreeMap<String, Outputs>, ProvisionError> {
    for uid in plan.graph.nodes.keys() {
        if !plan.assignments.contains_key(uid) {
            return Err(ProvisionError::Unassigned(uid.clone()));
        }
    }
    let mut done: BTreeMap<String, Outputs> = BTreeMap::new();
    for level in &plan.graph.levels {
        let results: Vec<Result<(String, Outputs), ProvisionError>> =
            futures_util::stream::iter(level.iter().cloned().map(|uid: String| {
                let done = &done;
                async move {
                    if let Some(outputs) = plan.finished.get(&uid) {
                        return Ok((uid, outputs.clone()));
                    }
                    node(plan, &uid, done, drivers, journal, limits).await
                }
            }))
            .buffer_unordered(limits.concurrency.max(1))
            .collect()
            .await;
        let mut first_error = None;
        for result in results {
            match result {
                Ok((uid, outputs)) => {
                    done.insert(uid, outputs);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    Ok(done)
}

/// Resolves a definition's driver inputs against the outputs of the resources they refer
/// to (by uid). A secret output may only go into `secrets`.
pub fn resolve_config(
    config: &Values,
    outputs: &BTreeMap<String, Outputs>,
) -> Result<Values, String> {
    let metadata = serde_json::Map::new();
    let scope = Scope {
        metadata: &metadata,
        resources: outputs.iter().map(|(k, v)| (k.clone(), v)).collect(),
    };
    fn no_secrets(scope: &Scope<'_>, value: &Value, at: &str) -> Result<(), String> {
        match value {
            Value::String(text) => match scope.resolve(text) {
                Ok(r) if r.is_secret() => Err(format!(
                    "driver_inputs.values{at} refers to a secret output; refer to it from \
                     driver_inputs.secrets, which the driver keeps secret"
                )),
                Ok(_) => Ok(()),
                Err(e) => Err(format!("driver_inputs.values{at}: {e}")),
            },
            Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| no_secrets(scope, v, &format!("{at}/{i}"))),
            Value::Object(map) => map
                .iter()
                .try_for_each(|(k, v)| no_secrets(scope, v, &format!("{at}/{k}"))),
            _ => Ok(()),
        }
    }
    no_secrets(&scope, &config.values, "")?;
    Ok(Values {
        values: scope
            .params(&config.values)
            .map_err(|e| format!("driver_inputs.values: {e}"))?,
        secrets: scope
            .params(&config.secrets)
            .map_err(|e| format!("driver_inputs.secrets: {e}"))?,
    })
}

/// Resolves a node's params in the context of the workload that declared them.
fn node_params(
    plan: &Plan<'_>,
    uid: &str,
    done: &BTreeMap<String, Outputs>,
) -> Result<Value, String> {
    let n = &plan.graph.nodes[uid];
    let Some(params) = &n.params else {
        return Ok(serde_json::json!({}));
    };
    let empty = serde_json::Map::new();
    let metadata = plan
        .workloads
        .get(&n.source_workload)
        .map_or(&empty, |w| &w.metadata);
    let names: BTreeMap<String, &Outputs> = plan
        .graph
        .nodes
        .values()
        .flat_map(|other| {
            other
                .declared_by
                .iter()
                .filter(|(w, _)| *w == n.source_workload)
                .filter_map(|(_, name)| done.get(&other.uid).map(|o| (name.clone(), o)))
        })
        .collect();
    Scope {
        metadata,
        resources: names,
    }
    .params(params)
    .map_err(|e| format!("params: {e}"))
}

/// One node, to done or failure.
async fn node(
    plan: &Plan<'_>,
    uid: &str,
    done: &BTreeMap<String, Outputs>,
    drivers: &dyn Drivers,
    journal: &dyn Journal,
    limits: Limits,
) -> Result<(String, Outputs), ProvisionError> {
    let n = &plan.graph.nodes[uid];
    let assignment = &plan.assignments[uid];
    let fail = |message: String| ProvisionError::Node {
        uid: uid.to_string(),
        definition: assignment.definition.clone(),
        message,
    };
    let params = node_params(plan, uid, done).map_err(fail)?;
    let config = resolve_config(&assignment.config, done).map_err(fail)?;
    let request = DriverRequest {
        context: ResourceContext {
            app: plan.app.to_string(),
            env: plan.env.to_string(),
            env_type: plan.env_type.to_string(),
            resource_id: n.id.clone(),
            resource_type: n.res_type.clone(),
            class: n.class.clone(),
            workloads: n
                .declared_by
                .iter()
                .map(|(w, _)| w.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        },
        params,
        config,
        state: plan.previous.get(uid).cloned(),
        idempotency_key: idempotency_key(plan.app, plan.env, uid),
    };
    let resource = Resource {
        uid,
        definition: &assignment.definition,
        driver: &assignment.driver,
        depends_on: &n.depends_on,
    };
    let (outputs, objects) = steps(
        Operation::Provision,
        &resource,
        request,
        drivers,
        journal,
        limits,
    )
    .await?;
    let object = |v: Value| match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    Ok((
        uid.to_string(),
        Outputs {
            uid: uid.to_string(),
            values: object(outputs.values),
            secrets: object(outputs.secrets),
            objects,
        },
    ))
}

/// What the loop knows of the resource it drives.
struct Resource<'a> {
    uid: &'a str,
    definition: &'a str,
    driver: &'a str,
    depends_on: &'a BTreeSet<String>,
}

/// Calls the driver until it is done or fails for good: the step protocol, the same for
/// provisioning and deprovisioning.
async fn steps(
    operation: Operation,
    resource: &Resource<'_>,
    mut request: DriverRequest,
    drivers: &dyn Drivers,
    journal: &dyn Journal,
    limits: Limits,
) -> Result<(Values, Vec<Value>), ProvisionError> {
    let fail = |message: String| ProvisionError::Node {
        uid: resource.uid.to_string(),
        definition: resource.definition.to_string(),
        message,
    };
    let params = request.params.clone();
    let record = |progress: Progress| {
        let params = &params;
        async move {
            journal
                .record(Entry {
                    uid: resource.uid,
                    operation,
                    definition: resource.definition,
                    driver: resource.driver,
                    depends_on: resource.depends_on,
                    params,
                    progress: &progress,
                })
                .await
                .map_err(|message| ProvisionError::Journal {
                    uid: resource.uid.to_string(),
                    message,
                })
        }
    };
    let mut attempts = 0;
    let mut calls = 0;
    loop {
        let step = match operation {
            Operation::Provision => drivers.provision(resource.driver, request.clone()).await,
            Operation::Deprovision => drivers.deprovision(resource.driver, request.clone()).await,
        };
        match step {
            Ok(Step::Done {
                outputs,
                state,
                objects,
            }) => {
                record(Progress::Done {
                    outputs: outputs.clone(),
                    state,
                    objects: objects.clone(),
                })
                .await?;
                return Ok((outputs, objects));
            }
            Ok(Step::InProgress {
                state: next,
                message,
                retry_after_ms,
            }) => {
                calls += 1;
                record(Progress::InProgress {
                    state: next.clone(),
                    message: message.clone(),
                    calls,
                })
                .await?;
                if calls >= limits.max_steps {
                    let message = format!("still in progress after {calls} steps: {message}");
                    record(Progress::Failed {
                        message: message.clone(),
                    })
                    .await?;
                    return Err(fail(message));
                }
                request.state = Some(next);
                tokio::time::sleep(Duration::from_millis(retry_after_ms).min(limits.max_delay))
                    .await;
            }
            Err(failure) if failure.is_retryable() && attempts + 1 < limits.max_attempts => {
                attempts += 1;
                record(Progress::Retrying {
                    message: wharf_core::error_chain(&failure),
                    attempts,
                })
                .await?;
                tokio::time::sleep(backoff(&failure, attempts, limits)).await;
            }
            Err(failure) => {
                let message = if failure.is_retryable() {
                    format!("{failure} (gave up after {} attempts)", attempts + 1)
                } else {
                    wharf_core::error_chain(&failure)
                };
                record(Progress::Failed {
                    message: message.clone(),
                })
                .await?;
                return Err(fail(message));
            }
        }
    }
}

/// A provisioned resource to deprovision.
#[derive(Debug, Clone, PartialEq)]
pub struct Provisioned {
    /// Its uid.
    pub uid: String,
    /// Its definition.
    pub definition: String,
    /// Its driver installation.
    pub driver: String,
    /// The uids it depends on.
    pub depends_on: BTreeSet<String>,
    /// Its params as they were resolved.
    pub params: Value,
    /// The driver's state.
    pub state: Option<Value>,
    /// The definition's driver inputs, resolved (see [`resolve_config`]).
    pub config: Values,
}

/// Deprovisions `resources` of `app/env` in reverse dependency order (a resource before
/// those it depends on), independent ones concurrently. Stops at the first level with a
/// failure, so that nothing is deleted from under a resource that could not be.
pub async fn deprovision(
    resources: &[Provisioned],
    (app, env, env_type): (&str, &str, &str),
    drivers: &dyn Drivers,
    journal: &dyn Journal,
    limits: Limits,
) -> Result<Vec<String>, ProvisionError> {
    let by_uid: BTreeMap<&str, &Provisioned> =
        resources.iter().map(|r| (r.uid.as_str(), r)).collect();
    let dependencies: BTreeMap<String, BTreeSet<String>> = resources
        .iter()
        .map(|r| {
            let known = r
                .depends_on
                .iter()
                .filter(|d| by_uid.contains_key(d.as_str()))
                .cloned()
                .collect();
            (r.uid.clone(), known)
        })
        .collect();
    let mut levels = wharf_core::graph::levels_of(&dependencies).unwrap_or_else(|_| {
        // Stored dependencies never form a cycle (graphs with one are refused); if they
        // did, one resource at a time in uid order is still an order.
        dependencies.keys().map(|k| vec![k.clone()]).collect()
    });
    levels.reverse();
    let by_uid = &by_uid;
    let mut gone = Vec::new();
    for level in levels {
        let results: Vec<Result<String, ProvisionError>> =
            futures_util::stream::iter(level.iter().cloned().map(|uid: String| async move {
                let r = by_uid[uid.as_str()];
                let (res_type, class, id) = split_uid(&uid);
                let request = DriverRequest {
                    context: ResourceContext {
                        app: app.to_string(),
                        env: env.to_string(),
                        env_type: env_type.to_string(),
                        resource_id: id.to_string(),
                        resource_type: res_type.to_string(),
                        class: class.to_string(),
                        workloads: Vec::new(),
                    },
                    params: r.params.clone(),
                    config: r.config.clone(),
                    state: r.state.clone(),
                    idempotency_key: idempotency_key(app, env, &uid),
                };
                let resource = Resource {
                    uid: &uid,
                    definition: &r.definition,
                    driver: &r.driver,
                    depends_on: &r.depends_on,
                };
                steps(
                    Operation::Deprovision,
                    &resource,
                    request,
                    drivers,
                    journal,
                    limits,
                )
                .await
                .map(|_| uid.clone())
            }))
            .buffer_unordered(limits.concurrency.max(1))
            .collect()
            .await;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(uid) => gone.push(uid),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    Ok(gone)
}

/// `TYPE.CLASS#ID` into its parts.
fn split_uid(uid: &str) -> (&str, &str, &str) {
    let (type_class, id) = uid.split_once('#').unwrap_or((uid, ""));
    let (res_type, class) = type_class.split_once('.').unwrap_or((type_class, ""));
    (res_type, class, id)
}

/// The delay before retry `attempt`: the driver's `retry_after_ms` when it gave one,
/// else exponential from the base, with jitter (50% to 100%), capped.
fn backoff(failure: &PluginFailure, attempt: u32, limits: Limits) -> Duration {
    if let PluginFailure::Plugin(e) = failure
        && let Some(ms) = e.retry_after_ms
    {
        return Duration::from_millis(ms).min(limits.max_delay);
    }
    let exponential = limits
        .base_delay
        .saturating_mul(1u32 << attempt.min(16))
        .min(limits.max_delay);
    exponential.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}
