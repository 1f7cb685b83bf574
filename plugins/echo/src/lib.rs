//! The `echo` resource driver: its outputs are the values and secrets configured in the
//! resource definition, unchanged.
//!
//! It serves resources that already exist outside Wharf (a shared production database, an
//! external API): ops put the connection details in the definition, and workloads read
//! them as outputs (`${resources.db.host}`). It serves any resource type (`*`), provisions
//! nothing and deletes nothing. It must stay free of I/O.

use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step, Values};
use wharf_sdk::{Issue, PluginError, PluginInfo, Value, json};

/// The echo driver.
pub struct Echo;

impl Driver for Echo {
    fn describe() -> Description {
        Description {
            info: PluginInfo::new(
                "echo",
                env!("CARGO_PKG_VERSION"),
                "Outputs the values and secrets of its configuration, for resources that already exist",
            )
            .with_config_schema(json!({
                "type": "object",
                "properties": {
                    "values": { "type": "object" },
                    "secrets": { "type": "object" }
                }
            })),
            resource_types: vec![ResourceType {
                name: "*".into(),
                params_schema: json!({ "type": "object" }),
                outputs_schema: json!({ "type": "object" }),
            }],
        }
    }

    fn validate_config(config: &Values) -> Result<(), Vec<Issue>> {
        let mut issues = Vec::new();
        for (path, value) in [("/values", &config.values), ("/secrets", &config.secrets)] {
            if !value.is_object() {
                issues.push(Issue::new(
                    path,
                    "must be a JSON object of output names to values",
                ));
            }
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }

    fn provision(request: Request) -> Result<Step, PluginError> {
        if let Err(issues) = Self::validate_config(&request.config) {
            let problems: Vec<String> = issues
                .iter()
                .map(|i| format!("config{}: {}", i.path, i.message))
                .collect();
            return Err(PluginError::invalid_input(problems.join("; ")));
        }
        Ok(Step::Done(Outputs {
            outputs: request.config,
            state: Value::Null,
            objects: Vec::new(),
        }))
    }

    fn deprovision(_request: Request) -> Result<Step, PluginError> {
        Ok(Step::Done(Outputs::default()))
    }
}

wharf_sdk::export_driver!(Echo);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_the_configuration_with_secrets_kept_apart() {
        let mut request = Request::test("postgres");
        request.config = Values {
            values: json!({ "host": "db.prod", "port": 5432 }),
            secrets: json!({ "password": "p" }),
        };
        let Step::Done(out) = Echo::provision(request).unwrap() else {
            panic!()
        };
        assert_eq!(
            out.outputs.values,
            json!({ "host": "db.prod", "port": 5432 })
        );
        assert_eq!(out.outputs.secrets, json!({ "password": "p" }));
    }

    #[test]
    fn a_configuration_that_is_not_objects_is_invalid_input() {
        let mut request = Request::test("postgres");
        request.config.values = json!("db.prod");
        let err = Echo::provision(request).unwrap_err();
        assert!(
            err.message.contains("config/values: must be a JSON object"),
            "{err}"
        );
    }
}
