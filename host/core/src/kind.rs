//! The kinds of plugin: each implements one world of the `wharf:plugin` contract.

use serde::{Deserialize, Serialize};

/// The kind of a plugin, which decides the world it must implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum Kind {
    /// `wharf:plugin/driver`: provisions resources.
    Driver,
    /// `wharf:plugin/policy`: decides authorization.
    Policy,
    /// `wharf:plugin/transformer`: rewrites rendered objects.
    Transformer,
}

impl Kind {
    /// The name used in the CLI, the API and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Driver => "driver",
            Self::Policy => "policy",
            Self::Transformer => "transformer",
        }
    }

    /// Every kind.
    pub const ALL: [Kind; 3] = [Kind::Driver, Kind::Policy, Kind::Transformer];
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "driver" => Ok(Self::Driver),
            "policy" => Ok(Self::Policy),
            "transformer" => Ok(Self::Transformer),
            other => Err(format!(
                "unknown plugin kind {other:?}: expected driver, policy or transformer"
            )),
        }
    }
}
