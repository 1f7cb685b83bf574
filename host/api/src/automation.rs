//! What the server does on its own, as the principals who set it up: automation rules
//! deploy the artefacts CI pushes ([`on_push`]), and the reaper warns about and deletes
//! preview environments whose time to live ran out ([`spawn_reaper`]).
//!
//! A rule's deployment is decided by the policy chain as the rule's owner, with what it
//! deploys and the rule and artefact in the attributes; what each rule did with a push
//! (deployed, refused with the policy's reason, failed) is kept with the artefact.

use crate::auth::{Caller, principal_caller};
use crate::authz::Target;
use crate::routes::deployments::{content_attributes, done_step, env_target, queue, steps};
use crate::routes::{audit, blocking};
use crate::{ApiError, AppState};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use wharf_core::clock::{now, now_ms};
use wharf_core::glob;
use wharf_core::image::ImageRef;
use wharf_core::set::Set;
use wharf_core::status::{DeploymentKind, DeploymentStatus, Step};
use wharf_store::artefacts::Artefact;
use wharf_store::deployments::{self, Deployment};
use wharf_store::rules::{self, Outcome, Rule};
use wharf_store::{envs, sets};

/// The reference that names exactly the artefact's image, with its tag when it has one
/// (`registry.example.com/shop/api:1.4@sha256:...`).
pub(crate) fn image_of(a: &Artefact) -> String {
    match &a.tag {
        Some(tag) => format!("{}:{tag}@{}", a.repository, a.digest),
        None => format!("{}@{}", a.repository, a.digest),
    }
}

/// Runs every rule that is not paused and matches the pushed artefact (its repository
/// and git ref), except those that deployed it already; records what each did. A rule
/// runs only for a push by one of its pushers (when it names some) or by a developer of
/// its app: a principal of another app, or a viewer, cannot make an app deploy.
pub(crate) async fn on_push(
    state: &AppState,
    pusher: &Caller,
    artefact: &Artefact,
) -> Result<(), ApiError> {
    let id = artefact.id;
    let active = state.store.call(rules::active).await?;
    for rule in active {
        if !glob::matches(&rule.image, &artefact.repository) {
            continue;
        }
        let Some(captured) = glob::captures(&rule.git_ref, &artefact.git_ref) else {
            continue;
        };
        let key = format!("{}/{}", rule.env, rule.id);
        let (app, rule_key) = (rule.app.to_string(), key.clone());
        let done = state
            .store
            .call(move |conn| rules::deployed(conn, id, &app, &rule_key))
            .await?;
        if done {
            continue;
        }
        let n = captured.first().copied().unwrap_or_default();
        let (env, result) = match may_trigger(state, pusher, &rule).await? {
            Ok(()) => run(state, &rule, artefact, n).await,
            Err(ignored) => (rule.env.to_string(), Err(ignored)),
        };
        let (outcome, deployment, reason) = match result {
            Ok(d) => ("deployed", Some(d), String::new()),
            Err(ApiError::Clash(why)) if why.starts_with(IGNORED) => ("ignored", None, why),
            Err(e @ ApiError::Forbidden { .. }) | Err(e @ ApiError::Clash(_)) => {
                ("refused", None, e.to_string())
            }
            Err(e) => ("failed", None, e.to_string()),
        };
        tracing::info!(app = %rule.app, rule = %key, artefact = id, outcome, reason = %reason, "automation rule ran");
        let record = Outcome {
            artefact: id,
            app: rule.app.to_string(),
            env,
            rule: key,
            outcome: outcome.into(),
            pushed_by: pusher.id.clone(),
            deployment,
            reason,
            at: now(),
        };
        // Who acted: the rule's owner, or the pusher whose push it ignored.
        let actor = match outcome {
            "ignored" => pusher.id.clone(),
            _ => rule.owner.clone(),
        };
        state
            .store
            .transaction(move |tx| {
                rules::record(tx, &record)?;
                if record.outcome != "deployed" {
                    audit(
                        tx,
                        &actor,
                        "automation-rules.run",
                        format!("rule:{}/{}", record.app, record.rule),
                        json!({ "artefact": record.artefact, "env": record.env,
                                "outcome": record.outcome, "reason": record.reason }),
                    )?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(())
}

/// How the reason of a push that may not trigger a rule begins.
const IGNORED: &str = "pushed by";

/// Whether `pusher`'s push may trigger `rule`: it is one of the rule's pushers, or (when
/// the rule names none) it may see the rule's app.
async fn may_trigger(
    state: &AppState,
    pusher: &Caller,
    rule: &Rule,
) -> Result<Result<(), ApiError>, ApiError> {
    let refused = |why: String| Ok(Err(ApiError::Clash(why)));
    if !rule.pushers.is_empty() {
        if rule.pushers.contains(&pusher.id) {
            return Ok(Ok(()));
        }
        return refused(format!(
            "{IGNORED} {}, who is not one of the rule's pushers ({})",
            pusher.id,
            rule.pushers.join(", ")
        ));
    }
    let target = Target {
        app: Some(rule.app.to_string()),
        ..Target::default()
    };
    // Choosing what an app deploys is a developer's part: the right to set up its rules.
    let verdict = state
        .policies
        .decide(pusher, &[("automation-rules.create", target)])
        .await?;
    if verdict.first() == Some(&crate::authz::Verdict::Allow) {
        return Ok(Ok(()));
    }
    refused(format!(
        "{IGNORED} {}, who may not set up automation on app {} (a developer's right); name \
         it in the rule's pushers or make it a developer of the app",
        pusher.id, rule.app
    ))
}

/// The preview environment's id for what the ref's `*` matched: lowercase, other
/// characters as dashes.
fn preview_id(pattern: &str, n: &str) -> Result<wharf_core::Id, ApiError> {
    let n: String = n
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let name = pattern.replace("{n}", n.trim_matches('-'));
    wharf_core::Id::new(&name).map_err(|e| {
        ApiError::BadRequest(format!(
            "the preview environment's name {name:?} is not an id: {e}"
        ))
    })
}

/// What an environment runs now: its set and images, from its current deployment.
async fn running(
    state: &AppState,
    app: &str,
    env: &str,
) -> Result<Option<(Set, BTreeMap<String, String>)>, ApiError> {
    let (a, e) = (app.to_string(), env.to_string());
    let found = state
        .store
        .call(move |conn| {
            Ok(match deployments::current(conn, &a, &e)? {
                Some(d) => sets::get(conn, &a, &d.set_id)?.map(|s| (s.body, d.images)),
                None => None,
            })
        })
        .await?;
    let Some((body, images)) = found else {
        return Ok(None);
    };
    let set = blocking(move || {
        Set::from_json(body)
            .map_err(|p| ApiError::internal(format!("a stored set does not validate: {p:?}")))
    })
    .await?;
    Ok(Some((
        set,
        serde_json::from_value(images).unwrap_or_default(),
    )))
}

/// Carries out one rule for a push; gives the environment deployed and the deployment.
async fn run(
    state: &AppState,
    rule: &Rule,
    artefact: &Artefact,
    n: &str,
) -> (String, Result<i64, ApiError>) {
    let mut env = rule.env.to_string();
    let result = async {
        let owner = principal_caller(state, &rule.owner).await?;
        let app = rule.app.as_str();
        let mut base = None;
        if let Some(preview) = &rule.preview {
            let id = preview_id(&preview.name, n)?;
            env = id.to_string();
            let existing = load_env(state, app, &env).await?;
            if existing.as_ref().is_some_and(|e| e.lifecycle.ttl.is_none()) {
                return Err(ApiError::Clash(format!(
                    "environment {app}/{env} exists and is not a preview: a preview rule \
                     deploys only to the previews it makes"
                )));
            }
            if existing.is_none() {
                let env_type = match &preview.env_type {
                    Some(t) => t.clone(),
                    None => load_env(state, app, rule.env.as_str())
                        .await?
                        .map(|e| e.env_type.to_string())
                        .ok_or_else(|| {
                            ApiError::NotFound(format!("environment {app}/{}", rule.env))
                        })?,
                };
                state
                    .policies
                    .authorize(
                        &owner,
                        "environments.create",
                        env_target(app, &env, Some(&env_type)),
                    )
                    .await?;
                base = running(state, app, rule.env.as_str()).await?;
                if base.is_none() {
                    return Err(nothing_running(app, rule.env.as_str()));
                }
                let created = envs::Environment {
                    app: rule.app.clone(),
                    id: id.clone(),
                    env_type: wharf_core::Id::new(&env_type)
                        .map_err(|e| ApiError::BadRequest(format!("env_type: {e}")))?,
                    created_at: now(),
                    created_by: owner.id.clone(),
                    deleting: false,
                    lifecycle: envs::Lifecycle {
                        ttl: Some(preview.ttl),
                        expires_at: Some(now() + preview.ttl),
                        ..envs::Lifecycle::default()
                    },
                };
                crate::routes::envs::store_new(state, created).await?;
            }
        }
        let base = match base {
            Some(b) => b,
            None => match running(state, app, &env).await? {
                Some(b) => b,
                // A preview that never ran starts from the rule's environment.
                None => running(state, app, rule.env.as_str())
                    .await?
                    .ok_or_else(|| nothing_running(app, &env))?,
            },
        };
        let (set, mut images) = base;
        let image = image_of(artefact);
        for container in containers(rule, &set, &images, &artefact.repository)? {
            images.insert(container, image.clone());
        }
        let d = deploy_as(state, &owner, app, &env, set, images, rule, artefact).await?;
        Ok(d.id)
    }
    .await;
    (env, result)
}

fn nothing_running(app: &str, env: &str) -> ApiError {
    ApiError::Clash(format!(
        "environment {app}/{env} runs nothing yet, so there is no set for the rule to update; \
         deploy one first"
    ))
}

async fn load_env(
    state: &AppState,
    app: &str,
    env: &str,
) -> Result<Option<envs::Environment>, ApiError> {
    let (a, e) = (app.to_string(), env.to_string());
    Ok(state
        .store
        .call(move |conn| envs::get(conn, &a, &e))
        .await?)
}

/// The containers the rule updates, as `WORKLOAD/CONTAINER`: those it names (`CONTAINER`
/// in every workload that has one, or `WORKLOAD/CONTAINER`; each must be in the set),
/// else those whose image (as deployed now) names the artefact's repository.
fn containers(
    rule: &Rule,
    set: &Set,
    images: &BTreeMap<String, String>,
    repository: &str,
) -> Result<Vec<String>, ApiError> {
    let running = crate::routes::deployments::images_of(set, images);
    if !rule.containers.is_empty() {
        let mut chosen = Vec::new();
        for named in &rule.containers {
            let found: Vec<&String> = running
                .keys()
                .filter(|key| *key == named || key.split_once('/').is_some_and(|(_, c)| c == named))
                .collect();
            if found.is_empty() {
                return Err(ApiError::BadRequest(format!(
                    "the rule names container {named}, which the set does not have (it has {})",
                    running.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            chosen.extend(found.into_iter().cloned());
        }
        return Ok(chosen);
    }
    let same: Vec<String> = running
        .iter()
        .filter(|(_, image)| ImageRef::parse(image).is_ok_and(|i| i.repository == repository))
        .map(|(key, _)| key.clone())
        .collect();
    if same.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "no container of the set runs an image of {repository}; name the containers to \
             update in the rule (containers)"
        )));
    }
    Ok(same)
}

/// Queues a rule's deployment of `set` with `images`, decided by the policy chain as the
/// rule's owner.
#[allow(clippy::too_many_arguments)]
async fn deploy_as(
    state: &AppState,
    owner: &Caller,
    app: &str,
    env: &str,
    set: Set,
    images: BTreeMap<String, String>,
    rule: &Rule,
    artefact: &Artefact,
) -> Result<Deployment, ApiError> {
    let started = now_ms();
    let found = load_env(state, app, env)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("environment {app}/{env}")))?;
    let by = json!({ "rule": format!("{}/{}", rule.env, rule.id), "artefact": artefact.id,
                     "image": image_of(artefact), "ref": artefact.git_ref });
    let source = format!(
        "automation rule {}/{} for artefact {} ({})",
        rule.env,
        rule.id,
        artefact.id,
        image_of(artefact)
    );
    let mut attributes = content_attributes(&set, &images);
    attributes["automation"] = by.clone();
    attributes["source"] = json!(source);
    state
        .policies
        .authorize(
            owner,
            "deployments.create",
            Target {
                attributes,
                ..env_target(app, env, Some(found.env_type.as_str()))
            },
        )
        .await?;
    let accept = done_step(
        Step::Accept,
        started,
        json!({ "set": set.id(), "source": source, "automation": by }),
    );
    let authorize = done_step(
        Step::Authorize,
        started,
        json!({ "action": "deployments.create", "as": owner.id }),
    );
    let deployment = Deployment {
        app: app.to_string(),
        env: env.to_string(),
        id: 0,
        kind: DeploymentKind::Deploy,
        set_id: set.id(),
        images: json!(images),
        comment: source,
        status: DeploymentStatus::Queued,
        error: None,
        created_at_ms: now_ms(),
        created_by: owner.id.clone(),
        started_at_ms: None,
        finished_at_ms: None,
        steps: steps(DeploymentKind::Deploy, accept, authorize),
    };
    queue(state, owner, deployment, Some(set)).await
}

/// How the reaper works.
#[derive(Debug, Clone)]
pub struct ReaperSettings {
    /// How often it looks.
    pub interval: Duration,
    /// How long before an environment expires it warns.
    pub warn_before: Duration,
}

impl Default for ReaperSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            warn_before: Duration::from_secs(3600),
        }
    }
}

/// Who the reaper is in the audit log and on the deletions it makes.
pub const REAPER: &str = "system:reaper";

/// Starts the reaper: every `interval`, it warns about environments that expire within
/// `warn_before` (an audit entry and an `environment.expiring` event) and deletes those
/// that expired, by the normal deletion (workloads stopped, resources deprovisioned).
pub fn spawn_reaper(state: AppState, settings: ReaperSettings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = reap(&state, &settings).await {
                tracing::warn!(error = %e, "the reaper failed; it tries again");
            }
            tokio::time::sleep(settings.interval).await;
        }
    })
}

/// One round of the reaper.
pub async fn reap(state: &AppState, settings: &ReaperSettings) -> Result<(), ApiError> {
    let now = now();
    let warn_at = now + settings.warn_before.as_secs() as i64;
    let warned = state
        .store
        .transaction(move |tx| {
            let soon = envs::expiring(tx, warn_at, true)?;
            for e in &soon {
                let expires_at = e.lifecycle.expires_at.unwrap_or(now);
                envs::mark_warned(tx, e.app.as_str(), e.id.as_str(), now)?;
                let detail = json!({ "expires_at": expires_at,
                                     "expires_in_seconds": (expires_at - now).max(0) });
                audit(
                    tx,
                    REAPER,
                    "environments.expiring",
                    format!("env:{}/{}", e.app, e.id),
                    detail.clone(),
                )?;
                crate::outbound::emit(
                    tx,
                    "environment.expiring",
                    e.app.as_str(),
                    Some(e.id.as_str()),
                    detail,
                )?;
            }
            Ok(soon.len())
        })
        .await?;
    if warned > 0 {
        tracing::info!(environments = warned, "warned that environments expire");
    }
    let expired = state
        .store
        .call(move |conn| envs::expiring(conn, now, false))
        .await?;
    let reaper = Caller {
        id: REAPER.into(),
        kind: "service-account".into(),
        bindings: Vec::new(),
        token_expires_at: None,
    };
    for e in expired {
        // A deployment may have renewed it since it was listed.
        let (a, en) = (e.app.to_string(), e.id.to_string());
        let now_found = state
            .store
            .call(move |conn| envs::get(conn, &a, &en))
            .await?;
        let Some(still) =
            now_found.filter(|f| !f.deleting && f.lifecycle.expires_at.is_some_and(|at| at <= now))
        else {
            continue;
        };
        tracing::info!(app = %e.app, env = %e.id, "the environment expired; deleting it");
        if let Err(err) =
            crate::routes::envs::delete_environment(state, &reaper, &still, now_ms()).await
        {
            // One that cannot be deleted now does not hold up the others.
            tracing::warn!(app = %e.app, env = %e.id, error = %err, "deleting an expired environment failed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(containers: &[&str]) -> Rule {
        Rule {
            app: wharf_core::Id::new("shop").unwrap(),
            env: wharf_core::Id::new("dev").unwrap(),
            id: wharf_core::Id::new("main").unwrap(),
            image: "*".into(),
            git_ref: "*".into(),
            containers: containers.iter().map(|c| c.to_string()).collect(),
            pushers: Vec::new(),
            preview: None,
            paused: false,
            owner: "admin".into(),
            created_at: 0,
        }
    }

    /// Two workloads whose containers share a name, each with its own repository.
    fn set() -> Set {
        let workload = |name: &str, image: &str| {
            serde_json::from_value(json!({
                "apiVersion": "score.dev/v1b1", "metadata": { "name": name },
                "containers": { "main": { "image": image } }
            }))
            .unwrap()
        };
        Set::new(vec![
            workload("api", "reg/shop/api:1"),
            workload("worker", "reg/shop/worker:1"),
        ])
        .unwrap()
    }

    #[test]
    fn a_rule_updates_the_containers_of_the_repository_in_their_own_workload() {
        let none = BTreeMap::new();
        let found = containers(&rule(&[]), &set(), &none, "reg/shop/worker").unwrap();
        assert_eq!(found, ["worker/main"]);
        // What runs now counts: an image given earlier to api/main.
        let given = BTreeMap::from([("api/main".to_string(), "reg/shop/worker:2".to_string())]);
        let found = containers(&rule(&[]), &set(), &given, "reg/shop/worker").unwrap();
        assert_eq!(found, ["api/main", "worker/main"]);
        let named = containers(&rule(&["api/main"]), &set(), &none, "x").unwrap();
        assert_eq!(named, ["api/main"]);
        let by_name = containers(&rule(&["main"]), &set(), &none, "x").unwrap();
        assert_eq!(by_name, ["api/main", "worker/main"]);
        let err = containers(&rule(&["db"]), &set(), &none, "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("container db, which the set does not have"),
            "{err}"
        );
        let err = containers(&rule(&[]), &set(), &none, "reg/other")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no container of the set runs an image of reg/other"),
            "{err}"
        );
    }

    #[test]
    fn previews_are_named_from_the_ref() {
        assert_eq!(preview_id("pr-{n}", "7").unwrap().as_str(), "pr-7");
        assert_eq!(
            preview_id("pr-{n}", "Feature/X_1").unwrap().as_str(),
            "pr-feature-x-1"
        );
        assert!(preview_id("pr-{n}", "").is_err());
    }
}
