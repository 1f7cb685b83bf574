//! Every kind of row reads back as it was written, through each query that reads it: the
//! rows are read by column name, so a name that does not match its SELECT fails here.

use crate::apps::{self, App};
use crate::deployments::{self, Deployment, Step};
use crate::envs::{self, EnvType, Environment};
use crate::plugins::{self, Installation, Plugin};
use crate::provisioned::{self, Record, Touched};
use crate::resources::{self, Definition, DefinitionVersion, ResourceType};
use crate::secrets::Sealer;
use crate::sets::{self, StoredSet};
use crate::{Error, Store, Tx, audit, auth};
use serde_json::json;
use wharf_core::Id;
use wharf_core::roles::Scope;
use wharf_core::status::{DeploymentKind, DeploymentStatus, ResourceState, StepStatus};

fn id(text: &str) -> Id {
    Id::new(text).unwrap()
}

fn app() -> App {
    App {
        id: id("shop"),
        name: "Shop".into(),
        created_at: 1,
        created_by: "alice".into(),
        deleting: false,
    }
}

fn env_type() -> EnvType {
    EnvType {
        id: id("dev"),
        description: "for trying things".into(),
        target: json!({"kind": "process"}),
        transformers: vec!["labels".into()],
        resources: serde_json::from_value(json!([{"type": "dns", "id": "site"}])).unwrap(),
        previews: Default::default(),
        created_at: 2,
    }
}

fn environment() -> Environment {
    Environment {
        app: id("shop"),
        id: id("dev"),
        env_type: id("dev"),
        created_at: 3,
        created_by: "alice".into(),
        deleting: false,
        lifecycle: Default::default(),
    }
}

fn plugin() -> Plugin {
    Plugin {
        id: "pg".into(),
        kind: wharf_core::Kind::Driver,
        version: "1.2.0".into(),
        digest: "ab".repeat(32),
        manifest: json!({"capabilities": ["network"]}),
        info: json!({"name": "postgres"}),
        bundled: true,
        created_at: 4,
        created_by: "wharf".into(),
    }
}

fn installation() -> Installation {
    Installation {
        id: "pg-main".into(),
        plugin: "pg".into(),
        config: json!({"host": "db"}),
        grants: json!({"network": ["db:5432"]}),
        enabled: true,
        position: 7,
        revision: 2,
        created_at: 5,
        updated_at: 6,
        updated_by: "bob".into(),
    }
}

/// A store with the app `shop`, its environment `dev` and the driver installation
/// `pg-main`: what the other rows refer to.
async fn seeded() -> Store {
    let store = Store::open_in_memory().await.unwrap();
    store
        .transaction(|tx| {
            apps::create(tx, &app())?;
            envs::create_type(tx, &env_type())?;
            envs::create(tx, &environment())?;
            plugins::create(tx, &plugin(), b"\0asm")?;
            plugins::install(tx, &installation())
        })
        .await
        .unwrap();
    store
}

/// What `write` gives and what `read` then returns, on the seeded store.
async fn read_back_with<W: Send + 'static, R: Send + 'static>(
    write: impl FnOnce(&Tx<'_>) -> Result<W, Error> + Send + 'static,
    read: impl FnOnce(&Tx<'_>) -> Result<R, Error> + Send + 'static,
) -> (W, R) {
    let store = seeded().await;
    let written = store.transaction(write).await.unwrap();
    (written, store.call(read).await.unwrap())
}

/// What `read` returns from the seeded store, after `write`.
async fn read_back<R: Send + 'static>(
    write: impl FnOnce(&Tx<'_>) -> Result<(), Error> + Send + 'static,
    read: impl FnOnce(&Tx<'_>) -> Result<R, Error> + Send + 'static,
) -> R {
    let store = seeded().await;
    store.transaction(write).await.unwrap();
    store.call(read).await.unwrap()
}

#[tokio::test]
async fn apps_environments_and_their_types_read_back_as_written() {
    let (apps, envs, types) = read_back(
        |_| Ok(()),
        |tx| {
            Ok((
                (apps::get(tx, "shop")?, apps::list(tx)?),
                (envs::get(tx, "shop", "dev")?, envs::list(tx, "shop")?),
                (envs::get_type(tx, "dev")?, envs::list_types(tx)?),
            ))
        },
    )
    .await;
    assert_eq!(apps, (Some(app()), vec![app()]));
    assert_eq!(envs, (Some(environment()), vec![environment()]));
    assert_eq!(types, (Some(env_type()), vec![env_type()]));
}

#[tokio::test]
async fn plugins_and_installations_read_back_as_written() {
    let (plugins, component, installations) = read_back(
        |_| Ok(()),
        |tx| {
            Ok((
                (plugins::get(tx, "pg")?, plugins::list(tx)?),
                plugins::component(tx, "pg")?,
                (
                    plugins::installation_by_id(tx, "pg-main")?,
                    plugins::installations(tx)?,
                    plugins::enabled_of_kind(tx, wharf_core::Kind::Driver)?,
                ),
            ))
        },
    )
    .await;
    assert_eq!(plugins, (Some(plugin()), vec![plugin()]));
    assert_eq!(component.as_deref(), Some(&b"\0asm"[..]));
    assert_eq!(
        installations,
        (
            Some(installation()),
            vec![installation()],
            vec![installation()]
        )
    );
}

#[tokio::test]
async fn resource_types_and_definitions_read_back_as_written() {
    let res_type = ResourceType {
        id: "postgres".into(),
        description: "a database".into(),
        outputs: json!({"type": "object"}),
        created_at: 8,
    };
    let definition = Definition {
        id: "pg-dev".into(),
        res_type: "postgres".into(),
        driver: "pg-main".into(),
        body: json!({"driver_inputs": {"values": {"size": "s"}}}),
        version: 1,
        created_at: 9,
        updated_at: 10,
        updated_by: "carol".into(),
    };
    let (t, d) = (res_type.clone(), definition.clone());
    let (types, definitions, versions) = read_back(
        move |tx| {
            resources::create_type(tx, &t)?;
            resources::put_definition(tx, &d)
        },
        |tx| {
            Ok((
                (
                    resources::get_type(tx, "postgres")?,
                    resources::list_types(tx)?,
                ),
                (
                    resources::get_definition(tx, "pg-dev")?,
                    resources::list_definitions(tx)?,
                ),
                resources::definition_versions(tx, "pg-dev")?,
            ))
        },
    )
    .await;
    assert_eq!(types, (Some(res_type.clone()), vec![res_type]));
    assert_eq!(definitions, (Some(definition.clone()), vec![definition]));
    assert_eq!(
        versions,
        [DefinitionVersion {
            version: 1,
            content: json!({
                "type": "postgres",
                "driver": "pg-main",
                "body": {"driver_inputs": {"values": {"size": "s"}}}
            }),
            created_at: 10,
            created_by: "carol".into(),
        }]
    );
}

fn deployment() -> Deployment {
    let failed = Step {
        status: StepStatus::Failed,
        started_at_ms: Some(12),
        finished_at_ms: Some(13),
        detail: json!({"resources": 1}),
        error: Some(json!({"message": "no"})),
        ..Step::pending(wharf_core::status::Step::Provision)
    };
    Deployment {
        app: "shop".into(),
        env: "dev".into(),
        id: 1,
        kind: DeploymentKind::Deploy,
        set_id: "s1".into(),
        images: json!({"web": "nginx:1"}),
        comment: "first".into(),
        status: DeploymentStatus::Queued,
        error: None,
        created_at_ms: 11,
        created_by: "alice".into(),
        started_at_ms: None,
        finished_at_ms: None,
        steps: vec![failed, Step::pending(wharf_core::status::Step::Render)],
    }
}

#[tokio::test]
async fn deployments_with_their_steps_read_back_as_written() {
    let (pending, next, listed, got, current) = read_back(
        |tx| {
            let d = deployment();
            deployments::create(tx, &d)?;
            deployments::set_step(tx, "shop", "dev", 1, 0, &d.steps[0])
        },
        |tx| {
            Ok((
                deployments::pending(tx)?,
                deployments::next(tx, "shop", "dev")?,
                deployments::list(tx, "shop", "dev")?,
                deployments::get(tx, "shop", "dev", 1)?,
                deployments::current(tx, "shop", "dev")?,
            ))
        },
    )
    .await;
    let without_steps = Deployment {
        steps: Vec::new(),
        ..deployment()
    };
    assert_eq!(pending, [("shop".to_string(), "dev".to_string())]);
    assert_eq!(next, Some(deployment()));
    assert_eq!(listed, [without_steps]);
    assert_eq!(got, Some(deployment()));
    assert_eq!(current, None);
}

#[tokio::test]
async fn a_finished_deployment_reads_back_with_its_error_and_times() {
    let error = json!({"step": "provision", "message": "no"});
    let written = error.clone();
    let current = read_back(
        move |tx| {
            deployments::create(tx, &deployment())?;
            deployments::set_status(tx, "shop", "dev", 1, DeploymentStatus::Running, None, 20)?;
            deployments::set_status(
                tx,
                "shop",
                "dev",
                1,
                DeploymentStatus::Succeeded,
                Some(&written),
                21,
            )
        },
        |tx| deployments::current(tx, "shop", "dev"),
    )
    .await;
    let expected = Deployment {
        status: DeploymentStatus::Succeeded,
        error: Some(error),
        started_at_ms: Some(20),
        finished_at_ms: Some(21),
        steps: Vec::new(),
        ..deployment()
    };
    assert_eq!(current, Some(expected));
}

fn record() -> Record {
    Record {
        uid: "postgres.default.db".into(),
        status: ResourceState::Done,
        message: "ready".into(),
        state: Some(json!({"token": 1})),
        outputs: json!({"host": "db"}),
        secrets: json!({"password": "s3cret"}),
        updated_at: 14,
        deployment: 1,
        definition: "pg-dev".into(),
        driver: "pg-main".into(),
        depends_on: vec!["dns.default.site".into()],
        params: json!({"size": "s"}),
        objects: vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})],
    }
}

#[tokio::test]
async fn provisioned_records_read_back_as_written() {
    let sealer = Sealer::new([3; 32]);
    let (writer, reader) = (sealer.clone(), sealer);
    let (got, listed, progress, sealed, any) = read_back(
        move |tx| provisioned::record(tx, &writer, "shop", "dev", &record()),
        move |tx| {
            let uid = "postgres.default.db";
            Ok((
                provisioned::get(tx, &reader, "shop", "dev", uid)?,
                provisioned::list(tx, &reader, "shop", "dev")?,
                provisioned::progress(tx, "shop", "dev", 1)?,
                provisioned::stored_secrets(tx, "shop", "dev", uid)?,
                provisioned::any(tx, "shop", "dev")?,
            ))
        },
    )
    .await;
    assert_eq!(got, Some(record()));
    assert_eq!(listed, [record()]);
    assert_eq!(
        progress,
        [Touched {
            uid: "postgres.default.db".into(),
            status: ResourceState::Done,
            message: "ready".into(),
        }]
    );
    assert!(sealed.is_some_and(|s| !s.windows(6).any(|w| w == b"s3cret")));
    assert!(any);
}

#[tokio::test]
async fn sets_audit_events_and_principals_read_back_as_written() {
    let set = StoredSet {
        app: "shop".into(),
        id: "s1".into(),
        body: json!({"workloads": {}}),
        created_at: 15,
        created_by: "alice".into(),
    };
    let event = audit::Event {
        seq: 1,
        at: 16,
        principal: "alice".into(),
        action: "apps.create".into(),
        target: "app:shop".into(),
        detail: json!({"name": "Shop"}),
    };
    let (s, e) = (set.clone(), event.clone());
    let (sets, events, principals, bindings) = read_back(
        move |tx| {
            sets::put(tx, &s)?;
            audit::record(tx, &e)?;
            auth::create_principal(tx, "alice", "user", 17)?;
            auth::bind_role(tx, "alice", &Scope::Org, "admin")?;
            auth::bind_role(tx, "alice", &Scope::App(id("shop")), "owner")?;
            auth::bind_role(tx, "alice", &Scope::EnvType(id("dev")), "deployer")
        },
        |tx| {
            Ok((
                (sets::get(tx, "shop", "s1")?, sets::list(tx, "shop")?),
                audit::list(
                    tx,
                    &audit::Filter {
                        limit: 10,
                        ..Default::default()
                    },
                )?,
                (
                    auth::count_principals(tx)?,
                    auth::get_principal(tx, "alice")?,
                    auth::list_principals(tx, "user")?,
                ),
                auth::role_bindings(tx, "alice")?,
            ))
        },
    )
    .await;
    let alice = auth::PrincipalRow {
        id: "alice".into(),
        kind: "user".into(),
        created_at: 17,
    };
    assert_eq!(sets, (Some(set.clone()), vec![set]));
    assert_eq!(events, [event]);
    assert_eq!(principals, (1, Some(alice.clone()), vec![alice]));
    assert_eq!(
        bindings,
        [
            (Scope::App(id("shop")), "owner".to_string()),
            (Scope::EnvType(id("dev")), "deployer".to_string()),
            (Scope::Org, "admin".to_string()),
        ]
    );
}

#[tokio::test]
async fn an_image_pushed_twice_is_one_artefact_with_the_latest_ref() {
    use crate::artefacts::{self, Filter, Push};
    let (news, (shop, main)) = read_back_with(
        |tx| {
            let digest = format!("sha256:{}", "ab".repeat(32));
            let push = |repository, git_ref, at| Push {
                repository,
                digest: &digest,
                tag: None,
                git_ref,
                git_commit: "",
                by: "ci",
                at,
            };
            let mut news = Vec::new();
            for p in [
                push("registry.example.com/shop/api", "refs/heads/main", 10),
                push("registry.example.com/shop/api", "refs/tags/v1", 20),
                push("registry.example.com/web", "refs/heads/main", 30),
            ] {
                news.push(artefacts::push(tx, &p)?.1);
            }
            Ok(news)
        },
        |tx| {
            let filter = |repository: Option<&str>, git_ref: Option<&str>| Filter {
                repository: repository.map(str::to_string),
                git_ref: git_ref.map(str::to_string),
                after: None,
                limit: 10,
            };
            let shop = artefacts::list(tx, &filter(Some("registry.example.com/shop"), None))?;
            let main = artefacts::list(tx, &filter(None, Some("refs/heads/main")))?;
            Ok((shop, main))
        },
    )
    .await;
    assert_eq!(news, [true, false, true]);
    assert_eq!(shop.len(), 1, "one artefact for the image pushed twice");
    let api = &shop[0];
    assert_eq!((api.pushes, api.git_ref.as_str()), (2, "refs/tags/v1"));
    assert_eq!((api.first_pushed_at, api.last_pushed_at), (10, 20));
    assert_eq!(main.len(), 1, "only the web image's last push was on main");
    assert_eq!(main[0].repository, "registry.example.com/web");
}
