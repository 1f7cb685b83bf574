//! The resource graph of a deployment: one node per distinct resource of its workloads
//! (shared by type, class and `id`), edges from placeholders in resource params, a
//! provisioning order in dependency levels, and the definition each node matches.
//!
//! Identity follows Score's resource uid: `TYPE.CLASS#ID` for a shared resource,
//! `TYPE.CLASS#WORKLOAD.NAME` for a private one, with `default` for an absent class.

use crate::matching::{self, Candidate, Context, Criterion, MatchError};
use crate::score::{Workload, placeholder};
use serde::{Deserialize, Serialize};
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

/// A resource that an environment type provisions in each of its environments, whether
/// or not a workload declares it (a namespace, a shared DNS zone). A workload that
/// declares the same type, class and id shares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Implicit {
    /// Its type.
    #[serde(rename = "type")]
    pub res_type: String,
    /// Its class (`default` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Its id.
    pub id: String,
    /// Its params (literal: there is no workload to resolve placeholders against).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

impl Implicit {
    /// Its uid.
    pub fn uid(&self) -> String {
        uid(&self.res_type, self.class.as_deref(), &self.id)
    }
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
    build_with(workloads, &[])
}

/// Builds the graph of `workloads` in an environment whose type provisions `implicit`
/// resources too.
pub fn build_with(workloads: &[Workload], implicit: &[Implicit]) -> Result<Graph, GraphError> {
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
    for r in implicit {
        let uid = r.uid();
        metadata.insert(
            uid.clone(),
            (None, format!("environment type resource {uid}")),
        );
        nodes.insert(
            uid.clone(),
            Node {
                uid,
                res_type: r.res_type.clone(),
                class: r
                    .class
                    .clone()
                    .unwrap_or_else(|| matching::DEFAULT_CLASS.to_string()),
                id: r.id.clone(),
                params: r.params.clone(),
                source_workload: String::new(),
                declared_by: Vec::new(),
                depends_on: BTreeSet::new(),
            },
        );
    }
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
                    let known = &mut metadata.get_mut(&uid).expect("recorded with the node").0;
                    merge(node, known, w.name(), name, r, here)?;
                }
            }
        }
    }
    link(&mut nodes, &local)?;
    let levels = levels(&nodes)?;
    Ok(Graph { nodes, levels })
}

/// Adds the declaration `workload.name` (at `here`) of a resource that another declared
/// first: params and metadata must agree where both give them.
fn merge(
    node: &mut Node,
    known: &mut Option<Value>,
    workload: &str,
    name: &str,
    r: &crate::score::Resource,
    here: String,
) -> Result<(), GraphError> {
    let first = match node.declared_by.first() {
        Some((w, name)) => format!("{w}.{name}"),
        None => "the environment type".to_string(),
    };
    let conflict = |field| GraphError::Conflict {
        uid: node.uid.clone(),
        field,
        first: first.clone(),
        second: here.clone(),
    };
    match (&node.params, &r.params) {
        (Some(a), Some(b)) if a != b => return Err(conflict("params")),
        (None, Some(p)) => {
            node.params = Some(p.clone());
            node.source_workload = workload.to_string();
        }
        _ => {}
    }
    match (&*known, &r.metadata) {
        (Some(a), Some(b)) if a != b => return Err(conflict("metadata")),
        (None, Some(m)) => *known = Some(m.clone()),
        _ => {}
    }
    node.declared_by
        .push((workload.to_string(), name.to_string()));
    Ok(())
}

/// The edges: `${resources.NAME...}` in a node's params, NAME resolved in the workload
/// that gave the params (`local`: workload → resource name → uid).
fn link(
    nodes: &mut BTreeMap<String, Node>,
    local: &BTreeMap<&str, BTreeMap<&str, String>>,
) -> Result<(), GraphError> {
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
    Ok(())
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
    let dependencies: BTreeMap<String, BTreeSet<String>> = nodes
        .iter()
        .map(|(uid, n)| (uid.clone(), n.depends_on.clone()))
        .collect();
    levels_of(&dependencies)
}

/// Dependency levels of `dependencies` (each key's set names what it depends on; names
/// that are not keys are ignored): every key of a level depends only on keys of earlier
/// levels. Each level is sorted; a cycle is named.
pub fn levels_of(
    dependencies: &BTreeMap<String, BTreeSet<String>>,
) -> Result<Vec<Vec<String>>, GraphError> {
    for (uid, deps) in dependencies {
        if deps.contains(uid) {
            return Err(GraphError::Cycle(vec![uid.clone(), uid.clone()]));
        }
    }
    let mut remaining: BTreeMap<&str, BTreeSet<&str>> = dependencies
        .iter()
        .map(|(uid, deps)| {
            (
                uid.as_str(),
                deps.iter()
                    .map(String::as_str)
                    .filter(|d| dependencies.contains_key(*d))
                    .collect(),
            )
        })
        .collect();
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
    /// Its driver inputs (`{"values": {...}, "secrets": {...}}`), read for references to
    /// other resources' outputs.
    pub inputs: Value,
}

/// Why a node of the graph has no definition to provision it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    /// No single definition matches.
    #[error("{0}")]
    Match(MatchError),
    /// The chosen definition's inputs refer to other resources in a way that cannot work.
    #[error("resource {uid} (definition {definition}): {message}")]
    Reference {
        /// The resource.
        uid: String,
        /// Its definition.
        definition: String,
        /// What is wrong.
        message: String,
    },
    /// Definitions refer to each other's resources in a cycle.
    #[error("{0}")]
    Graph(GraphError),
}

impl Unresolved {
    /// The resource it concerns (the first of a cycle).
    pub fn object(&self) -> String {
        match self {
            Self::Match(MatchError::NoMatch { context, .. }) => {
                uid(&context.res_type, Some(&context.class), &context.res_id)
            }
            Self::Match(MatchError::Ambiguous {
                res_type, res_id, ..
            }) => format!("{res_type} {res_id}"),
            Self::Reference { uid, .. } => uid.clone(),
            Self::Graph(GraphError::Cycle(uids)) => uids.first().cloned().unwrap_or_default(),
            Self::Graph(e) => e.to_string(),
        }
    }
}

/// A definition's inputs with their references to other resources rewritten for
/// resolution, and the uids they use.
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionInputs {
    /// The inputs, each `${resources.SELECTOR.outputs.KEY}` turned into
    /// `${resources.UID.KEY}` (the uid's dots escaped), ready for a [`Scope`] whose
    /// resources are named by uid.
    ///
    /// [`Scope`]: crate::score::resolve::Scope
    pub rewritten: Value,
    /// The uids referred to.
    pub uses: BTreeSet<String>,
}

/// Reads the references of a definition's inputs, for the resource with id `res_id`.
///
/// A reference is `${resources.SELECTOR.outputs.KEY...}`, where SELECTOR is `TYPE`,
/// `TYPE.CLASS`, `TYPE#ID` or `TYPE.CLASS#ID`; the class defaults to `default` and the id
/// to the referring resource's own (Humanitec's convention: a `postgres` definition that
/// needs `${resources.postgres-instance.outputs.host}` gets an instance per database id,
/// or one shared instance when it names an id).
pub fn definition_inputs(inputs: &Value, res_id: &str) -> Result<DefinitionInputs, String> {
    let mut uses = BTreeSet::new();
    let rewritten = rewrite(inputs, res_id, &mut uses)?;
    Ok(DefinitionInputs { rewritten, uses })
}

fn rewrite(value: &Value, res_id: &str, uses: &mut BTreeSet<String>) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => {
            let pieces = placeholder::parse(text).map_err(|e| e.to_string())?;
            if !pieces
                .iter()
                .any(|p| matches!(p, placeholder::Piece::Ref(_)))
            {
                return Ok(value.clone());
            }
            let mut out = String::new();
            for piece in pieces {
                match piece {
                    placeholder::Piece::Text(t) => out.push_str(&t.replace('$', "$$")),
                    placeholder::Piece::Ref(body) => {
                        let (target, keys) = reference(body, res_id)?;
                        out.push_str("${resources.");
                        out.push_str(&target.replace('.', "\\."));
                        out.push('.');
                        out.push_str(keys);
                        out.push('}');
                        uses.insert(target);
                    }
                }
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| rewrite(v, res_id, uses))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), rewrite(v, res_id, uses)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The uid a reference body names, and the output keys after `.outputs.`.
fn reference<'b>(body: &'b str, res_id: &str) -> Result<(String, &'b str), String> {
    let shape = "write ${resources.TYPE.CLASS#ID.outputs.KEY} (class and id optional)";
    let selector = body
        .strip_prefix("resources.")
        .ok_or_else(|| format!("${{{body}}}: a definition can only refer to resources; {shape}"))?;
    let (selector, keys) = selector
        .split_once(".outputs.")
        .filter(|(s, k)| !s.is_empty() && !k.is_empty())
        .ok_or_else(|| format!("${{{body}}}: {shape}"))?;
    let (type_class, id) = match selector.split_once('#') {
        Some((tc, id)) => (tc, id),
        None => (selector, res_id),
    };
    let (res_type, class) = match type_class.split_once('.') {
        Some((t, c)) => (t, Some(c)),
        None => (type_class, None),
    };
    let label = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !label(res_type) || !class.is_none_or(label) || id.is_empty() || id.contains('#') {
        return Err(format!("${{{body}}}: {shape}"));
    }
    Ok((uid(res_type, class, id), keys))
}

/// Splits a uid into type, class and id.
fn parts(uid: &str) -> Option<(&str, &str, &str)> {
    let (type_class, id) = uid.split_once('#')?;
    let (res_type, class) = type_class.split_once('.')?;
    Some((res_type, class, id))
}

/// Chooses a definition for every node in the environment `(app, env, env_type)`, and
/// adds to the graph the resources that the chosen definitions' inputs refer to (each
/// matched in turn), with their edges; the levels are recomputed. On failure, every node
/// without exactly one definition is named, with the candidates.
pub fn match_definitions(
    graph: &mut Graph,
    definitions: &[DefinitionRef],
    app: &str,
    env: &str,
    env_type: &str,
) -> Result<BTreeMap<String, String>, Vec<Unresolved>> {
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
    let mut queue: Vec<String> = graph.nodes.keys().rev().cloned().collect();
    while let Some(at) = queue.pop() {
        let node = &graph.nodes[&at];
        let context = Context {
            res_type: node.res_type.clone(),
            class: node.class.clone(),
            res_id: node.id.clone(),
            app: app.to_string(),
            env: env.to_string(),
            env_type: env_type.to_string(),
        };
        let definition = match matching::best(&candidates, &context) {
            Ok(m) => m.definition,
            Err(e) => {
                errors.push(Unresolved::Match(e));
                continue;
            }
        };
        chosen.insert(at.clone(), definition.to_string());
        let inputs = &definitions
            .iter()
            .find(|d| d.id == definition)
            .expect("a candidate is a definition")
            .inputs;
        let uses = match definition_inputs(inputs, &node.id) {
            Ok(d) => d.uses,
            Err(message) => {
                errors.push(Unresolved::Reference {
                    uid: at.clone(),
                    definition: definition.to_string(),
                    message,
                });
                continue;
            }
        };
        for used in uses {
            if !graph.nodes.contains_key(&used) {
                let Some((res_type, class, id)) = parts(&used) else {
                    continue;
                };
                graph.nodes.insert(
                    used.clone(),
                    Node {
                        uid: used.clone(),
                        res_type: res_type.to_string(),
                        class: class.to_string(),
                        id: id.to_string(),
                        params: None,
                        source_workload: String::new(),
                        declared_by: Vec::new(),
                        depends_on: BTreeSet::new(),
                    },
                );
                queue.push(used.clone());
            }
            graph
                .nodes
                .get_mut(&at)
                .expect("a known uid")
                .depends_on
                .insert(used);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    graph.levels = levels(&graph.nodes).map_err(|e| vec![Unresolved::Graph(e)])?;
    Ok(chosen)
}
