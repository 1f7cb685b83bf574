//! `wharf deploy`, `rollback`, `status`, `logs` and `deployments`: a developer's commands,
//! over the API like every client command. A deployment is followed through its
//! server-sent events and shown step by step.

use crate::client::{Client, Output, Refused, V1, json_arg, q, table};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// `wharf deploy`.
#[derive(Debug, Args)]
pub struct Deploy {
    /// The app.
    #[arg(long)]
    app: String,
    /// The environment.
    #[arg(long)]
    env: String,
    /// A Score file (YAML or JSON); repeat for several workloads.
    #[arg(short = 'f', long = "file", required_unless_present_any = ["set", "delta"])]
    files: Vec<PathBuf>,
    /// Deploy a stored set instead of files.
    #[arg(long, conflicts_with_all = ["files", "delta"])]
    set: Option<String>,
    /// Deploy the environment's current set changed by this JSON Patch (inline or @FILE).
    #[arg(long, conflicts_with = "files")]
    delta: Option<String>,
    /// The image of a container whose Score image is `.`: CONTAINER=REF (`*=REF` for all).
    #[arg(long = "image", value_name = "CONTAINER=REF")]
    images: Vec<String>,
    /// Why (kept with the deployment).
    #[arg(long, default_value = "")]
    comment: String,
    /// Show the deployment's progress until it is over; fail when it fails.
    #[arg(long)]
    follow: bool,
}

/// `wharf rollback`.
#[derive(Debug, Args)]
pub struct Rollback {
    /// The app.
    #[arg(long)]
    app: String,
    /// The environment.
    #[arg(long)]
    env: String,
    /// The deployment whose set (and images) to deploy again.
    #[arg(long = "to", value_name = "DEPLOYMENT")]
    to: i64,
    /// Why.
    #[arg(long, default_value = "")]
    comment: String,
    /// Show the deployment's progress until it is over; fail when it fails.
    #[arg(long)]
    follow: bool,
}

/// `wharf logs`.
#[derive(Debug, Args)]
pub struct Logs {
    app: String,
    env: String,
    /// Only this workload.
    workload: Option<String>,
    /// Keep printing lines as they are written.
    #[arg(long, short)]
    follow: bool,
    /// Lines to start with, per container.
    #[arg(long, default_value_t = 100)]
    tail: usize,
}

/// `wharf platform`.
#[derive(Debug, Subcommand)]
pub enum Platform {
    /// Create what a platform file describes and the server does not have yet: environment
    /// types, plugin installations, resource types and resource definitions (YAML or JSON,
    /// each entry the body the API takes). What exists is left as it is.
    Apply {
        /// The platform file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
}

/// The sections of a platform file, in the order they are created, with their endpoint.
const PLATFORM: &[(&str, &str)] = &[
    ("env_types", "env-types"),
    ("installations", "plugin-installations"),
    ("resource_types", "resource-types"),
    ("resource_definitions", "resource-definitions"),
];

/// Applies a platform file; returns how many objects were created.
pub fn apply_platform(c: &Client, file: &Path) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("failed to read {}", file.display()))?;
    let doc: Value = wharf_core::yaml::to_value(&text)
        .with_context(|| format!("{} is not valid YAML or JSON", file.display()))?;
    let Some(map) = doc.as_object() else {
        bail!("{}: expected a map of sections", file.display());
    };
    if let Some(unknown) = map.keys().find(|k| !PLATFORM.iter().any(|(s, _)| s == k)) {
        bail!(
            "{}: unknown section {unknown:?}; the sections are {}",
            file.display(),
            PLATFORM
                .iter()
                .map(|(s, _)| *s)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut created = 0;
    for (section, endpoint) in PLATFORM {
        for (i, entry) in map
            .get(*section)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let id = entry["id"].as_str().unwrap_or("?");
            match c.json("POST", &format!("{V1}/{endpoint}"), Some(entry.clone())) {
                Ok(_) => {
                    created += 1;
                    if c.output() == Output::Table {
                        println!("created {section} {id}");
                    }
                }
                Err(e) if e.downcast_ref::<Refused>().is_some_and(|r| r.status == 409) => {
                    if c.output() == Output::Table {
                        println!("kept {section} {id} (it exists)");
                    }
                }
                Err(e) => {
                    return Err(e.context(format!("{}: {section}[{i}] ({id})", file.display())));
                }
            }
        }
    }
    Ok(created)
}

/// `wharf deployments`.
#[derive(Debug, Subcommand)]
pub enum Deployments {
    /// List an environment's deployments, newest first.
    List { app: String, env: String },
    /// Show one with its steps.
    Get { app: String, env: String, id: i64 },
    /// Follow one until it is over.
    Follow { app: String, env: String, id: i64 },
}

/// The Score files as the API takes them: YAML text as it is, unless a file names other
/// files (`files.*.source`, relative to the Score file), which are read and inlined.
pub fn score_files(files: &[PathBuf]) -> anyhow::Result<Vec<Value>> {
    files.iter().map(|f| score_file(f)).collect()
}

fn score_file(file: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("failed to read {}", file.display()))?;
    // A file that does not parse goes as it is: the server says what is wrong, with the
    // place, like for any other problem.
    let Ok(mut doc) = wharf_core::yaml::to_value(&text) else {
        return Ok(Value::String(text));
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut inlined = false;
    if let Some(containers) = doc.get_mut("containers").and_then(Value::as_object_mut) {
        for (cname, container) in containers {
            let entries: Vec<&mut Value> = match container.get_mut("files") {
                Some(Value::Object(map)) => map.values_mut().collect(),
                Some(Value::Array(list)) => list.iter_mut().collect(),
                _ => continue,
            };
            for entry in entries {
                let Some(source) = entry.get("source").and_then(Value::as_str) else {
                    continue;
                };
                let path = dir.join(source);
                let bytes = std::fs::read(&path).with_context(|| {
                    format!(
                        "{}: containers.{cname}.files: failed to read {}",
                        file.display(),
                        path.display()
                    )
                })?;
                let object = entry
                    .as_object_mut()
                    .expect("an entry with a source is a map");
                object.remove("source");
                match String::from_utf8(bytes) {
                    Ok(text) => {
                        object.insert("content".into(), json!(text));
                    }
                    Err(e) if object.get("noExpand") == Some(&json!(true)) => {
                        use base64::Engine as _;
                        object.insert(
                            "binaryContent".into(),
                            json!(base64::engine::general_purpose::STANDARD.encode(e.into_bytes())),
                        );
                    }
                    Err(_) => bail!(
                        "{}: containers.{cname}.files: {} is not UTF-8 text; set noExpand: true \
                         (it is then sent as binaryContent)",
                        file.display(),
                        path.display()
                    ),
                }
                inlined = true;
            }
        }
    }
    Ok(if inlined { doc } else { Value::String(text) })
}

fn images(given: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    given
        .iter()
        .map(|i| match i.split_once('=') {
            Some((c, r)) if !c.is_empty() && !r.is_empty() => Ok((c.to_string(), r.to_string())),
            _ => bail!("--image {i:?}: write CONTAINER=REF, like --image web=ghcr.io/acme/web:1.2"),
        })
        .collect()
}

fn deployments_path(app: &str, env: &str) -> String {
    format!("{V1}/apps/{}/envs/{}/deployments", q(app), q(env))
}

pub fn deploy(c: &Client, args: Deploy) -> anyhow::Result<()> {
    let mut body = json!({ "images": images(&args.images)?, "comment": args.comment });
    if let Some(set) = &args.set {
        body["set"] = json!(set);
    } else if let Some(delta) = &args.delta {
        body["delta"] = json_arg(delta).context("--delta")?;
    } else {
        body["workloads"] = Value::Array(score_files(&args.files)?);
    }
    queued(c, &args.app, &args.env, body, args.follow)
}

pub fn rollback(c: &Client, args: Rollback) -> anyhow::Result<()> {
    let body = json!({ "rollback_to": args.to, "comment": args.comment });
    queued(c, &args.app, &args.env, body, args.follow)
}

fn queued(c: &Client, app: &str, env: &str, body: Value, follow_it: bool) -> anyhow::Result<()> {
    let d = c.json("POST", &deployments_path(app, env), Some(body))?;
    let n = d["id"]
        .as_i64()
        .context("the server's answer has no deployment id")?;
    if follow_it {
        return follow(c, app, env, n);
    }
    match c.output() {
        Output::Table => println!(
            "Deployment {n} of {app}/{env} is {} (set {}). Follow it with \
             `wharf deployments follow {app} {env} {n}`.",
            d["status"].as_str().unwrap_or("queued"),
            short(d["set"].as_str().unwrap_or_default()),
        ),
        _ => c.print(&d, &[])?,
    }
    Ok(())
}

fn short(set: &str) -> &str {
    &set[..set.len().min(12)]
}

/// Follows deployment `n` to its end, showing each step; an error when it fails.
pub fn follow(c: &Client, app: &str, env: &str, n: i64) -> anyhow::Result<()> {
    let path = format!("{}/{n}/events", deployments_path(app, env));
    let reader = c.stream(&path)?;
    let mut view = Progress::new(c.output() == Output::Table);
    let mut event = String::new();
    let mut data = String::new();
    // A deployment already over when the stream starts: its resources follow the
    // snapshot, then the stream ends.
    let mut over = None;
    for line in reader.lines() {
        let line = line.context("the event stream broke off")?;
        if let Some(e) = line.strip_prefix("event:") {
            event = e.trim().to_string();
        } else if let Some(d) = line.strip_prefix("data:") {
            data.push_str(d.trim_start());
        } else if line.is_empty() && !data.is_empty() {
            let value: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            data.clear();
            match view.event(&event, &value) {
                Some(end) if event == "deployment" => over = Some(end),
                Some(end) => return finish(c, app, env, n, end, view),
                None => {}
            }
        }
    }
    if let Some(end) = over {
        return finish(c, app, env, n, end, view);
    }
    // The stream ended without a final status (a deletion's rows are gone with the
    // environment): ask for the deployment itself.
    let d = c.json("GET", &format!("{}/{n}", deployments_path(app, env)), None);
    match d {
        Ok(d) if d["status"] == "succeeded" || d["status"] == "failed" => {
            let end = End {
                ok: d["status"] == "succeeded",
                error: d["error"].clone(),
            };
            finish(c, app, env, n, end, view)
        }
        Ok(_) => bail!("the event stream ended before deployment {n} did"),
        Err(_) if view.kind == "delete" => finish(
            c,
            app,
            env,
            n,
            End {
                ok: true,
                error: Value::Null,
            },
            view,
        ),
        Err(e) => Err(e),
    }
}

struct End {
    ok: bool,
    error: Value,
}

fn finish(
    c: &Client,
    app: &str,
    env: &str,
    n: i64,
    end: End,
    view: Progress,
) -> anyhow::Result<()> {
    if c.output() != Output::Table {
        let d = c
            .json("GET", &format!("{}/{n}", deployments_path(app, env)), None)
            .unwrap_or_else(
                |_| json!({ "id": n, "status": if end.ok { "succeeded" } else { "failed" } }),
            );
        c.print(&d, &[])?;
    }
    if end.ok {
        if c.output() == Output::Table {
            let took = view
                .started
                .map(|s| format!(" in {:.1}s", s.elapsed().as_secs_f64()))
                .unwrap_or_default();
            if view.kind == "delete" {
                println!("Environment {app}/{env} is deleted{took}.");
            } else {
                for (name, endpoints) in &view.endpoints {
                    println!("{name} answers at {}", endpoints.join(", "));
                }
                println!("Deployment {n} of {app}/{env} succeeded{took}.");
            }
        }
        return Ok(());
    }
    let e = &end.error;
    bail!(
        "deployment {n} of {app}/{env} failed at {}: {}",
        e["step"].as_str().unwrap_or("?"),
        e["message"]
            .as_str()
            .unwrap_or("see `wharf deployments get`"),
    )
}

/// What the progress view has shown.
struct Progress {
    show: bool,
    kind: String,
    shown: BTreeMap<usize, String>,
    endpoints: Vec<(String, Vec<String>)>,
    started: Option<std::time::Instant>,
}

impl Progress {
    fn new(show: bool) -> Self {
        Self {
            show,
            kind: "deploy".into(),
            shown: BTreeMap::new(),
            endpoints: Vec::new(),
            started: None,
        }
    }

    fn step(
        &mut self,
        position: usize,
        name: &str,
        status: &str,
        duration: Option<i64>,
        detail: &Value,
        error: &Value,
    ) {
        if !["done", "failed", "skipped"].contains(&status)
            || self.shown.get(&position).is_some_and(|s| s == status)
        {
            return;
        }
        self.shown.insert(position, status.to_string());
        if name == "verify" && status == "done" {
            for w in detail["workloads"].as_array().into_iter().flatten() {
                let endpoints: Vec<String> = w["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.as_str().map(str::to_string))
                    .collect();
                if !endpoints.is_empty() {
                    self.endpoints.push((
                        w["name"].as_str().unwrap_or_default().to_string(),
                        endpoints,
                    ));
                }
            }
        }
        if !self.show {
            return;
        }
        let took = duration.map(|d| format!("{d} ms")).unwrap_or_default();
        let note = match (status, name) {
            ("failed", _) => format!(
                "{} {}: {}",
                error["scope"].as_str().unwrap_or_default(),
                error["object"].as_str().unwrap_or_default(),
                error["message"].as_str().unwrap_or_default()
            ),
            (_, "resolve") => match detail["resources"].as_object() {
                Some(r) => format!("{} resource(s)", r.len()),
                None => String::new(),
            },
            (_, "render") | (_, "transform") => detail["objects"]
                .as_u64()
                .map(|n| format!("{n} object(s)"))
                .unwrap_or_default(),
            (_, "apply") => detail["location"].as_str().unwrap_or_default().to_string(),
            (_, "prune") => {
                let uids = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|u| u.as_str().map(str::to_string))
                        .collect()
                };
                let gone = uids(&detail["deprovisioned"]);
                if gone.is_empty() {
                    "nothing unused".to_string()
                } else {
                    format!(
                        "deprovisioned what the set no longer uses: {}",
                        gone.join(", ")
                    )
                }
            }
            _ => String::new(),
        };
        println!("  {name:<12}{status:<9}{took:>9}  {note}");
        if name == "prune" {
            for (uid, why) in detail["failed"].as_object().into_iter().flatten() {
                let why = why.as_str().unwrap_or_default();
                println!("{:34}{uid} stays: {why}", "");
            }
        }
    }

    /// Shows one event; the end when it is the last.
    fn event(&mut self, event: &str, v: &Value) -> Option<End> {
        self.started.get_or_insert_with(std::time::Instant::now);
        match event {
            "deployment" => {
                self.kind = v["kind"].as_str().unwrap_or("deploy").to_string();
                if self.shown.is_empty() && self.show {
                    let what = if self.kind == "delete" {
                        "deletion".to_string()
                    } else {
                        format!("set {}", short(v["set"].as_str().unwrap_or_default()))
                    };
                    println!(
                        "Deployment {} of {}/{} ({what}): {}",
                        v["id"],
                        v["app"].as_str().unwrap_or_default(),
                        v["env"].as_str().unwrap_or_default(),
                        v["status"].as_str().unwrap_or_default()
                    );
                }
                for (i, s) in v["steps"].as_array().into_iter().flatten().enumerate() {
                    self.step(
                        i,
                        s["name"].as_str().unwrap_or_default(),
                        s["status"].as_str().unwrap_or_default(),
                        s["duration_ms"].as_i64(),
                        &s["detail"],
                        &s["error"],
                    );
                }
                match v["status"].as_str() {
                    Some("succeeded") => Some(End {
                        ok: true,
                        error: Value::Null,
                    }),
                    Some("failed") => Some(End {
                        ok: false,
                        error: v["error"].clone(),
                    }),
                    _ => None,
                }
            }
            "step" => {
                self.step(
                    v["position"].as_u64().unwrap_or_default() as usize,
                    v["name"].as_str().unwrap_or_default(),
                    v["status"].as_str().unwrap_or_default(),
                    v["duration_ms"].as_i64(),
                    &v["detail"],
                    &v["error"],
                );
                None
            }
            "resource" => {
                if self.show {
                    let message = v["message"].as_str().unwrap_or_default();
                    let message = if message.is_empty() {
                        String::new()
                    } else {
                        format!(": {message}")
                    };
                    println!(
                        "    {} {}{message}",
                        v["uid"].as_str().unwrap_or_default(),
                        v["status"].as_str().unwrap_or_default()
                    );
                }
                None
            }
            "status" => match v["status"].as_str() {
                Some("succeeded") => Some(End {
                    ok: true,
                    error: Value::Null,
                }),
                Some("failed") => Some(End {
                    ok: false,
                    error: v["error"].clone(),
                }),
                _ => None,
            },
            _ => None,
        }
    }
}

pub fn status(c: &Client, app: &str, env: &str) -> anyhow::Result<()> {
    let s = c.json(
        "GET",
        &format!("{V1}/apps/{}/envs/{}/status", q(app), q(env)),
        None,
    )?;
    if c.output() != Output::Table {
        return c.print(&s, &[]);
    }
    let latest = &s["latest"];
    let deployment = if latest.is_null() {
        "never deployed".to_string()
    } else {
        format!(
            "deployment {} {}{}",
            latest["id"],
            latest["status"].as_str().unwrap_or_default(),
            latest["error"]["message"]
                .as_str()
                .map(|m| format!(
                    " at {}: {m}",
                    latest["error"]["step"].as_str().unwrap_or("?")
                ))
                .unwrap_or_default()
        )
    };
    println!(
        "{app}/{env} ({}, {} target): {deployment}{}",
        s["env_type"].as_str().unwrap_or_default(),
        s["target"].as_str().unwrap_or_default(),
        if s["deleting"] == true {
            " (being deleted)"
        } else {
            ""
        }
    );
    if let Some(current) = s["current"].as_i64() {
        println!(
            "running deployment {current}, set {}",
            short(s["set"].as_str().unwrap_or_default())
        );
    }
    let workloads: Vec<Value> = s["workloads"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            json!({
                "workload": w["name"],
                "state": w["state"],
                "ready": if w["ready"] == true { "yes" } else { "no" },
                "endpoints": w["endpoints"],
                "reason": w["reason"],
            })
        })
        .collect();
    println!();
    print!(
        "{}",
        table(
            &Value::Array(workloads),
            &["workload", "state", "ready", "endpoints", "reason"]
        )
    );
    let resources: Vec<Value> = s["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            json!({
                "resource": r["uid"],
                "status": r["status"],
                "definition": r["definition"],
                "driver": r["driver"],
                "outputs": outputs_line(r),
                "message": r["message"],
            })
        })
        .collect();
    println!();
    print!(
        "{}",
        table(
            &Value::Array(resources),
            &[
                "resource",
                "status",
                "definition",
                "driver",
                "outputs",
                "message"
            ]
        )
    );
    Ok(())
}

/// A resource's outputs on one line: `key=value` for each value, `key=(secret)` for each
/// secret, whose value is never shown.
fn outputs_line(resource: &Value) -> String {
    let mut parts: Vec<String> = resource["outputs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    parts.extend(
        resource["secret_outputs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|k| format!("{k}=(secret)")),
    );
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(" ")
    }
}

pub fn logs(c: &Client, args: Logs) -> anyhow::Result<()> {
    let mut path = format!(
        "{V1}/apps/{}/envs/{}/logs?tail={}&follow={}",
        q(&args.app),
        q(&args.env),
        args.tail,
        args.follow
    );
    if let Some(w) = &args.workload {
        path.push_str(&format!("&workload={}", q(w)));
    }
    let reader = c.stream(&path)?;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for line in reader.lines() {
        let line = line.context("the log stream broke off")?;
        if writeln!(out, "{line}").is_err() {
            break;
        }
        let _ = out.flush();
    }
    Ok(())
}

pub fn deployments(c: &Client, cmd: Deployments) -> anyhow::Result<()> {
    match cmd {
        Deployments::List { app, env } => c.print(
            &c.all(&deployments_path(&app, &env))?,
            &["id", "kind", "status", "set", "created_by", "comment"],
        ),
        Deployments::Get { app, env, id } => {
            let d = c.json(
                "GET",
                &format!("{}/{id}", deployments_path(&app, &env)),
                None,
            )?;
            if c.output() != Output::Table {
                return c.print(&d, &[]);
            }
            let mut head = d.clone();
            if let Some(o) = head.as_object_mut() {
                o.remove("steps");
            }
            c.print(&head, &[])?;
            let steps: Vec<Value> = d["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    json!({
                        "step": s["name"],
                        "status": s["status"],
                        "ms": s["duration_ms"],
                        "error": s["error"]["message"],
                    })
                })
                .collect();
            println!();
            print!(
                "{}",
                table(&Value::Array(steps), &["step", "status", "ms", "error"])
            );
            Ok(())
        }
        Deployments::Follow { app, env, id } => follow(c, &app, &env, id),
    }
}
