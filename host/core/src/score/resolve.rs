//! Resolving placeholders against a workload's metadata and its resources' outputs.
//!
//! A resolved string keeps track of which of its parts came from secret outputs, so that
//! a renderer can put a variable with a secret in a Secret object and never in plain
//! configuration. Secrets are never turned into text by accident: [`Resolved::plain`]
//! refuses a string with a secret part; only [`Resolved::expose`] joins them.

use super::placeholder;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What a provisioned resource gives its workloads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    /// Its uid (what `${resources.NAME}` in a volume source resolves to).
    pub uid: String,
    /// Non-secret outputs.
    pub values: Map<String, Value>,
    /// Secret outputs.
    pub secrets: Map<String, Value>,
    /// Kubernetes objects its driver deploys with the workloads (an `HTTPRoute`).
    pub objects: Vec<Value>,
}

/// What placeholders of one workload resolve against.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    /// The workload's metadata.
    pub metadata: &'a Map<String, Value>,
    /// Its resources' outputs, by the workload's name for them.
    pub resources: BTreeMap<String, &'a Outputs>,
}

/// One part of a resolved string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Plain text.
    Text(String),
    /// Text that came from a secret output.
    Secret {
        /// The resource's uid.
        resource: String,
        /// The output's path (`password`, `admin.password`).
        key: String,
        /// The value.
        value: String,
    },
}

/// A resolved string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    /// Its parts, in order.
    pub parts: Vec<Part>,
}

impl Resolved {
    /// Whether any part is secret.
    pub fn is_secret(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Secret { .. }))
    }

    /// The text, when no part is secret.
    pub fn plain(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Secret { .. } => return None,
            }
        }
        Some(out)
    }

    /// The text with secrets in it: only for a destination that keeps secrets.
    pub fn expose(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::Secret { value, .. } => value.as_str(),
            })
            .collect()
    }

    /// The text with each secret replaced by `***`, for logs and status.
    pub fn redacted(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::Secret { .. } => "***",
            })
            .collect()
    }
}

/// Why a placeholder does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("${{{reference}}}: {reason}")]
pub struct ResolveError {
    /// The reference, as written.
    pub reference: String,
    /// Why.
    pub reason: String,
}

fn error(reference: &str, reason: impl Into<String>) -> ResolveError {
    ResolveError {
        reference: reference.to_string(),
        reason: reason.into(),
    }
}

fn walk<'v>(
    mut at: &'v Value,
    keys: &[String],
    what: &str,
    body: &str,
) -> Result<&'v Value, ResolveError> {
    for (i, key) in keys.iter().enumerate() {
        at = match at {
            Value::Object(map) => map.get(key).ok_or_else(|| {
                let known: Vec<&str> = map.keys().map(String::as_str).collect();
                error(
                    body,
                    format!(
                        "{what} has no key {key:?}{}",
                        if known.is_empty() {
                            String::new()
                        } else {
                            format!(" (it has: {})", known.join(", "))
                        }
                    ),
                )
            })?,
            _ => {
                return Err(error(
                    body,
                    format!(
                        "{} is not a map, so it has no key {key:?}",
                        [what.to_string()]
                            .into_iter()
                            .chain(keys[..i].iter().cloned())
                            .collect::<Vec<_>>()
                            .join(".")
                    ),
                ));
            }
        };
    }
    Ok(at)
}

impl Scope<'_> {
    fn lookup(&self, body: &str, segments: &[String]) -> Result<Part, ResolveError> {
        match segments[0].as_str() {
            "metadata" => {
                // The metadata map is walked where it is: a placeholder costs what its
                // path costs, not a copy of the whole metadata.
                let Some((first, rest)) = segments[1..].split_first() else {
                    return Ok(Part::Text(Value::Object(self.metadata.clone()).to_string()));
                };
                let value = self.metadata.get(first).ok_or_else(|| {
                    let known: Vec<&str> = self.metadata.keys().map(String::as_str).collect();
                    error(
                        body,
                        format!(
                            "metadata has no key {first:?}{}",
                            if known.is_empty() {
                                String::new()
                            } else {
                                format!(" (it has: {})", known.join(", "))
                            }
                        ),
                    )
                })?;
                let value = walk(value, rest, &format!("metadata.{first}"), body)?;
                Ok(Part::Text(placeholder::text_of(value)))
            }
            "resources" => {
                let name = segments
                    .get(1)
                    .ok_or_else(|| error(body, "name a resource, like ${resources.db.host}"))?;
                let outputs = self
                    .resources
                    .get(name)
                    .ok_or_else(|| error(body, format!("there is no resource {name:?}")))?;
                let keys = &segments[2..];
                let Some(first) = keys.first() else {
                    return Err(error(body, "name one of the resource's outputs"));
                };
                if let Some(value) = outputs.values.get(first) {
                    let value = walk(value, &keys[1..], &format!("output {first}"), body)?;
                    return Ok(Part::Text(placeholder::text_of(value)));
                }
                if let Some(value) = outputs.secrets.get(first) {
                    let value = walk(value, &keys[1..], &format!("secret output {first}"), body)?;
                    return Ok(Part::Secret {
                        resource: outputs.uid.clone(),
                        key: keys.join("."),
                        value: placeholder::text_of(value),
                    });
                }
                let mut known: Vec<&str> = outputs.values.keys().map(String::as_str).collect();
                known.extend(outputs.secrets.keys().map(String::as_str));
                known.sort_unstable();
                Err(error(
                    body,
                    format!(
                        "resource {name} ({}) has no output {first:?}; it has: {}",
                        outputs.uid,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ))
            }
            other => Err(error(
                body,
                format!("unknown root {other:?}; write $${{...}} for a literal ${{...}}"),
            )),
        }
    }

    /// Resolves every placeholder of `text`, keeping secret parts apart.
    pub fn resolve(&self, text: &str) -> Result<Resolved, ResolveError> {
        let mut parts: Vec<Part> = Vec::new();
        let pieces = placeholder::parse(text).map_err(|e| error("", e.to_string()))?;
        for piece in pieces {
            let part = match piece {
                placeholder::Piece::Text(t) => Part::Text(t.into_owned()),
                placeholder::Piece::Ref(body) => self.lookup(body, &placeholder::segments(body))?,
            };
            match (parts.last_mut(), part) {
                (Some(Part::Text(prev)), Part::Text(t)) => prev.push_str(&t),
                (_, part) => parts.push(part),
            }
        }
        Ok(Resolved { parts })
    }

    /// Resolves a volume's source: `${resources.NAME}` alone gives the resource's uid.
    pub fn volume_source(&self, text: &str) -> Result<Resolved, ResolveError> {
        if let Ok(refs) = placeholder::references(text)
            && let [body] = refs.as_slice()
            && text == format!("${{{body}}}")
        {
            let segments = placeholder::segments(body);
            if segments.len() == 2 && segments[0] == "resources" {
                let outputs = self.resources.get(&segments[1]).ok_or_else(|| {
                    error(body, format!("there is no resource {:?}", segments[1]))
                })?;
                return Ok(Resolved {
                    parts: vec![Part::Text(outputs.uid.clone())],
                });
            }
        }
        self.resolve(text)
    }

    /// Resolves every string inside `params` (keys are left alone; numbers and booleans
    /// keep their type). A string that is exactly one placeholder takes the output's own
    /// type. Secrets are included: params go to drivers, which keep them secret.
    pub fn params(&self, params: &Value) -> Result<Value, ResolveError> {
        Ok(match params {
            Value::String(text) => {
                let whole = placeholder::references(text)
                    .ok()
                    .filter(|r| r.len() == 1 && *text == format!("${{{}}}", r[0]));
                match whole {
                    Some(refs) => self.typed(refs[0])?,
                    None => Value::String(self.resolve(text)?.expose()),
                }
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.params(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.params(v)?)))
                    .collect::<Result<_, ResolveError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// The value of one reference with its JSON type.
    fn typed(&self, body: &str) -> Result<Value, ResolveError> {
        let segments = placeholder::segments(body);
        if segments[0] == "resources"
            && segments.len() > 2
            && let Some(outputs) = self.resources.get(&segments[1])
        {
            let first = &segments[2];
            let source = outputs
                .values
                .get(first)
                .or_else(|| outputs.secrets.get(first));
            if let Some(value) = source {
                return walk(value, &segments[3..], &format!("output {first}"), body).cloned();
            }
        }
        Ok(Value::String(
            self.resolve(&format!("${{{body}}}"))?.expose(),
        ))
    }
}
