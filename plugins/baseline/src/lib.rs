//! The `baseline` transformer: the platform team's baseline for every deployment.
//!
//! Configuration (every part optional):
//!
//! ```json
//! {
//!   "labels": { "team": "payments" },
//!   "annotations": { "example.com/owner": "platform" },
//!   "defaults": {
//!     "replicas": 2,
//!     "requests": { "cpu": "100m", "memory": "128Mi" },
//!     "limits": { "cpu": "500m", "memory": "512Mi" }
//!   },
//!   "enforce": {
//!     "max_replicas": 10,
//!     "max": { "cpu": "2", "memory": "2Gi" }
//!   }
//! }
//! ```
//!
//! - `labels` and `annotations` are set on every object (`metadata.labels`,
//!   `metadata.annotations`), replacing a value the workload gave for the same key: they
//!   are the platform's.
//! - `defaults` apply to Deployments and StatefulSets, only where the workload left the
//!   field unset: `spec.replicas`, and per container (`spec.template.spec.containers` and
//!   `initContainers`) `resources.requests.<r>` and `resources.limits.<r>`.
//! - `enforce` caps, after the defaults: `spec.replicas` at `max_replicas`, and every
//!   container request and limit of a resource in `max` at that quantity.
//!
//! It never drops, adds or reorders objects, and never touches a field it was not asked
//! to: an object it has nothing to change comes out byte for byte as it went in. It must
//! stay a pure function of its input.

use wharf_sdk::transformer::{Context, Transformer};
use wharf_sdk::{Issue, PluginError, PluginInfo, Value, json};

/// The baseline transformer.
pub struct Baseline;

/// Parses a Kubernetes quantity (`500m`, `2`, `1.5`, `128Mi`, `1G`, `1e3`) into base
/// units, or `None` when it is not one.
pub fn quantity(q: &Value) -> Option<f64> {
    if let Some(n) = q.as_f64() {
        return Some(n);
    }
    let s = q.as_str()?.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (suffix, factor) in suffixes {
        if let Some(number) = s.strip_suffix(suffix) {
            return number.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    let extra: [(&str, f64); 2] = [("P", 1e15), ("E", 1e18)];
    for (suffix, factor) in extra {
        if let Some(number) = s.strip_suffix(suffix) {
            return number.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn check_config(config: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    if config.is_null() {
        return issues;
    }
    let Some(map) = config.as_object() else {
        return vec![Issue::new("", "must be an object")];
    };
    for key in map.keys() {
        if !["labels", "annotations", "defaults", "enforce"].contains(&key.as_str()) {
            issues.push(Issue::new(
                format!("/{key}"),
                "unknown key: expected labels, annotations, defaults or enforce",
            ));
        }
    }
    for key in ["labels", "annotations"] {
        if let Some(v) = map.get(key) {
            match v.as_object() {
                Some(m) => {
                    for (k, v) in m {
                        if !v.is_string() {
                            issues.push(Issue::new(format!("/{key}/{k}"), "must be a string"));
                        }
                    }
                }
                None => issues.push(Issue::new(
                    format!("/{key}"),
                    "must be an object of strings",
                )),
            }
        }
    }
    let defaults = &config["defaults"];
    if !defaults.is_null()
        && !defaults["replicas"].is_null()
        && defaults["replicas"].as_u64().is_none()
    {
        issues.push(Issue::new(
            "/defaults/replicas",
            "must be a non-negative integer",
        ));
    }
    for (path, resources) in [
        ("/defaults/requests", &defaults["requests"]),
        ("/defaults/limits", &defaults["limits"]),
        ("/enforce/max", &config["enforce"]["max"]),
    ] {
        if let Some(m) = resources.as_object() {
            for (r, q) in m {
                if quantity(q).is_none() {
                    issues.push(Issue::new(
                        format!("{path}/{r}"),
                        format!("{q} is not a Kubernetes quantity (like 500m, 2, 128Mi)"),
                    ));
                }
            }
        } else if !resources.is_null() {
            issues.push(Issue::new(
                path,
                "must be an object of resource names to quantities",
            ));
        }
    }
    let max = &config["enforce"]["max_replicas"];
    if !max.is_null() && max.as_u64().is_none() {
        issues.push(Issue::new(
            "/enforce/max_replicas",
            "must be a non-negative integer",
        ));
    }
    issues
}

/// Sets `key` in the object `parent[field]` (created when missing) to `value`, returning
/// whether anything changed.
fn set_in(parent: &mut Value, field: &str, key: &str, value: &Value) -> bool {
    let map = &mut parent[field];
    if map.is_null() {
        *map = json!({});
    }
    if map.get(key) == Some(value) {
        return false;
    }
    map[key] = value.clone();
    true
}

fn workload(object: &Value) -> bool {
    object["kind"] == "Deployment" || object["kind"] == "StatefulSet"
}

fn apply(config: &Value, object: &mut Value) -> Result<(), PluginError> {
    if !object.is_object() {
        return Err(PluginError::invalid_input(
            "every object must be a JSON object",
        ));
    }
    for key in ["labels", "annotations"] {
        if let Some(values) = config[key].as_object() {
            for (k, v) in values {
                set_in(&mut object["metadata"], key, k, v);
            }
        }
    }
    if !workload(object) {
        return Ok(());
    }
    let defaults = &config["defaults"];
    let enforce = &config["enforce"];
    if let Some(replicas) = defaults["replicas"].as_u64()
        && object["spec"]["replicas"].is_null()
    {
        object["spec"]["replicas"] = json!(replicas);
    }
    if let Some(max) = enforce["max_replicas"].as_u64()
        && object["spec"]["replicas"].as_u64().is_some_and(|r| r > max)
    {
        object["spec"]["replicas"] = json!(max);
    }
    let pod = &mut object["spec"]["template"]["spec"];
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers {
            for kind in ["requests", "limits"] {
                if let Some(wanted) = defaults[kind].as_object() {
                    for (resource, quantity) in wanted {
                        if container["resources"][kind][resource].is_null() {
                            set_in(&mut container["resources"], kind, resource, quantity);
                        }
                    }
                }
                if let Some(caps) = enforce["max"].as_object() {
                    for (resource, cap) in caps {
                        let current = &container["resources"][kind][resource];
                        if let (Some(have), Some(limit)) = (quantity(current), quantity(cap))
                            && have > limit
                        {
                            container["resources"][kind][resource] = cap.clone();
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

impl Transformer for Baseline {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "baseline",
            env!("CARGO_PKG_VERSION"),
            "Sets labels, annotations, default replicas and resources, and enforces caps",
        )
        .with_config_schema(json!({
            "type": "object",
            "properties": {
                "labels": { "type": "object", "additionalProperties": { "type": "string" } },
                "annotations": { "type": "object", "additionalProperties": { "type": "string" } },
                "defaults": { "type": "object" },
                "enforce": { "type": "object" }
            },
            "additionalProperties": false
        }))
    }

    fn validate_config(config: &Value) -> Result<(), Vec<Issue>> {
        let issues = check_config(config);
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }

    fn transform(
        _context: &Context,
        config: &Value,
        mut objects: Vec<Value>,
    ) -> Result<Vec<Value>, PluginError> {
        let issues = check_config(config);
        if let Some(issue) = issues.first() {
            return Err(PluginError::invalid_input(format!(
                "invalid baseline configuration at {}: {}",
                issue.path, issue.message
            )));
        }
        for (i, object) in objects.iter_mut().enumerate() {
            apply(config, object)
                .map_err(|e| PluginError::invalid_input(format!("objects[{i}]: {}", e.message)))?;
        }
        Ok(objects)
    }
}

wharf_sdk::export_transformer!(Baseline);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse() {
        assert_eq!(quantity(&json!("500m")), Some(0.5));
        assert_eq!(quantity(&json!("2")), Some(2.0));
        assert_eq!(quantity(&json!(2)), Some(2.0));
        assert_eq!(quantity(&json!("128Mi")), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(quantity(&json!("1G")), Some(1e9));
        assert_eq!(quantity(&json!("1e3")), Some(1000.0));
        assert_eq!(quantity(&json!("lots")), None);
    }

    #[test]
    fn a_bad_configuration_lists_every_problem() {
        let issues = check_config(&json!({
            "labels": { "a": 1 },
            "defaults": { "replicas": -1, "limits": { "cpu": "fast" } },
            "extra": true
        }));
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/extra",
                "/labels/a",
                "/defaults/replicas",
                "/defaults/limits/cpu"
            ]
        );
    }
}
