//! Score placeholders: `${...}` references inside strings, `$$` escapes.
//!
//! The grammar is score-go's, scanned left to right without overlap: `$$` is a literal
//! `$`, `$${BODY}` a literal `${BODY}`, `${BODY}` a reference, and any other `$` (or a
//! `${` with no closing `}`) is literal text. A reference's body is split on `.`, where
//! `\.` is a literal dot inside a segment. Substitution is a single pass: a value put in
//! is never scanned again.

/// One piece of a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Literal text (escapes already undone).
    Text(std::borrow::Cow<'a, str>),
    /// A reference, as written between `${` and `}`.
    Ref(&'a str),
}

/// Why a string's placeholders cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// `${}`.
    #[error("empty placeholder `${{}}`")]
    Empty,
}

/// Splits `text` into literal pieces and references, in one pass: linear in the length of
/// `text`, however many unclosed `${` it holds (the next `}` is looked for once per
/// position it can be at, not once per `$`).
pub fn parse(text: &str) -> Result<Vec<Piece<'_>>, SyntaxError> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut start = 0; // start of the pending borrowed literal run
    // The last search for a `}`: where it started and what it found. Positions asked for
    // never decrease, so a search only covers text no earlier search covered.
    let mut searched: Option<(usize, Option<usize>)> = None;
    let mut next_close = |from: usize| -> Option<usize> {
        match searched {
            Some((_, Some(found))) if found >= from => Some(found),
            Some((origin, None)) if from >= origin => None,
            _ => {
                let found = text[from..].find('}').map(|c| from + c);
                searched = Some((from, found));
                found
            }
        }
    };
    let flush = |literal: &mut String, pieces: &mut Vec<Piece<'_>>| {
        if !literal.is_empty() {
            pieces.push(Piece::Text(std::mem::take(literal).into()));
        }
    };
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        literal.push_str(&text[start..i]);
        match bytes.get(i + 1) {
            Some(b'$') => {
                // `$${BODY}` is a literal `${BODY}`; `$$` alone a literal `$`.
                if bytes.get(i + 2) == Some(&b'{')
                    && let Some(end) = next_close(i + 3)
                {
                    literal.push_str(&text[i + 1..=end]);
                    i = end + 1;
                } else {
                    literal.push('$');
                    i += 2;
                }
            }
            Some(b'{') => match next_close(i + 2) {
                Some(end) => {
                    let body = &text[i + 2..end];
                    if body.is_empty() {
                        return Err(SyntaxError::Empty);
                    }
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::Ref(body));
                    i = end + 1;
                }
                None => {
                    literal.push('$');
                    i += 1;
                }
            },
            _ => {
                literal.push('$');
                i += 1;
            }
        }
        start = i;
    }
    literal.push_str(&text[start..]);
    flush(&mut literal, &mut pieces);
    Ok(pieces)
}

/// The segments of a reference body: split on `.`, with `\.` a literal dot.
pub fn segments(body: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                out.last_mut().expect("never empty").push('.');
            }
            '.' => out.push(String::new()),
            other => out.last_mut().expect("never empty").push(other),
        }
    }
    out
}

/// Every reference in `text`.
pub fn references(text: &str) -> Result<Vec<&str>, SyntaxError> {
    Ok(parse(text)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Ref(r) => Some(r),
            Piece::Text(_) => None,
        })
        .collect())
}

/// Replaces each reference with what `resolve` gives for its segments.
pub fn substitute<E>(
    text: &str,
    mut resolve: impl FnMut(&str, &[String]) -> Result<String, E>,
) -> Result<String, SubstituteError<E>> {
    let mut out = String::with_capacity(text.len());
    for piece in parse(text).map_err(SubstituteError::Syntax)? {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Ref(body) => {
                out.push_str(&resolve(body, &segments(body)).map_err(SubstituteError::Resolve)?)
            }
        }
    }
    Ok(out)
}

/// Why a substitution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstituteError<E> {
    /// The string's placeholders cannot be read.
    #[error("{0}")]
    Syntax(SyntaxError),
    /// A reference could not be resolved.
    #[error("{0}")]
    Resolve(E),
}

/// The text a resolved value puts into a string: strings as they are, anything else as
/// compact JSON (`5432`, `true`, `{"a":1}`, `null`).
pub fn text_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Result<String, SubstituteError<String>> {
        substitute(text, |body, _| {
            if body == "metadata.name" {
                Ok("test-name".to_string())
            } else {
                Err(format!("unknown {body}"))
            }
        })
    }

    #[test]
    fn score_go_vectors() {
        assert_eq!(name("").unwrap(), "");
        assert_eq!(name("abc").unwrap(), "abc");
        assert_eq!(name("$abc").unwrap(), "$abc");
        assert_eq!(name("abc $$ abc").unwrap(), "abc $ abc");
        assert_eq!(name("$${abc}").unwrap(), "${abc}");
        assert!(name("$$${abc}").is_err(), "$$ then ${{abc}}");
        assert_eq!(name("$$$${abc}").unwrap(), "$${abc}");
        assert_eq!(
            name("$${abc .4t3298y *(^&(*}").unwrap(),
            "${abc .4t3298y *(^&(*}"
        );
        assert!(matches!(
            name("${}"),
            Err(SubstituteError::Syntax(SyntaxError::Empty))
        ));
        assert_eq!(
            name("my name is ${metadata.name}").unwrap(),
            "my name is test-name"
        );
        assert_eq!(name("${unclosed").unwrap(), "${unclosed");
    }

    #[test]
    fn unclosed_placeholders_are_literal_text_and_the_next_brace_closes_all_before_it() {
        let text = "${".repeat(1_000_000);
        assert_eq!(parse(&text).unwrap(), [Piece::Text(text.as_str().into())]);
        assert_eq!(
            parse("${a ${b} $${c").unwrap(),
            [Piece::Ref("a ${b"), Piece::Text(" ${c".into())]
        );
        assert_eq!(
            name("$${x} ${metadata.name} ${").unwrap(),
            "${x} test-name ${"
        );
    }

    #[test]
    fn escaped_dots_stay_in_their_segment() {
        assert_eq!(
            segments(r"metadata.annotations.key\.com/foo-bar"),
            ["metadata", "annotations", "key.com/foo-bar"]
        );
    }

    #[test]
    fn substitution_is_a_single_pass() {
        let out: Result<String, SubstituteError<()>> =
            substitute("${a}", |_, _| Ok("${metadata.name}".to_string()));
        assert_eq!(out.unwrap(), "${metadata.name}");
    }

    #[test]
    fn non_strings_become_json() {
        assert_eq!(text_of(&serde_json::json!(5432)), "5432");
        assert_eq!(text_of(&serde_json::json!(true)), "true");
        assert_eq!(text_of(&serde_json::json!(null)), "null");
        assert_eq!(text_of(&serde_json::json!("x")), "x");
    }
}
