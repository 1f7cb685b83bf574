//! `freeze-window`: an example third-party policy for Wharf, built with `wharf-sdk` as
//! any outsider would build one.
//!
//! It denies the frozen actions (`deployments.create` unless `actions` lists others, such
//! as `environments.create`) on the configured environment types while a freeze window is
//! open, with a reason that names the window, and abstains on everything else (so the
//! rest of the policy chain decides). Configuration:
//!
//! ```json
//! {
//!   "env_types": ["production"],
//!   "actions": ["deployments.create", "environments.create"],
//!   "windows": [
//!     { "name": "black-friday", "start": "2026-11-27T00:00:00Z", "end": "2026-12-01T00:00:00Z" }
//!   ]
//! }
//! ```
//!
//! `start` is inclusive, `end` exclusive, both RFC 3339 in UTC (`Z`), or a plain date
//! (`2026-11-27`, midnight UTC). The time of the request is `attributes.now` when the
//! host gives it (RFC 3339), else the clock.
//!
//! Build: `cargo build --release --target wasm32-wasip2`; check:
//! `wharf plugin check target/wasm32-wasip2/release/freeze_window.wasm --kind policy`.

use wharf_sdk::policy::{Decision, Policy, Request};
use wharf_sdk::{Issue, PluginError, PluginInfo, Value, json};

/// The freeze-window policy.
pub struct FreezeWindow;

/// Seconds since the Unix epoch of `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS[.frac]Z`.
pub fn parse_time(text: &str) -> Option<i64> {
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let seconds = match time {
        None => 0,
        Some(t) => {
            let t = t.split('.').next()?;
            let mut hms = t.split(':').map(|p| p.parse::<i64>().ok());
            let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
            if hms.next().is_some() || h > 23 || mi > 59 || s > 60 {
                return None;
            }
            h * 3600 + mi * 60 + s
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400 + seconds)
}

struct Window<'a> {
    name: &'a str,
    start: i64,
    end: i64,
    start_text: &'a str,
    end_text: &'a str,
}

/// The actions a freeze applies to: `actions` in the configuration, else deployments.
fn frozen_actions(config: &Value, issues: &mut Vec<Issue>) -> Vec<String> {
    match &config["actions"] {
        Value::Null => vec!["deployments.create".to_string()],
        Value::Array(list) if !list.is_empty() && list.iter().all(Value::is_string) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => {
            issues.push(Issue::new(
                "/actions",
                "must be a non-empty list of action names (like \"deployments.create\")",
            ));
            Vec::new()
        }
    }
}

type Parsed<'a> = (Vec<&'a str>, Vec<String>, Vec<Window<'a>>);

fn windows(config: &Value) -> Result<Parsed<'_>, Vec<Issue>> {
    let mut issues = Vec::new();
    let actions = frozen_actions(config, &mut issues);
    let env_types: Vec<&str> = match config["env_types"].as_array() {
        Some(list) => list.iter().filter_map(Value::as_str).collect(),
        None => {
            issues.push(Issue::new(
                "/env_types",
                "must be a list of environment type names",
            ));
            Vec::new()
        }
    };
    let mut out = Vec::new();
    match config["windows"].as_array() {
        Some(list) => {
            for (i, w) in list.iter().enumerate() {
                let name = w["name"].as_str().unwrap_or("");
                if name.is_empty() {
                    issues.push(Issue::new(
                        format!("/windows/{i}/name"),
                        "must be a non-empty string",
                    ));
                }
                let time = |key: &str| {
                    let text = w[key].as_str().unwrap_or("");
                    parse_time(text).map(|t| (t, text))
                };
                match (time("start"), time("end")) {
                    (Some((start, start_text)), Some((end, end_text))) if start < end => {
                        out.push(Window {
                            name,
                            start,
                            end,
                            start_text,
                            end_text,
                        })
                    }
                    (Some(_), Some(_)) => issues.push(Issue::new(
                        format!("/windows/{i}"),
                        "end must be after start",
                    )),
                    (s, e) => {
                        for (key, v) in [("start", s), ("end", e)] {
                            if v.is_none() {
                                issues.push(Issue::new(
                                    format!("/windows/{i}/{key}"),
                                    "must be an RFC 3339 UTC time (2026-11-27T00:00:00Z) or a date",
                                ));
                            }
                        }
                    }
                }
            }
        }
        None => issues.push(Issue::new("/windows", "must be a list of windows")),
    }
    if issues.is_empty() {
        Ok((env_types, actions, out))
    } else {
        Err(issues)
    }
}

fn now(request: &Request) -> i64 {
    if let Some(t) = request.attributes["now"].as_str().and_then(parse_time) {
        return t;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl Policy for FreezeWindow {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "freeze-window",
            env!("CARGO_PKG_VERSION"),
            "Denies deployments to chosen environment types during freeze windows",
        )
        .with_config_schema(json!({
            "type": "object",
            "required": ["env_types", "windows"],
            "properties": {
                "env_types": { "type": "array", "items": { "type": "string" } },
                "actions": { "type": "array", "items": { "type": "string" },
                             "description": "The actions frozen; [\"deployments.create\"] when absent" },
                "windows": { "type": "array", "items": {
                    "type": "object", "required": ["name", "start", "end"],
                    "properties": { "name": { "type": "string" }, "start": { "type": "string" }, "end": { "type": "string" } }
                } }
            }
        }))
    }

    fn validate_config(config: &Value) -> Result<(), Vec<Issue>> {
        windows(config).map(|_| ())
    }

    fn decide(_config: &Value, _request: &Request) -> Decision {
        unreachable!("authorize is overridden to parse the configuration once per batch")
    }

    fn authorize(config: &Value, requests: &[Request]) -> Result<Vec<Decision>, PluginError> {
        let (env_types, actions, windows) = windows(config).map_err(|issues| {
            PluginError::invalid_input(format!(
                "invalid freeze-window configuration at {}: {}",
                issues[0].path, issues[0].message
            ))
        })?;
        Ok(requests
            .iter()
            .map(|request| {
                if !actions.contains(&request.action) {
                    return Decision::Abstain;
                }
                let Some(env_type) = request.target.env_type.as_deref() else {
                    return Decision::Abstain;
                };
                if !env_types.contains(&env_type) {
                    return Decision::Abstain;
                }
                let now = now(request);
                match windows.iter().find(|w| w.start <= now && now < w.end) {
                    Some(w) => Decision::Deny(format!(
                        "deployments to {env_type} are frozen during {} (from {} until {})",
                        w.name, w.start_text, w.end_text
                    )),
                    None => Decision::Abstain,
                }
            })
            .collect())
    }
}

wharf_sdk::export_policy!(FreezeWindow);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("1970-01-01"), Some(0));
        assert_eq!(parse_time("2026-11-27T00:00:00Z"), Some(1_795_737_600));
        assert_eq!(parse_time("2000-03-01T12:30:15.5Z"), Some(951_913_815));
        assert_eq!(parse_time("2026-13-01"), None);
        assert_eq!(parse_time("2026-11-27T00:00:00+01:00"), None);
    }

    #[test]
    fn a_bad_configuration_names_every_problem() {
        let issues = FreezeWindow::validate_config(&json!({
            "env_types": ["production"],
            "windows": [{ "name": "x", "start": "soon", "end": "2026-01-01" },
                        { "name": "", "start": "2026-02-01", "end": "2026-01-01" }]
        }))
        .unwrap_err();
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["/windows/0/start", "/windows/1/name", "/windows/1"]);
    }
}
