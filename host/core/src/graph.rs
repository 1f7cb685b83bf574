//! The resource graph of a deployment: one node per distinct resource of its workloads
//! (shared by type, class and `id`), edges from placeholders in resource params, a
//! provisioning order in dependency levels, and the definition each node matches.
//!
//! Identity follows Score's resource uid: `TYPE.CLASS#ID` for a shared resource,
//! `TYPE.CLASS#WORKLOAD.NAME` for a private one, with `default` for an absent class.

use crate::matching::{self, Candidate, Context, Criterion, MatchError};
use crate::score::{Workload, placeholder};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One resource to provision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    /// Its uid.
    pub uid: String,
    /// Its type.
    pub res_type: String,
    /// Its class (`default` when the workloads name none).
    pub class: String,
    /// Its id: the shared `id`, or `WORKLOAD.NAME`.
    pub id: String,
    /// Its params, from the workload that gives them.
    pub params: Option<Value>,
    /// The workload whose context resolves its params (the first that declares it with
    /// params, else the first that declares it).
    pub source_workload: String,
    /// Every `(workload, name)` that declares it.
    pub declared_by: Vec<(String, String)>,
    /// The uids it depends on (through placeholders in its params).
    pub depends_on: BTreeSet<String>,
}

/// The graph: nodes by uid, and the order to provision them in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graph {
    /// Nodes by uid.
    pub nodes: BTreeMap<String, Node>,
    /// Dependency levels: every node of a level depends only on nodes of earlier levels,
    /// so a level's nodes can be provisioned in parallel. Each level is sorted by uid.
    pub levels: Vec<Vec<String>>,
}

impl Graph {
    /// Every uid in provisioning order (deprovision in reverse).
    pub fn order(&self) -> Vec<&str> {
        self.levels.iter().flatten().map(String::as_str).collect()
    }
}

/// Why a set of workloads has no graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// A shared resource is declared with different params (or metadata).
    #[error(
        "resource {uid}: declared by {first} and {second} with different {field}; a shared \
         resource has one definition (give one of them a different id, or the same {field})"
    )]
    Conflict {
        /// The resource.
        uid: String,
        /// `params` or `metadata`.
        field: &'static str,
        /// `workload.name` of the first declaration.
        first: String,
        /// `workload.name` of the other.
        second: String,
    },
    /// Two workloads have the same name.
    #[error("two workloads are named {0}; workload names are unique in an environment")]
    DuplicateWorkload(String),
    /// A param refers to a resource its workload does not declare.
    #[error(
        "resource {uid}: params refer to resource {name:?}, which workload {workload} does not declare"
    )]
    UnknownReference {
        /// The resource whose params refer.
        uid: String,
        /// The workload.
        workload: String,
        /// The name referred to.
        name: String,
    },
    /// Params refer in a cycle.
    #[error("resource params refer to each other in a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

/// The uid of a resource.
pub fn uid(res_type: &str, class: Option<&str>, id: &str) -> String {
    format!(
        "{res_type}.{}#{id}",
        class.unwrap_or(matching::DEFAULT_CLASS)
    )
}

/// Builds the graph of `workloads`.
pub fn build(workloads: &[Workload]) -> Result<Graph, GraphError> {
    let mut sorted: Vec<&Workload> = workloads.iter().collect();
    sorted.sort_by(|a, b| a.name().cmp(b.name()));
    for pair in sorted.windows(2) {
        if pair[0].name() == pair[1].name() {
            return Err(GraphError::DuplicateWorkload(pair[0].name().to_string()));
        }
    }
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut metadata: BTreeMap<String, (Option<Value>, String)> = BTreeMap::new();
    // Workload name → resource name → uid, to turn references into edges.
    let mut local: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::new();
    for w in &sorted {
        for (name, r) in &w.resources {
            let id =
                r.id.clone()
                    .unwrap_or_else(|| format!("{}.{name}", w.name()));
            let uid = uid(&r.res_type, r.class.as_deref(), &id);
            let here = format!("{}.{name}", w.name());
            local.entry(w.name()).or_default().insert(name, uid.clone());
            match nodes.get_mut(&uid) {
                None => {
                    metadata.insert(uid.clone(), (r.metadata.clone(), here.clone()));
                    nodes.insert(
                        uid.clone(),
                        Node {
                            uid,
                            res_type: r.res_type.clone(),
                            class: r
                                .class
                                .clone()
                                .unwrap_or_else(|| matching::DEFAULT_CLASS.to_string()),
                            id,
                            params: r.params.clone(),
                            source_workload: w.name().to_string(),
                            declared_by: vec![(w.name().to_string(), name.clone())],
                            depends_on: BTreeSet::new(),
                        },
                    );
                }
                Some(node) => {
                    let first = format!("{}.{}", node.declared_by[0].0, node.declared_by[0].1);
                    match (&node.params, &r.params) {
                        (Some(a), Some(b)) if a != b => {
                            return Err(GraphError::Conflict {
                                uid,
                                field: "params",
                                first,
                                second: here,
                            });
                        }
                        (None, Some(p)) => {
                            node.params = Some(p.clone());
                            node.source_workload = w.name().to_string();
                        }
                        _ => {}
                    }
                    let (known, _) = metadata.get_mut(&uid).expect("recorded with the node");
                    match (&*known, &r.metadata) {
                        (Some(a), Some(b)) if a != b => {
                            return Err(GraphError::Conflict {
                                uid,
                                field: "metadata",
                                first,
                                second: here,
                            });
                        }
                        (None, Some(m)) => *known = Some(m.clone()),
                        _ => {}
                    }
                    node.declared_by.push((w.name().to_string(), name.clone()));
                }
            }
        }
    }
    // Edges: `${resources.NAME...}` in params, NAME resolved in the source workload.
    let uids: Vec<String> = nodes.keys().cloned().collect();
    for uid in &uids {
        let node = &nodes[uid];
        let Some(params) = &node.params else { continue };
        let mut names = BTreeSet::new();
        collect_references(params, &mut names);
        let scope = local.get(node.source_workload.as_str());
        let mut depends = BTreeSet::new();
        for name in names {
            match scope.and_then(|s| s.get(name.as_str())) {
                Some(other) => {
                    depends.insert(other.clone());
                }
                None => {
                    return Err(GraphError::UnknownReference {
                        uid: uid.clone(),
                        workload: node.source_workload.clone(),
                        name,
                    });
                }
            }
        }
        nodes.get_mut(uid).expect("a known uid").depends_on = depends;
    }
    let levels = levels(&nodes)?;
    Ok(Graph { nodes, levels })
}

/// The resource names referred to by placeholders anywhere in `value`'s strings.
fn collect_references(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(text) => {
            for body in placeholder::references(text).unwrap_or_default() {
                let segments = placeholder::segments(body);
                if segments[0] == "resources"
                    && let Some(name) = segments.get(1)
                {
                    out.insert(name.clone());
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

/// Kahn's algorithm in levels, each sorted by uid; a cycle is named.
fn levels(nodes: &BTreeMap<String, Node>) -> Result<Vec<Vec<String>>, GraphError> {
    let mut remaining: BTreeMap<&str, BTreeSet<&str>> = nodes
        .iter()
        .map(|(uid, n)| {
            (
                uid.as_str(),
                n.depends_on
                    .iter()
                    .map(String::as_str)
                    .filter(|d| d != uid)
                    .collect(),
            )
        })
        .collect();
    for (uid, n) in nodes {
        if n.depends_on.contains(uid) {
            return Err(GraphError::Cycle(vec![uid.clone(), uid.clone()]));
        }
    }
    let mut levels = Vec::new();
    while !remaining.is_empty() {
        let ready: Vec<&str> = remaining
            .iter()
            .filter(|(_, deps)| deps.is_empty())
            .map(|(uid, _)| *uid)
            .collect();
        if ready.is_empty() {
            return Err(GraphError::Cycle(find_cycle(&remaining)));
        }
        for uid in &ready {
            remaining.remove(uid);
        }
        for deps in remaining.values_mut() {
            for uid in &ready {
                deps.remove(uid);
            }
        }
        levels.push(ready.into_iter().map(str::to_string).collect());
    }
    Ok(levels)
}

/// A cycle among nodes that all still wait on something.
fn find_cycle(remaining: &BTreeMap<&str, BTreeSet<&str>>) -> Vec<String> {
    let start = *remaining.keys().next().expect("not empty");
    let mut path = vec![start];
    let mut at = start;
    loop {
        let next = *remaining[at]
            .iter()
            .next()
            .expect("every waiting node waits on one");
        if let Some(i) = path.iter().position(|p| *p == next) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(next.to_string());
            return cycle;
        }
        path.push(next);
        at = next;
    }
}

/// A resource definition as matching needs it.
#[derive(Debug, Clone)]
pub struct DefinitionRef {
    /// Its id.
    pub id: String,
    /// The resource type it provisions.
    pub res_type: String,
    /// When it applies.
    pub criteria: Vec<Criterion>,
}

/// Chooses a definition for every node in the environment `(app, env, env_type)`. On
/// failure, every node without exactly one definition is named, with the candidates.
pub fn match_definitions(
    graph: &Graph,
    definitions: &[DefinitionRef],
    app: &str,
    env: &str,
    env_type: &str,
) -> Result<BTreeMap<String, String>, Vec<MatchError>> {
    let candidates: Vec<Candidate<'_>> = definitions
        .iter()
        .map(|d| Candidate {
            id: &d.id,
            res_type: &d.res_type,
            criteria: &d.criteria,
        })
        .collect();
    let mut chosen = BTreeMap::new();
    let mut errors = Vec::new();
    for node in graph.nodes.values() {
        let context = Context {
            res_type: node.res_type.clone(),
            class: node.class.clone(),
            res_id: node.id.clone(),
            app: app.to_string(),
            env: env.to_string(),
            env_type: env_type.to_string(),
        };
        match matching::best(&candidates, &context) {
            Ok(m) => {
                chosen.insert(node.uid.clone(), m.definition.to_string());
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(chosen)
    } else {
        Err(errors)
    }
}
