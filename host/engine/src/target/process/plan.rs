//! Planning: the objects of a deployment turned into what the process target runs, each
//! workload's processes with their files, links, ports, environment and probes, all
//! checked before anything runs. Pure but for the local ports it reserves.

use super::confine::{self, Reach};
use super::spec::{ContainerSpec, PortSpec, Probe, WorkloadSpec};
use super::{Options, object_error, system};
use crate::target::TargetError;
use base64::Engine as _;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

mod volume;

/// A container file system path (`/app/x`) under `root`, refusing `..`.
pub(super) fn under(root: &Path, target: &str) -> Option<PathBuf> {
    let relative = Path::new(target.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Some(root.join(relative))
}

pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// The bytes of `key` in a ConfigMap (`binaryData` or `data`) or Secret (`data` or
/// `stringData`).
pub(super) fn key_bytes(object: &Value, key: &str) -> Option<Vec<u8>> {
    if object["kind"] == "Secret" {
        if let Some(v) = object["data"][key].as_str() {
            return decode(v);
        }
        return object["stringData"][key]
            .as_str()
            .map(|s| s.as_bytes().to_vec());
    }
    if let Some(v) = object["binaryData"][key].as_str() {
        return decode(v);
    }
    object["data"][key].as_str().map(|s| s.as_bytes().to_vec())
}

/// Turns the objects into workload specs, checking everything. Returns the specs by
/// name, and the objects this target has no use for (`Kind/name`).
pub(super) fn plan(
    objects: &[Value],
    dir: &Path,
    run: &Path,
    options: &Options,
    previous_ports: &BTreeMap<String, u16>,
    in_use: &[u16],
) -> Result<(BTreeMap<String, WorkloadSpec>, Vec<String>), TargetError> {
    let mut by_kind: HashMap<(&str, &str), (usize, &Value)> = HashMap::new();
    let mut deployments = Vec::new();
    let mut services = Vec::new();
    let mut ignored = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let kind = o["kind"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        if name.is_empty() || kind.is_empty() {
            return Err(object_error(i, "an object needs a kind and metadata.name"));
        }
        match kind {
            "Deployment" | "StatefulSet" => deployments.push((i, o)),
            "Service" => services.push((i, o)),
            "ConfigMap" | "Secret" => {
                by_kind.insert((kind, name), (i, o));
            }
            _ => ignored.push(format!("{kind}/{name}")),
        }
    }
    let mut planner = Planner {
        by_kind,
        services,
        dir,
        run,
        options,
        previous_ports,
        in_use,
        held: Vec::new(),
    };
    let mut specs = BTreeMap::new();
    for (i, d) in deployments {
        let spec = planner.workload(i, d)?;
        specs.insert(spec.name.clone(), spec);
    }
    Ok((specs, ignored))
}

/// What planning one set of objects knows.
struct Planner<'a> {
    /// The ConfigMaps and Secrets, by kind and name, with their place in the list.
    by_kind: HashMap<(&'a str, &'a str), (usize, &'a Value)>,
    /// The Services, with their place.
    services: Vec<(usize, &'a Value)>,
    /// The environment's state directory.
    dir: &'a Path,
    /// The environment's directory of containers and volumes.
    run: &'a Path,
    options: &'a Options,
    /// The local ports of the last apply, by `WORKLOAD/PORT`.
    previous_ports: &'a BTreeMap<String, u16>,
    /// The local ports the environment's running workloads hold.
    in_use: &'a [u16],
    /// Every allocated port's listener, held until planning ends so that no two get the
    /// same.
    held: Vec<std::net::TcpListener>,
}

/// One container being planned: its workload and name, for messages.
struct At<'a> {
    index: usize,
    workload: &'a str,
    container: &'a str,
}

impl At<'_> {
    fn error(&self, what: impl std::fmt::Display) -> TargetError {
        object_error(
            self.index,
            format!(
                "Deployment {}, container {}: {what}",
                self.workload, self.container
            ),
        )
    }
}

/// The strings of a JSON array of strings.
fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

impl Planner<'_> {
    /// One Deployment: its ports, then each container.
    fn workload(&mut self, i: usize, d: &Value) -> Result<WorkloadSpec, TargetError> {
        let name = d["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ports = self.ports(&name, &d["spec"]["template"]["metadata"]["labels"])?;
        let pod = &d["spec"]["template"]["spec"];
        let volumes: HashMap<&str, &Value> = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| Some((v["name"].as_str()?, v)))
            .collect();
        let mut spec = WorkloadSpec {
            name: name.clone(),
            ports,
            containers: Vec::new(),
            files: Vec::new(),
            links: Vec::new(),
        };
        for c in pod["containers"].as_array().into_iter().flatten() {
            let container = self.container(i, &name, c, &volumes, &mut spec)?;
            spec.containers.push(container);
        }
        if spec.containers.is_empty() {
            return Err(object_error(
                i,
                format!(
                    "{} {name} has no containers",
                    d["kind"].as_str().unwrap_or("Deployment")
                ),
            ));
        }
        Ok(spec)
    }

    /// The ports of the Services that select the workload's pods, each with a local port
    /// (the one it had when it is still free), by name.
    fn ports(&mut self, workload: &str, labels: &Value) -> Result<Vec<PortSpec>, TargetError> {
        let mut ports = Vec::new();
        for (si, s) in self.services.clone() {
            let selects = s["spec"]["selector"].as_object().is_some_and(|sel| {
                !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
            });
            if !selects {
                continue;
            }
            for p in s["spec"]["ports"].as_array().into_iter().flatten() {
                let port_name = p["name"].as_str().unwrap_or_default().to_string();
                let Some(port) = p["port"].as_u64().and_then(|n| u16::try_from(n).ok()) else {
                    return Err(object_error(si, "spec.ports[].port must be a port number"));
                };
                let target = p["targetPort"]
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .unwrap_or(port);
                let wanted = self
                    .previous_ports
                    .get(&format!("{workload}/{port_name}"))
                    .copied();
                let local = allocate(wanted, self.in_use, &mut self.held)
                    .map_err(system("allocating a local port"))?;
                ports.push(PortSpec {
                    name: port_name,
                    port,
                    target,
                    protocol: p["protocol"].as_str().unwrap_or("TCP").to_string(),
                    local,
                });
            }
        }
        ports.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ports)
    }

    /// One container: its command, mounts, environment and probes, and what it may reach.
    fn container(
        &self,
        index: usize,
        workload: &str,
        c: &Value,
        volumes: &HashMap<&str, &Value>,
        spec: &mut WorkloadSpec,
    ) -> Result<ContainerSpec, TargetError> {
        let name = c["name"].as_str().unwrap_or_default().to_string();
        let at = At {
            index,
            workload,
            container: &name,
        };
        let command = match strings(&c["command"]) {
            Some(command) if !command.is_empty() => command,
            _ => {
                return Err(at.error(format!(
                    "no command; the process target runs commands, not images (it does not \
                     pull {}): give the container a `command` in its Score file",
                    c["image"]
                        .as_str()
                        .map_or("images".into(), |i| format!("{i:?}"))
                )));
            }
        };
        let args = strings(&c["args"]).unwrap_or_default();
        let root = self.run.join("workloads").join(workload).join(&name);
        let links_before = spec.links.len();
        let mounts = self.mounts(&at, c, &root, volumes, spec)?;
        let rewrite = |s: &str| -> String {
            for m in &mounts {
                if !m.is_empty()
                    && (s == m
                        || s.strip_prefix(m.as_str())
                            .is_some_and(|r| r.starts_with('/')))
                {
                    return root.join(s.trim_start_matches('/')).display().to_string();
                }
            }
            s.to_string()
        };
        let env = self.environment(&at, c, &root, &spec.ports, &rewrite)?;
        let readiness = probe(&at, c, "readinessProbe", &spec.ports, &rewrite)?;
        let liveness = probe(&at, c, "livenessProbe", &spec.ports, &rewrite)?;
        let mut all: Vec<String> = command.iter().chain(&args).map(|s| rewrite(s)).collect();
        let program = all.remove(0);
        let mine = &spec.links[links_before..];
        let reach = Reach {
            own: std::iter::once(root.clone())
                .chain(mine.iter().filter(|l| l.create).map(|l| l.to.clone()))
                .collect(),
            volumes: mine
                .iter()
                .filter(|l| !l.create)
                .map(|l| l.to.clone())
                .collect(),
            readable: self.options.read_only.clone(),
            unconfined: self.options.unconfined,
        };
        Ok(ContainerSpec {
            reach,
            log: self.dir.join("logs").join(format!("{workload}.{name}.log")),
            // The server's record of the workload (pid files), apart from what it sees.
            pid_file: self
                .dir
                .join("workloads")
                .join(workload)
                .join(format!("{name}.pid")),
            name,
            workload: workload.to_string(),
            program,
            args: all,
            env,
            dir: root,
            readiness,
            liveness,
            ports: spec
                .ports
                .iter()
                .filter(|p| p.protocol == "TCP")
                .map(|p| p.local)
                .collect(),
        })
    }

    /// The container's volume mounts, added to the workload's files and links; returns
    /// the mount paths, longest first (to rewrite the paths that name them).
    fn mounts(
        &self,
        at: &At<'_>,
        c: &Value,
        root: &Path,
        volumes: &HashMap<&str, &Value>,
        spec: &mut WorkloadSpec,
    ) -> Result<Vec<String>, TargetError> {
        let mut mounts: Vec<String> = Vec::new();
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            let vname = m["name"].as_str().unwrap_or_default();
            let mount = m["mountPath"].as_str().unwrap_or_default();
            let Some(path) = under(root, mount).filter(|_| mount.starts_with('/')) else {
                return Err(at.error(format!(
                    "mountPath {mount:?} must be an absolute path without `..`"
                )));
            };
            let Some(volume) = volumes.get(vname) else {
                return Err(at.error(format!("no volume named {vname:?}")));
            };
            let sub = m["subPath"].as_str().filter(|s| !s.is_empty());
            mounts.push(mount.trim_end_matches('/').to_string());
            self.mount_volume(volume, &path, sub, at.workload, spec)
                .map_err(|why| at.error(format!("volume {vname}: {why}")))?;
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        Ok(mounts)
    }

    /// The container's environment: its variables (values, and keys of the Secrets and
    /// ConfigMaps), the ports, and what this target sets.
    fn environment(
        &self,
        at: &At<'_>,
        c: &Value,
        root: &Path,
        ports: &[PortSpec],
        rewrite: &dyn Fn(&str) -> String,
    ) -> Result<Vec<(String, String)>, TargetError> {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for e in c["env"].as_array().into_iter().flatten() {
            let var = e["name"].as_str().unwrap_or_default().to_string();
            let value = self.variable(at, &var, e)?;
            env.insert(var, rewrite(&value));
        }
        if let Some(first) = ports.iter().find(|p| p.protocol == "TCP") {
            env.insert("PORT".into(), first.local.to_string());
        }
        for p in ports {
            let var: String = p
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            env.insert(format!("WHARF_PORT_{var}"), p.local.to_string());
        }
        // The process target runs commands, not images: it tells the command which image
        // it stands for, so that a workload can tell its version (the tag an automation
        // rule deployed).
        if let Some(image) = c["image"].as_str().filter(|i| !i.is_empty()) {
            env.insert("WHARF_IMAGE".into(), image.to_string());
        }
        env.insert("HOME".into(), root.display().to_string());
        env.insert("TMPDIR".into(), root.join("tmp").display().to_string());
        env.insert(
            "PATH".into(),
            confine::workload_path(
                &std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
                &self.options.read_only,
                self.options.unconfined,
            ),
        );
        Ok(env.into_iter().collect())
    }

    /// The value of one variable: given, or from a key of a Secret or ConfigMap.
    fn variable(&self, at: &At<'_>, var: &str, e: &Value) -> Result<String, TargetError> {
        if let Some(v) = e["value"].as_str() {
            return Ok(v.to_string());
        }
        if e.get("value").is_none_or(Value::is_null)
            && e.get("valueFrom").is_none_or(Value::is_null)
        {
            return Ok(String::new());
        }
        let from = &e["valueFrom"];
        let (kind, r) = if from["secretKeyRef"].is_object() {
            ("Secret", &from["secretKeyRef"])
        } else if from["configMapKeyRef"].is_object() {
            ("ConfigMap", &from["configMapKeyRef"])
        } else {
            return Err(at.error(format!(
                "variable {var}: only values, secretKeyRef and configMapKeyRef can be resolved \
                 here"
            )));
        };
        let (oname, k) = (
            r["name"].as_str().unwrap_or_default(),
            r["key"].as_str().unwrap_or_default(),
        );
        let bytes = self
            .by_kind
            .get(&(kind, oname))
            .and_then(|(_, o)| key_bytes(o, k))
            .ok_or_else(|| at.error(format!("variable {var}: {kind} {oname} has no key {k:?}")))?;
        String::from_utf8(bytes)
            .map_err(|_| at.error(format!("variable {var}: the value is not UTF-8")))
    }
}

/// A readiness or liveness probe (`field`), with ports made local and paths rewritten.
fn probe(
    at: &At<'_>,
    c: &Value,
    field: &str,
    ports: &[PortSpec],
    rewrite: &dyn Fn(&str) -> String,
) -> Result<Option<Probe>, TargetError> {
    let p = &c[field];
    if p.is_null() {
        return Ok(None);
    }
    if let Some(http) = p.get("httpGet") {
        let port = match &http["port"] {
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Value::String(named) => ports.iter().find(|p| p.name == *named).map(|p| p.target),
            _ => None,
        }
        .ok_or_else(|| at.error(format!("{field}: no usable port")))?;
        let local = ports
            .iter()
            .find(|p| p.target == port)
            .map_or(port, |p| p.local);
        return Ok(Some(Probe::Http {
            port: local,
            path: http["path"].as_str().unwrap_or("/").to_string(),
            host: http["host"].as_str().unwrap_or("127.0.0.1").to_string(),
            tcp_only: http["scheme"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("https")),
            headers: http["httpHeaders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| Some((h["name"].as_str()?.into(), h["value"].as_str()?.into())))
                .collect(),
        }));
    }
    if let Some(command) = strings(&p["exec"]["command"]).filter(|c| !c.is_empty()) {
        return Ok(Some(Probe::Exec {
            command: command.iter().map(|s| rewrite(s)).collect(),
        }));
    }
    Err(at.error(format!("{field}: needs httpGet or exec")))
}

/// A local port: `wanted` when it is ours or free, else a new one.
pub(super) fn allocate(
    wanted: Option<u16>,
    in_use: &[u16],
    held: &mut Vec<std::net::TcpListener>,
) -> std::io::Result<u16> {
    if let Some(port) = wanted {
        if in_use.contains(&port) {
            return Ok(port);
        }
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
            return Ok(port);
        }
    }
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let port = l.local_addr()?.port();
    held.push(l);
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::process::spec::digest;
    use serde_json::json;

    fn deployment(container: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "web" },
            "spec": { "template": {
                "metadata": { "labels": { "app.kubernetes.io/instance": "shop-dev-web" } },
                "spec": {
                    "containers": [container],
                    "volumes": [{ "name": "files", "configMap": { "name": "web-files",
                        "items": [{ "key": "main-1", "path": "main-1", "mode": 420 }] } }]
                }
            } }
        })
    }

    #[test]
    fn a_container_without_a_command_is_refused_with_what_to_do() {
        let objects = [deployment(json!({ "name": "main", "image": "nginx" }))];
        let err = plan(
            &objects,
            Path::new("/tmp/x"),
            Path::new("/tmp/w"),
            &Options::default(),
            &BTreeMap::new(),
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("runs commands, not images"), "{text}");
        assert!(text.contains("\"nginx\""), "{text}");
    }

    #[test]
    fn mounted_paths_in_arguments_and_variables_are_rewritten_and_ports_passed() {
        let objects = [
            json!({ "kind": "ConfigMap", "metadata": { "name": "web-files" },
                    "binaryData": { "main-1": "aGVsbG8=" } }),
            json!({ "kind": "Service", "metadata": { "name": "web" }, "spec": {
                "selector": { "app.kubernetes.io/instance": "shop-dev-web" },
                "ports": [{ "name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP" }]
            } }),
            json!({ "kind": "NetworkPolicy", "metadata": { "name": "deny" } }),
            deployment(json!({
                "name": "main", "image": "python", "command": ["python3"],
                "args": ["/app/server.py", "/elsewhere"],
                "env": [{ "name": "CONFIG", "value": "/app/server.py" }, { "name": "PORT", "value": "8080" }],
                "readinessProbe": { "httpGet": { "path": "/", "port": 8080 } },
                "volumeMounts": [{ "name": "files", "mountPath": "/app/server.py", "subPath": "main-1" }]
            })),
        ];
        let (specs, ignored) = plan(
            &objects,
            Path::new("/d"),
            Path::new("/w"),
            &Options::default(),
            &BTreeMap::new(),
            &[],
        )
        .unwrap();
        assert_eq!(ignored, ["NetworkPolicy/deny"]);
        let web = &specs["web"];
        let c = &web.containers[0];
        assert_eq!(c.program, "python3");
        assert_eq!(
            c.args,
            ["/w/workloads/web/main/app/server.py", "/elsewhere"]
        );
        let env: BTreeMap<_, _> = c.env.iter().cloned().collect();
        assert_eq!(env["CONFIG"], "/w/workloads/web/main/app/server.py");
        let local = web.ports[0].local;
        assert_ne!(local, 8080);
        assert_eq!(env["PORT"], local.to_string(), "the local port wins");
        assert_eq!(env["WHARF_PORT_HTTP"], local.to_string());
        assert!(!env.contains_key("WHARF_SECRET_KEY"));
        assert_eq!(env["TMPDIR"], "/w/workloads/web/main/tmp");
        assert_eq!(c.reach.own, [Path::new("/w/workloads/web/main")]);
        assert!(c.reach.volumes.is_empty() && !c.reach.unconfined);
        assert_eq!(
            c.readiness,
            Some(Probe::Http {
                port: local,
                path: "/".into(),
                host: "127.0.0.1".into(),
                tcp_only: false,
                headers: vec![]
            }),
            "a probe on the target port goes to the local port"
        );
        assert_eq!(
            web.files[0].path,
            Path::new("/w/workloads/web/main/app/server.py")
        );
        assert_eq!(web.files[0].bytes, b"hello");
        assert_eq!(web.files[0].mode, 0o644);
        let again = plan(
            &objects,
            Path::new("/d"),
            Path::new("/w"),
            &Options::default(),
            &BTreeMap::from([("web/http".to_string(), local)]),
            &[local],
        )
        .unwrap()
        .0;
        assert_eq!(again["web"].ports[0].local, local, "ports are kept");
        assert_eq!(digest(&again["web"]), digest(web));
    }
}
