//! Following a deployment through its server-sent events, shown step by step: what
//! `wharf deploy --follow`, `wharf deployments follow`, a clone and a deletion print.

use super::output::Output;
use super::transport::{Client, V1, q};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::BufRead;

/// Where an environment's deployments are.
pub(crate) fn deployments_path(app: &str, env: &str) -> String {
    format!("{V1}/apps/{}/envs/{}/deployments", q(app), q(env))
}

/// A set's id, shortened for people.
pub(crate) fn short(set: &str) -> &str {
    &set[..set.len().min(12)]
}

/// Follows deployment `n` to its end, showing each step; an error when it fails.
pub(crate) fn follow(c: &Client, app: &str, env: &str, n: i64) -> anyhow::Result<()> {
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

/// How a deployment ended: its error when it failed.
struct End {
    ok: bool,
    error: Value,
}

/// Shows the end: the deployment itself in JSON or YAML; for a person, where each workload
/// answers and how long it took. An error when the deployment failed.
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
            (_, "apply") => {
                let mut line = detail["location"].as_str().unwrap_or_default().to_string();
                let ignored: Vec<&str> = detail["ignored"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if !ignored.is_empty() {
                    line.push_str(&format!(
                        "; the {} target does not deploy {}",
                        detail["target"].as_str().unwrap_or_default(),
                        ignored.join(", ")
                    ));
                }
                line
            }
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
