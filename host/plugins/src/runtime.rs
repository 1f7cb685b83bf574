//! The runtime: one wasmtime `Engine` for every plugin, the shared `Linker`, the compile
//! cache, the concurrency budgets, and installation.

use crate::cache::CompileCache;
use crate::error::{Error, PluginFailure};
use crate::manifest::{Kind, Manifest};
use crate::sandbox::{self, HostState, Sandbox, TICK};
use crate::{DriverPlugin, PolicyPlugin, TransformerPlugin};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::{Semaphore, SemaphorePermit};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

/// Settings of a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled plugins are cached (created if missing).
    pub cache_dir: PathBuf,
    /// Driver and transformer calls running at once; more wait their turn.
    pub max_calls: usize,
    /// Policy calls running at once, on a budget of their own so that a burst of driver
    /// calls never delays authorization.
    pub max_policy_calls: usize,
    /// Idle warm instances kept per policy or transformer installation.
    pub warm_instances: usize,
    /// Largest component accepted, in bytes.
    pub max_component_bytes: usize,
    /// Largest memory limit an installation may ask for, in bytes.
    pub max_memory_bytes: u64,
}

impl RuntimeConfig {
    /// Defaults, with the cache in `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            max_calls: 32,
            max_policy_calls: 32,
            warm_instances: 4,
            max_component_bytes: 64 << 20,
            max_memory_bytes: 1 << 30,
        }
    }
}

/// Counters, for tests, metrics and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuntimeStats {
    /// Components compiled by this runtime.
    pub compiles: u64,
    /// Components loaded from the compile cache.
    pub cache_loads: u64,
    /// Calls served by a reused warm instance.
    pub warm_hits: u64,
}

/// The plugin runtime. Cheap to clone; every clone shares the engine and the budgets.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub engine: Engine,
    pub linker: Linker<HostState>,
    cache: CompileCache,
    calls: Semaphore,
    policy_calls: Semaphore,
    pub config: RuntimeConfig,
    pooling: bool,
    compiles: AtomicU64,
    cache_loads: AtomicU64,
    pub warm_hits: AtomicU64,
}

/// An installed plugin, of one of the three kinds.
#[derive(Clone)]
pub enum Plugin {
    /// A resource driver.
    Driver(DriverPlugin),
    /// An authorization policy.
    Policy(PolicyPlugin),
    /// A configuration transformer.
    Transformer(TransformerPlugin),
}

impl Plugin {
    /// The sha256 of the component, hex.
    pub fn digest(&self) -> &str {
        &self.loaded().digest
    }

    /// The plugin's kind.
    pub fn kind(&self) -> Kind {
        self.loaded().sandbox.kind
    }

    fn loaded(&self) -> &Loaded {
        match self {
            Self::Driver(p) => &p.loaded,
            Self::Policy(p) => &p.loaded,
            Self::Transformer(p) => &p.loaded,
        }
    }
}

/// What every kind of installed plugin holds.
pub(crate) struct Loaded {
    pub runtime: Runtime,
    pub sandbox: Sandbox,
    pub digest: String,
}

/// The boxed future of one step of a call.
pub(crate) type CallFuture<'a, T> = Pin<Box<dyn Future<Output = wasmtime::Result<T>> + Send + 'a>>;

impl Runtime {
    /// Creates the engine (pooling allocator, copy-on-write memory images, epoch
    /// interruption), links the host interfaces, opens the compile cache and starts the
    /// epoch ticker, which stops when the last clone of the runtime is dropped.
    pub fn new(config: RuntimeConfig) -> Result<Self, Error> {
        let instances = (config.max_calls + config.max_policy_calls) as u32
            + (2 * config.warm_instances as u32) * 16;
        let (engine, pooling) = match Engine::new(&engine_config(&config, Some(instances))) {
            Ok(engine) => (engine, true),
            Err(error) => {
                tracing::warn!(
                    error = %error,
                    "cannot reserve address space for the pooling allocator; \
                     falling back to on-demand allocation (slower instantiation)"
                );
                let engine = Engine::new(&engine_config(&config, None)).map_err(Error::Engine)?;
                (engine, false)
            }
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(Error::Engine)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(Error::Engine)?;
        crate::bindings::base::wharf::plugin::log::add_to_linker::<
            _,
            wasmtime::component::HasSelf<_>,
        >(&mut linker, |s| s)
        .map_err(Error::Engine)?;
        let cache = CompileCache::open(&config.cache_dir, &engine)?;

        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wharf-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|e| Error::Engine(wasmtime::Error::from(e)))?;

        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                calls: Semaphore::new(config.max_calls),
                policy_calls: Semaphore::new(config.max_policy_calls),
                config,
                pooling,
                compiles: AtomicU64::new(0),
                cache_loads: AtomicU64::new(0),
                warm_hits: AtomicU64::new(0),
            }),
        })
    }

    /// True when the pooling allocator is in use (false after the on-demand fallback).
    pub fn pooling(&self) -> bool {
        self.inner.pooling
    }

    /// Counters since this runtime was created.
    pub fn stats(&self) -> RuntimeStats {
        RuntimeStats {
            compiles: self.inner.compiles.load(Ordering::Relaxed),
            cache_loads: self.inner.cache_loads.load(Ordering::Relaxed),
            warm_hits: self.inner.warm_hits.load(Ordering::Relaxed),
        }
    }

    /// Where the compiled artifact of the component with `digest` is cached.
    pub fn cache_path(&self, digest: &str) -> PathBuf {
        self.inner.cache.artifact_path(digest)
    }

    /// Installs a plugin: checks the manifest, checks that `bytes` are a component that
    /// implements the world of `manifest.kind`, and compiles it (or loads the compiled
    /// code from the cache). Nothing of the plugin runs.
    pub async fn install(&self, bytes: &[u8], manifest: Manifest) -> Result<Plugin, Error> {
        let grants = manifest.validate(self.inner.config.max_memory_bytes)?;
        let limit = self.inner.config.max_component_bytes;
        if bytes.len() > limit {
            return Err(Error::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        crate::check::sniff(bytes)?;
        let digest = hex::encode(Sha256::digest(bytes));
        let component = self.load(bytes.to_vec(), digest.clone()).await?;
        crate::check::world(&self.inner.engine, &component, manifest.kind)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| world_error(manifest.kind, e))?;
        let loaded = Arc::new(Loaded {
            runtime: self.clone(),
            sandbox: Sandbox {
                name: manifest.name.as_str().into(),
                kind: manifest.kind,
                limits: manifest.limits,
                grants: Arc::new(grants),
            },
            digest,
        });
        let kind = manifest.kind;
        Ok(match kind {
            Kind::Driver => {
                Plugin::Driver(DriverPlugin::new(loaded, pre).map_err(|e| world_error(kind, e))?)
            }
            Kind::Policy => {
                Plugin::Policy(PolicyPlugin::new(loaded, pre).map_err(|e| world_error(kind, e))?)
            }
            Kind::Transformer => Plugin::Transformer(
                TransformerPlugin::new(loaded, pre).map_err(|e| world_error(kind, e))?,
            ),
        })
    }

    /// Loads the compiled component from the cache, or compiles and caches it.
    async fn load(&self, bytes: Vec<u8>, digest: String) -> Result<Component, Error> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(code) = inner.cache.load(&digest) {
                // SAFETY: the code was produced by this host's engine and its MAC, under a
                // key only this host has, verified: it is not attacker-controlled.
                match unsafe { Component::deserialize(&inner.engine, &code) } {
                    Ok(component) => {
                        inner.cache_loads.fetch_add(1, Ordering::Relaxed);
                        return Ok(component);
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, digest, "cached plugin does not load; recompiling");
                    }
                }
            }
            let started = Instant::now();
            let code = inner
                .engine
                .precompile_component(&bytes)
                .map_err(Error::Invalid)?;
            inner.compiles.fetch_add(1, Ordering::Relaxed);
            tracing::info!(digest, elapsed_ms = started.elapsed().as_millis() as u64, "plugin compiled");
            if let Err(error) = inner.cache.store(&digest, &code) {
                tracing::warn!(error = %error, "cannot cache the compiled plugin");
            }
            // SAFETY: `code` was produced just above by this engine.
            unsafe { Component::deserialize(&inner.engine, &code) }.map_err(Error::Invalid)
        })
        .await
        .map_err(|e| Error::Invalid(wasmtime::format_err!("compilation task failed: {e}")))?
    }
}

fn world_error(kind: Kind, error: wasmtime::Error) -> Error {
    Error::WrongWorld {
        kind,
        problems: vec![format!("{error:#}")],
    }
}

fn engine_config(config: &RuntimeConfig, pool_instances: Option<u32>) -> Config {
    let mut c = Config::new();
    // Plugins are synchronous components (wharf:plugin@0.1 has no async functions), so
    // the component-model concurrency machinery is off: calls take wasmtime's plain fiber
    // path, which costs about half as much per call.
    c.wasm_component_model(true)
        .concurrency_support(false)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .max_wasm_stack(1 << 20);
    if let Some(instances) = pool_instances {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances * 8)
            .total_memories(instances * 2)
            .total_tables(instances * 4)
            .total_stacks(instances)
            .max_memories_per_component(4)
            .max_core_instances_per_component(32)
            .max_tables_per_component(16)
            .max_memory_size(config.max_memory_bytes as usize)
            .max_component_instance_size(1 << 20)
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(1 << 16);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

impl Inner {
    /// Waits for a call slot of the budget `kind` draws from.
    pub async fn permit(&self, kind: Kind) -> Result<SemaphorePermit<'_>, PluginFailure> {
        let budget = match kind {
            Kind::Policy => &self.policy_calls,
            Kind::Driver | Kind::Transformer => &self.calls,
        };
        budget.acquire().await.map_err(|_| PluginFailure::Host {
            what: "the runtime is shutting down".into(),
            cause: None,
        })
    }

    /// A store for one call (or for a warm instance), with the sandbox's limits set.
    pub fn store(&self, sandbox: &Sandbox) -> Store<HostState> {
        let mut store = Store::new(&self.engine, HostState::new(sandbox));
        store.limiter(|s| &mut s.limiter);
        store
    }
}

/// Idle instances of a pure plugin (policy, transformer), kept for reuse by later calls
/// with the same configuration.
///
/// Reuse is what makes a policy decision cost about a microsecond instead of tens (see
/// BENCHMARKS.md): instantiating a fresh component per call is cheap with the pooling
/// allocator, but not free. It is limited to pure kinds, whose contract forbids keeping
/// state between calls, and to calls with the same configuration digest, so that one
/// configuration never observes another. An instance is dropped after a trap (it cannot
/// be re-entered) and after [`MAX_USES`] calls, which bounds how long a leak in the
/// plugin can grow. Drivers always get a fresh instance.
pub(crate) struct WarmPool<B> {
    idle: std::sync::Mutex<Vec<Warm<B>>>,
}

struct Warm<B> {
    store: Store<HostState>,
    bindings: B,
    key: u64,
    uses: u32,
}

/// Calls one warm instance serves before it is dropped.
const MAX_USES: u32 = 10_000;

impl<B> Default for WarmPool<B> {
    fn default() -> Self {
        Self {
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl<B> WarmPool<B> {
    fn take(&self, key: u64) -> Option<Warm<B>> {
        let mut idle = self.idle.lock().expect("warm pool lock is never poisoned");
        let i = idle.iter().rposition(|w| w.key == key)?;
        Some(idle.swap_remove(i))
    }

    fn put(&self, warm: Warm<B>, max_idle: usize) {
        if max_idle == 0 {
            return;
        }
        let mut idle = self.idle.lock().expect("warm pool lock is never poisoned");
        if idle.len() >= max_idle {
            // Make room by dropping the oldest instance (likely an old configuration).
            idle.remove(0);
        }
        idle.push(warm);
    }
}

/// A digest of a configuration, to key warm instances. SipHash, not sha256: configurations
/// come from operators, not from attackers, and this runs on every policy decision.
pub(crate) fn config_key(config: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    config.hash(&mut hasher);
    hasher.finish()
}

/// What a call that did not fail in the sandbox returned, with the first capability the
/// sandbox refused during it (which explains a plugin error that follows).
pub(crate) struct Called<T> {
    pub value: T,
    pub denied: Option<String>,
}

impl<V, E: Into<crate::types::PluginError>> Called<Result<V, E>> {
    /// Judges the plugin's own result: see [`sandbox::judge`].
    pub fn judge(self, limit: u64, size: impl FnOnce(&V) -> usize) -> Result<V, PluginFailure> {
        sandbox::judge(self.value.map_err(Into::into), self.denied, limit, size)
    }
}

impl Loaded {
    /// Runs one call on a fresh instance: instantiate, call, and judge how it ended.
    pub async fn fresh<B, T>(
        &self,
        export: &'static str,
        instantiate: impl for<'a> FnOnce(&'a mut Store<HostState>) -> CallFuture<'a, B> + Send,
        call: impl for<'a> FnOnce(&'a B, &'a mut Store<HostState>) -> CallFuture<'a, T> + Send,
    ) -> Result<Called<T>, PluginFailure>
    where
        B: Send,
        T: Send,
    {
        let inner = &self.runtime.inner;
        let _permit = inner.permit(self.sandbox.kind).await?;
        let store = inner.store(&self.sandbox);
        self.run(export, store, None, instantiate, call).await.0
    }

    /// Runs one call on a warm instance for `config` when one is idle, else on a new one
    /// that is kept for later calls if the call did not trap.
    pub async fn warm<B, T>(
        &self,
        pool: &WarmPool<B>,
        config: &str,
        export: &'static str,
        instantiate: impl for<'a> FnOnce(&'a mut Store<HostState>) -> CallFuture<'a, B> + Send,
        call: impl for<'a> FnOnce(&'a B, &'a mut Store<HostState>) -> CallFuture<'a, T> + Send,
    ) -> Result<Called<T>, PluginFailure>
    where
        B: Send,
        T: Send,
    {
        let inner = &self.runtime.inner;
        let _permit = inner.permit(self.sandbox.kind).await?;
        let key = config_key(config);
        let (store, bindings, uses) = match pool.take(key) {
            Some(mut w) => {
                inner.warm_hits.fetch_add(1, Ordering::Relaxed);
                w.store.data_mut().reset();
                (w.store, Some(w.bindings), w.uses)
            }
            None => (inner.store(&self.sandbox), None, 0),
        };
        let (result, store, bindings) = self.run(export, store, bindings, instantiate, call).await;
        if let (Ok(_), Some(bindings)) = (&result, bindings)
            && uses + 1 < MAX_USES
        {
            let warm = Warm {
                store,
                bindings,
                key,
                uses: uses + 1,
            };
            pool.put(warm, inner.config.warm_instances);
        }
        result
    }

    /// Runs `call` (after `instantiate`, when no instance is given) under the CPU budget
    /// and the wall-clock timeout, in a span, and judges how it ended. Returns the store
    /// and, when the call did not trap, the instance, for reuse.
    async fn run<B, T>(
        &self,
        export: &'static str,
        mut store: Store<HostState>,
        mut bindings: Option<B>,
        instantiate: impl for<'a> FnOnce(&'a mut Store<HostState>) -> CallFuture<'a, B> + Send,
        call: impl for<'a> FnOnce(&'a B, &'a mut Store<HostState>) -> CallFuture<'a, T> + Send,
    ) -> (
        Result<Called<T>, PluginFailure>,
        Store<HostState>,
        Option<B>,
    )
    where
        B: Send,
        T: Send,
    {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "plugin.call",
            plugin.name = %self.sandbox.name,
            plugin.export = export
        );
        sandbox::arm_cpu_budget(&mut store, self.sandbox.limits.cpu());
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            self.sandbox.limits.wall(),
            async {
                if bindings.is_none() {
                    bindings = Some(instantiate(&mut store).await?);
                }
                call(bindings.as_ref().expect("instantiated above"), &mut store).await
            }
            .instrument(span.clone()),
        )
        .await;
        let _enter = span.enter();
        let stderr = sandbox::drain_output(store.data(), &self.sandbox.name);
        let ok = matches!(outcome, Ok(Ok(_)));
        let result = sandbox::verdict(outcome, store.data(), &self.sandbox, &stderr).map(|value| {
            let denied = store.data().first_denial();
            Called { value, denied }
        });
        let elapsed_us = started.elapsed().as_micros() as u64;
        match &result {
            Ok(_) => tracing::debug!(elapsed_us, "plugin call finished"),
            Err(failure) => tracing::warn!(elapsed_us, error = %failure, "plugin call failed"),
        }
        (result, store, if ok { bindings } else { None })
    }
}
