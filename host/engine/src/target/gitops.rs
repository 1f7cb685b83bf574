//! The `gitops` target: writes each environment's objects as YAML files into
//! `ROOT/APP/ENV/`, one file per object (`kind-name.yaml`) plus a `kustomization.yaml`
//! listing them, for Argo CD or Flux to sync. When ROOT is a git work tree, each apply
//! is one commit.
//!
//! A directory is replaced whole: the new files are written to a temporary directory
//! next to it and swapped in with renames, so a reader never sees half an apply.

use super::{Applied, BoxFuture, EnvRef, LogQuery, LogStream, Target, TargetError, WorkloadStatus};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes manifests under a root directory.
#[derive(Debug, Clone)]
pub struct Gitops {
    root: PathBuf,
    prune: bool,
}

impl Gitops {
    /// A target writing under `root` (created if needed).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            prune: false,
        }
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

    /// The file name of each object, checked.
    fn files(objects: &[Value]) -> Result<BTreeMap<String, (String, String)>, TargetError> {
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
            let file = format!("{}-{name}.yaml", kind.to_ascii_lowercase());
            let yaml = wharf_core::yaml::to_string(object);
            if files
                .insert(file.clone(), (format!("{kind}/{name}"), yaml))
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

    fn apply_now(&self, env: &EnvRef, objects: &[Value]) -> Result<Applied, TargetError> {
        let files = Self::files(objects)?;
        let dir = self.dir(env);
        let parent = dir.parent().expect("ROOT/APP/ENV has a parent");
        std::fs::create_dir_all(parent)
            .map_err(Self::system(format!("creating {}", parent.display())))?;
        let previous = read_dir(&dir);
        let staging = parent.join(format!(".{}.new", env.env));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir(&staging)
            .map_err(Self::system(format!("creating {}", staging.display())))?;
        let mut changed = Vec::new();
        for (file, (what, yaml)) in &files {
            if previous.get(file) != Some(yaml) {
                changed.push(what.clone());
            }
            std::fs::write(staging.join(file), yaml)
                .map_err(Self::system(format!("writing {file}")))?;
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
                state: "written".into(),
                ready: true,
                reason: Some(format!("written to {}", dir.display())),
                endpoints: Vec::new(),
                containers: Vec::new(),
            })
            .collect()
    }
}
