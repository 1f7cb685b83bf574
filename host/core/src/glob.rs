//! Glob patterns over image repositories and git refs: `*` stands for any run of
//! characters (`/` included), everything else for itself.
//!
//! `registry.example.com/shop-*` matches every repository of the shop; `refs/pull/*/head`
//! every pull request's head, and its `*` is what the match captured (the number), which
//! automation rules use to name preview environments.

/// What each `*` of `pattern` stood for in `text`, in order, if `text` matches (the
/// leftmost, shortest captures).
pub fn captures<'t>(pattern: &str, text: &'t str) -> Option<Vec<&'t str>> {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = parts.split_first()?;
    let mut at = text.strip_prefix(first).map(|_| first.len())?;
    let mut found = Vec::new();
    if rest.is_empty() {
        return (at == text.len()).then_some(found);
    }
    for (i, part) in rest.iter().enumerate() {
        let last = i == rest.len() - 1;
        let start = at;
        let end = if last {
            // The last literal part must end the text.
            if text.len() < at + part.len() || !text.ends_with(part) {
                return None;
            }
            text.len() - part.len()
        } else if part.is_empty() {
            at
        } else {
            at + text[at..].find(part)?
        };
        found.push(&text[start..end]);
        at = end + part.len();
    }
    Some(found)
}

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    captures(pattern, text).is_some()
}

/// Whether `pattern` is one a rule may hold: not empty, at most 255 characters, no
/// whitespace or control character.
pub fn check(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.len() > 255 {
        return Err(format!("{pattern:?} must be 1 to 255 characters"));
    }
    if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{pattern:?} holds a space or a control character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_any_run_and_capture_it() {
        assert_eq!(
            captures("refs/pull/*/head", "refs/pull/7/head"),
            Some(vec!["7"])
        );
        assert_eq!(captures("refs/pull/*/head", "refs/pull/7/merge"), None);
        assert!(matches(
            "registry.example/shop-*",
            "registry.example/shop-api"
        ));
        assert!(!matches(
            "registry.example/shop-*",
            "registry.example/shopping"
        ));
        assert!(matches("*", "anything/at/all"));
        assert!(matches("refs/heads/main", "refs/heads/main"));
        assert!(!matches("refs/heads/main", "refs/heads/main2"));
        assert!(!matches("refs/heads/main", "refs/heads/mai"));
        assert_eq!(captures("a*b*c", "aXbYc"), Some(vec!["X", "Y"]));
        assert_eq!(captures("a*", "a"), Some(vec![""]));
        assert!(!matches("a*bc", "abXc"));
        assert!(matches("*ab", "abab"));
        assert!(!matches("ab*ab", "ab"));
    }

    #[test]
    fn patterns_are_checked() {
        assert!(check("refs/heads/*").is_ok());
        assert!(check("").is_err());
        assert!(check("a b").is_err());
    }
}
