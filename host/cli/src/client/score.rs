//! Score files as the API takes them, for `wharf deploy`, `wharf sets create` and
//! `wharf up`.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The Score files as the API takes them: YAML text as it is, unless a file names other
/// files (`files.*.source`, relative to the Score file), which are read and inlined.
pub(crate) fn score_files(files: &[PathBuf]) -> anyhow::Result<Vec<Value>> {
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
