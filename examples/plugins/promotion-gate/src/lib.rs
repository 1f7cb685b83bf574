//! `promotion-gate`: an example third-party policy for Wharf, built with `wharf-sdk`.
//!
//! Environments of the gated types take only what already ran somewhere else: a
//! deployment to them must be a promotion (`wharf promote APP --from staging --to
//! production`) from one of the allowed source environments, or a rollback to one of
//! their own earlier deployments. Anything else (Score files, a set, a delta, a promotion
//! from another environment) is denied with a reason that says how to deploy there.
//! Other actions and environment types are left to the rest of the chain (abstain).
//! Configuration:
//!
//! ```json
//! { "env_types": ["production"], "from": ["staging"] }
//! ```
//!
//! `from` names source environments (`staging`), or environment types when written
//! `type:staging`. The host gives a promotion's source in the `promotion` attribute of
//! `deployments.create` (`from`, `from_env_type`, `deployment`, `set`).
//!
//! Build: `cargo build --release --target wasm32-wasip2`; check:
//! `wharf plugin check target/wasm32-wasip2/release/promotion_gate.wasm --kind policy`.

use wharf_sdk::policy::{Decision, Policy, Request};
use wharf_sdk::{Issue, PluginError, PluginInfo, Value, json};

/// The promotion-gate policy.
pub struct PromotionGate;

/// The gated environment types and the allowed sources, or what is wrong with them.
fn settings(config: &Value) -> Result<(Vec<&str>, Vec<&str>), Vec<Issue>> {
    let mut issues = Vec::new();
    let mut list = |key: &str| match config[key].as_array() {
        Some(items) if !items.is_empty() && items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).collect()
        }
        _ => {
            issues.push(Issue::new(
                format!("/{key}"),
                "must be a non-empty list of names",
            ));
            Vec::new()
        }
    };
    let (env_types, from) = (list("env_types"), list("from"));
    if let Some(extra) = config
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "env_types" && *k != "from"))
    {
        issues.push(Issue::new(
            format!("/{extra}"),
            "is not a setting of this policy",
        ));
    }
    if issues.is_empty() {
        Ok((env_types, from))
    } else {
        Err(issues)
    }
}

/// Whether the promotion comes from one of the allowed sources.
fn allowed(from: &[&str], promotion: &Value) -> bool {
    let env = promotion["from"].as_str().unwrap_or_default();
    let env_type = promotion["from_env_type"].as_str().unwrap_or_default();
    from.iter().any(|f| match f.strip_prefix("type:") {
        Some(t) => t == env_type,
        None => *f == env,
    })
}

/// The decision on one request.
pub fn decide_one(env_types: &[&str], from: &[&str], request: &Request) -> Decision {
    if request.action != "deployments.create" {
        return Decision::Abstain;
    }
    let Some(env_type) = request.target.env_type.as_deref() else {
        return Decision::Abstain;
    };
    if !env_types.contains(&env_type) {
        return Decision::Abstain;
    }
    let attributes = &request.attributes;
    // Decided again once the body is read: the first decision has only the path.
    if attributes["stage"] == "request" {
        return Decision::Abstain;
    }
    let sources = from.join(", ");
    let promotion = &attributes["promotion"];
    if promotion.is_object() {
        if allowed(from, promotion) {
            return Decision::Abstain;
        }
        return Decision::Deny(format!(
            "{env_type} takes only promotions from {sources}; this one is from {}",
            promotion["from"].as_str().unwrap_or("another environment")
        ));
    }
    if attributes["source"]
        .as_str()
        .is_some_and(|s| s.starts_with("rollback to deployment"))
    {
        return Decision::Abstain;
    }
    Decision::Deny(format!(
        "{env_type} takes only what ran in {sources}: promote it with `wharf promote APP \
         --from {} --to ENV`",
        from.first().copied().unwrap_or("staging")
    ))
}

impl Policy for PromotionGate {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "promotion-gate",
            env!("CARGO_PKG_VERSION"),
            "Lets chosen environment types take only promotions from chosen environments",
        )
        .with_config_schema(json!({
            "type": "object",
            "required": ["env_types", "from"],
            "properties": {
                "env_types": { "type": "array", "items": { "type": "string" } },
                "from": { "type": "array", "items": { "type": "string" },
                          "description": "Source environments, or `type:T` for environment types" }
            }
        }))
    }

    fn validate_config(config: &Value) -> Result<(), Vec<Issue>> {
        settings(config).map(|_| ())
    }

    fn decide(_config: &Value, _request: &Request) -> Decision {
        unreachable!("authorize is overridden to read the configuration once per batch")
    }

    fn authorize(config: &Value, requests: &[Request]) -> Result<Vec<Decision>, PluginError> {
        let (env_types, from) = settings(config).map_err(|issues| {
            PluginError::invalid_input(format!(
                "invalid promotion-gate configuration at {}: {}",
                issues[0].path, issues[0].message
            ))
        })?;
        Ok(requests
            .iter()
            .map(|r| decide_one(&env_types, &from, r))
            .collect())
    }
}

wharf_sdk::export_policy!(PromotionGate);

#[cfg(test)]
mod tests {
    use super::*;

    fn request(env_type: &str, attributes: Value) -> Request {
        let mut r = Request::test("dev", "deployments.create");
        r.target.env_type = Some(env_type.into());
        r.attributes = attributes;
        r
    }

    #[test]
    fn only_promotions_from_the_sources_and_rollbacks_pass() {
        let (types, from) = (["production"], ["staging"]);
        let decide = |t, a| decide_one(&types, &from, &request(t, a));
        let staging = json!({ "stage": "content", "promotion": { "from": "staging", "from_env_type": "staging" } });
        assert_eq!(decide("production", staging), Decision::Abstain);
        let dev = json!({ "stage": "content", "promotion": { "from": "dev", "from_env_type": "development" } });
        assert_eq!(
            decide("production", dev),
            Decision::Deny(
                "production takes only promotions from staging; this one is from dev".into()
            )
        );
        let files = json!({ "stage": "content", "promotion": null, "source": "workloads" });
        assert!(
            matches!(decide("production", files), Decision::Deny(r) if r.contains("wharf promote"))
        );
        let rollback = json!({ "stage": "content", "source": "rollback to deployment 3" });
        assert_eq!(decide("production", rollback), Decision::Abstain);
        assert_eq!(
            decide("production", json!({ "stage": "request" })),
            Decision::Abstain
        );
        assert_eq!(
            decide("development", json!({ "stage": "content" })),
            Decision::Abstain
        );
    }

    #[test]
    fn sources_can_be_environment_types() {
        let promotion = json!({ "from": "qa-2", "from_env_type": "staging" });
        assert!(allowed(&["type:staging"], &promotion));
        assert!(!allowed(&["staging"], &promotion));
    }

    #[test]
    fn the_configuration_is_checked() {
        assert!(settings(&json!({ "env_types": ["production"], "from": ["staging"] })).is_ok());
        let issues = settings(&json!({ "env_types": [], "form": ["staging"] })).unwrap_err();
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["/env_types", "/from", "/form"]);
    }
}
