//! The `template` resource driver: outputs rendered from templates in its configuration,
//! so that ops can define simple resources without writing a plugin (the counterpart of
//! score-k8s template provisioners and Humanitec's template driver).
//!
//! Configuration (the driver inputs of a resource definition):
//!
//! ```json
//! {
//!   "values": {
//!     "templates": {
//!       "outputs": {
//!         "host": "{{ context.resource_id }}.{{ context.env }}.svc",
//!         "url": "https://{{ params.name | default('api') }}.{{ driver.values.domain }}"
//!       }
//!     },
//!     "domain": "example.com"
//!   },
//!   "secrets": {
//!     "templates": {
//!       "outputs": { "dsn": "postgres://app:{{ driver.secrets.password }}@db/app" }
//!     },
//!     "password": "from-the-vault"
//!   }
//! }
//! ```
//!
//! Templates use [MiniJinja](https://docs.rs/minijinja) (Jinja2 syntax). Each renders to
//! one output, a string. Available to every template: `params` (what the workload asked
//! for), `context` (`app`, `env`, `env_type`, `resource_id`, `resource_type`, `class`,
//! `workloads`) and `driver.values` (the configuration's values). `driver.secrets` is
//! available only to the templates of secret outputs, so that a secret cannot end up in
//! a plain output. An undefined variable is an error, not an empty string. A template
//! that does not parse or render fails with `invalid-input` naming the template.
//!
//! Kubernetes objects that come with the resource (an `HTTPRoute` for a `route`) are
//! templated too: `values.templates.objects` is a list of objects in which every string
//! is a template, rendered with what plain outputs see plus `outputs` (the rendered plain
//! outputs). Rendering fills strings and never changes the objects' structure, so a
//! param cannot inject fields. A string that is exactly one `{{ ... }}` expression
//! keeps the type of its value (a number stays a number: `port: "{{ params.port }}"`).
//!
//! ```json
//! { "values": { "templates": {
//!     "outputs": { "host": "{{ params.host }}" },
//!     "objects": [{
//!       "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
//!       "metadata": { "name": "{{ context.resource_id }}" },
//!       "spec": {
//!         "parentRefs": [{ "name": "{{ driver.values.gateway }}" }],
//!         "hostnames": ["{{ outputs.host }}"],
//!         "rules": [{ "backendRefs": [{ "name": "{{ context.workloads[0] }}",
//!                                       "port": "{{ params.port }}" }] }]
//!       }
//!     }]
//!   }, "gateway": "public" } }
//! ```
//!
//! It must stay free of I/O: rendering only.

use minijinja::{Environment, UndefinedBehavior};
use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step, Values};
use wharf_sdk::{Issue, PluginError, PluginInfo, Value, json};

/// The template driver.
pub struct Template;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// The templates of one side (`values` or `secrets`), with their paths.
fn templates<'a>(side: &'a str, inputs: &'a Value) -> Result<Vec<(String, &'a str)>, Issue> {
    let outputs = &inputs["templates"]["outputs"];
    if outputs.is_null() {
        return Ok(Vec::new());
    }
    let map = outputs.as_object().ok_or_else(|| {
        Issue::new(
            format!("/{side}/templates/outputs"),
            "must be an object of output names to templates",
        )
    })?;
    map.iter()
        .map(|(name, t)| {
            let path = format!("{side}.templates.outputs.{name}");
            t.as_str().map(|t| (path.clone(), t)).ok_or_else(|| {
                Issue::new(
                    format!("/{side}/templates/outputs/{name}"),
                    "must be a string",
                )
            })
        })
        .collect()
}

/// The object templates (`values.templates.objects`): a list of JSON objects.
fn object_templates(values: &Value) -> Result<&[Value], Issue> {
    let objects = &values["templates"]["objects"];
    if objects.is_null() {
        return Ok(&[]);
    }
    let list = objects.as_array().ok_or_else(|| {
        Issue::new(
            "/values/templates/objects",
            "must be a list of Kubernetes objects",
        )
    })?;
    for (i, object) in list.iter().enumerate() {
        for key in ["apiVersion", "kind"] {
            if !object[key].is_string() {
                return Err(Issue::new(
                    format!("/values/templates/objects/{i}/{key}"),
                    "is required, a string",
                ));
            }
        }
        if !object["metadata"]["name"].is_string() {
            return Err(Issue::new(
                format!("/values/templates/objects/{i}/metadata/name"),
                "is required, a string (a template such as \"{{ context.resource_id }}\")",
            ));
        }
    }
    Ok(list)
}

/// Every string of `template`, with its path, for checking that they parse.
fn strings<'a>(path: String, template: &'a Value, out: &mut Vec<(String, &'a str)>) {
    match template {
        Value::String(s) => out.push((path, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(format!("{path}/{i}"), item, out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                strings(format!("{path}/{key}"), item, out);
            }
        }
        _ => {}
    }
}

/// `template` with each string rendered; a string that is one `{{ expression }}` takes
/// the expression's value (a number stays a number).
fn render_object(
    env: &Environment<'_>,
    path: &str,
    template: &Value,
    ctx: &Value,
) -> Result<Value, PluginError> {
    Ok(match template {
        Value::String(s) => {
            let trimmed = s.trim();
            let whole = trimmed
                .strip_prefix("{{")
                .and_then(|t| t.strip_suffix("}}"));
            match whole.filter(|e| !e.contains("{{") && !e.contains("}}")) {
                Some(expression) => {
                    let value = env
                        .compile_expression(expression)
                        .and_then(|e| e.eval(ctx))
                        .map_err(|e| PluginError::invalid_input(format!("template {path}: {e}")))?;
                    wharf_sdk::serde_json::to_value(&value)
                        .map_err(|e| PluginError::invalid_input(format!("template {path}: {e}")))?
                }
                None => Value::String(render(env, path, s, ctx)?),
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| render_object(env, &format!("{path}/{i}"), item, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| {
                    let value = render_object(env, &format!("{path}/{key}"), item, ctx)?;
                    Ok((key.clone(), value))
                })
                .collect::<Result<_, PluginError>>()?,
        ),
        other => other.clone(),
    })
}

/// Inputs without their templates: what templates see as `driver.*`.
fn inputs(side: &Value) -> Value {
    let mut side = side.clone();
    if let Some(map) = side.as_object_mut() {
        map.remove("templates");
    }
    side
}

fn render(
    env: &Environment<'_>,
    path: &str,
    template: &str,
    ctx: &Value,
) -> Result<String, PluginError> {
    env.render_str(template, ctx).map_err(|e| {
        let mut message = format!("template {path}: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        PluginError::invalid_input(message)
    })
}

impl Driver for Template {
    fn describe() -> Description {
        Description {
            info: PluginInfo::new(
                "template",
                env!("CARGO_PKG_VERSION"),
                "Outputs rendered from MiniJinja templates in its configuration",
            )
            .with_config_schema(json!({
                "type": "object",
                "properties": {
                    "values": { "type": "object", "properties": { "templates": { "type": "object" } } },
                    "secrets": { "type": "object", "properties": { "templates": { "type": "object" } } }
                }
            })),
            resource_types: vec![ResourceType {
                name: "*".into(),
                params_schema: json!({ "type": "object" }),
                outputs_schema: json!({ "type": "object" }),
            }],
        }
    }

    fn validate_config(config: &Values) -> Result<(), Vec<Issue>> {
        let env = environment();
        let mut issues = Vec::new();
        for (side, inputs) in [("values", &config.values), ("secrets", &config.secrets)] {
            match templates(side, inputs) {
                Ok(list) => {
                    for (path, t) in list {
                        if let Err(e) = env.template_from_str(t) {
                            issues.push(Issue::new(
                                format!("/{}", path.replace('.', "/")),
                                format!("does not parse: {e}"),
                            ));
                        }
                    }
                }
                Err(issue) => issues.push(issue),
            }
        }
        match object_templates(&config.values) {
            Ok(objects) => {
                let mut found = Vec::new();
                for (i, object) in objects.iter().enumerate() {
                    strings(format!("/values/templates/objects/{i}"), object, &mut found);
                }
                for (path, t) in found {
                    if let Err(e) = env.template_from_str(t) {
                        issues.push(Issue::new(path, format!("does not parse: {e}")));
                    }
                }
            }
            Err(issue) => issues.push(issue),
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }

    fn provision(request: Request) -> Result<Step, PluginError> {
        let env = environment();
        let c = &request.context;
        let context = json!({
            "app": c.app, "env": c.env, "env_type": c.env_type,
            "resource_id": c.resource_id, "resource_type": c.resource_type, "class": c.class,
            "workloads": c.workloads,
        });
        let values = inputs(&request.config.values);
        let plain =
            json!({ "params": request.params, "context": context, "driver": { "values": values } });
        let secret = json!({
            "params": request.params, "context": context,
            "driver": { "values": values, "secrets": inputs(&request.config.secrets) },
        });
        let issue =
            |i: Issue| PluginError::invalid_input(format!("config{}: {}", i.path, i.message));
        let mut outputs = Outputs::default();
        for (side, ctx, target) in [
            ("values", &plain, &mut outputs.outputs.values),
            ("secrets", &secret, &mut outputs.outputs.secrets),
        ] {
            let inputs = if side == "values" {
                &request.config.values
            } else {
                &request.config.secrets
            };
            for (path, template) in templates(side, inputs).map_err(issue)? {
                let name = path.rsplit('.').next().unwrap_or_default().to_string();
                target[name] = Value::String(render(&env, &path, template, ctx)?);
            }
        }
        let mut with_outputs = plain;
        with_outputs["outputs"] = outputs.outputs.values.clone();
        for (i, template) in object_templates(&request.config.values)
            .map_err(issue)?
            .iter()
            .enumerate()
        {
            let path = format!("values.templates.objects.{i}");
            outputs
                .objects
                .push(render_object(&env, &path, template, &with_outputs)?);
        }
        Ok(Step::Done(outputs))
    }

    fn deprovision(_request: Request) -> Result<Step, PluginError> {
        Ok(Step::Done(Outputs::default()))
    }
}

wharf_sdk::export_driver!(Template);

#[cfg(test)]
mod tests {
    use super::*;

    fn request(values: Value, secrets: Value) -> Request {
        let mut r = Request::test("api");
        r.params = json!({ "name": "orders" });
        r.config = Values { values, secrets };
        r
    }

    #[test]
    fn renders_params_context_and_inputs() {
        let r = request(
            json!({ "templates": { "outputs": {
                "host": "{{ context.resource_id }}.{{ context.env }}.svc",
                "url": "https://{{ params.name }}.{{ driver.values.domain }}"
            } }, "domain": "example.com" }),
            json!({ "templates": { "outputs": { "dsn": "pg://app:{{ driver.secrets.pw }}@db" } }, "pw": "s3" }),
        );
        let Step::Done(out) = Template::provision(r).unwrap() else {
            panic!()
        };
        assert_eq!(out.outputs.values["host"], "api-1.development.svc");
        assert_eq!(out.outputs.values["url"], "https://orders.example.com");
        assert_eq!(out.outputs.secrets["dsn"], "pg://app:s3@db");
    }

    #[test]
    fn secrets_are_not_visible_to_plain_outputs() {
        let r = request(
            json!({ "templates": { "outputs": { "leak": "{{ driver.secrets.pw }}" } } }),
            json!({ "pw": "s3" }),
        );
        let err = Template::provision(r).unwrap_err();
        assert!(
            err.message
                .starts_with("template values.templates.outputs.leak:"),
            "{err}"
        );
    }

    #[test]
    fn objects_are_templated_string_by_string_and_keep_their_structure() {
        let r = request(
            json!({ "templates": {
                "outputs": { "host": "{{ params.name }}.{{ driver.values.domain }}" },
                "objects": [{
                    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                    "metadata": { "name": "{{ context.resource_id }}" },
                    "spec": {
                        "hostnames": ["{{ outputs.host }}"],
                        "rules": [{ "backendRefs": [{
                            "name": "{{ context.workloads[0] }}", "port": "{{ params.port }}"
                        }] }]
                    }
                }]
            }, "domain": "example.com" }),
            json!({}),
        );
        let mut r = r;
        r.params = json!({ "name": "orders\"}, \"injected\": {\"a\": 1", "port": 8080 });
        let Step::Done(out) = Template::provision(r).unwrap() else {
            panic!()
        };
        let route = &out.objects[0];
        assert_eq!(route["metadata"]["name"], "api-1");
        assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["name"], "api");
        assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["port"], 8080);
        let host = route["spec"]["hostnames"][0].as_str().unwrap();
        assert!(host.starts_with("orders\"}, \"injected"), "{host}");
        assert!(route["spec"].get("injected").is_none(), "{route}");
    }

    #[test]
    fn object_templates_are_checked_with_their_paths() {
        let config = Values {
            values: json!({ "templates": { "objects": [
                { "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "{{ oops" } },
                { "kind": "ConfigMap", "metadata": { "name": "x" } }
            ] } }),
            secrets: json!({}),
        };
        let issues = Template::validate_config(&config).unwrap_err();
        assert_eq!(issues[0].path, "/values/templates/objects/1/apiVersion");
        let config = Values {
            values: json!({ "templates": { "objects": [
                { "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "{{ oops" } }
            ] } }),
            secrets: json!({}),
        };
        let issues = Template::validate_config(&config).unwrap_err();
        assert_eq!(issues[0].path, "/values/templates/objects/0/metadata/name");
    }

    #[test]
    fn a_template_that_does_not_parse_is_named() {
        let config = Values {
            values: json!({ "templates": { "outputs": { "host": "{{ oops" } } }),
            secrets: json!({}),
        };
        let issues = Template::validate_config(&config).unwrap_err();
        assert_eq!(issues[0].path, "/values/templates/outputs/host");
    }
}
