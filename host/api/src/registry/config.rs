//! A driver installation's configuration: what all the resource definitions that use the
//! installation share (the address of the system the driver talks to and the credentials
//! for it), sent and read as `{"values": {...}, "secrets": {...}}`.
//!
//! The secrets are sealed at rest ([`SealedConfig`]): the store holds them encrypted and
//! bound to the installation, with their names beside them so that a read can say which
//! there are. They are opened ([`DriverConfig`]) only for a driver call. A configuration
//! stored before secrets were sealed reads as it was stored until the server seals it.
//! Policies and transformers have no secrets: their configuration is any JSON, stored as
//! sent.

use crate::ApiError;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use wharf_store::secrets::Sealer;

/// A driver installation's configuration, open. (What a client sends is checked field by
/// field in [`DriverConfig::from_request`], which names what is wrong.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriverConfig {
    /// Inputs any caller of the driver may see.
    #[serde(default)]
    pub values: Map<String, Value>,
    /// Credentials, which only the driver sees.
    #[serde(default)]
    pub secrets: Map<String, Value>,
}

/// A driver installation's configuration as the store holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedConfig {
    /// As in [`DriverConfig::values`].
    #[serde(default)]
    pub values: Map<String, Value>,
    /// The names of the sealed secrets, which a read shows.
    #[serde(default)]
    pub secret_keys: Vec<String>,
    /// The secrets as a JSON object, sealed for this installation, in base64.
    pub secrets_sealed: String,
}

impl DriverConfig {
    /// The configuration a client sent. `secret_keys`, which a read shows, is accepted and
    /// ignored, so that what was read can be sent back; without `secrets`, those of
    /// `previous` are kept.
    pub fn from_request(config: Value, previous: Option<&DriverConfig>) -> Result<Self, ApiError> {
        let Value::Object(mut fields) = config else {
            return Err(ApiError::BadRequest(
                "config: a driver's configuration is {\"values\": {...}, \"secrets\": {...}}"
                    .into(),
            ));
        };
        fields.remove("secret_keys");
        if let Some(other) = fields.keys().find(|k| *k != "values" && *k != "secrets") {
            return Err(ApiError::BadRequest(format!(
                "config.{other}: a driver's configuration has only values and secrets"
            )));
        }
        let mut object = |field: &str| match fields.remove(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(ApiError::BadRequest(format!(
                "config.{field}: must be a JSON object"
            ))),
        };
        let values = object("values")?.unwrap_or_default();
        let secrets = match object("secrets")? {
            Some(secrets) => secrets,
            None => previous.map(|p| p.secrets.clone()).unwrap_or_default(),
        };
        Ok(Self { values, secrets })
    }

    /// Sealed for `installation`: only the same sealer opens it, and only for it.
    pub fn seal(&self, sealer: &Sealer, installation: &str) -> SealedConfig {
        let secrets = Value::Object(self.secrets.clone()).to_string();
        let sealed = sealer.seal(secrets.as_bytes(), &secrets_context(installation));
        SealedConfig {
            values: self.values.clone(),
            secret_keys: self.secrets.keys().cloned().collect(),
            secrets_sealed: base64::engine::general_purpose::STANDARD.encode(sealed),
        }
    }

    fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a configuration serializes")
    }
}

impl SealedConfig {
    /// The secrets unsealed.
    pub fn open(
        &self,
        sealer: &Sealer,
        installation: &str,
    ) -> Result<DriverConfig, wharf_store::Error> {
        let corrupt = |e: String| {
            wharf_store::Error::Corrupt(format!(
                "sealed secrets of installation {installation}: {e}"
            ))
        };
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&self.secrets_sealed)
            .map_err(|e| corrupt(e.to_string()))?;
        let bytes = sealer.open(&sealed, &secrets_context(installation))?;
        let secrets = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        Ok(DriverConfig {
            values: self.values.clone(),
            secrets,
        })
    }
}

/// Where a driver installation's sealed secrets are bound.
fn secrets_context(installation: &str) -> String {
    format!("plugin-installation/secrets:{installation}")
}

/// A driver installation's configuration as sent, checked for its shape (see
/// [`DriverConfig::from_request`]); `previous` is the open configuration it replaces.
pub fn driver_config(config: Value, previous: Option<&Value>) -> Result<Value, ApiError> {
    let previous = previous.and_then(|p| serde_json::from_value(p.clone()).ok());
    Ok(DriverConfig::from_request(config, previous.as_ref())?.to_value())
}

/// A driver installation's open configuration as it is stored: the secrets sealed, bound
/// to the installation, and their names kept.
pub fn seal_config(
    sealer: &Sealer,
    installation: &str,
    config: &Value,
) -> Result<Value, wharf_store::Error> {
    let open: DriverConfig = serde_json::from_value(config.clone()).map_err(|e| {
        wharf_store::Error::Corrupt(format!("configuration of installation {installation}: {e}"))
    })?;
    Ok(serde_json::to_value(open.seal(sealer, installation)).expect("a configuration serializes"))
}

/// A stored configuration opened: a driver installation's secrets unsealed. Any other
/// configuration (a policy's, a transformer's, one stored before secrets were sealed) is
/// as it was stored.
pub fn open_config(
    sealer: &Sealer,
    installation: &str,
    config: &Value,
) -> Result<Value, wharf_store::Error> {
    if config.get("secrets_sealed").is_none() {
        return Ok(config.clone());
    }
    let sealed: SealedConfig = serde_json::from_value(config.clone()).map_err(|e| {
        wharf_store::Error::Corrupt(format!("configuration of installation {installation}: {e}"))
    })?;
    Ok(sealed.open(sealer, installation)?.to_value())
}

/// A driver installation's configuration as the API shows it: its secrets by name only.
pub fn config_view(config: &Value) -> Value {
    let mut view = config.clone();
    if let Some(fields) = view.as_object_mut() {
        fields.remove("secrets_sealed");
        if let Some(Value::Object(secrets)) = fields.remove("secrets") {
            fields.insert(
                "secret_keys".into(),
                json!(secrets.keys().collect::<Vec<_>>()),
            );
        }
    }
    view
}

/// A driver's configuration for one call: its installation's configuration (`installation`,
/// open) under the resource definition's driver inputs (`values` and `secrets` of the
/// request), key by key.
pub fn with_installation_config(
    mut request: wharf_plugins::DriverRequest,
    installation: &Value,
) -> wharf_plugins::DriverRequest {
    for (field, target) in [
        ("values", &mut request.config.values),
        ("secrets", &mut request.config.secrets),
    ] {
        if let (Some(base), Some(over)) = (installation[field].as_object(), target.as_object()) {
            let mut merged = base.clone();
            merged.extend(over.clone());
            *target = Value::Object(merged);
        }
    }
    request
}
