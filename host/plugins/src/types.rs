//! The values exchanged with plugins, as the host sees them: plain Rust with serde, so
//! that the API, the CLI and the engine can read and write them as JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// What went wrong in a plugin, and whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The input is wrong.
    InvalidInput,
    /// The thing exists in a state that does not match.
    Conflict,
    /// Something needed does not exist.
    NotFound,
    /// An external system refused the plugin's credentials.
    PermissionDenied,
    /// An external system is unreachable.
    Unavailable,
    /// An external system asked to slow down.
    RateLimited,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// True for the kinds where a later retry can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Unavailable | Self::RateLimited)
    }
}

/// An error value a plugin returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginError {
    /// Whether retrying can help.
    pub kind: ErrorKind,
    /// What went wrong, for the person who can fix it.
    pub message: String,
    /// When to retry, for retryable kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// JSON Pointer to the value at fault.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its configuration.
    pub config_schema: Value,
}

/// A resource type a driver serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceTypeInfo {
    /// The type.
    pub name: String,
    /// JSON Schema of its params.
    pub params_schema: Value,
    /// JSON Schema of its outputs.
    pub outputs_schema: Value,
}

/// What a driver is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverDescription {
    /// Name, version, description, configuration schema.
    pub info: PluginInfo,
    /// The resource types served.
    pub resource_types: Vec<ResourceTypeInfo>,
}

/// Where a resource is provisioned.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceContext {
    /// Application.
    pub app: String,
    /// Environment.
    pub env: String,
    /// Environment type.
    pub env_type: String,
    /// Resource id.
    pub resource_id: String,
    /// Resource type.
    pub resource_type: String,
    /// Resource class.
    pub class: String,
    /// The workloads that declare it, sorted.
    pub workloads: Vec<String>,
}

/// Values and secrets, each a JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Values {
    /// Non-sensitive values.
    #[serde(default = "empty_object")]
    pub values: Value,
    /// Secrets.
    #[serde(default = "empty_object")]
    pub secrets: Value,
}

impl Default for Values {
    fn default() -> Self {
        Self {
            values: empty_object(),
            secrets: empty_object(),
        }
    }
}

/// One provision or deprovision call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverRequest {
    /// Where the resource is.
    #[serde(default)]
    pub context: ResourceContext,
    /// What the workload asked for.
    #[serde(default = "empty_object")]
    pub params: Value,
    /// The driver's configuration.
    #[serde(default)]
    pub config: Values,
    /// State of the previous step.
    #[serde(default)]
    pub state: Option<Value>,
    /// Stable across retries.
    #[serde(default)]
    pub idempotency_key: String,
}

/// The outcome of a driver step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Step {
    /// The resource is ready.
    Done {
        /// Its outputs.
        outputs: Values,
        /// State to keep.
        state: Value,
        /// Kubernetes objects to deploy with the workloads.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        objects: Vec<Value>,
    },
    /// Call again later.
    InProgress {
        /// State to pass back.
        state: Value,
        /// What is happening.
        message: String,
        /// When to call again.
        retry_after_ms: u64,
    },
}

/// A person or a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    /// A person.
    #[default]
    User,
    /// A machine identity.
    ServiceAccount,
}

/// Where a role binding applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// The organization.
    Org,
    /// One application.
    App(String),
    /// One environment type.
    EnvType(String),
}

/// A role at a scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoleBinding {
    /// Where.
    pub scope: Scope,
    /// The role.
    pub role: String,
}

/// An authenticated principal with its role bindings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Principal {
    /// Id.
    pub id: String,
    /// Person or machine.
    pub kind: PrincipalKind,
    /// Groups.
    pub groups: Vec<String>,
    /// Role bindings, including those held through groups.
    pub role_bindings: Vec<RoleBinding>,
}

/// What an action is about.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Target {
    /// Application.
    pub app: Option<String>,
    /// Environment.
    pub env: Option<String>,
    /// Environment type.
    pub env_type: Option<String>,
    /// Object within the collection.
    pub object: Option<String>,
}

/// May `principal` do `action` on `target`?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthzRequest {
    /// Who (shared: a batch usually asks for one principal).
    #[serde(with = "shared")]
    pub principal: std::sync::Arc<Principal>,
    /// `<collection>.<verb>`.
    pub action: String,
    /// On what.
    #[serde(default)]
    pub target: Target,
    /// More about the request.
    #[serde(default = "empty_object")]
    pub attributes: Value,
}

/// One policy's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", content = "reason", rename_all = "kebab-case")]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Forbidden, with the reason.
    Deny(String),
    /// No opinion.
    Abstain,
}

/// What a transformer is transforming.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TransformContext {
    /// Application.
    pub app: String,
    /// Environment.
    pub env: String,
    /// Environment type.
    pub env_type: String,
}

/// Serde for a shared value, as the value itself.
mod shared {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::sync::Arc;

    pub fn serialize<T: Serialize, S: Serializer>(v: &Arc<T>, s: S) -> Result<S::Ok, S::Error> {
        T::serialize(v, s)
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Arc<T>, D::Error> {
        T::deserialize(d).map(Arc::new)
    }
}
