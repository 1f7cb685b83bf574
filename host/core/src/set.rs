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
    pub fn apply(&self, delta: &json_patch::Patch) -> Result<Self, Vec<Problem>> {
        let mut doc = self.to_json();
        json_patch::patch(&mut doc, delta).map_err(|e| {
            vec![Problem {
                path: e.path.to_string(),
                message: format!("operation {} of the delta failed: {}", e.operation, e.kind),
            }]
        })?;
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
