//! `/artefacts`: the container images CI hands over, each with its digest, the git ref and
//! commit it was built from. An image is named by its digest: a tag can be moved to
//! another image, so a tag alone is refused. Pushing the same image again is the same
//! artefact (its latest ref, commit and push count are kept).

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::{Body, Page, audit, page_read, query_escape};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::clock::now;
use wharf_core::image::ImageRef;
use wharf_store::artefacts::{self as stored, Artefact, Filter, Push};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, push))
        .routes(routes!(show))
}

/// An image CI pushed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArtefactView {
    /// Its number.
    id: i64,
    /// The reference that names exactly this image: `repository@digest`.
    image: String,
    /// `registry.example.com/shop/api`.
    repository: String,
    /// `sha256:...`.
    digest: String,
    /// The tag of the latest push, if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    /// The git ref of the latest push (`refs/heads/main`).
    #[serde(rename = "ref")]
    git_ref: String,
    /// The commit of the latest push.
    commit: String,
    /// Who pushed it last.
    pushed_by: String,
    /// When it was first pushed (Unix seconds).
    first_pushed_at: i64,
    /// When it was last pushed (Unix seconds).
    last_pushed_at: i64,
    /// How many times it was pushed.
    pushes: i64,
    /// What automation rules did with it (not in lists): deployed it, or why not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    outcomes: Vec<OutcomeView>,
}

/// What an automation rule did with a push.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OutcomeView {
    app: String,
    /// The environment deployed (a preview's own).
    env: String,
    /// The rule, as `ENV/RULE`.
    rule: String,
    /// `deployed`, `refused` (a policy or a paused environment said no), `failed`, or
    /// `ignored` (the pusher may not trigger the rule).
    outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment: Option<i64>,
    /// Why it was refused or failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    reason: String,
    at: i64,
}

impl From<wharf_store::rules::Outcome> for OutcomeView {
    fn from(o: wharf_store::rules::Outcome) -> Self {
        Self {
            app: o.app,
            env: o.env,
            rule: o.rule,
            outcome: o.outcome,
            deployment: o.deployment,
            reason: o.reason,
            at: o.at,
        }
    }
}

impl From<Artefact> for ArtefactView {
    fn from(a: Artefact) -> Self {
        Self {
            id: a.id,
            image: format!("{}@{}", a.repository, a.digest),
            repository: a.repository,
            digest: a.digest,
            tag: a.tag,
            git_ref: a.git_ref,
            commit: a.git_commit,
            pushed_by: a.pushed_by,
            first_pushed_at: a.first_pushed_at,
            last_pushed_at: a.last_pushed_at,
            pushes: a.pushes,
            outcomes: Vec::new(),
        }
    }
}

/// The body of `POST /artefacts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewArtefact {
    /// The image with its digest: `registry.example.com/shop/api@sha256:...` (a tag may
    /// come before the digest: `...:1.4.2@sha256:...`).
    image: String,
    /// The git ref it was built from (`refs/heads/main`, `refs/pull/7/head`).
    #[serde(default, rename = "ref")]
    git_ref: String,
    /// The commit it was built from (hex, 7 to 64 digits).
    #[serde(default)]
    commit: String,
}

/// Every problem of a push, by field.
fn check(new: &NewArtefact) -> Result<ImageRef, ApiError> {
    let mut problems = Vec::new();
    let image = match ImageRef::parse(&new.image) {
        Ok(i) if i.digest.is_none() => {
            problems.push(format!(
                "image: {:?} has no digest, and a tag can be moved to another image; push \
                 IMAGE@sha256:... (`docker buildx imagetools inspect` or `crane digest` \
                 prints it)",
                new.image
            ));
            None
        }
        Ok(i) => Some(i),
        Err(e) => {
            problems.push(format!("image: {e}"));
            None
        }
    };
    let r = &new.git_ref;
    if !r.is_empty()
        && (!r.starts_with("refs/")
            || r.len() > 255
            || r.chars()
                .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c)))
    {
        problems.push(format!(
            "ref: {r:?} is not a git ref; write it in full, as refs/heads/main or \
             refs/pull/7/head"
        ));
    }
    let c = &new.commit;
    if !c.is_empty()
        && (!(7..=64).contains(&c.len()) || !c.chars().all(|ch| ch.is_ascii_hexdigit()))
    {
        problems.push(format!(
            "commit: {c:?} is not a commit id (7 to 64 hex digits)"
        ));
    }
    match image {
        Some(i) if problems.is_empty() => Ok(i),
        _ => Err(ApiError::BadRequest(problems.join("; "))),
    }
}

/// Registers an image CI built: 201 when it is new, 200 when the same image (repository
/// and digest) was pushed before.
#[utoipa::path(post, path = "/artefacts", operation_id = "pushArtefact", tag = "artefacts", request_body = NewArtefact,
    responses((status = 201, description = "A new artefact", body = ArtefactView),
              (status = 200, description = "The image was pushed before: the same artefact", body = ArtefactView)))]
async fn push(
    State(state): State<AppState>,
    caller: Caller,
    Body(new): Body<NewArtefact>,
) -> Result<(StatusCode, Json<ArtefactView>), ApiError> {
    let image = check(&new)?;
    let target = Target {
        object: Some(format!("artefact:{}", image.repository)),
        attributes: json!({ "image": image.to_string(), "ref": new.git_ref }),
        ..Target::default()
    };
    state
        .policies
        .authorize(&caller, "artefacts.create", target)
        .await?;
    let by = caller.id.clone();
    let (artefact, created) = state
        .store
        .transaction(move |tx| {
            let pushed = stored::push(
                tx,
                &Push {
                    repository: &image.repository,
                    digest: image.digest.as_deref().expect("checked to have a digest"),
                    tag: image.tag.as_deref(),
                    git_ref: &new.git_ref,
                    git_commit: &new.commit,
                    by: &by,
                    at: now(),
                },
            )?;
            let detail = json!({ "artefact": pushed.0.id, "image": image.to_string(),
                                 "ref": new.git_ref, "commit": new.commit, "new": pushed.1 });
            audit(
                tx,
                &by,
                "artefacts.create",
                format!("artefact:{}", pushed.0.id),
                detail.clone(),
            )?;
            let event = wharf_store::webhooks::OutEvent {
                kind: "artefact.pushed".into(),
                app: None,
                env: None,
                subject: format!("artefacts/{}", pushed.0.id),
                data: detail,
            };
            wharf_store::webhooks::emit(tx, &event, wharf_core::clock::now_ms())?;
            Ok(pushed)
        })
        .await?;
    // The rules run once the push is stored: a rule that fails does not undo the push.
    crate::automation::on_push(&state, &caller, &artefact).await?;
    let view = with_outcomes(&state, &caller, artefact).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// The artefact's view with what rules did with it, of the apps the caller may see: what
/// an app's rules do is the app's business.
async fn with_outcomes(
    state: &AppState,
    caller: &Caller,
    artefact: Artefact,
) -> Result<ArtefactView, ApiError> {
    let id = artefact.id;
    let outcomes = state
        .store
        .call(move |conn| wharf_store::rules::outcomes(conn, id))
        .await?;
    let apps: Vec<String> = outcomes
        .iter()
        .map(|o| o.app.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let asks: Vec<(&str, Target)> = apps
        .iter()
        .map(|a| {
            let target = Target {
                app: Some(a.clone()),
                ..Target::default()
            };
            ("automation-rules.list", target)
        })
        .collect();
    let verdicts = state.policies.decide(caller, &asks).await?;
    let visible: Vec<&String> = apps
        .iter()
        .zip(verdicts)
        .filter(|(_, v)| *v == crate::authz::Verdict::Allow)
        .map(|(a, _)| a)
        .collect();
    let mut view = ArtefactView::from(artefact);
    // The app's members see every outcome; a pusher sees what its own pushes made the
    // rules that take them do (a rule names it, or it has a role on the app).
    view.outcomes = outcomes
        .into_iter()
        .filter(|o| {
            visible.contains(&&o.app) || (o.pushed_by == caller.id && o.outcome != "ignored")
        })
        .map(Into::into)
        .collect();
    Ok(view)
}

/// Which artefacts a listing shows.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ArtefactQuery {
    /// Only images whose repository starts with this (`registry.example.com/shop/`).
    repository: Option<String>,
    /// Only images whose latest push was from this git ref.
    #[serde(rename = "ref")]
    #[param(rename = "ref")]
    git_ref: Option<String>,
    /// Only artefacts numbered after this (the `next` link carries it).
    after: Option<i64>,
    /// How many at most (1 to 1000; 100 when absent).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Lists the artefacts, oldest first.
#[utoipa::path(get, path = "/artefacts", operation_id = "listArtefacts", tag = "artefacts", params(ArtefactQuery),
    responses((status = 200, description = "The artefacts", body = [ArtefactView])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ArtefactQuery>,
) -> Result<Page<ArtefactView>, ApiError> {
    state
        .policies
        .authorize(&caller, "artefacts.list", Target::default())
        .await?;
    let size = match query.limit {
        None => 100,
        Some(n @ 1..=1000) => n as usize,
        Some(n) => {
            return Err(ApiError::BadRequest(format!(
                "limit: {n} is out of range; ask for 1 to 1000 items"
            )));
        }
    };
    let filter = Filter {
        repository: query.repository.clone(),
        git_ref: query.git_ref.clone(),
        after: query.after,
        limit: size + 1,
    };
    let found = state
        .store
        .call(move |conn| stored::list(conn, &filter))
        .await?;
    let mut base = format!("/api/v1/artefacts?limit={size}");
    for (key, value) in [("repository", &query.repository), ("ref", &query.git_ref)] {
        if let Some(v) = value {
            base.push_str(&format!("&{key}={}", query_escape(v)));
        }
    }
    let views: Vec<ArtefactView> = found.into_iter().map(Into::into).collect();
    Ok(page_read(views, size, |last| {
        format!("{base}&after={}", last.id)
    }))
}

/// Shows an artefact.
#[utoipa::path(get, path = "/artefacts/{artefact}", operation_id = "getArtefact", tag = "artefacts",
    params(("artefact" = i64, Path, description = "The artefact's number")),
    responses((status = 200, description = "The artefact", body = ArtefactView)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(artefact): Path<String>,
) -> Result<Json<ArtefactView>, ApiError> {
    state
        .policies
        .authorize(&caller, "artefacts.get", Target::default())
        .await?;
    let n: i64 = artefact.parse().map_err(|_| {
        ApiError::NotFound(format!("artefact {artefact:?} (artefacts are numbered)"))
    })?;
    let found = state
        .store
        .call(move |conn| stored::get(conn, n))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("artefact {n}")))?;
    Ok(Json(with_outcomes(&state, &caller, found).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(image: &str, git_ref: &str, commit: &str) -> NewArtefact {
        NewArtefact {
            image: image.into(),
            git_ref: git_ref.into(),
            commit: commit.into(),
        }
    }

    #[test]
    fn every_problem_of_a_push_is_named() {
        let err = check(&new("shop/api:1.2", "main", "xyz"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no digest"), "{err}");
        assert!(err.contains("ref: \"main\" is not a git ref"), "{err}");
        assert!(err.contains("commit: \"xyz\""), "{err}");
        let digest = format!("sha256:{}", "0f".repeat(32));
        let ok = check(&new(
            &format!("shop/api@{digest}"),
            "refs/pull/7/head",
            "a1b2c3d",
        ))
        .unwrap();
        assert_eq!(ok.digest.as_deref(), Some(digest.as_str()));
    }
}
