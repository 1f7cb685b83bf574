//! Resource drivers: provision and deprovision resources for environments.
//!
//! A driver implements [`Driver`] and is exported with [`export_driver!`](crate::export_driver).
//! Each call runs in a fresh instance with a CPU and memory budget, so a call must do a
//! bounded amount of work: when the external system needs time (a database being
//! created), return [`Step::InProgress`] with the state needed to continue, and the host
//! calls again later. Calls can be repeated (after a timeout or a host restart): make them
//! idempotent, using [`Request::idempotency_key`] with external APIs.

use crate::{Issue, PluginError, PluginInfo, Value};
use std::time::Duration;

/// A resource driver. The host calls these functions; see the module docs for the rules.
pub trait Driver {
    /// Describes the driver and the resource types it serves. Must be pure: no I/O.
    fn describe() -> Description;

    /// Checks a configuration ops want to use, listing every problem. Must be pure.
    fn validate_config(config: &Values) -> Result<(), Vec<Issue>> {
        let _ = config;
        Ok(())
    }

    /// Brings the resource to the requested state, or makes progress towards it.
    fn provision(request: Request) -> Result<Step, PluginError>;

    /// Deletes the resource; deleting what is already gone succeeds.
    fn deprovision(request: Request) -> Result<Step, PluginError>;
}

/// What a driver is.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// Name, version, description, configuration schema.
    pub info: PluginInfo,
    /// The resource types served.
    pub resource_types: Vec<ResourceType>,
}

/// A resource type a driver serves, with the JSON Schemas of its params and outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// The type (`postgres`).
    pub name: String,
    /// JSON Schema of the params.
    pub params_schema: Value,
    /// JSON Schema of the outputs.
    pub outputs_schema: Value,
}

impl ResourceType {
    /// A type whose params and outputs may be anything.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            params_schema: serde_json::json!({}),
            outputs_schema: serde_json::json!({}),
        }
    }
}

/// Where the resource is provisioned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    /// Application.
    pub app: String,
    /// Environment.
    pub env: String,
    /// Environment type.
    pub env_type: String,
    /// Resource id.
    pub resource_id: String,
    /// Resource type.
    pub resource_type: String,
    /// Resource class.
    pub class: String,
    /// The workloads that declare the resource, sorted.
    pub workloads: Vec<String>,
}

/// Non-sensitive values and secrets, each a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct Values {
    /// Non-sensitive values.
    pub values: Value,
    /// Secrets: encrypted at rest by the host, never logged.
    pub secrets: Value,
}

impl Default for Values {
    fn default() -> Self {
        Self {
            values: serde_json::json!({}),
            secrets: serde_json::json!({}),
        }
    }
}

/// One provision or deprovision call.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Where the resource is.
    pub context: Context,
    /// What the workload asked for.
    pub params: Value,
    /// The driver's configuration from the resource definition.
    pub config: Values,
    /// The state returned by the previous step, if any.
    pub state: Option<Value>,
    /// Stable across retries of one operation.
    pub idempotency_key: String,
}

impl Request {
    /// A request for a resource of `resource_type` in `shop/development`, for tests.
    pub fn test(resource_type: &str) -> Self {
        Self {
            context: Context {
                app: "shop".into(),
                env: "development".into(),
                env_type: "development".into(),
                resource_id: format!("{resource_type}-1"),
                resource_type: resource_type.into(),
                class: "default".into(),
                workloads: vec!["api".into()],
            },
            params: serde_json::json!({}),
            config: Values::default(),
            state: None,
            idempotency_key: "test-key".into(),
        }
    }
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The resource is ready.
    Done(Outputs),
    /// Not finished: call again later with `state`.
    InProgress {
        /// Passed back verbatim on the next call.
        state: Value,
        /// What is happening, for people watching.
        message: String,
        /// When to call again.
        retry_after: Duration,
    },
}

/// The outputs of a finished resource and the state to keep.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outputs {
    /// Values and secrets workloads may reference.
    pub outputs: Values,
    /// State passed back on the next provision and on deprovision.
    pub state: Value,
    /// Kubernetes objects deployed with the workloads (an `HTTPRoute` for a route),
    /// each with `apiVersion`, `kind` and `metadata.name`; never secrets.
    pub objects: Vec<Value>,
}

impl Outputs {
    /// Outputs with these non-sensitive values, no secrets and no state.
    pub fn values(values: Value) -> Self {
        Self {
            outputs: Values {
                values,
                ..Values::default()
            },
            state: Value::Null,
            objects: Vec::new(),
        }
    }

    /// Adds secrets.
    pub fn with_secrets(mut self, secrets: Value) -> Self {
        self.outputs.secrets = secrets;
        self
    }

    /// Sets the state to keep.
    pub fn with_state(mut self, state: Value) -> Self {
        self.state = state;
        self
    }

    /// Adds a Kubernetes object to deploy with the workloads.
    pub fn with_object(mut self, object: Value) -> Self {
        self.objects.push(object);
        self
    }
}

/// Exports a [`Driver`] as the plugin's `wharf:plugin/driver` world.
///
/// Call it once, at the root of a `cdylib` crate built for `wasm32-wasip2`. On other
/// targets it expands to nothing, so the crate still builds and tests natively.
#[macro_export]
macro_rules! export_driver {
    ($driver:ty) => {
        // Exports exist only in the component: natively (unit tests, clippy) the plugin
        // is a plain library whose symbol names need not suit the native linker.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(missing_docs, unused_imports, clippy::all)]
        mod __wharf_export_driver {
            use super::*;
            $crate::__private::world!(driver);
            use exports::wharf::plugin::provisioner as p;
            use $crate::__private::driver as glue;
            use $crate::__private::wit::wharf::plugin::types as t;
            type D = $driver;
            struct Export;
            fn request(
                r: p::Request,
            ) -> ::core::result::Result<$crate::driver::Request, t::PluginError> {
                let c = r.context;
                let context = $crate::driver::Context {
                    app: c.app,
                    env: c.env,
                    env_type: c.env_type,
                    resource_id: c.resource_id,
                    resource_type: c.resource_type,
                    class: c.class,
                    workloads: c.workloads,
                };
                glue::request(
                    context,
                    &r.params,
                    &r.config.values,
                    &r.config.secrets,
                    r.state.as_deref(),
                    r.idempotency_key,
                )
                .map_err(Into::into)
            }
            fn step(
                s: ::core::result::Result<$crate::driver::Step, $crate::PluginError>,
            ) -> ::core::result::Result<p::Step, t::PluginError> {
                Ok(match glue::step(s?) {
                    glue::StepParts::Done {
                        values,
                        secrets,
                        state,
                        objects,
                    } => p::Step::Done(p::Outputs {
                        outputs: p::Values { values, secrets },
                        state,
                        objects,
                    }),
                    glue::StepParts::InProgress {
                        state,
                        message,
                        retry_after_ms,
                    } => p::Step::InProgress(p::Progress {
                        state,
                        message,
                        retry_after_ms,
                    }),
                })
            }
            impl p::Guest for Export {
                fn describe() -> p::Description {
                    let d = <D as $crate::driver::Driver>::describe();
                    p::Description {
                        info: d.info.into(),
                        resource_types: d
                            .resource_types
                            .into_iter()
                            .map(|r| p::ResourceType {
                                name: r.name,
                                params_schema: r.params_schema.to_string(),
                                outputs_schema: r.outputs_schema.to_string(),
                            })
                            .collect(),
                    }
                }
                fn validate_config(
                    config: p::Values,
                ) -> ::core::result::Result<(), ::std::vec::Vec<t::Issue>> {
                    let config =
                        glue::values(&config.values, &config.secrets).map_err(glue::issues)?;
                    <D as $crate::driver::Driver>::validate_config(&config).map_err(glue::issues)
                }
                fn provision(r: p::Request) -> ::core::result::Result<p::Step, t::PluginError> {
                    step(<D as $crate::driver::Driver>::provision(request(r)?))
                }
                fn deprovision(r: p::Request) -> ::core::result::Result<p::Step, t::PluginError> {
                    step(<D as $crate::driver::Driver>::deprovision(request(r)?))
                }
            }
            export!(Export);
        }
    };
}

/// Conversions used by [`export_driver!`](crate::export_driver). Not part of the API.
#[doc(hidden)]
pub mod glue {
    use super::*;
    use crate::__private::parse_json;
    use crate::__private::wit::wharf::plugin::types as wit;

    pub fn request(
        context: Context,
        params: &str,
        values: &str,
        secrets: &str,
        state: Option<&str>,
        idempotency_key: String,
    ) -> Result<Request, PluginError> {
        Ok(Request {
            context,
            params: parse_json("params", params)?,
            config: Values {
                values: parse_json("config.values", values)?,
                secrets: parse_json("config.secrets", secrets)?,
            },
            state: state.map(|s| parse_json("state", s)).transpose()?,
            idempotency_key,
        })
    }

    pub fn values(values: &str, secrets: &str) -> Result<Values, Vec<Issue>> {
        let parse = |path: &str, text: &str| {
            parse_json(path, text).map_err(|e| vec![Issue::new(format!("/{path}"), e.message)])
        };
        Ok(Values {
            values: parse("values", values)?,
            secrets: parse("secrets", secrets)?,
        })
    }

    pub fn issues(issues: Vec<Issue>) -> Vec<wit::Issue> {
        issues.into_iter().map(Into::into).collect()
    }

    pub enum StepParts {
        Done {
            values: String,
            secrets: String,
            state: String,
            objects: Vec<String>,
        },
        InProgress {
            state: String,
            message: String,
            retry_after_ms: u64,
        },
    }

    pub fn step(step: Step) -> StepParts {
        match step {
            Step::Done(o) => StepParts::Done {
                values: o.outputs.values.to_string(),
                secrets: o.outputs.secrets.to_string(),
                state: o.state.to_string(),
                objects: o.objects.iter().map(Value::to_string).collect(),
            },
            Step::InProgress {
                state,
                message,
                retry_after,
            } => StepParts::InProgress {
                state: state.to_string(),
                message,
                retry_after_ms: retry_after.as_millis().min(u64::MAX as u128) as u64,
            },
        }
    }
}
