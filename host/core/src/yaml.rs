//! YAML in and out, with a bounded cost and YAML 1.2's reading of scalars.
//!
//! Every YAML Wharf reads (Score files, platform files) goes through [`to_value`], which
//! refuses an input whose cost would be out of proportion to its size: more than
//! [`MAX_BYTES`], more than [`MAX_NODES`] nodes once aliases are expanded (an "alias bomb"
//! references one anchor thousands of times), deeper than [`MAX_DEPTH`]. Booleans are
//! `true` and `false` only: `yes`, `on` and `no` stay strings, as YAML 1.2 says, and so do
//! numbers with underscores or leading zeros (`1_000`, `0755`), which readers disagree on.
//!
//! Every YAML Wharf writes (manifests, command output) goes through [`to_string`], which
//! quotes any string another YAML reader could take for something else (`"yes"`,
//! `"1_000"`, `"2001-12-14"`), so that what Wharf writes is read back as it meant it.
//!
//! serde-saphyr does both; serde_yaml, which Wharf used before, is unmaintained and has
//! no limit on alias expansion.

use serde_json::Value;

/// The largest YAML input read, in bytes.
pub const MAX_BYTES: usize = 1 << 20;

/// The most nodes an input may hold once its aliases are expanded: far more than any real
/// workload or platform file, far less than an alias bomb.
pub const MAX_NODES: usize = 100_000;

/// The deepest nesting an input may have.
pub const MAX_DEPTH: usize = 64;

/// Why YAML could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// What is wrong, with the line and column when known.
    pub message: String,
}

/// Parses the first document of `text` into JSON (`null` when there is none).
pub fn to_value(text: &str) -> Result<Value, YamlError> {
    if text.len() > MAX_BYTES {
        return Err(YamlError {
            message: format!(
                "the input is {} bytes; at most {} MiB are read",
                text.len(),
                MAX_BYTES >> 20
            ),
        });
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: MAX_NODES,
            max_depth: MAX_DEPTH,
            max_documents: 16,
            max_events: 4 * MAX_NODES,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_NODES,
        },
        strict_booleans: true,
        underscored_numbers_as_strings: true,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    };
    let documents: Vec<Value> = serde_saphyr::from_str_multiple_with_options(text, options)
        .map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("line {}, column {}: ", l.line(), l.column()))
                .unwrap_or_default();
            let message = e.to_string();
            // The message may start with its own location; it is given once.
            let message = match message.split_once(": ") {
                Some((head, rest)) if head.starts_with("line ") => rest.to_string(),
                _ => message,
            };
            YamlError {
                message: format!("{at}{message}"),
            }
        })?;
    Ok(documents.into_iter().next().unwrap_or(Value::Null))
}

/// `value` as a YAML document (without a leading `---`).
pub fn to_string(value: &Value) -> String {
    serde_saphyr::to_string(value).expect("a JSON value serializes as YAML")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_1_2_scalars_yes_and_on_are_strings() {
        let v = to_value("a: yes\nb: on\nc: true\nd: 0755\ne: 1_000\nf: ~\ng: 1.5\n").unwrap();
        assert_eq!(
            v,
            json!({"a": "yes", "b": "on", "c": true, "d": "0755", "e": "1_000", "f": null, "g": 1.5})
        );
    }

    #[test]
    fn strings_that_look_like_something_else_are_written_quoted_and_read_back_as_strings() {
        for s in [
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "true",
            "null",
            "~",
            "1_000",
            "0755",
            "0x1f",
            "1e3",
            ".inf",
            "2001-12-14",
            "12:30",
            "-",
            "",
            " x",
            "a: b",
            "#x",
            "*a",
            "&a",
        ] {
            let written = to_string(&json!({ "k": s }));
            let read = to_value(&written).unwrap();
            assert_eq!(read, json!({ "k": s }), "{s:?} written as {written:?}");
            // A YAML 1.1 reader (Kubernetes' own) takes a bare `yes` for a boolean.
            assert!(
                !written.contains(&format!("k: {s}\n")),
                "{s:?} written bare: {written:?}"
            );
        }
    }

    #[test]
    fn an_alias_bomb_is_refused_by_its_expanded_size() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = to_value(&text).unwrap_err();
        assert!(e.message.contains("line "), "{e}");
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(to_value(&deep).is_err());
        let big = "a".repeat(MAX_BYTES + 1);
        assert!(to_value(&big).unwrap_err().message.contains("MiB"));
    }

    #[test]
    fn a_syntax_error_says_where() {
        let e = to_value("a: b\n c: d: e\n").unwrap_err();
        assert!(e.message.starts_with("line 2, column"), "{e}");
    }
}
