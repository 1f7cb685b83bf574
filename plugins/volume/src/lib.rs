//! The `volume` resource driver: a directory under a base directory the operator granted
//! the installation, for workloads on the process target.
//!
//! Configuration: `values.base`, the absolute path of a directory granted to the
//! installation (`grants.directories`): the driver sees that directory and nothing else
//! of the host, at the same path. Params: `name` (the directory's name under the base; by
//! default one made from the app, the environment and the resource id) and `retain` (keep
//! the directory when the resource is deprovisioned; `values.retain` sets the default).
//!
//! Outputs: `source`, a Kubernetes volume source (`{"hostPath": {"path": DIR}}`, which
//! the process target links the mount path to), and `path`.

use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step, Values};
use wharf_sdk::{ErrorKind, Issue, PluginError, PluginInfo, Value, json};

/// The volume driver.
pub struct Volume;

/// A path segment from free text: letters, digits, dashes and dots.
fn segment(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches(|c| c == '-' || c == '.')
        .to_string()
}

fn base(config: &Values) -> Result<String, PluginError> {
    match config.values["base"].as_str() {
        Some(b) if b.starts_with('/') && !b.split('/').any(|s| s == "..") => {
            Ok(b.trim_end_matches('/').to_string())
        }
        Some(b) => Err(PluginError::invalid_input(format!(
            "driver_inputs.values.base {b:?}: an absolute path without `..`"
        ))),
        None => Err(PluginError::invalid_input(
            "driver_inputs.values.base: required, the granted directory volumes go in",
        )),
    }
}

/// The directory a request asks for.
fn directory(request: &Request, base: &str) -> Result<String, PluginError> {
    let name = match request.params["name"].as_str() {
        Some(n) => {
            let clean = segment(n);
            if clean != n || clean.is_empty() {
                return Err(PluginError::invalid_input(format!(
                    "params.name {n:?}: one path segment of letters, digits, dashes and dots"
                )));
            }
            clean
        }
        None => segment(&format!(
            "{}-{}-{}",
            request.context.app, request.context.env, request.context.resource_id
        )),
    };
    Ok(format!("{base}/{name}"))
}

fn not_granted(base: &str, e: &std::io::Error) -> PluginError {
    PluginError::new(
        ErrorKind::PermissionDenied,
        format!(
            "not granted: directory {base} ({e}); grant it to the installation \
             (grants.directories)"
        ),
    )
}

fn retain(request: &Request) -> bool {
    match &request.params["retain"] {
        Value::Bool(b) => *b,
        _ => request.config.values["retain"] == true,
    }
}

impl Driver for Volume {
    fn describe() -> Description {
        Description {
            info: PluginInfo::new(
                "volume",
                env!("CARGO_PKG_VERSION"),
                "A directory under a granted base directory, for the process target",
            )
            .with_config_schema(json!({
                "type": "object",
                "properties": { "values": { "type": "object",
                    "properties": { "base": { "type": "string" }, "retain": { "type": "boolean" } } } }
            })),
            resource_types: vec![ResourceType {
                name: "volume".into(),
                params_schema: json!({
                    "type": "object",
                    "properties": { "name": { "type": "string" }, "retain": { "type": "boolean" } }
                }),
                outputs_schema: json!({
                    "type": "object",
                    "properties": { "values": { "required": ["source", "path"] } }
                }),
            }],
        }
    }

    fn validate_config(config: &Values) -> Result<(), Vec<Issue>> {
        if config.values.get("base").is_some()
            && let Err(e) = base(config)
        {
            return Err(vec![Issue::new("/values/base", e.message)]);
        }
        Ok(())
    }

    fn provision(request: Request) -> Result<Step, PluginError> {
        let base = base(&request.config)?;
        std::fs::metadata(&base).map_err(|e| not_granted(&base, &e))?;
        let dir = directory(&request, &base)?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| PluginError::other(format!("cannot create the directory {dir}: {e}")))?;
        Ok(Step::Done(Outputs {
            outputs: Values {
                values: json!({ "source": { "hostPath": { "path": dir } }, "path": dir }),
                secrets: json!({}),
            },
            state: json!({ "path": dir, "retain": retain(&request) }),
        }))
    }

    fn deprovision(request: Request) -> Result<Step, PluginError> {
        let base = base(&request.config)?;
        let dir = match request.state.as_ref().and_then(|s| s["path"].as_str()) {
            Some(path) => path.to_string(),
            None => directory(&request, &base)?,
        };
        let keep = request
            .state
            .as_ref()
            .and_then(|s| s["retain"].as_bool())
            .unwrap_or_else(|| retain(&request));
        if !keep {
            std::fs::metadata(&base).map_err(|e| not_granted(&base, &e))?;
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(PluginError::other(format!("cannot remove {dir}: {e}")));
                }
            }
        }
        Ok(Step::Done(Outputs::default()))
    }
}

wharf_sdk::export_driver!(Volume);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_one_segment_under_the_base() {
        let mut request = Request::test("volume");
        request.context.resource_id = "web.data".into();
        assert_eq!(
            directory(&request, "/srv/v").unwrap(),
            "/srv/v/shop-development-web.data"
        );
        request.params = json!({ "name": "../escape" });
        assert!(directory(&request, "/srv/v").is_err());
        let relative = Values {
            values: json!({ "base": "srv" }),
            secrets: json!({}),
        };
        assert!(Volume::validate_config(&relative).is_err());
        assert!(Volume::validate_config(&Values::default()).is_ok());
    }
}
