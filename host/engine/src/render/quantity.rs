//! A container's `resources` as Kubernetes reads them: CPU and memory quantities written
//! the one way Kubernetes writes them back (`0.25` CPU is `250m`, `1.0` is `1`, a memory
//! number is bytes), so that an apply changes nothing it need not, and values Kubernetes
//! would refuse (or read as something else) refused here with the fix.

use serde_json::{Map, Value, json};
use wharf_core::score::Problem;

/// The canonical form of `resources` (`{limits, requests}` of `cpu` and `memory`), or the
/// problems of each value at fault (under `at`).
pub(super) fn resources(value: &Value, at: &str, problems: &mut Vec<Problem>) -> Value {
    let mut out = Map::new();
    for (section, amounts) in value.as_object().into_iter().flatten() {
        let mut canonical = Map::new();
        for (name, amount) in amounts.as_object().into_iter().flatten() {
            let path = format!("{at}/{section}/{name}");
            let read = match name.as_str() {
                "cpu" => cpu(amount),
                "memory" => memory(amount),
                _ => Ok(amount.clone()),
            };
            match read {
                Ok(v) => {
                    canonical.insert(name.clone(), v);
                }
                Err(message) => problems.push(Problem { path, message }),
            }
        }
        out.insert(section.clone(), Value::Object(canonical));
    }
    Value::Object(out)
}

/// A plain decimal number (`0.25`, `2`, `.5`), as written.
fn decimal(amount: &Value) -> Option<f64> {
    match amount {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            let plain = !s.is_empty()
                && s.chars().all(|c| c.is_ascii_digit() || c == '.')
                && s.matches('.').count() <= 1
                && s != ".";
            plain.then(|| s.parse().ok()).flatten()
        }
        _ => None,
    }
}

/// A quantity with a suffix: digits (with an optional fraction), then one of `suffixes`.
fn suffixed(text: &str, suffixes: &[&str]) -> bool {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &text[digits.len()..];
    let number = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1
        && digits != ".";
    number && suffixes.contains(&suffix)
}

const BINARY: &[&str] = &["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
const DECIMAL: &[&str] = &["k", "M", "G", "T", "P", "E"];

fn cpu(amount: &Value) -> Result<Value, String> {
    if let Some(cores) = decimal(amount) {
        let millis = cores * 1000.0;
        if (millis - millis.round()).abs() > 1e-6 {
            return Err(format!(
                "{amount}: CPU is counted in thousandths of a core at the finest (1m = 0.001)"
            ));
        }
        let millis = millis.round() as u64;
        return Ok(if millis.is_multiple_of(1000) {
            json!((millis / 1000).to_string())
        } else {
            json!(format!("{millis}m"))
        });
    }
    match amount.as_str() {
        Some(s) if suffixed(s, &["m"]) && !s.contains('.') => Ok(json!(s)),
        _ => Err(format!(
            "{amount}: a CPU amount is a number of cores (0.25, 2) or of thousandths (250m)"
        )),
    }
}

fn memory(amount: &Value) -> Result<Value, String> {
    if let Some(bytes) = decimal(amount) {
        if bytes.fract() != 0.0 {
            return Err(format!("{amount}: memory is a whole number of bytes"));
        }
        return Ok(json!((bytes as u64).to_string()));
    }
    match amount.as_str() {
        Some(s) if s.ends_with('m') => Err(format!(
            "{s:?} would be thousandths of a byte; write {}Mi (mebibytes) or {}M (megabytes)",
            s.trim_end_matches('m'),
            s.trim_end_matches('m')
        )),
        Some(s) if suffixed(s, BINARY) || suffixed(s, DECIMAL) => Ok(json!(s)),
        _ => Err(format!(
            "{amount}: a memory amount is bytes (134217728) or a number with a unit (128Mi, 1Gi, 500M)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(value: Value) -> Result<Value, Vec<Problem>> {
        let mut problems = Vec::new();
        let out = resources(&value, "/containers/main/resources", &mut problems);
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    #[test]
    fn quantities_are_written_as_kubernetes_writes_them() {
        let out = one(json!({
            "limits": { "cpu": 0.25, "memory": "128Mi" },
            "requests": { "cpu": "1.0", "memory": 134217728 },
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({ "limits": { "cpu": "250m", "memory": "128Mi" },
                    "requests": { "cpu": "1", "memory": "134217728" } })
        );
        assert_eq!(
            one(json!({ "limits": { "cpu": "500m" } })).unwrap()["limits"]["cpu"],
            "500m"
        );
        assert_eq!(
            one(json!({ "limits": { "cpu": "1.5" } })).unwrap()["limits"]["cpu"],
            "1500m"
        );
    }

    #[test]
    fn amounts_kubernetes_would_refuse_or_misread_are_named_with_the_fix() {
        let problems = one(json!({
            "limits": { "cpu": "0.0001", "memory": "128m" },
            "requests": { "cpu": "two", "memory": "1.5" },
        }))
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/containers/main/resources/limits/cpu",
                "/containers/main/resources/limits/memory",
                "/containers/main/resources/requests/cpu",
                "/containers/main/resources/requests/memory",
            ]
        );
        assert!(problems[1].message.contains("write 128Mi"), "{problems:?}");
        assert!(problems[2].message.contains("250m"), "{problems:?}");
    }
}
