//! A well-behaved driver for the runtime's and the engine's tests: echoes its
//! configuration as outputs, and with `params.url` set, fetches that URL through the host
//! and returns what it got.
//!
//! Scripted by its configuration (`config.values`) or the resource's params:
//! - `steps: N` answers in-progress N times (every `retry_after_ms`, default 50) before
//!   done, with its progress in the state;
//! - `fail: MESSAGE` fails for good with MESSAGE;
//! - `counter: URL` reports to a test's HTTP server: `POST URL/create?uid=..&key=..` when
//!   it creates the resource (a call without state), `POST URL/delete?...` when it
//!   deprovisions it, and `POST URL/call?...` on every provision call, so that the test
//!   can count what the host really asked for. The
//!   counter may answer 503, which fails the call retryably;
//! - `objects: [...]` (params only) returns those Kubernetes objects with the outputs.
//!
//! It exists for tests and benchmarks only and must never be bundled into the host.

use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step, Values};
use wharf_sdk::{ErrorKind, Issue, PluginError, PluginInfo, Value, http, json, log};

/// A setting from the params, else from the configuration's values.
fn setting<'a>(request: &'a Request, key: &str) -> &'a Value {
    match &request.params[key] {
        Value::Null => &request.config.values[key],
        v => v,
    }
}

/// Tells the test's counter about `event`.
fn report(request: &Request, event: &str) -> Result<(), PluginError> {
    let Some(counter) = setting(request, "counter").as_str() else {
        return Ok(());
    };
    let url = format!(
        "{counter}/{event}?uid={}&key={}",
        request.context.resource_id, request.idempotency_key
    );
    let response = http::send(&http::Request::new("POST", &url))?;
    if response.status != 200 {
        return Err(PluginError::new(
            ErrorKind::Unavailable,
            format!("the counter answered {}", response.status),
        ));
    }
    Ok(())
}

/// The test driver.
pub struct TestDriver;

impl Driver for TestDriver {
    fn describe() -> Description {
        Description {
            info: PluginInfo::new("test-driver", "1.2.3", "Echoes its configuration")
                .with_config_schema(json!({ "type": "object" })),
            resource_types: vec![ResourceType::new("echo"), ResourceType::new("thing")],
        }
    }

    fn validate_config(config: &Values) -> Result<(), Vec<Issue>> {
        if config.values.is_object() {
            Ok(())
        } else {
            Err(vec![Issue::new("/values", "must be an object")])
        }
    }

    fn provision(request: Request) -> Result<Step, PluginError> {
        log::info(&format!("provisioning {}", request.context.resource_id));
        if let Some(url) = request.params["url"].as_str() {
            let response = http::send(&http::Request::get(url))?;
            let body = String::from_utf8_lossy(&response.body).into_owned();
            return Ok(Step::Done(Outputs::values(
                json!({ "status": response.status, "body": body }),
            )));
        }
        if let Some(message) = setting(&request, "fail").as_str() {
            return Err(PluginError::invalid_input(message));
        }
        let steps = setting(&request, "steps").as_u64().unwrap_or(0);
        if steps > 0 || setting(&request, "counter").is_string() {
            report(&request, "call")?;
            let state = request.state.clone().unwrap_or(Value::Null);
            let mut step = state["step"].as_u64().unwrap_or(0);
            if state["created"] != true {
                report(&request, "create")?;
            } else {
                step += 1;
            }
            if step < steps {
                return Ok(Step::InProgress {
                    state: json!({ "created": true, "step": step }),
                    message: format!("step {} of {steps}", step + 1),
                    retry_after: std::time::Duration::from_millis(
                        setting(&request, "retry_after_ms").as_u64().unwrap_or(50),
                    ),
                });
            }
            return Ok(Step::Done(Outputs {
                outputs: request.config,
                state: json!({ "created": true, "step": step, "key": request.idempotency_key }),
                objects: Vec::new(),
            }));
        }
        if request.params["slow"].as_bool() == Some(true) && request.state.is_none() {
            return Ok(Step::InProgress {
                state: json!({ "started": true }),
                message: "waiting".into(),
                retry_after: std::time::Duration::from_millis(250),
            });
        }
        Ok(Step::Done(Outputs {
            outputs: request.config,
            state: json!({ "key": request.idempotency_key }),
            objects: request.params["objects"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        }))
    }

    fn deprovision(request: Request) -> Result<Step, PluginError> {
        report(&request, "delete")?;
        Ok(Step::Done(Outputs::default()))
    }
}

wharf_sdk::export_driver!(TestDriver);
