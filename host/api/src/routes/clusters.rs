//! `/clusters`: the Kubernetes clusters environment types deploy to, managed by ops. The
//! credentials are sealed at rest and shown by kind only; no response, audit entry or log
//! line carries them.

use crate::auth::Caller;
use crate::authz::Target;
use crate::routes::{Body, Page, PageQuery, audit, id, page};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wharf_core::clock::now;
use wharf_engine::target::kubernetes::connect;
use wharf_store::clusters::{self, Cluster, Credentials};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, remove))
        .routes(routes!(check))
}

/// A cluster, without its credentials.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ClusterView {
    id: String,
    /// The API server's URL.
    server: String,
    /// Whether the API server's certificate is checked against a CA bundle of the cluster's
    /// own (else the system's roots).
    ca_bundle: bool,
    /// The kind of credentials, never their value: `token` or `client-certificate`.
    credentials: String,
    /// What ops gave: `token`, `client-certificate` or `kubeconfig`.
    source: String,
    /// The environment types whose target names it.
    used_by: Vec<String>,
    created_at: i64,
    created_by: String,
}

impl ClusterView {
    fn new(c: Cluster, used_by: Vec<String>) -> Self {
        Self {
            id: c.id,
            server: c.server,
            ca_bundle: c.ca_bundle.is_some(),
            credentials: match c.credentials {
                Credentials::Token(_) => "token".into(),
                Credentials::ClientCertificate { .. } => "client-certificate".into(),
            },
            source: c.source,
            used_by,
            created_at: c.created_at,
            created_by: c.created_by,
        }
    }
}

/// The body of `POST /clusters`: the server and one kind of credentials, or a kubeconfig
/// with one context whose cluster and user are inline.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCluster {
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 50)]
    id: String,
    /// The API server's URL (`https://...`; `http://` only on loopback).
    #[serde(default)]
    server: Option<String>,
    /// CA certificates for the API server, PEM.
    #[serde(default)]
    ca_bundle: Option<String>,
    /// A bearer token (a service account's).
    #[serde(default)]
    token: Option<String>,
    /// A client certificate, PEM, with `client_key`.
    #[serde(default)]
    client_certificate: Option<String>,
    /// The client certificate's private key, PEM.
    #[serde(default)]
    client_key: Option<String>,
    /// A kubeconfig (YAML) instead of the fields above.
    #[serde(default)]
    kubeconfig: Option<String>,
}

/// The cluster `new` describes, or every problem it has (with its JSON Pointer).
fn cluster(new: NewCluster, by: &str) -> Result<Cluster, ApiError> {
    let mut problems: Vec<(String, String)> = Vec::new();
    let cluster_id = id(&new.id, "id")?;
    let direct = new.server.is_some()
        || new.ca_bundle.is_some()
        || new.token.is_some()
        || new.client_certificate.is_some()
        || new.client_key.is_some();
    let (server, ca_bundle, credentials, source) = match (new.kubeconfig, direct) {
        (Some(_), true) => {
            return Err(ApiError::BadRequest(
                "give either a kubeconfig or server and credentials, not both".into(),
            ));
        }
        (Some(text), false) => match connect::from_kubeconfig(&text) {
            Ok(k) => (k.server, k.ca_bundle, Some(k.credentials), "kubeconfig"),
            Err(found) => {
                let found = found.into_iter().map(|p| ("/kubeconfig".to_string(), p));
                return Err(ApiError::Invalid(found.collect()));
            }
        },
        (None, _) => {
            let credentials = match (new.token, new.client_certificate, new.client_key) {
                (Some(token), None, None) => Some(Credentials::Token(token)),
                (None, Some(certificate), Some(key)) => {
                    Some(Credentials::ClientCertificate { certificate, key })
                }
                _ => {
                    problems.push((
                        "/token".into(),
                        "give a token, or client_certificate and client_key (or a kubeconfig)"
                            .into(),
                    ));
                    None
                }
            };
            let source = match &credentials {
                Some(Credentials::ClientCertificate { .. }) => "client-certificate",
                _ => "token",
            };
            (
                new.server.unwrap_or_default(),
                new.ca_bundle,
                credentials,
                source,
            )
        }
    };
    if let Err(why) = check_server(&server) {
        problems.push(("/server".into(), why));
    }
    if ca_bundle
        .as_ref()
        .is_some_and(|ca| !ca.contains("-----BEGIN CERTIFICATE-----"))
    {
        problems.push((
            "/ca_bundle".into(),
            "PEM certificates (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    match &credentials {
        Some(Credentials::Token(token))
            if token.is_empty()
                || token.len() > 16 << 10
                || token.chars().any(char::is_whitespace) =>
        {
            problems.push((
                "/token".into(),
                "a bearer token: no spaces or newlines, at most 16 KiB".into(),
            ));
        }
        Some(Credentials::ClientCertificate { certificate, key }) => {
            if !certificate.contains("-----BEGIN CERTIFICATE-----") {
                problems.push(("/client_certificate".into(), "a PEM certificate".into()));
            }
            if !key.contains("PRIVATE KEY-----") {
                problems.push(("/client_key".into(), "a PEM private key".into()));
            }
        }
        _ => {}
    }
    match credentials {
        Some(credentials) if problems.is_empty() => Ok(Cluster {
            id: cluster_id.to_string(),
            server,
            ca_bundle,
            source: source.to_string(),
            credentials,
            created_at: now(),
            created_by: by.to_string(),
        }),
        _ => Err(ApiError::Invalid(problems)),
    }
}

/// An API server URL: `https://host[:port][/path]`, or `http://` on a loopback address.
fn check_server(server: &str) -> Result<(), String> {
    let url = url::Url::parse(server).map_err(|e| format!("not a URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err("https:// (http:// only to a loopback address)".into()),
        _ => Err("the API server's https:// URL".into()),
    }
}

/// The environment types whose target names each cluster.
async fn users(state: &AppState) -> Result<Vec<(String, String)>, ApiError> {
    let types = state.store.call(wharf_store::envs::list_types).await?;
    Ok(types
        .into_iter()
        .filter_map(|t| {
            let spec = wharf_core::target::TargetSpec::parse(&t.target).ok()?;
            Some((spec.cluster()?.to_string(), t.id.to_string()))
        })
        .collect())
}

fn used_by(users: &[(String, String)], cluster: &str) -> Vec<String> {
    users
        .iter()
        .filter(|(c, _)| c == cluster)
        .map(|(_, t)| t.clone())
        .collect()
}

/// Lists the clusters.
#[utoipa::path(get, path = "/clusters", operation_id = "listClusters", tag = "clusters", params(PageQuery),
    responses((status = 200, description = "The clusters, without credentials", body = [ClusterView])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Page<ClusterView>, ApiError> {
    state
        .policies
        .authorize(&caller, "clusters.list", Target::default())
        .await?;
    let sealer = state.sealer.clone();
    let all = state
        .store
        .call(move |tx| clusters::list(tx, &sealer))
        .await?;
    let users = users(&state).await?;
    page(
        all.into_iter()
            .map(|c| {
                let used = used_by(&users, &c.id);
                ClusterView::new(c, used)
            })
            .collect(),
        |c: &ClusterView| c.id.clone(),
        &query,
        "/api/v1/clusters",
    )
}

/// Adds a cluster. Nothing is sent to it: `POST /clusters/{cluster}/check` connects.
#[utoipa::path(post, path = "/clusters", operation_id = "createCluster", tag = "clusters", request_body = NewCluster,
    responses((status = 201, description = "Added", body = ClusterView)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(new): Body<NewCluster>,
) -> Result<(StatusCode, Json<ClusterView>), ApiError> {
    let cluster_id = id(&new.id, "id")?;
    state
        .policies
        .authorize(&caller, "clusters.create", Target::default())
        .await?;
    let cluster = cluster(new, &caller.id)?;
    let (stored, sealer, principal) = (cluster.clone(), state.sealer.clone(), caller.id.clone());
    state
        .store
        .transaction(move |tx| {
            clusters::create(tx, &sealer, &stored)?;
            audit(
                tx,
                &principal,
                "clusters.create",
                format!("cluster:{cluster_id}"),
                json!({ "server": stored.server, "source": stored.source }),
            )
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ClusterView::new(cluster, Vec::new())),
    ))
}

async fn get(state: &AppState, cluster: &str) -> Result<Cluster, ApiError> {
    let (id, sealer) = (cluster.to_string(), state.sealer.clone());
    state
        .store
        .call(move |tx| clusters::get(tx, &sealer, &id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("cluster {cluster}")))
}

/// Shows a cluster, without its credentials.
#[utoipa::path(get, path = "/clusters/{cluster}", operation_id = "getCluster", tag = "clusters",
    params(("cluster" = String, Path, description = "The cluster's id")),
    responses((status = 200, description = "The cluster", body = ClusterView)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
) -> Result<Json<ClusterView>, ApiError> {
    id(&cluster, "cluster")?;
    state
        .policies
        .authorize(&caller, "clusters.get", Target::default())
        .await?;
    let found = get(&state, &cluster).await?;
    let used = used_by(&users(&state).await?, &cluster);
    Ok(Json(ClusterView::new(found, used)))
}

/// Removes a cluster that no environment type names (nothing in the cluster is touched).
#[utoipa::path(delete, path = "/clusters/{cluster}", operation_id = "deleteCluster", tag = "clusters",
    params(("cluster" = String, Path, description = "The cluster's id")),
    responses((status = 204, description = "Removed")))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
) -> Result<StatusCode, ApiError> {
    id(&cluster, "cluster")?;
    state
        .policies
        .authorize(&caller, "clusters.delete", Target::default())
        .await?;
    let used = used_by(&users(&state).await?, &cluster);
    if !used.is_empty() {
        return Err(ApiError::Conflict(format!(
            "cluster {cluster} is the target of environment types {}: change their targets first",
            used.join(", ")
        )));
    }
    crate::routes::delete_audited(
        &state,
        &caller.id,
        "clusters.delete",
        format!("cluster:{cluster}"),
        format!("cluster {cluster}"),
        move |tx| clusters::delete(tx, &cluster),
    )
    .await
}

/// What checking a cluster found.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CheckView {
    /// Whether the API server answered and every verb Wharf needs is allowed.
    ok: bool,
    /// The API server's version, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    /// Each verb on each resource Wharf needs, and whether the credentials may.
    #[schema(value_type = Vec<Object>)]
    access: Vec<connect::Access>,
    /// Why the check failed (the connection, the credentials, a missing permission).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Connects to a cluster: the server's version, and what the credentials may do
/// (SelfSubjectAccessReviews for the verbs the kubernetes target needs). A cluster that
/// cannot be reached is a 200 whose `error` says why.
#[utoipa::path(post, path = "/clusters/{cluster}/check", operation_id = "checkCluster", tag = "clusters",
    params(("cluster" = String, Path, description = "The cluster's id")),
    responses((status = 200, description = "What the check found", body = CheckView)))]
async fn check(
    State(state): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
) -> Result<Json<CheckView>, ApiError> {
    id(&cluster, "cluster")?;
    state
        .policies
        .authorize(&caller, "clusters.check", Target::default())
        .await?;
    let found = get(&state, &cluster).await?;
    let checked = match connect::client(&found, Some(connect::READ_TIMEOUT)).await {
        Ok(client) => {
            tokio::time::timeout(std::time::Duration::from_secs(30), connect::check(&client))
                .await
                .unwrap_or_else(|_| Err("no answer in 30 s".into()))
        }
        Err(e) => Err(e),
    };
    Ok(Json(match checked {
        Ok(c) => {
            let denied: Vec<String> = c
                .access
                .iter()
                .filter(|a| !a.allowed)
                .map(|a| format!("{} {}", a.verb, a.resource))
                .collect();
            CheckView {
                ok: denied.is_empty(),
                version: Some(c.version),
                error: (!denied.is_empty()).then(|| {
                    format!(
                        "the credentials may not {}; bind them to the ClusterRole in \
                         examples/kubernetes/wharf-clusterrole.yaml",
                        denied.join(", ")
                    )
                }),
                access: c.access,
            }
        }
        Err(e) => CheckView {
            ok: false,
            version: None,
            access: Vec::new(),
            error: Some(format!("cluster {cluster} ({}): {e}", found.server)),
        },
    }))
}
