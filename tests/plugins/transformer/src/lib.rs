//! A well-behaved transformer for the runtime's tests: adds the labels of `config.labels`
//! to every object and sets `spec.replicas` on Deployments that have none. With
//! `config.trap` set it panics (a trap), for the tests of a transformer that fails.
//!
//! It exists for tests and benchmarks only and must never be bundled into the host.

use wharf_sdk::transformer::{Context, Transformer};
use wharf_sdk::{PluginError, PluginInfo, Value, json};

/// The test transformer.
pub struct TestTransformer;

impl Transformer for TestTransformer {
    fn describe() -> PluginInfo {
        PluginInfo::new("test-transformer", "0.1.0", "Adds labels")
    }

    fn transform(
        context: &Context,
        config: &Value,
        mut objects: Vec<Value>,
    ) -> Result<Vec<Value>, PluginError> {
        if config["trap"] == true {
            panic!("the test transformer traps on purpose");
        }
        let labels = config["labels"].as_object().cloned().unwrap_or_default();
        for object in &mut objects {
            let metadata = object
                .as_object_mut()
                .ok_or_else(|| PluginError::invalid_input("every object must be a JSON object"))?
                .entry("metadata")
                .or_insert_with(|| json!({}));
            let object_labels = metadata
                .as_object_mut()
                .ok_or_else(|| PluginError::invalid_input("metadata must be an object"))?
                .entry("labels")
                .or_insert_with(|| json!({}));
            for (k, v) in &labels {
                object_labels[k] = v.clone();
            }
            object_labels["wharf.dev/env"] = json!(context.env);
            if object["kind"] == "Deployment" && object["spec"]["replicas"].is_null() {
                object["spec"]["replicas"] = json!(1);
            }
        }
        Ok(objects)
    }
}

wharf_sdk::export_transformer!(TestTransformer);
