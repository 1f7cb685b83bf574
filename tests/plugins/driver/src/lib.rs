//! A well-behaved driver for the runtime's tests: echoes its configuration as outputs, and
//! with `params.url` set, fetches that URL through the host and returns what it got.
//!
//! It exists for tests and benchmarks only and must never be bundled into the host.

use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step, Values};
use wharf_sdk::{Issue, PluginError, PluginInfo, http, json, log};

/// The test driver.
pub struct TestDriver;

impl Driver for TestDriver {
    fn describe() -> Description {
        Description {
            info: PluginInfo::new("test-driver", "1.2.3", "Echoes its configuration")
                .with_config_schema(json!({ "type": "object" })),
            resource_types: vec![ResourceType::new("echo")],
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
        }))
    }

    fn deprovision(_request: Request) -> Result<Step, PluginError> {
        Ok(Step::Done(Outputs::default()))
    }
}

wharf_sdk::export_driver!(TestDriver);
