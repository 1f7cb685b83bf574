//! `wharf plugin check` and `wharf plugin call`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wharf_plugins::{
    AuthzRequest, DriverRequest, Kind, Limits, Manifest, Plugin, Runtime, RuntimeConfig,
    TransformContext, Values,
};

#[derive(Subcommand)]
pub enum Command {
    /// List the plugins embedded in this binary, with their versions and digests.
    ListBundled {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check that FILE is a valid plugin of KIND and print what it says about itself.
    Check {
        /// The component (.wasm), or `bundled:NAME` for a plugin embedded in this binary.
        file: PathBuf,
        #[command(flatten)]
        plugin: PluginArgs,
    },
    /// Run one call of FILE's EXPORT in the sandbox and print the result as JSON.
    Call {
        /// The component (.wasm), or `bundled:NAME` for a plugin embedded in this binary.
        file: PathBuf,
        #[command(flatten)]
        plugin: PluginArgs,
        /// The export to call: describe, validate-config, then provision and deprovision
        /// (driver), authorize (policy) or transform (transformer).
        #[arg(long)]
        export: String,
        /// The call's input, a JSON file (`-` for standard input). Driver provision and
        /// deprovision: a request; validate-config: the configuration; authorize:
        /// {"config", "requests"}; transform: {"context", "config", "objects"}.
        #[arg(long)]
        input: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct PluginArgs {
    /// The kind of plugin: driver, policy or transformer.
    #[arg(long)]
    kind: Kind,
    /// Grant outbound HTTP to this origin (scheme://host[:port]); repeatable.
    #[arg(long = "grant-http", value_name = "ORIGIN")]
    grant_http: Vec<String>,
    /// Grant TCP connections to this address (ip:port); repeatable.
    #[arg(long = "grant-socket", value_name = "ADDR")]
    grant_socket: Vec<String>,
    /// Grant reading and writing this host directory (an absolute path, visible to the
    /// plugin at the same path); repeatable.
    #[arg(long = "grant-dir", value_name = "DIR")]
    grant_dir: Vec<String>,
    /// CPU budget per call, in milliseconds.
    #[arg(long, default_value_t = Limits::default().cpu_ms)]
    cpu_ms: u64,
    /// Memory limit, in MiB.
    #[arg(long, default_value_t = Limits::default().memory_bytes >> 20)]
    memory_mib: u64,
    /// Wall-clock timeout per call, in milliseconds.
    #[arg(long, default_value_t = Limits::default().wall_ms)]
    wall_ms: u64,
}

pub async fn run(command: Command, data_dir: &Path) -> anyhow::Result<ExitCode> {
    match command {
        Command::ListBundled { json: as_json } => {
            if as_json {
                let list: Vec<Value> = wharf_artifacts::BUNDLED
                    .iter()
                    .map(|b| {
                        json!({ "name": b.name, "kind": b.kind, "version": b.version,
                                "sha256": b.sha256, "bytes": b.bytes.len() })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<10} {:<12} {:<8} {:>9}  SHA256",
                    "NAME", "KIND", "VERSION", "BYTES"
                );
                for b in wharf_artifacts::BUNDLED {
                    println!(
                        "{:<10} {:<12} {:<8} {:>9}  {}",
                        b.name,
                        b.kind,
                        b.version,
                        b.bytes.len(),
                        b.sha256
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { file, plugin } => {
            let installed = install(&file, &plugin, data_dir).await?;
            let described = describe(&installed).await?;
            println!("{}", serde_json::to_string_pretty(&described)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Call {
            file,
            plugin,
            export,
            input,
        } => {
            let input = match &input {
                Some(path) => read_json(path)?,
                None => json!({}),
            };
            let installed = install(&file, &plugin, data_dir).await?;
            let output = call(&installed, &export, input).await?;
            println!("{}", serde_json::to_string_pretty(&output)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn install(file: &Path, args: &PluginArgs, data_dir: &Path) -> anyhow::Result<Plugin> {
    let bytes = match file.to_str().and_then(|f| f.strip_prefix("bundled:")) {
        Some(name) => match wharf_artifacts::BUNDLED.iter().find(|b| b.name == name) {
            Some(b) => b.bytes.to_vec(),
            None => {
                let names: Vec<&str> = wharf_artifacts::BUNDLED.iter().map(|b| b.name).collect();
                bail!("no bundled plugin {name:?}; bundled: {}", names.join(", "))
            }
        },
        None => {
            std::fs::read(file).with_context(|| format!("failed to read {}", file.display()))?
        }
    };
    let runtime = Runtime::new(RuntimeConfig::new(data_dir.join("plugin-cache")))
        .context("failed to start the plugin runtime")?;
    let name = file
        .to_str()
        .and_then(|f| f.strip_prefix("bundled:"))
        .map(str::to_string)
        .or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "plugin".into());
    let mut manifest = Manifest::new(&name, args.kind);
    manifest.grants.http = args.grant_http.clone();
    manifest.grants.sockets = args.grant_socket.clone();
    manifest.grants.directories = args.grant_dir.clone();
    manifest.limits = Limits {
        cpu_ms: args.cpu_ms,
        memory_bytes: args.memory_mib << 20,
        wall_ms: args.wall_ms,
        ..Limits::default()
    };
    runtime
        .install(&bytes, manifest)
        .await
        .with_context(|| format!("{} is not a valid {} plugin", file.display(), args.kind))
}

async fn describe(plugin: &Plugin) -> anyhow::Result<Value> {
    let described = match plugin {
        Plugin::Driver(d) => serde_json::to_value(d.describe().await?)?,
        Plugin::Policy(p) => json!({ "info": p.describe().await? }),
        Plugin::Transformer(t) => json!({ "info": t.describe().await? }),
    };
    let mut out = json!({ "kind": plugin.kind(), "sha256": plugin.digest() });
    if let (Some(out), Some(described)) = (out.as_object_mut(), described.as_object()) {
        out.extend(described.clone());
    }
    Ok(out)
}

async fn call(plugin: &Plugin, export: &str, input: Value) -> anyhow::Result<Value> {
    if export == "describe" {
        return describe(plugin).await;
    }
    let parse = |what: &str| format!("--input is not a valid {what}");
    Ok(match (plugin, export) {
        (Plugin::Driver(d), "validate-config") => {
            let config: Values = serde_json::from_value(input).with_context(|| parse("config"))?;
            json!({ "issues": d.validate_config(&config).await? })
        }
        (Plugin::Driver(d), "provision" | "deprovision") => {
            let request: DriverRequest =
                serde_json::from_value(input).with_context(|| parse("driver request"))?;
            let step = if export == "provision" {
                d.provision(&request).await?
            } else {
                d.deprovision(&request).await?
            };
            serde_json::to_value(step)?
        }
        (Plugin::Policy(p), "validate-config") => {
            json!({ "issues": p.validate_config(&input).await? })
        }
        (Plugin::Policy(p), "authorize") => {
            let requests: Vec<AuthzRequest> = serde_json::from_value(input["requests"].clone())
                .with_context(|| parse("list of requests"))?;
            json!({ "decisions": p.authorize(&input["config"], &requests).await? })
        }
        (Plugin::Transformer(t), "validate-config") => {
            json!({ "issues": t.validate_config(&input).await? })
        }
        (Plugin::Transformer(t), "transform") => {
            let context: TransformContext = serde_json::from_value(input["context"].clone())
                .with_context(|| parse("transform context"))?;
            let objects = input["objects"].as_array().cloned().unwrap_or_default();
            json!({ "objects": t.transform(&context, &input["config"], &objects).await? })
        }
        (plugin, export) => bail!(
            "a {} plugin has no export {export:?}; it has describe, validate-config and {}",
            plugin.kind(),
            match plugin.kind() {
                Kind::Driver => "provision, deprovision",
                Kind::Policy => "authorize",
                Kind::Transformer => "transform",
            }
        ),
    })
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("failed to read standard input")?
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("failed to read {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}
