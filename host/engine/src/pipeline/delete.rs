//! An environment's deletion: `stop` (the target removes everything), `deprovision`
//! (reverse dependency order) and `remove` (the environment's rows).

use super::run::{Failed, Run};
use super::{StepError, What, failure, prune};
use crate::provision;
use crate::target::EnvRef;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use wharf_core::clock::now_ms;
use wharf_core::status::{ErrorScope, Step, StepStatus};
use wharf_core::target::{InvalidTarget, TargetSpec};
use wharf_store::{apps, audit, envs, provisioned, resources};

/// What the environment holds, read when its workloads are stopped.
struct Held {
    env_type: envs::EnvType,
    records: Vec<provisioned::Record>,
    /// The driver inputs of each record's definition, by definition id.
    definitions: BTreeMap<String, Value>,
    /// The definitions that keep what they provisioned (deletion_policy orphan).
    orphaning: BTreeSet<String>,
}

/// Carries out an environment's deletion, step by step.
pub(super) async fn delete(run: &Run<'_>) -> Result<(), Failed> {
    let held = run.step(Step::Stop, stop(run)).await?;
    let (gone, orphaned) = run.step(Step::Deprovision, deprovision(run, &held)).await?;
    run.step(Step::Remove, remove(run, gone, orphaned)).await
}

/// Reads what the environment holds, then has its target remove every workload.
async fn stop(run: &Run<'_>) -> Result<(Held, Value), StepError> {
    let held = read(run).await?;
    let env_type = held.env_type.id.to_string();
    let spec = TargetSpec::parse(&held.env_type.target).map_err(|problems| {
        failure(
            ErrorScope::Target,
            &env_type,
            InvalidTarget(problems).to_string(),
        )
    })?;
    let target = run
        .inner
        .target(&spec)
        .await
        .map_err(|e| failure(ErrorScope::Target, spec.kind_name(), e.to_string()))?;
    let reference = EnvRef {
        app: run.d.app.clone(),
        env: run.d.env.clone(),
        set: String::new(),
        deployment: run.d.id,
    };
    target
        .remove(&reference)
        .await
        .map_err(|e| failure(ErrorScope::Target, target.kind(), e.to_string()))?;
    Ok((held, json!({ "target": target.kind() })))
}

async fn read(run: &Run<'_>) -> Result<Held, StepError> {
    let (app, env) = (run.d.app.clone(), run.d.env.clone());
    let sealer = run.inner.sealer.clone();
    let (env_type, records, definitions, orphaning) = run
        .inner
        .store(move |conn| {
            let env_type = match envs::get(conn, &app, &env)? {
                Some(e) => envs::get_type(conn, e.env_type.as_str())?,
                None => None,
            };
            let records = provisioned::list(conn, &sealer, &app, &env)?;
            let mut definitions = BTreeMap::new();
            let mut orphaning = BTreeSet::new();
            for r in &records {
                if !definitions.contains_key(&r.definition)
                    && let Some(d) = resources::get_definition(conn, &r.definition)?
                {
                    if resources::orphans_on_deletion(&d) {
                        orphaning.insert(d.id.clone());
                    }
                    let inputs = resources::driver_inputs(&sealer, &d)?;
                    definitions.insert(r.definition.clone(), inputs);
                }
            }
            Ok((env_type, records, definitions, orphaning))
        })
        .await?;
    let env_type = env_type.ok_or_else(|| {
        let object = format!("{}/{}", run.d.app, run.d.env);
        failure(
            ErrorScope::Environment,
            object,
            "the environment or its type is gone",
        )
    })?;
    Ok(Held {
        env_type,
        records,
        definitions,
        orphaning,
    })
}

/// Deprovisions every resource but those a definition keeps; gives the uids deprovisioned
/// and those orphaned.
async fn deprovision(
    run: &Run<'_>,
    held: &Held,
) -> Result<((Vec<String>, Vec<String>), Value), StepError> {
    let (kept, all): (Vec<&provisioned::Record>, Vec<&provisioned::Record>) = held
        .records
        .iter()
        .partition(|r| held.orphaning.contains(&r.definition));
    let orphaned: Vec<String> = kept.iter().map(|r| r.uid.clone()).collect();
    let then = ", then delete the environment";
    let doomed = prune::to_deprovision(&all, &held.definitions, &held.records, then)
        .into_iter()
        .map(|prepared| {
            prepared.map_err(|(uid, message)| failure(ErrorScope::Resource, uid, message))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let gone = provision::deprovision(
        &doomed,
        (&run.d.app, &run.d.env, held.env_type.id.as_str()),
        run.inner.drivers.as_ref(),
        &run.journal(),
        run.inner.settings.limits,
    )
    .await
    .map_err(|e| failure(ErrorScope::Resource, e.uid(), e.to_string()))?;
    let detail = json!({ "deprovisioned": &gone, "orphaned": &orphaned });
    Ok(((gone, orphaned), detail))
}

/// Removes the environment's rows (and its app's, when it was the last environment of
/// an app being deleted); the audit log keeps what the deletion did.
async fn remove(
    run: &Run<'_>,
    gone: Vec<String>,
    orphaned: Vec<String>,
) -> Result<((), Value), StepError> {
    let (app, env) = (run.d.app.clone(), run.d.env.clone());
    // Announced before the rows go: a listener reads the step, then the end.
    let position = run.position(Step::Remove);
    run.inner.emit(
        &run.d,
        What::Step {
            position,
            name: Step::Remove,
            status: StepStatus::Done,
            detail: json!({}),
            error: None,
            duration_ms: None,
        },
    );
    let event = audit::Event {
        seq: 0,
        at: now_ms() / 1000,
        principal: run.d.created_by.clone(),
        action: "environments.deleted".into(),
        target: format!("env:{app}/{env}"),
        detail: json!({ "deployment": run.d.id, "deprovisioned": gone, "orphaned": orphaned }),
    };
    let deleted = wharf_store::webhooks::OutEvent {
        kind: "environment.deleted".into(),
        app: Some(app.clone()),
        env: Some(env.clone()),
        subject: format!("deployments/{}", run.d.id),
        data: json!({ "app": app, "env": env, "deployment": run.d.id, "by": run.d.created_by,
                      "deprovisioned": event.detail["deprovisioned"] }),
    };
    run.inner
        .store(move |tx| {
            envs::delete(tx, &app, &env)?;
            audit::record(tx, &event)?;
            wharf_store::webhooks::emit(tx, &deleted, now_ms())?;
            if apps::delete_if_done(tx, &app)? {
                let last = audit::Event {
                    action: "apps.deleted".into(),
                    target: format!("app:{app}"),
                    detail: json!({ "last_environment": env }),
                    ..event.clone()
                };
                audit::record(tx, &last)?;
            }
            Ok(())
        })
        .await?;
    Ok(((), json!({})))
}
