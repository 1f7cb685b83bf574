//! The `gitops` target: writes each environment's objects as YAML files into
//! `ROOT/APP/ENV/`, one file per object (`kind-name.yaml`) plus a `kustomization.yaml`
//! listing them, for Argo CD or Flux to sync. When ROOT is a git work tree, each apply
//! is one commit.
//!
//! A directory is replaced whole: the new files are written to a temporary directory
//! next to it and swapped in with renames, so a reader never sees half an apply.
//!
//! No secret is ever written in clear, nor its base64. A Secret is either encrypted with
//! SOPS for the age recipients of the environment type's target (`"secrets": {"sops":
//! {"age": ["age1..."]}}`; Flux decrypts it with the matching key), or replaced by an
//! External Secrets Operator `ExternalSecret` that names where the cluster reads each
//! value (`"secrets": {"external_secrets": {"store": NAME, "store_kind":
//! "ClusterSecretStore", "key": "{app}/{env}/{name}"}}`). Without either, a set with a
//! Secret is refused. An encrypted Secret carries a keyed digest of what it holds
//! (`wharf.dev/secret-digest`): when that did not change, the file is kept as it was, so
//! an unchanged secret makes no commit. Files of secrets are 0600, and the directory that
//! holds them 0700.

mod sops;

use super::{Applied, BoxFuture, EnvRef, LogQuery, LogStream, Target, TargetError, WorkloadStatus};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use wharf_store::secrets::Sealer;

/// What the gitops target writes for a Secret.
#[derive(Debug, Clone, Default)]
pub enum Secrets {
    /// Nothing was configured: a set with a Secret is refused.
    #[default]
    Refused,
    /// Encrypted with SOPS for these age recipients.
    Sops(Vec<String>),
    /// An `ExternalSecret` reading each key from a store of the cluster.
    External {
        /// The SecretStore or ClusterSecretStore.
        store: String,
        /// `SecretStore` or `ClusterSecretStore`.
        store_kind: String,
        /// The remote key, with `{app}`, `{env}` and `{name}` replaced.
        key: String,
    },
}

/// Writes manifests under a root directory.
#[derive(Debug, Clone)]
pub struct Gitops {
    root: PathBuf,
    prune: bool,
    secrets: Secrets,
    sealer: Option<Sealer>,
}

impl Gitops {
    /// A target writing under `root` (created if needed).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            prune: false,
            secrets: Secrets::Refused,
            sealer: None,
        }
    }

    /// The target an environment type's `{"kind": "gitops", ...}` describes; `sealer`
    /// keys the digests of encrypted secrets.
    pub fn from_spec(spec: &wharf_core::target::GitopsSpec, sealer: Sealer) -> Self {
        use wharf_core::target::GitopsSecrets;
        let secrets = match &spec.secrets {
            None => Secrets::Refused,
            Some(GitopsSecrets::Sops { age }) => Secrets::Sops(age.clone()),
            Some(GitopsSecrets::ExternalSecrets {
                store,
                store_kind,
                key,
            }) => Secrets::External {
                store: store.clone(),
                store_kind: store_kind.clone(),
                key: key.clone(),
            },
        };
        Self {
            root: spec.path.clone(),
            prune: spec.prune,
            secrets,
            sealer: Some(sealer),
        }
    }

    /// Sets what is written for Secrets.
    pub fn with_secrets(mut self, secrets: Secrets, sealer: Sealer) -> Self {
        self.secrets = secrets;
        self.sealer = Some(sealer);
        self
    }

    /// Lets deployments deprovision what a new set no longer uses once it is written
    /// (see [`Target::confirms_ready`]).
    pub fn pruning(mut self, prune: bool) -> Self {
        self.prune = prune;
        self
    }

    fn dir(&self, env: &EnvRef) -> PathBuf {
        self.root.join(&env.app).join(&env.env)
    }

    fn system(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TargetError {
        let what = what.into();
        move |source| TargetError::System { what, source }
    }

    /// The file of each object (name, what it is, its text, whether it holds a secret),
    /// checked; a Secret as the target's configuration says, the text of an unchanged
    /// encrypted Secret kept from `previous`.
    fn files(
        &self,
        env: &EnvRef,
        objects: &[Value],
        previous: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, File>, TargetError> {
        let mut files = BTreeMap::new();
        for (index, object) in objects.iter().enumerate() {
            let kind = object["kind"].as_str().unwrap_or_default();
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let safe = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                    && !s.starts_with('.')
            };
            if !safe(kind) || !safe(name) {
                return Err(TargetError::Object {
                    index,
                    reason: format!(
                        "kind {kind:?} and metadata.name {name:?} must be non-empty names of \
                         letters, digits, dashes and dots"
                    ),
                });
            }
            let (file, text, secret) = if kind == "Secret" {
                self.secret(env, index, object, previous)?
            } else {
                (
                    format!("{}-{name}.yaml", kind.to_ascii_lowercase()),
                    wharf_core::yaml::to_string(object),
                    false,
                )
            };
            if files
                .insert(
                    file,
                    File {
                        what: format!("{kind}/{name}"),
                        text,
                        secret,
                    },
                )
                .is_some()
            {
                return Err(TargetError::Object {
                    index,
                    reason: format!("two objects are {kind}/{name}"),
                });
            }
        }
        Ok(files)
    }

    /// What is written for a Secret: its file name, its text, and that it is a secret.
    fn secret(
        &self,
        env: &EnvRef,
        index: usize,
        object: &Value,
        previous: &BTreeMap<String, String>,
    ) -> Result<(String, String, bool), TargetError> {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        match &self.secrets {
            Secrets::Refused => Err(TargetError::Object {
                index,
                reason: format!(
                    "Secret {name}: the gitops target writes no secret in clear; give the \
                     environment type's target \"secrets\": {{\"sops\": {{\"age\": \
                     [\"age1...\"]}}}} (Flux decrypts SOPS with the matching key) or \
                     {{\"external_secrets\": {{\"store\": \"...\"}}}}"
                ),
            }),
            Secrets::Sops(texts) => {
                let file = format!("secret-{name}.yaml");
                let recipients = sops::recipients(texts)
                    .map_err(|reason| TargetError::Object { index, reason })?;
                let sealer = self.sealer.as_ref().expect("set with the secrets");
                let digest = sealer.digest(
                    "gitops/secret",
                    json!([object, texts]).to_string().as_bytes(),
                );
                // Unchanged: the same file, so no new commit shows a change.
                if let Some(old) = previous.get(&file)
                    && serde_json::from_str::<Value>(old).is_ok_and(|o| {
                        o["metadata"]["annotations"]["wharf.dev/secret-digest"] == digest.as_str()
                    })
                {
                    return Ok((file, old.clone(), true));
                }
                let mut marked = object.clone();
                marked["metadata"]["annotations"]["wharf.dev/secret-digest"] = json!(digest);
                let encrypted =
                    sops::encrypt(&marked, &recipients, wharf_core::clock::now() as u64)
                        .map_err(|reason| TargetError::Object { index, reason })?;
                let text = serde_json::to_string_pretty(&encrypted).expect("JSON serializes");
                Ok((file, text + "\n", true))
            }
            Secrets::External {
                store,
                store_kind,
                key,
            } => {
                let remote = key
                    .replace("{app}", &env.app)
                    .replace("{env}", &env.env)
                    .replace("{name}", name);
                let keys: Vec<&String> = ["data", "stringData"]
                    .iter()
                    .flat_map(|f| object[*f].as_object().into_iter().flatten())
                    .map(|(k, _)| k)
                    .collect();
                let metadata = object["metadata"].clone();
                let external = json!({
                    "apiVersion": "external-secrets.io/v1",
                    "kind": "ExternalSecret",
                    "metadata": metadata,
                    "spec": {
                        "refreshInterval": "1h",
                        "secretStoreRef": { "name": store, "kind": store_kind },
                        "target": {
                            "name": name,
                            "creationPolicy": "Owner",
                            "template": { "type": object["type"].as_str().unwrap_or("Opaque") },
                        },
                        "data": keys.iter().map(|k| json!({
                            "secretKey": k,
                            "remoteRef": { "key": remote, "property": k },
                        })).collect::<Vec<_>>(),
                    },
                });
                Ok((
                    format!("externalsecret-{name}.yaml"),
                    wharf_core::yaml::to_string(&external),
                    true,
                ))
            }
        }
    }

    fn apply_now(&self, env: &EnvRef, objects: &[Value]) -> Result<Applied, TargetError> {
        let dir = self.dir(env);
        let previous = read_dir(&dir);
        let files = self.files(env, objects, &previous)?;
        let parent = dir.parent().expect("ROOT/APP/ENV has a parent");
        std::fs::create_dir_all(parent)
            .map_err(Self::system(format!("creating {}", parent.display())))?;
        let staging = parent.join(format!(".{}.new", env.env));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir(&staging)
            .map_err(Self::system(format!("creating {}", staging.display())))?;
        let mut changed = Vec::new();
        for (name, file) in &files {
            if previous.get(name) != Some(&file.text) {
                changed.push(file.what.clone());
            }
            write(&staging.join(name), &file.text, file.secret)
                .map_err(Self::system(format!("writing {name}")))?;
        }
        if files.values().any(|f| f.secret) {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o700))
                .map_err(Self::system(format!("restricting {}", staging.display())))?;
        }
        let kustomization = format!(
            "# Written by Wharf for {}/{} from set {}.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{}",
            env.app,
            env.env,
            env.set,
            files.keys().map(|f| format!("- {f}\n")).collect::<String>()
        );
        std::fs::write(staging.join("kustomization.yaml"), kustomization)
            .map_err(Self::system("writing kustomization.yaml"))?;
        let pruned: Vec<String> = previous
            .keys()
            .filter(|f| *f != "kustomization.yaml" && !files.contains_key(*f))
            .map(|f| f.trim_end_matches(".yaml").to_string())
            .collect();
        let old = parent.join(format!(".{}.old", env.env));
        let _ = std::fs::remove_dir_all(&old);
        if dir.exists() {
            std::fs::rename(&dir, &old)
                .map_err(Self::system(format!("moving {} aside", dir.display())))?;
        }
        std::fs::rename(&staging, &dir)
            .map_err(Self::system(format!("moving the new {} in", dir.display())))?;
        let _ = std::fs::remove_dir_all(&old);
        let location = match self.commit(
            env,
            &format!("Deploy {}/{} (set {})", env.app, env.env, short(&env.set)),
        )? {
            Some(commit) => format!("{} at commit {commit}", dir.display()),
            None => dir.display().to_string(),
        };
        Ok(Applied {
            changed,
            pruned,
            ignored: Vec::new(),
            location,
        })
    }

    /// Commits the environment's directory when the root is a git work tree; returns the
    /// commit, or None when there is no repository or nothing changed.
    fn commit(&self, env: &EnvRef, message: &str) -> Result<Option<String>, TargetError> {
        if !self.root.join(".git").exists() {
            return Ok(None);
        }
        let path = format!("{}/{}", env.app, env.env);
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(&self.root)
                .args(args)
                .output()
                .map_err(Self::system("running git"))
        };
        let add = git(&["add", "--all", "--", &path])?;
        if !add.status.success() {
            return Err(git_failed("git add", &add));
        }
        let staged = git(&["diff", "--cached", "--quiet", "--", &path])?;
        if staged.status.success() {
            return Ok(None);
        }
        let commit = git(&[
            "-c",
            "user.name=Wharf",
            "-c",
            "user.email=wharf@localhost",
            "commit",
            "--quiet",
            "-m",
            message,
            "--",
            &path,
        ])?;
        if !commit.status.success() {
            return Err(git_failed("git commit", &commit));
        }
        let head = git(&["rev-parse", "--short", "HEAD"])?;
        Ok(Some(
            String::from_utf8_lossy(&head.stdout).trim().to_string(),
        ))
    }

    fn remove_now(&self, env: &EnvRef) -> Result<(), TargetError> {
        let dir = self.dir(env);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(Self::system(format!("removing {}", dir.display())))?;
        }
        self.commit(env, &format!("Remove {}/{}", env.app, env.env))?;
        Ok(())
    }
}

/// One file of an environment's directory.
struct File {
    /// The object it holds, `Kind/name`.
    what: String,
    text: String,
    /// It holds a secret (encrypted, or where to read it): readable by its owner only.
    secret: bool,
}

/// Writes `text` to `path`, created 0600 when it holds a secret (never readable by
/// others, not even for a moment).
fn write(path: &Path, text: &str, secret: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

fn short(set: &str) -> &str {
    &set[..set.len().min(12)]
}

fn git_failed(what: &str, out: &std::process::Output) -> TargetError {
    TargetError::System {
        what: what.to_string(),
        source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

/// The files of a directory with their text (empty when it does not exist).
fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            Some((name, text))
        })
        .collect()
}

/// Runs file system work (and git) on the blocking pool, off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TargetError> + Send + 'static,
) -> Result<T, TargetError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(TargetError::System {
            what: "writing the manifests".into(),
            source: std::io::Error::other(e.to_string()),
        })
    })
}

impl Target for Gitops {
    fn kind(&self) -> &'static str {
        "gitops"
    }

    /// Argo CD or Flux applies the files later: when the old objects stop serving is
    /// not known here, unless the environment type says not to wait (`prune: true`).
    fn confirms_ready(&self) -> bool {
        self.prune
    }

    fn apply<'a>(
        &'a self,
        env: &'a EnvRef,
        objects: &'a [Value],
    ) -> BoxFuture<'a, Result<Applied, TargetError>> {
        let (this, env, objects) = (self.clone(), env.clone(), objects.to_vec());
        Box::pin(blocking(move || this.apply_now(&env, &objects)))
    }

    fn verify<'a>(
        &'a self,
        env: &'a EnvRef,
        _timeout: std::time::Duration,
    ) -> BoxFuture<'a, Result<Vec<WorkloadStatus>, TargetError>> {
        let (this, env) = (self.clone(), env.clone());
        Box::pin(blocking(move || Ok(this.written(&env))))
    }

    fn status<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Vec<WorkloadStatus>> {
        let (this, env) = (self.clone(), env.clone());
        Box::pin(async move {
            blocking(move || Ok(this.written(&env)))
                .await
                .unwrap_or_default()
        })
    }

    fn logs<'a>(
        &'a self,
        _env: &'a EnvRef,
        _query: LogQuery,
    ) -> BoxFuture<'a, Result<LogStream, TargetError>> {
        Box::pin(async move {
            Err(TargetError::Unsupported(
                "the gitops target writes manifests for Argo CD or Flux to apply; read the logs \
                 in the cluster they apply to"
                    .into(),
            ))
        })
    }

    fn remove<'a>(&'a self, env: &'a EnvRef) -> BoxFuture<'a, Result<(), TargetError>> {
        let (this, env) = (self.clone(), env.clone());
        Box::pin(blocking(move || this.remove_now(&env)))
    }
}

impl Gitops {
    /// Each Deployment written for the environment, as `written`: what happens next is
    /// up to the tool that syncs the directory.
    fn written(&self, env: &EnvRef) -> Vec<WorkloadStatus> {
        let dir = self.dir(env);
        read_dir(&dir)
            .keys()
            .filter_map(|f| f.strip_prefix("deployment-")?.strip_suffix(".yaml"))
            .map(|name| WorkloadStatus {
                name: name.to_string(),
                state: wharf_core::status::WorkloadState::Written,
                ready: true,
                reason: Some(format!("written to {}", dir.display())),
                endpoints: Vec::new(),
                containers: Vec::new(),
            })
            .collect()
    }
}
