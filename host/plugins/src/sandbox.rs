//! The per-call sandbox: the state of one `Store` (WASI with nothing granted, capped
//! stdout and stderr, the HTTP and socket gates, the memory limiter) and the verdict on
//! how a call ended.

use crate::bindings::base::wharf::plugin::log;
use crate::error::PluginFailure;
use crate::manifest::{Kind, Limits, ValidGrants};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// How often the engine's epoch advances; the unit of CPU budgets.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Bytes of stdout and of stderr kept per call; the rest is dropped.
const OUTPUT_CAP: usize = 64 << 10;

/// Bytes of `log` lines accepted per call.
const LOG_CAP: usize = 256 << 10;

/// Largest HTTP response body a plugin may read.
const HTTP_RESPONSE_CAP: usize = 16 << 20;

/// What one installation grants its calls, shared by all of them.
pub(crate) struct Sandbox {
    pub name: Arc<str>,
    pub kind: Kind,
    pub limits: Limits,
    pub grants: Arc<ValidGrants>,
}

/// The data of one `Store`: everything a call can reach.
pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: HttpGate,
    table: ResourceTable,
    pub limiter: Limiter,
    pub stdout: CappedPipe,
    pub stderr: CappedPipe,
    pub denials: Arc<Mutex<Vec<String>>>,
    plugin: Arc<str>,
    log_bytes: usize,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        if self.log_bytes >= LOG_CAP {
            return;
        }
        self.log_bytes += message.len();
        if self.log_bytes >= LOG_CAP {
            tracing::warn!(plugin = %self.plugin, "plugin log budget used up; dropping further lines");
        }
        let plugin = &*self.plugin;
        match level {
            log::Level::Trace => tracing::trace!(plugin, message, "plugin log"),
            log::Level::Debug => tracing::debug!(plugin, message, "plugin log"),
            log::Level::Info => tracing::info!(plugin, message, "plugin log"),
            log::Level::Warn => tracing::warn!(plugin, message, "plugin log"),
            log::Level::Error => tracing::error!(plugin, message, "plugin log"),
        }
    }
}

impl crate::bindings::base::wharf::plugin::types::Host for HostState {}

impl HostState {
    pub fn new(sandbox: &Sandbox) -> Self {
        let stdout = CappedPipe::default();
        let stderr = CappedPipe::default();
        let denials = Arc::new(Mutex::new(Vec::new()));
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_ip_name_lookup(false)
            .allow_udp(false);
        if sandbox.kind == Kind::Driver {
            // TCP is allowed so that every attempt reaches the address check below, which
            // refuses (and records) what is not granted before any connection is made.
            // Binding to the unspecified address with port 0 is the implicit bind that
            // precedes a connect; it is allowed only when some address is granted.
            let granted = sandbox.grants.sockets.clone();
            let record = denials.clone();
            wasi.allow_tcp(true).socket_addr_check(move |addr, usage| {
                let ok = match usage {
                    SocketAddrUse::TcpConnect => granted.contains(&addr),
                    SocketAddrUse::TcpBind => {
                        !granted.is_empty() && addr.ip().is_unspecified() && addr.port() == 0
                    }
                    _ => false,
                };
                if !ok {
                    let what = match usage {
                        SocketAddrUse::TcpConnect => format!("tcp connect to {addr}"),
                        _ if granted.is_empty() => "tcp sockets (no address is granted)".into(),
                        other => format!("{other:?} on {addr}"),
                    };
                    record
                        .lock()
                        .expect("denials lock is never poisoned")
                        .push(what);
                }
                Box::pin(async move { ok })
            });
            for dir in &sandbox.grants.directories {
                let at = dir.to_string_lossy();
                if let Err(e) = wasi.preopened_dir(dir, &at, wasmtime_wasi::FsPerms::ReadWrite) {
                    // Checked when the installation was made; a directory removed since
                    // is simply not there for the plugin.
                    tracing::warn!(directory = %at, error = %e, "a granted directory cannot be opened");
                }
            }
        } else {
            wasi.allow_tcp(false);
        }
        Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: HttpGate {
                grants: sandbox.grants.clone(),
                denials: denials.clone(),
                network: sandbox.kind == Kind::Driver,
            },
            table: ResourceTable::new(),
            limiter: Limiter::new(sandbox.limits.memory_bytes),
            stdout,
            stderr,
            denials,
            plugin: sandbox.name.clone(),
            log_bytes: 0,
        }
    }

    /// The first capability refused during the current call.
    pub fn first_denial(&self) -> Option<String> {
        self.denials
            .lock()
            .expect("denials lock is never poisoned")
            .first()
            .cloned()
    }

    /// Makes a reused store ready for its next call.
    pub fn reset(&mut self) {
        self.limiter.hit = None;
        self.log_bytes = 0;
        self.stdout.take();
        self.stderr.take();
        self.denials
            .lock()
            .expect("denials lock is never poisoned")
            .clear();
    }
}

/// Arms the CPU budget of the next call on `store`: the epoch deadline fires every tick
/// the plugin runs, yielding to tokio each time so a busy plugin never holds a worker,
/// and interrupts it once the budget is spent.
pub(crate) fn arm_cpu_budget(store: &mut Store<HostState>, budget: Duration) {
    let mut ticks_left = (budget.as_millis() / TICK.as_millis()).max(1) as u64;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if ticks_left == 0 {
            return Ok(UpdateDeadline::Interrupt);
        }
        ticks_left -= 1;
        Ok(UpdateDeadline::Yield(1))
    });
}

/// Gates `wasi:http`: only granted origins are sent, with a cap on response bodies.
struct HttpGate {
    grants: Arc<ValidGrants>,
    denials: Arc<Mutex<Vec<String>>>,
    network: bool,
}

impl HttpGate {
    fn granted(&self, uri: &http::Uri) -> Result<(), String> {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let origin = format!("{scheme}://{host}:{port}");
        let ok = self.network
            && self.grants.origins.iter().any(|o| {
                o.scheme == scheme
                    && o.port == port
                    && o.host.trim_start_matches('[').trim_end_matches(']') == host
            });
        if ok { Ok(()) } else { Err(origin) }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                ),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendFuture {
        _ = fut;
        if let Err(origin) = self.granted(request.uri()) {
            tracing::warn!(origin, "plugin http request denied");
            self.denials
                .lock()
                .expect("denials lock is never poisoned")
                .push(format!("http to {origin}"));
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let response = response.map(|body| {
                http_body_util::Limited::new(body, HTTP_RESPONSE_CAP)
                    .map_err(|_| {
                        wasmtime_wasi_http::Error::HttpResponseBodySize(Some(
                            HTTP_RESPONSE_CAP as u64,
                        ))
                    })
                    .boxed_unsync()
            });
            Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

/// Caps the total linear memory of a store, and remembers when the cap was hit so that
/// the resulting trap is reported as a memory limit, not as a generic trap.
pub(crate) struct Limiter {
    cap: u64,
    total: u64,
    pub hit: Option<u64>,
}

impl Limiter {
    fn new(cap: u64) -> Self {
        Self {
            cap,
            total: 0,
            hit: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let wanted = self.total + (desired - current) as u64;
        if wanted > self.cap {
            self.hit = Some(wanted);
            return Ok(false);
        }
        self.total = wanted;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Guest stdout or stderr: kept in memory up to a cap, the rest silently dropped (a
/// chatty plugin is not an error), then written to the host's logs after the call.
#[derive(Clone, Default)]
pub(crate) struct CappedPipe {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl CappedPipe {
    pub fn take(&self) -> Vec<u8> {
        let mut buffer = self.buffer.lock().expect("pipe lock is never poisoned");
        if buffer.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut *buffer)
        }
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut buffer = self.buffer.lock().expect("pipe lock is never poisoned");
        let room = OUTPUT_CAP.saturating_sub(buffer.len());
        buffer.extend_from_slice(&buf[..buf.len().min(room)]);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Writes what the plugin printed to the host's logs, a line per event.
pub(crate) fn drain_output(state: &HostState, plugin: &str) -> String {
    let stdout = state.stdout.take();
    if !stdout.is_empty() {
        for line in String::from_utf8_lossy(&stdout).lines() {
            tracing::info!(plugin, line, "plugin stdout");
        }
    }
    let stderr = state.stderr.take();
    if stderr.is_empty() {
        return String::new();
    }
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    for line in stderr.lines() {
        tracing::warn!(plugin, line, "plugin stderr");
    }
    stderr
}

/// Turns how a call ended into a verdict: the plugin's result, or the failure the host
/// observed.
pub(crate) fn verdict<T>(
    outcome: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
    state: &HostState,
    sandbox: &Sandbox,
    stderr: &str,
) -> Result<T, PluginFailure> {
    let denied = state.first_denial();
    let error = match outcome {
        Err(_) => {
            return Err(PluginFailure::Timeout {
                after: sandbox.limits.wall(),
            });
        }
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(error)) => error,
    };
    if let Some(requested) = state.limiter.hit {
        return Err(PluginFailure::MemoryLimit {
            limit: sandbox.limits.memory_bytes,
            requested,
        });
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Err(PluginFailure::CpuBudgetExceeded {
            budget: sandbox.limits.cpu(),
        }),
        Some(_) if denied.is_some() => Err(PluginFailure::CapabilityDenied {
            capability: denied.expect("checked above"),
        }),
        Some(trap) => {
            let mut message = trap.to_string();
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            if !tail.is_empty() {
                message.push_str("; stderr: ");
                message.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join(" | "));
            }
            Err(PluginFailure::Trap { message })
        }
        None => Err(PluginFailure::host("running the call", error)),
    }
}

/// Judges what a call returned: a plugin error that follows a refused capability is
/// reported as [`PluginFailure::CapabilityDenied`], and results larger than `limit` bytes
/// are refused.
pub(crate) fn judge<T>(
    result: Result<T, crate::types::PluginError>,
    denied: Option<String>,
    limit: u64,
    size: impl FnOnce(&T) -> usize,
) -> Result<T, PluginFailure> {
    match (result, denied) {
        (Ok(value), _) => {
            let bytes = size(&value) as u64;
            if bytes > limit {
                return Err(PluginFailure::OutputTooLarge { bytes, limit });
            }
            Ok(value)
        }
        (Err(_), Some(capability)) => Err(PluginFailure::CapabilityDenied { capability }),
        (Err(error), None) => Err(PluginFailure::Plugin(error)),
    }
}

/// Size of JSON texts, for the output cap.
pub(crate) fn text_len<'a>(texts: impl IntoIterator<Item = &'a String>) -> usize {
    texts.into_iter().map(String::len).sum()
}
