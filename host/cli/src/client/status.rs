//! `wharf status`: how an environment is doing, each workload and resource, and why it
//! is not ready.

use super::follow::short;
use super::output::{Output, table};
use super::transport::{Client, V1, q};
use serde_json::{Value, json};

pub(crate) fn run(c: &Client, app: &str, env: &str) -> anyhow::Result<()> {
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
