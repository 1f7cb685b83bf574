//! Container image references, as CI hands them over: `registry/path/name[:tag][@digest]`.
//!
//! The rules are the OCI distribution spec's: a repository is path components of lowercase
//! letters and digits joined by `.`, `_`, `__` or dashes, separated by `/`, optionally
//! after a registry host (`registry.example.com:5000`, `localhost`); a tag is up to 128
//! characters of letters, digits, `_`, `.` and `-` not starting with `.` or `-`; a digest
//! is `sha256:` and 64 lowercase hex digits. A reference names an image for automation
//! only with its digest: a tag can be moved to another image, a digest cannot.

use std::fmt;

/// The longest reference accepted.
const MAX_LEN: usize = 512;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `registry.example.com/shop/api`.
    pub repository: String,
    /// `1.4.2`, when given.
    pub tag: Option<String>,
    /// `sha256:...`, when given.
    pub digest: Option<String>,
}

/// Why a reference is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidImage(String);

fn component_ok(c: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
    let bytes = c.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && matches!(bytes[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "."
            || sep == "_"
            || sep == "__"
            || (!sep.is_empty() && sep.bytes().all(|b| b == b'-'));
        if !ok || i == bytes.len() {
            return false;
        }
    }
    true
}

fn host_ok(h: &str) -> bool {
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (h, None),
    };
    let name_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    name_ok
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn tag_ok(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn digest_ok(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl ImageRef {
    /// Parses `text`, saying what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, InvalidImage> {
        let bad = |why: &str| {
            Err(InvalidImage(format!(
                "{text:?} is not an image reference: {why}"
            )))
        };
        if text.is_empty() || text.len() > MAX_LEN {
            return bad(&format!("it must have 1 to {MAX_LEN} characters"));
        }
        let (name, digest) = match text.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (text, None),
        };
        if let Some(d) = digest
            && !digest_ok(d)
        {
            return bad("the digest must be sha256: followed by 64 lowercase hex digits");
        }
        // A tag follows the last `:` after the last `/` (a `:` before it is a port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
            None => (name, None),
        };
        if let Some(t) = tag
            && !tag_ok(t)
        {
            return bad(
                "a tag has 1 to 128 letters, digits, `_`, `.` or `-`, and does not start with `.` or `-`",
            );
        }
        let parts: Vec<&str> = repository.split('/').collect();
        let has_host =
            parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost");
        let path = if has_host {
            if !host_ok(parts[0]) {
                return bad("the registry host is not a host name with an optional port");
            }
            &parts[1..]
        } else {
            &parts[..]
        };
        if let Some(c) = path.iter().find(|c| !component_ok(c)) {
            return bad(&format!(
                "path component {c:?} must be lowercase letters and digits, joined by `.`, `_`, `__` or dashes"
            ));
        }
        Ok(Self {
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_reference_splits_into_repository_tag_and_digest() {
        let r = ImageRef::parse(&format!(
            "registry.example.com:5000/shop/api:1.4.2@{DIGEST}"
        ))
        .unwrap();
        assert_eq!(r.repository, "registry.example.com:5000/shop/api");
        assert_eq!(r.tag.as_deref(), Some("1.4.2"));
        assert_eq!(r.digest.as_deref(), Some(DIGEST));
        assert_eq!(
            r.to_string(),
            format!("registry.example.com:5000/shop/api:1.4.2@{DIGEST}")
        );
        let r = ImageRef::parse("localhost:5000/api").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag, r.digest),
            ("localhost:5000/api", None, None)
        );
        let r = ImageRef::parse("nginx:1.27").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag.as_deref()),
            ("nginx", Some("1.27"))
        );
    }

    #[test]
    fn what_is_not_a_reference_says_why() {
        for (text, why) in [
            ("Shop/API", "path component \"Shop\""),
            ("shop/api@sha256:abc", "64 lowercase hex"),
            ("shop/api:-x", "a tag has"),
            ("shop//api", "path component \"\""),
            ("shop/api-", "path component \"api-\""),
            ("bad_host.example.com/api", "registry host"),
            ("", "1 to 512"),
        ] {
            let err = ImageRef::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
