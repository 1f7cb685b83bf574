//! Ids of apps, environments, environment types, resources, definitions and principals.

use serde::{Deserialize, Serialize};

/// Longest id accepted.
pub const MAX_LEN: usize = 50;

/// A validated id: lowercase ASCII letters, digits and dashes, at most 50 characters,
/// starting with a letter or a digit and not ending with a dash, with no two dashes in a
/// row (Humanitec's rule, so ids are also valid Kubernetes names and DNS labels).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Id(String);

/// Why a string is not a valid id. The message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is empty.
    #[error("id must not be empty")]
    Empty,
    /// The id is longer than [`MAX_LEN`].
    #[error("id {0:?} is {len} characters long; the limit is {MAX_LEN}", len = .0.chars().count())]
    TooLong(String),
    /// The id has a character outside `a-z`, `0-9` and `-`.
    #[error("id {id:?} contains {found:?}: use lowercase letters, digits and dashes only")]
    BadCharacter {
        /// The id.
        id: String,
        /// The first character not allowed.
        found: char,
    },
    /// The id starts or ends with a dash, or has two dashes in a row.
    #[error("id {0:?} must start and end with a letter or digit, with single dashes between")]
    BadDashes(String),
}

impl Id {
    /// Validates `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        if id.is_empty() {
            return Err(IdError::Empty);
        }
        if id.chars().count() > MAX_LEN {
            return Err(IdError::TooLong(id));
        }
        if let Some(found) = id
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(IdError::BadCharacter { id, found });
        }
        if id.starts_with('-') || id.ends_with('-') || id.contains("--") {
            return Err(IdError::BadDashes(id));
        }
        Ok(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Id {
    type Error = IdError;
    fn try_from(id: String) -> Result<Self, IdError> {
        Self::new(id)
    }
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        id.0
    }
}

impl std::str::FromStr for Id {
    type Err = IdError;
    fn from_str(id: &str) -> Result<Self, IdError> {
        Self::new(id)
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids() {
        for id in ["shop", "pr-42", "a", "0", "a1-b2-c3", &"x".repeat(50)] {
            assert_eq!(Id::new(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn invalid_ids_say_what_to_change() {
        assert_eq!(Id::new(""), Err(IdError::Empty));
        assert!(matches!(Id::new("x".repeat(51)), Err(IdError::TooLong(_))));
        let e = Id::new("Shop").unwrap_err();
        assert_eq!(
            e.to_string(),
            "id \"Shop\" contains 'S': use lowercase letters, digits and dashes only"
        );
        assert!(matches!(
            Id::new("a_b"),
            Err(IdError::BadCharacter { found: '_', .. })
        ));
        assert!(matches!(
            Id::new("café"),
            Err(IdError::BadCharacter { found: 'é', .. })
        ));
        for bad in ["-a", "a-", "a--b"] {
            assert!(matches!(Id::new(bad), Err(IdError::BadDashes(_))), "{bad}");
        }
    }

    #[test]
    fn serde_validates() {
        let id: Id = serde_json::from_str("\"pr-1\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"pr-1\"");
        let err = serde_json::from_str::<Id>("\"PR 1\"").unwrap_err();
        assert!(err.to_string().contains("use lowercase letters"), "{err}");
    }
}
