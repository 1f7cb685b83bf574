//! The `volume` resource driver: a directory under a base directory the operator granted
//! the installation, for workloads on the process target.
//!
//! Configuration: `values.base`, the absolute path of a directory granted to the
//! installation (`grants.directories`): the driver sees that directory and nothing else
//! of the host, at the same path. Params: `retain` (keep the directory when the resource
//! is deprovisioned; `values.retain` sets the default) and, where the resource definition
//! lets it through, `name` (the directory's name under the base, with the prefix
//! `values.name_prefix` may require); by default the name is generated from the app, the
//! environment and the resource id, with a hash of them, so no two resources share one.
//!
//! Ownership: beside each directory it makes, `DIR.wharf-owner` holds the resource's
//! owner mark (outside the directory, so the workload that writes in it cannot change
//! it; the process target hands a directory with this mark to the workload's user). A
//! directory is adopted only when the mark is this resource's (or the driver's state
//! shows it made it before marks existed); one without the mark, or another's, is
//! refused; deprovisioning removes only what is marked as this resource's.
//!
//! Outputs: `source`, a Kubernetes volume source (`{"hostPath": {"path": DIR}}`, which
//! the process target links the mount path to), and `path`.

use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step, Values};
use wharf_sdk::{ErrorKind, Issue, PluginError, PluginInfo, Value, json, names};

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

/// What a directory name may hold.
const NAMES: names::Rules = names::Rules {
    max_len: 100,
    separator: '-',
    also: "-.",
    starts_with_letter: false,
};

/// The directory a request asks for: the state's (made before), the workload's choice
/// (where allowed), or generated.
fn directory(request: &Request, base: &str) -> Result<String, PluginError> {
    if let Some(path) = request.state.as_ref().and_then(|s| s["path"].as_str()) {
        return Ok(path.to_string());
    }
    let name = match names::chosen(request)? {
        Some(n) => {
            let clean = segment(&n);
            if clean != n || clean.is_empty() {
                return Err(PluginError::invalid_input(format!(
                    "params.name {n:?}: one path segment of letters, digits, dashes and dots"
                )));
            }
            clean
        }
        None => names::generated(request, &NAMES),
    };
    Ok(format!("{base}/{name}"))
}

/// The file beside `dir` that holds its owner mark.
fn mark_file(dir: &str) -> String {
    format!("{dir}.wharf-owner")
}

/// Whether `dir` is this resource's: its mark says so, or, without a mark, the driver's
/// state shows it made it before marks were written.
fn ours(request: &Request, dir: &str) -> bool {
    match std::fs::read_to_string(mark_file(dir)) {
        Ok(mark) => mark.trim() == names::owner(request),
        Err(_) => request.state.as_ref().and_then(|s| s["path"].as_str()) == Some(dir),
    }
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
        let mark = names::owner(&request);
        // The mark goes first: a directory is never there without it (a crash between
        // the two leaves a mark, which the next call finds to be this resource's).
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !ours(&request, &dir) {
                    return Err(PluginError::new(
                        ErrorKind::PermissionDenied,
                        format!(
                            "directory {dir} exists and is not resource {}'s (it has no mark \
                             of it, {}); Wharf does not touch it: choose another name",
                            names::describe(&request),
                            mark_file(&dir)
                        ),
                    ));
                }
            }
            Err(e) => {
                return Err(PluginError::other(format!(
                    "cannot create the directory {dir}: {e}"
                )));
            }
        }
        std::fs::write(mark_file(&dir), format!("{mark}\n"))
            .map_err(|e| PluginError::other(format!("cannot mark the directory {dir}: {e}")))?;
        Ok(Step::Done(Outputs {
            outputs: Values {
                values: json!({ "source": { "hostPath": { "path": dir } }, "path": dir }),
                secrets: json!({}),
            },
            state: json!({ "path": dir, "retain": retain(&request) }),
            objects: Vec::new(),
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
            if !std::path::Path::new(&dir).exists() {
                let _ = std::fs::remove_file(mark_file(&dir));
                return Ok(Step::Done(Outputs::default()));
            }
            if !ours(&request, &dir) {
                wharf_sdk::log::warn(&format!(
                    "directory {dir} is not this resource's; it is left alone"
                ));
                return Ok(Step::Done(Outputs::default()));
            }
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(PluginError::other(format!("cannot remove {dir}: {e}")));
                }
            }
            let _ = std::fs::remove_file(mark_file(&dir));
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
        let dir = directory(&request, "/srv/v").unwrap();
        assert!(
            dir.starts_with("/srv/v/shop-development-web.data-"),
            "{dir}"
        );
        assert_eq!(mark_file(&dir), format!("{dir}.wharf-owner"));
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
