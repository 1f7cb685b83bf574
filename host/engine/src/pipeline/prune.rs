//! What a set no longer uses is deprovisioned once the new set serves; what cannot be
//! stays, with the reason, for the next deployment to try again.

use super::deploy::{Context, Resolved};
use super::run::Run;
use super::{StepError, failure};
use crate::provision::{self, Entry, Journal, Progress};
use crate::target::Target;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use wharf_core::graph;
use wharf_core::score::resolve::Outputs;
use wharf_core::status::ErrorScope;
use wharf_plugins::Values;
use wharf_store::{provisioned, resources};

/// The `prune` step of a deployment whose workloads are verified: removes the target's
/// objects the set no longer has and deprovisions the resources it no longer uses, where
/// the target can tell that the new set serves, and says what it kept and why otherwise. A failure here is reported in the detail, and the deployment
/// stands.
pub(super) async fn after_deploy(
    run: &Run<'_>,
    resolved: &Resolved,
    outputs: &BTreeMap<String, Outputs>,
    target: &dyn Target,
) -> Value {
    if target.confirms_ready() {
        let objects = target.prune(&super::deploy::reference(&run.d)).await;
        let mut detail = prune(run, resolved, outputs).await.unwrap_or_else(|e| {
            tracing::warn!(message = %e.message, "pruning failed");
            json!({ "deprovisioned": [], "error": e.message })
        });
        match objects {
            Ok(objects) if objects.is_empty() => {}
            Ok(objects) => detail["objects"] = json!(objects),
            Err(e) => {
                tracing::warn!(error = %e, "pruning objects failed");
                detail["objects_error"] = json!(e.to_string());
            }
        }
        return detail;
    }
    let unused: Vec<&String> = resolved
        .context
        .records
        .iter()
        .filter(|r| !resolved.assignments.contains_key(&r.uid))
        .map(|r| &r.uid)
        .collect();
    json!({
        "deprovisioned": [],
        "kept": unused,
        "reason": format!(
            "the {} target cannot tell when the set it replaced stops serving, so what only \
             that set used stays until the environment is deleted (or the environment type's \
             target says \"prune\": true)",
            target.kind()
        ),
    })
}

/// Why each resource that stays was not deprovisioned, by uid.
type Kept = BTreeMap<String, String>;

/// Deprovisions the resources of the environment that the deployed set no longer uses
/// (the new set serves without them). What cannot be deprovisioned stays, marked failed
/// with the reason in `wharf status`, and the next deployment tries again; the deployment
/// itself has succeeded.
async fn prune(
    run: &Run<'_>,
    resolved: &Resolved,
    outputs: &BTreeMap<String, Outputs>,
) -> Result<Value, StepError> {
    let context = &resolved.context;
    let mut orphans: Vec<&provisioned::Record> = context
        .records
        .iter()
        .filter(|r| !resolved.assignments.contains_key(&r.uid))
        .collect();
    if orphans.is_empty() {
        return Ok(json!({ "deprovisioned": [] }));
    }
    let forgotten = to_forget(resolved, outputs, &orphans);
    if !forgotten.is_empty() {
        forget(run, forgotten.keys().cloned().collect()).await?;
        orphans.retain(|r| !forgotten.contains_key(&r.uid));
    }
    let (mut doomed, mut failed) = prepare(context, &orphans);
    record_unprepared(run, &orphans, &failed).await?;
    let gone = deprovision(run, resolved.env_type(), &doomed, &mut failed).await?;
    // After a failure, what was not tried stays too, for the next deployment.
    doomed.retain(|p| !gone.contains(&p.uid) && !failed.contains_key(&p.uid));
    for p in doomed {
        let why = "kept: not tried after the failure of another; the next deployment tries again";
        failed.insert(p.uid, why.into());
    }
    for (uid, message) in &failed {
        tracing::warn!(resource = %uid, %message, "a resource the set no longer uses stays");
    }
    let mut detail = json!({ "deprovisioned": gone, "failed": failed });
    if !forgotten.is_empty() {
        detail["forgotten"] = json!(forgotten);
    }
    Ok(detail)
}

/// The unused resources whose records are forgotten while the thing itself is not
/// touched, with why: one whose driver gave the same outputs as one in use is that same
/// thing under another name (a renamed workload or resource id that kept its database
/// name, say), and a definition that says so keeps what it provisioned where it is.
fn to_forget(
    resolved: &Resolved,
    outputs: &BTreeMap<String, Outputs>,
    orphans: &[&provisioned::Record],
) -> Kept {
    let mut forgotten = BTreeMap::new();
    for r in orphans {
        let same = outputs.iter().find(|(uid, o)| {
            let assignment = resolved.assignments.get(*uid);
            assignment.is_some_and(|a| a.driver == r.driver)
                && !o.values.is_empty()
                && r.outputs.as_object() == Some(&o.values)
        });
        if let Some((uid, _)) = same {
            forgotten.insert(r.uid.clone(), format!("the same as {uid}, which is in use"));
        }
    }
    let orphaning: BTreeSet<&str> = resolved
        .context
        .definitions
        .iter()
        .filter(|(d, _)| resources::orphans_on_deletion(d))
        .map(|(d, _)| d.id.as_str())
        .collect();
    for r in orphans {
        if !forgotten.contains_key(&r.uid) && orphaning.contains(r.definition.as_str()) {
            let why = format!(
                "orphaned: definition {} keeps what it provisioned (deletion_policy orphan)",
                r.definition
            );
            forgotten.insert(r.uid.clone(), why);
        }
    }
    forgotten
}

/// Deletes the records of `uids`.
async fn forget(run: &Run<'_>, uids: Vec<String>) -> Result<(), StepError> {
    let (app, env) = (run.d.app.clone(), run.d.env.clone());
    run.inner
        .store(move |conn| {
            for uid in &uids {
                provisioned::delete(conn, &app, &env, uid)?;
            }
            Ok(())
        })
        .await
}

/// The orphans that can be deprovisioned, with their configuration, and why each other
/// one stays: it cannot be configured, or an orphan that stays depends on it.
fn prepare(
    context: &Context,
    orphans: &[&provisioned::Record],
) -> (Vec<provision::Provisioned>, Kept) {
    let inputs: BTreeMap<String, Value> = context
        .definitions
        .iter()
        .map(|(d, inputs)| (d.id.clone(), inputs.clone()))
        .collect();
    let mut failed = BTreeMap::new();
    let mut doomed = Vec::new();
    for prepared in to_deprovision(orphans, &inputs, &context.records, "") {
        match prepared {
            Ok(p) => doomed.push(p),
            Err((uid, message)) => {
                failed.insert(uid, message);
            }
        }
    }
    let orphan_uids: BTreeSet<&str> = orphans.iter().map(|r| r.uid.as_str()).collect();
    loop {
        let kept: BTreeSet<String> = orphans
            .iter()
            .filter(|r| failed.contains_key(&r.uid))
            .flat_map(|r| r.depends_on.iter())
            .filter(|uid| orphan_uids.contains(uid.as_str()) && !failed.contains_key(*uid))
            .cloned()
            .collect();
        if kept.is_empty() {
            break;
        }
        for uid in kept {
            let why = "kept: a resource the set no longer uses, which stays, depends on it";
            failed.insert(uid, why.into());
        }
    }
    doomed.retain(|p| !failed.contains_key(&p.uid));
    (doomed, failed)
}

/// Marks each orphan that could not be prepared failed, with the reason, where status
/// shows it.
async fn record_unprepared(
    run: &Run<'_>,
    orphans: &[&provisioned::Record],
    failed: &Kept,
) -> Result<(), StepError> {
    let journal = run.journal();
    for r in orphans {
        let Some(message) = failed.get(&r.uid) else {
            continue;
        };
        if message.starts_with("kept: ") {
            continue;
        }
        let depends_on: BTreeSet<String> = r.depends_on.iter().cloned().collect();
        let entry = Entry {
            uid: &r.uid,
            operation: provision::Operation::Deprovision,
            definition: &r.definition,
            driver: &r.driver,
            depends_on: &depends_on,
            params: &r.params,
            progress: &Progress::Failed {
                message: message.clone(),
            },
        };
        journal
            .record(entry)
            .await
            .map_err(|m| failure(ErrorScope::Resource, &r.uid, m))?;
    }
    Ok(())
}

/// Deprovisions `doomed` and gives the uids that are gone; a driver's failure is added to
/// `failed`, and what was deprovisioned before it is gone too.
async fn deprovision(
    run: &Run<'_>,
    env_type: &str,
    doomed: &[provision::Provisioned],
    failed: &mut Kept,
) -> Result<Vec<String>, StepError> {
    let outcome = provision::deprovision(
        doomed,
        (&run.d.app, &run.d.env, env_type),
        run.inner.drivers.as_ref(),
        &run.journal(),
        run.inner.settings.limits,
    )
    .await;
    let e = match outcome {
        Ok(gone) => return Ok(gone),
        Err(provision::ProvisionError::Journal { uid, message }) => {
            return Err(failure(ErrorScope::Resource, uid, message));
        }
        Err(e) => e,
    };
    failed.insert(e.uid().to_string(), e.to_string());
    // The rows of what was deprovisioned before the failure are gone.
    let (app, env, sealer) = (
        run.d.app.clone(),
        run.d.env.clone(),
        run.inner.sealer.clone(),
    );
    let left: BTreeSet<String> = run
        .inner
        .store(move |conn| provisioned::list(conn, &sealer, &app, &env))
        .await?
        .into_iter()
        .map(|r| r.uid)
        .collect();
    Ok(doomed
        .iter()
        .filter(|p| !left.contains(&p.uid))
        .map(|p| p.uid.clone())
        .collect())
}

/// What deprovisioning `records` needs: each one with its driver configuration (its
/// definition's driver inputs, by definition id, resolved against the outputs of `all`),
/// or its uid and why it cannot be deprovisioned (`then` ends the advice to recreate a
/// missing definition).
pub(super) fn to_deprovision(
    records: &[&provisioned::Record],
    inputs: &BTreeMap<String, Value>,
    all: &[provisioned::Record],
    then: &str,
) -> Vec<Result<provision::Provisioned, (String, String)>> {
    let outputs: BTreeMap<String, Outputs> =
        all.iter().map(|r| (r.uid.clone(), outputs_of(r))).collect();
    records
        .iter()
        .map(|r| {
            let fail = |m: String| (r.uid.clone(), m);
            let inputs = inputs.get(&r.definition).ok_or_else(|| {
                fail(format!(
                    "its resource definition {} is gone, so its driver cannot be configured to \
                     deprovision it; create the definition again{then}",
                    r.definition
                ))
            })?;
            let (_, _, id) = split(&r.uid);
            let rewritten = graph::definition_inputs(inputs, id)
                .map_err(fail)?
                .rewritten;
            let config = provision::resolve_config(
                &Values {
                    values: rewritten["values"].clone(),
                    secrets: rewritten["secrets"].clone(),
                },
                &outputs,
            )
            .map_err(fail)?;
            Ok(provision::Provisioned {
                uid: r.uid.clone(),
                definition: r.definition.clone(),
                driver: r.driver.clone(),
                depends_on: r.depends_on.iter().cloned().collect(),
                params: r.params.clone(),
                state: r.state.clone(),
                config,
            })
        })
        .collect()
}

/// The outputs a record keeps, as placeholders resolve them.
pub(super) fn outputs_of(r: &provisioned::Record) -> Outputs {
    let object = |v: &Value| v.as_object().cloned().unwrap_or_default();
    Outputs {
        uid: r.uid.clone(),
        values: object(&r.outputs),
        secrets: object(&r.secrets),
        objects: r.objects.clone(),
    }
}

/// The type, class and id of a resource uid (`type.class#id`).
pub(super) fn split(uid: &str) -> (&str, &str, &str) {
    let (type_class, id) = uid.split_once('#').unwrap_or((uid, ""));
    let (res_type, class) = type_class.split_once('.').unwrap_or((type_class, ""));
    (res_type, class, id)
}
