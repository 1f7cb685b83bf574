//! How the client prints what the server answers: as JSON, as YAML, or for a person
//! (aligned columns for a list, `key: value` lines for one object). Knows nothing of the
//! server: it formats values it is given.

use clap::ValueEnum;
use serde_json::{Value, json};

/// How to print what the server answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Columns for lists, `key: value` lines for one object.
    #[default]
    Table,
    /// JSON, as the API sends it.
    Json,
    /// YAML.
    Yaml,
}

impl Output {
    /// Prints `value`; as a table, a list shows `columns`.
    pub(crate) fn print(self, value: &Value, columns: &[&str]) -> anyhow::Result<()> {
        match self {
            Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
            Output::Yaml => print!("{}", wharf_core::yaml::to_string(value)),
            Output::Table => print!("{}", table(value, columns)),
        }
        Ok(())
    }

    /// Says that a command which returns nothing to show is done.
    pub(crate) fn done(self, what: String) {
        match self {
            Output::Table => println!("{what}"),
            Output::Json => println!("{}", json!({ "done": what })),
            Output::Yaml => println!("done: {what:?}"),
        }
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// A list as aligned columns; one object as `key: value` lines.
pub(crate) fn table(value: &Value, columns: &[&str]) -> String {
    let mut out = String::new();
    match value {
        Value::Array(rows) => {
            let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| columns.iter().map(|c| cell(&r[*c])).collect())
                .collect();
            let widths: Vec<usize> = (0..columns.len())
                .map(|i| {
                    body.iter()
                        .map(|r| r[i].chars().count())
                        .chain([header[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for row in std::iter::once(&header).chain(&body) {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                out.push_str(line.join("  ").trim_end());
                out.push('\n');
            }
        }
        Value::Object(map) => {
            let width = map.keys().map(String::len).max().unwrap_or(0);
            for (k, v) in map {
                out.push_str(&format!(
                    "{:<width$}  {}\n",
                    format!("{k}:"),
                    cell(v),
                    width = width + 1
                ));
            }
        }
        other => {
            out.push_str(&cell(other));
            out.push('\n');
        }
    }
    out
}
