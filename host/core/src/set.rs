//! Deployment sets: the workloads of an environment, immutable and content-addressed.
//!
//! A set's id is the sha256 of its canonical JSON (object keys sorted at every level), so
//! the same workloads always give the same id whatever the key order of their files.
//! A delta is a JSON Patch (RFC 6902) applied to a set's JSON; the result is validated
//! like any Score file before it becomes a set.

use crate::score::{self, Problem, Workload, pointer_segment};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The most operations a delta may have.
pub const MAX_DELTA_OPERATIONS: usize = 1000;

/// The largest a set may become through a delta, in bytes of JSON: room for hundreds of
/// workloads.
pub const MAX_SET_BYTES: usize = 4 << 20;

/// The length of `value` as compact JSON, without writing it anywhere.
fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).expect("a JSON value serializes");
    count.0
}

/// The workloads of one deployment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Set {
    /// Workloads by name.
    pub workloads: BTreeMap<String, Workload>,
}

impl Set {
    /// A set of `workloads`; names must be distinct.
    pub fn new(workloads: Vec<Workload>) -> Result<Self, Vec<Problem>> {
        let mut set = Self::default();
        let mut problems = Vec::new();
        for (i, w) in workloads.into_iter().enumerate() {
            match set.workloads.entry(w.name().to_string()) {
                std::collections::btree_map::Entry::Occupied(taken) => problems.push(Problem {
                    path: format!("/workloads/{i}/metadata/name"),
                    message: format!("a workload named {:?} is already in the set", taken.key()),
                }),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(w);
                }
            }
        }
        if problems.is_empty() {
            Ok(set)
        } else {
            Err(problems)
        }
    }

    /// The set as canonical JSON: `{"workloads": {NAME: WORKLOAD}}`, keys sorted.
    pub fn to_json(&self) -> Value {
        let workloads: Map<String, Value> = self
            .workloads
            .iter()
            .map(|(name, w)| {
                (
                    name.clone(),
                    serde_json::to_value(w).expect("a workload serializes"),
                )
            })
            .collect();
        canonical(json!({ "workloads": workloads }))
    }

    /// The content address: sha256 of the canonical JSON text, hex.
    pub fn id(&self) -> String {
        hex::encode(Sha256::digest(self.to_json().to_string().as_bytes()))
    }

    /// A set as the store keeps it, which was validated when it was made: read without
    /// validating again (a deployment reads its set once per run, and validating ten
    /// workloads costs more than deploying them).
    pub fn from_stored(value: Value) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Stored {
            workloads: BTreeMap<String, Workload>,
        }
        let stored: Stored = serde_json::from_value(value).map_err(|e| e.to_string())?;
        Ok(Self {
            workloads: stored.workloads,
        })
    }

    /// Reads a set back from its JSON (validating every workload).
    pub fn from_json(value: Value) -> Result<Self, Vec<Problem>> {
        let Some(workloads) = value.get("workloads").and_then(Value::as_object) else {
            return Err(vec![Problem {
                path: "/workloads".into(),
                message: "a set is {\"workloads\": {NAME: WORKLOAD}}".into(),
            }]);
        };
        let mut set = Self::default();
        let mut problems = Vec::new();
        for (name, doc) in workloads {
            let base = format!("/workloads/{}", pointer_segment(name));
            match score::from_value(doc.clone()) {
                Ok((w, _)) if w.name() == name => {
                    set.workloads.insert(name.clone(), w);
                }
                Ok((w, _)) => problems.push(Problem {
                    path: format!("{base}/metadata/name"),
                    message: format!(
                        "the workload is named {:?} but filed as {name:?}; they must agree",
                        w.name()
                    ),
                }),
                Err(found) => problems.extend(found.into_iter().map(|p| Problem {
                    path: format!("{base}{}", p.path),
                    message: p.message,
                })),
            }
        }
        if problems.is_empty() {
            Ok(set)
        } else {
            Err(problems)
        }
    }

    /// Applies a delta (a JSON Patch on [`Set::to_json`]) and validates the result.
    ///
    /// The cost is bounded: at most [`MAX_DELTA_OPERATIONS`] operations, and what they add
    /// (the values of `add` and `replace`, what `copy` duplicates) may not take the set
    /// past [`MAX_SET_BYTES`]. Without this, a `copy` of a path into itself, repeated,
    /// would double the set with each operation. Removals do not refund: a delta that
    /// copies and removes in turn still pays for every copy.
    pub fn apply(&self, delta: &json_patch::Patch) -> Result<Self, Vec<Problem>> {
        use json_patch::PatchOperation as Op;
        if delta.0.len() > MAX_DELTA_OPERATIONS {
            return Err(vec![Problem {
                path: String::new(),
                message: format!(
                    "the delta has {} operations; at most {MAX_DELTA_OPERATIONS} are applied",
                    delta.0.len()
                ),
            }]);
        }
        let mut doc = self.to_json();
        let mut size = json_size(&doc);
        for (i, op) in delta.0.iter().enumerate() {
            size += match op {
                Op::Add(a) => json_size(&a.value),
                Op::Replace(r) => json_size(&r.value),
                Op::Copy(c) => doc.pointer(c.from.as_str()).map_or(0, json_size),
                Op::Remove(_) | Op::Move(_) | Op::Test(_) => 0,
            };
            if size > MAX_SET_BYTES {
                return Err(vec![Problem {
                    path: op.path().to_string(),
                    message: format!(
                        "operation {i} of the delta would make the set larger than {} MiB",
                        MAX_SET_BYTES >> 20
                    ),
                }]);
            }
            json_patch::patch(&mut doc, std::slice::from_ref(op)).map_err(|e| {
                vec![Problem {
                    path: e.path.to_string(),
                    message: format!("operation {i} of the delta failed: {}", e.kind),
                }]
            })?;
        }
        Self::from_json(doc)
    }

    /// The delta that turns this set into `other`.
    pub fn diff(&self, other: &Self) -> json_patch::Patch {
        json_patch::diff(&self.to_json(), &other.to_json())
    }
}

/// `value` with the keys of every object sorted.
pub fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}
