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
use std::collections::BTreeMap;
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
}

/// Where each step's result is kept before the loop acts on it.
pub trait Journal: Send + Sync {
    /// Records the progress of resource `uid`.
    fn record<'a>(
        &'a self,
        uid: &'a str,
        progress: &'a Progress,
    ) -> BoxFuture<'a, Result<(), String>>;
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
    /// Ready.
    Done {
        /// Its outputs.
        outputs: Values,
        /// State to keep for the next deployment.
        state: Value,
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
    /// The definition's driver inputs.
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
    /// State kept from earlier deployments, by uid.
    pub previous: &'a BTreeMap<String, Value>,
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
            concurrency: 8,
            max_attempts: 5,
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
            futures_util::stream::iter(level.iter().map(|uid| {
                let done = &done;
                async move { node(plan, uid, done, drivers, journal, limits).await }
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
    let record = |progress: Progress| async move {
        journal
            .record(uid, &progress)
            .await
            .map_err(|message| ProvisionError::Journal {
                uid: uid.to_string(),
                message,
            })
    };
    let params = match &n.params {
        None => serde_json::json!({}),
        Some(params) => {
            let workload = &plan.workloads[&n.source_workload];
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
            let scope = Scope {
                metadata: &workload.metadata,
                resources: names,
            };
            scope
                .params(params)
                .map_err(|e| fail(format!("params: {e}")))?
        }
    };
    let mut state = plan.previous.get(uid).cloned();
    let mut attempts = 0;
    let mut steps = 0;
    loop {
        let request = DriverRequest {
            context: ResourceContext {
                app: plan.app.to_string(),
                env: plan.env.to_string(),
                env_type: plan.env_type.to_string(),
                resource_id: n.id.clone(),
                resource_type: n.res_type.clone(),
                class: n.class.clone(),
            },
            params: params.clone(),
            config: assignment.config.clone(),
            state: state.clone(),
            idempotency_key: idempotency_key(plan.app, plan.env, uid),
        };
        match drivers.provision(&assignment.driver, request).await {
            Ok(Step::Done { outputs, state }) => {
                record(Progress::Done {
                    outputs: outputs.clone(),
                    state,
                })
                .await?;
                let object = |v: Value| match v {
                    Value::Object(m) => m,
                    _ => serde_json::Map::new(),
                };
                return Ok((
                    uid.to_string(),
                    Outputs {
                        uid: uid.to_string(),
                        values: object(outputs.values),
                        secrets: object(outputs.secrets),
                    },
                ));
            }
            Ok(Step::InProgress {
                state: next,
                message,
                retry_after_ms,
            }) => {
                steps += 1;
                record(Progress::InProgress {
                    state: next.clone(),
                    message: message.clone(),
                    calls: steps,
                })
                .await?;
                if steps >= limits.max_steps {
                    let message = format!("still in progress after {steps} steps: {message}");
                    record(Progress::Failed {
                        message: message.clone(),
                    })
                    .await?;
                    return Err(fail(message));
                }
                state = Some(next);
                tokio::time::sleep(Duration::from_millis(retry_after_ms).min(limits.max_delay))
                    .await;
            }
            Err(failure) if failure.is_retryable() && attempts + 1 < limits.max_attempts => {
                attempts += 1;
                record(Progress::Retrying {
                    message: failure.to_string(),
                    attempts,
                })
                .await?;
                tokio::time::sleep(backoff(&failure, attempts, limits)).await;
            }
            Err(failure) => {
                let message = if failure.is_retryable() {
                    format!("{failure} (gave up after {} attempts)", attempts + 1)
                } else {
                    failure.to_string()
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
