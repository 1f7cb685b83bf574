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
//! for), `context` (`app`, `env`, `env_type`, `resource_id`, `resource_type`, `class`)
//! and `driver.values` (the configuration's values). `driver.secrets` is available only
//! to the templates of secret outputs, so that a secret cannot end up in a plain output.
//! An undefined variable is an error, not an empty string. A template that does not
//! parse or render fails with `invalid-input` naming the template.
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
    fn a_template_that_does_not_parse_is_named() {
        let config = Values {
            values: json!({ "templates": { "outputs": { "host": "{{ oops" } } }),
            secrets: json!({}),
        };
        let issues = Template::validate_config(&config).unwrap_err();
        assert_eq!(issues[0].path, "/values/templates/outputs/host");
    }
}
