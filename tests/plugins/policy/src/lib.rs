//! A well-behaved policy for the runtime's tests: allows an action when the principal
//! holds the role that `config.roles[action]` names on the target's app, denies it when
//! the principal holds none, and abstains on actions the configuration does not name.
//! With `config.forbid_annotations` (key prefixes), it denies a deployment whose workloads
//! carry an annotation with one of them (what ops write to forbid, say, an AppArmor
//! override).
//!
//! It exists for tests and benchmarks only and must never be bundled into the host.

use wharf_sdk::policy::{Decision, Policy, Request, Scope};
use wharf_sdk::{Issue, PluginInfo, Value};

/// The test policy.
pub struct TestPolicy;

impl Policy for TestPolicy {
    fn describe() -> PluginInfo {
        PluginInfo::new("test-policy", "0.1.0", "Allows actions by app role")
    }

    fn validate_config(config: &Value) -> Result<(), Vec<Issue>> {
        match config.get("roles") {
            Some(Value::Object(_)) => Ok(()),
            _ => Err(vec![Issue::new(
                "/roles",
                "must be an object of action to role",
            )]),
        }
    }

    fn decide(config: &Value, request: &Request) -> Decision {
        if config["panic"] == true {
            panic!("the test policy panics on purpose");
        }
        if request.action == "deployments.create"
            && let Some(prefixes) = config["forbid_annotations"].as_array()
        {
            let workloads = request.attributes["annotations"].as_object();
            for (workload, annotations) in workloads.into_iter().flatten() {
                for key in annotations
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    if prefixes
                        .iter()
                        .filter_map(Value::as_str)
                        .any(|p| key.starts_with(p))
                    {
                        return Decision::Deny(format!(
                            "workload {workload} has annotation {key}, which ops forbid"
                        ));
                    }
                }
            }
        }
        let Some(role) = config["roles"][&request.action].as_str() else {
            return Decision::Abstain;
        };
        let Some(app) = &request.target.app else {
            return Decision::Deny("no app given".into());
        };
        if request.principal.has(&Scope::App(app.clone()), role) {
            Decision::Allow
        } else {
            Decision::Deny(format!("{} needs role {role} on app {app}", request.action))
        }
    }
}

wharf_sdk::export_policy!(TestPolicy);
