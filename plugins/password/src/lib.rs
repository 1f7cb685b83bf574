//! The `password` resource driver: generates a random secret once and keeps it.
//!
//! Params: `length` (8 to 1024, default 32) and `alphabet` (`alphanumeric`, the default,
//! `hex`, `printable` for printable ASCII without space, or any string of at least 2
//! distinct characters). The secret is drawn from `wasi:random` without modulo bias and
//! returned as the secret output `password`; it is also the driver's state, so that
//! re-provisioning with the state returns the same secret (the host stores driver state
//! encrypted, like secrets). Without state, or when the length or alphabet changed, a new
//! secret is generated. It must stay free of network I/O.

use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step};
use wharf_sdk::{PluginError, PluginInfo, Value, json};

/// The password driver.
pub struct Password;

const ALPHANUMERIC: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &str = "0123456789abcdef";

/// The characters a password is drawn from, and its length, from the params.
fn spec(params: &Value) -> Result<(Vec<char>, usize), PluginError> {
    let length = match &params["length"] {
        Value::Null => 32,
        v => v
            .as_u64()
            .filter(|n| (8..=1024).contains(n))
            .ok_or_else(|| {
                PluginError::invalid_input("params.length must be an integer from 8 to 1024")
            })? as usize,
    };
    let alphabet: Vec<char> = match params["alphabet"].as_str() {
        None | Some("alphanumeric") => ALPHANUMERIC.chars().collect(),
        Some("hex") => HEX.chars().collect(),
        Some("printable") => ('!'..='~').collect(),
        Some(custom) => {
            let mut chars: Vec<char> = custom.chars().collect();
            chars.sort_unstable();
            chars.dedup();
            chars
        }
    };
    if alphabet.len() < 2 || alphabet.len() > 256 {
        return Err(PluginError::invalid_input(
            "params.alphabet must have from 2 to 256 distinct characters",
        ));
    }
    Ok((alphabet, length))
}

/// Draws `length` characters uniformly from `alphabet` (rejection sampling: bytes at or
/// above the largest multiple of the alphabet's size are drawn again).
fn generate(alphabet: &[char], length: usize) -> Result<String, PluginError> {
    let n = alphabet.len();
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(length);
    let mut buf = [0u8; 64];
    while out.chars().count() < length {
        getrandom::fill(&mut buf)
            .map_err(|e| PluginError::other(format!("no randomness available: {e}")))?;
        for &b in &buf {
            if (b as usize) < limit && out.chars().count() < length {
                out.push(alphabet[b as usize % n]);
            }
        }
    }
    Ok(out)
}

impl Driver for Password {
    fn describe() -> Description {
        Description {
            info: PluginInfo::new(
                "password",
                env!("CARGO_PKG_VERSION"),
                "Generates a random secret once and keeps it",
            ),
            resource_types: vec![ResourceType {
                name: "password".into(),
                params_schema: json!({
                    "type": "object",
                    "properties": {
                        "length": { "type": "integer", "minimum": 8, "maximum": 1024 },
                        "alphabet": { "type": "string" }
                    }
                }),
                outputs_schema: json!({
                    "type": "object",
                    "properties": {
                        "secrets": { "type": "object", "properties": { "password": { "type": "string" } } }
                    }
                }),
            }],
        }
    }

    fn provision(request: Request) -> Result<Step, PluginError> {
        let (alphabet, length) = spec(&request.params)?;
        let kept = request
            .state
            .as_ref()
            .and_then(|s| s["password"].as_str())
            .filter(|p| p.chars().count() == length && p.chars().all(|c| alphabet.contains(&c)));
        let password = match kept {
            Some(p) => p.to_string(),
            None => generate(&alphabet, length)?,
        };
        Ok(Step::Done(
            Outputs::values(json!({ "length": length }))
                .with_secrets(json!({ "password": password }))
                .with_state(json!({ "password": password })),
        ))
    }

    fn deprovision(_request: Request) -> Result<Step, PluginError> {
        Ok(Step::Done(Outputs::default()))
    }
}

wharf_sdk::export_driver!(Password);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked() {
        assert_eq!(spec(&json!({})).unwrap().1, 32);
        assert!(spec(&json!({ "length": 4 })).is_err());
        assert!(spec(&json!({ "alphabet": "aaaa" })).is_err());
        assert_eq!(spec(&json!({ "alphabet": "hex" })).unwrap().0.len(), 16);
    }

    #[test]
    fn generated_passwords_use_only_the_alphabet() {
        let alphabet: Vec<char> = "xyz".chars().collect();
        let p = generate(&alphabet, 200).unwrap();
        assert_eq!(p.chars().count(), 200);
        assert!(p.chars().all(|c| "xyz".contains(c)));
        assert_ne!(generate(&alphabet, 200).unwrap(), p);
    }
}
