//! What the engine's tests put in a store before they run: an app, environment types,
//! environments, an installed driver, resource types, through the store's own functions.

use serde_json::{Value, json};
use wharf_core::Id;
use wharf_store::{Error, Tx, apps, envs, plugins, resources};

pub(crate) fn app(tx: &Tx<'_>, id: &str) -> Result<(), Error> {
    apps::create(
        tx,
        &apps::App {
            id: Id::new(id).unwrap(),
            name: id.into(),
            created_at: 1,
            created_by: "admin".into(),
            deleting: false,
        },
    )
}

pub(crate) fn env_type(tx: &Tx<'_>, id: &str, target: Value) -> Result<(), Error> {
    envs::create_type(
        tx,
        &envs::EnvType {
            id: Id::new(id).unwrap(),
            description: String::new(),
            target,
            transformers: Vec::new(),
            resources: Vec::new(),
            previews: Default::default(),
            created_at: 1,
        },
    )
}

/// Sets the target of environment type `id`.
pub(crate) fn retarget(tx: &Tx<'_>, id: &str, target: Value) -> Result<(), Error> {
    let mut t = envs::get_type(tx, id)?.expect("the type exists");
    t.target = target;
    envs::update_type(tx, &t).map(|_| ())
}

/// Creates environment `app/id` of `env_type` unless it exists.
pub(crate) fn environment(tx: &Tx<'_>, app: &str, id: &str, env_type: &str) -> Result<(), Error> {
    if envs::get(tx, app, id)?.is_some() {
        return Ok(());
    }
    envs::create(
        tx,
        &envs::Environment {
            app: Id::new(app).unwrap(),
            id: Id::new(id).unwrap(),
            env_type: Id::new(env_type).unwrap(),
            created_at: 1,
            created_by: "dev".into(),
            deleting: false,
            lifecycle: Default::default(),
        },
    )
}

/// A driver `id`, installed as `id`.
pub(crate) fn driver(tx: &Tx<'_>, id: &str) -> Result<(), Error> {
    plugins::create(
        tx,
        &plugins::Plugin {
            id: id.into(),
            kind: wharf_core::Kind::Driver,
            version: "1".into(),
            digest: "x".into(),
            manifest: json!({}),
            info: json!({}),
            bundled: false,
            created_at: 1,
            created_by: "ops".into(),
        },
        &[0],
    )?;
    plugins::install(
        tx,
        &plugins::Installation {
            id: id.into(),
            plugin: id.into(),
            config: json!({}),
            grants: json!({}),
            enabled: true,
            position: 0,
            revision: 1,
            created_at: 1,
            updated_at: 1,
            updated_by: "ops".into(),
        },
    )
}

pub(crate) fn resource_type(tx: &Tx<'_>, id: &str) -> Result<(), Error> {
    if resources::get_type(tx, id)?.is_some() {
        return Ok(());
    }
    resources::create_type(
        tx,
        &resources::ResourceType {
            id: id.into(),
            description: String::new(),
            outputs: json!({}),
            created_at: 1,
        },
    )
}
