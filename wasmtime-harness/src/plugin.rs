//! A started plugin: one wasmtime store, one VM, one root context.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use wasmtime::{
    Engine, Instance, InstancePre, Store, StoreLimits, StoreLimitsBuilder, Trap, TypedFunc,
    WasmBacktrace, WasmParams, WasmResults,
};

use crate::abi::{raw, raw_len};
use crate::error::HarnessError;
use crate::harness::EPOCH_TICK;
use crate::http_call::{HttpCall, HttpCallResponse};
use crate::metrics::MetricValue;
use crate::options::{HostProfile, PluginOptions};
use crate::shared::SharedData;
use crate::state::{HostState, LogEntry};
use crate::wasi::ProcExit;

/// The root context id. Stream contexts count up from `ROOT_CONTEXT + 1`.
pub(crate) const ROOT_CONTEXT: u32 = 1;

/// Guest memory cap: far above what a filter needs, low enough that a runaway allocation
/// fails in the guest instead of exhausting the machine.
const MEMORY_LIMIT: usize = 1 << 30;

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

type Ctx2 = (i32, i32);
type Ctx3 = (i32, i32, i32);
/// `(context, token, headers, body size, trailers)`.
type CallResponse = (i32, i32, i32, i32, i32);

/// The guest's proxy-wasm exports. A missing callback behaves as Envoy treats it: `Continue`
/// / no-op / `true`.
/// A callback the guest may export. Shared, because cloning a `TypedFunc` clones its type
/// (a registry reference count) and every callback of every request would pay for it.
pub(crate) type Export<P, R> = Option<Arc<TypedFunc<P, R>>>;

pub(crate) struct Exports {
    pub(crate) on_context_create: Export<Ctx2, ()>,
    pub(crate) on_vm_start: Export<Ctx2, i32>,
    pub(crate) on_configure: Export<Ctx2, i32>,
    pub(crate) on_tick: Export<i32, ()>,
    pub(crate) on_queue_ready: Export<Ctx2, ()>,
    pub(crate) on_request_headers: Export<Ctx3, i32>,
    pub(crate) on_request_body: Export<Ctx3, i32>,
    pub(crate) on_response_headers: Export<Ctx3, i32>,
    pub(crate) on_response_body: Export<Ctx3, i32>,
    pub(crate) on_request_trailers: Export<Ctx2, i32>,
    pub(crate) on_response_trailers: Export<Ctx2, i32>,
    pub(crate) on_http_call_response: Export<CallResponse, ()>,
    pub(crate) on_log: Export<i32, ()>,
    pub(crate) on_done: Export<i32, i32>,
    pub(crate) on_delete: Export<i32, ()>,
}

fn export<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<HostState>,
    name: &str,
) -> Result<Export<P, R>, HarnessError> {
    if instance.get_func(&mut *store, name).is_none() {
        return Ok(None);
    }
    instance
        .get_typed_func::<P, R>(&mut *store, name)
        .map(|f| Some(Arc::new(f)))
        .map_err(|e| HarnessError::Abi(format!("export `{name}` has the wrong type: {e:#}")))
}

impl Exports {
    fn find(instance: &Instance, store: &mut Store<HostState>) -> Result<Self, HarnessError> {
        Ok(Self {
            on_context_create: export(instance, store, "proxy_on_context_create")?,
            on_vm_start: export(instance, store, "proxy_on_vm_start")?,
            on_configure: export(instance, store, "proxy_on_configure")?,
            on_tick: export(instance, store, "proxy_on_tick")?,
            on_queue_ready: export(instance, store, "proxy_on_queue_ready")?,
            on_request_headers: export(instance, store, "proxy_on_request_headers")?,
            on_request_body: export(instance, store, "proxy_on_request_body")?,
            on_response_headers: export(instance, store, "proxy_on_response_headers")?,
            on_response_body: export(instance, store, "proxy_on_response_body")?,
            on_request_trailers: export(instance, store, "proxy_on_request_trailers")?,
            on_response_trailers: export(instance, store, "proxy_on_response_trailers")?,
            on_http_call_response: export(instance, store, "proxy_on_http_call_response")?,
            on_log: export(instance, store, "proxy_on_log")?,
            on_done: export(instance, store, "proxy_on_done")?,
            on_delete: export(instance, store, "proxy_on_delete")?,
        })
    }
}

/// A started plugin: a wasmtime `Store` with one instance of the module and its root
/// context, configured. Drive HTTP requests through it with [`Plugin::request`] (whole
/// lifecycle) or [`Plugin::stream`] (step by step), and inspect what the host saw: logs,
/// metrics, shared data, pending `proxy_http_call`s.
///
/// Every call into the guest has a wall-clock budget ([`PluginOptions::call_budget`]). A trap
/// or an exceeded budget fails the VM for good, as in Envoy: later calls return
/// [`HarnessError::VmFailed`].
pub struct Plugin {
    pub(crate) store: Store<HostState>,
    pub(crate) exports: Exports,
    pub(crate) next_context: u32,
    budget: Duration,
    budget_ticks: u64,
    pub(crate) failed: Option<String>,
    pub(crate) responders: BTreeMap<String, HttpCallResponse>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("failed", &self.failed)
            .field("streams", &self.store.data().streams.len())
            .field("pending_http_calls", &self.store.data().http_calls.len())
            .finish_non_exhaustive()
    }
}

fn os_seed() -> u64 {
    // RandomState is seeded from the OS; hashing a constant extracts that seed.
    std::collections::hash_map::RandomState::new().hash_one(0x6272_6964_6c65_u64)
}

impl Plugin {
    pub(crate) fn start(
        engine: &Engine,
        pre: &InstancePre<HostState>,
        opts: PluginOptions,
    ) -> Result<Self, HarnessError> {
        let budget = opts.call_budget;
        let seed = opts.random_seed.unwrap_or_else(os_seed);
        let uid = NEXT_UID.fetch_add(1, Ordering::Relaxed);
        let vm_config_len = opts.vm_config.len();
        let plugin_config_len = opts.plugin_config.len();
        let host = HostState::new(opts, uid, ROOT_CONTEXT, seed);
        let mut store = Store::new(engine, host);
        store.limiter(|host| &mut host.limits);
        let budget_ticks = ticks(budget);
        store.set_epoch_deadline(budget_ticks);

        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| HarnessError::Instantiate(format!("{e:#}")))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| HarnessError::Abi("the module exports no `memory`".to_owned()))?;
        let alloc = match export::<i32, i32>(&instance, &mut store, "proxy_on_memory_allocate")? {
            Some(alloc) => alloc,
            None => export::<i32, i32>(&instance, &mut store, "malloc")?.ok_or_else(|| {
                HarnessError::Abi(
                    "the module exports neither `proxy_on_memory_allocate` nor `malloc`".to_owned(),
                )
            })?,
        };
        store.data_mut().memory = Some(memory);
        store.data_mut().alloc = Some(alloc);
        let exports = Exports::find(&instance, &mut store)?;
        let initialize = export::<(), ()>(&instance, &mut store, "_initialize")?;

        let mut plugin = Self {
            store,
            exports,
            next_context: ROOT_CONTEXT + 1,
            budget,
            budget_ticks,
            failed: None,
            responders: BTreeMap::new(),
        };
        let root = raw(ROOT_CONTEXT);

        let vm_start = plugin
            .call("_initialize", ROOT_CONTEXT, initialize, ())
            .and_then(|_| {
                let create = plugin.exports.on_context_create.clone();
                plugin.call("proxy_on_context_create", ROOT_CONTEXT, create, (root, 0))
            })
            .and_then(|_| {
                let vm_start = plugin.exports.on_vm_start.clone();
                plugin.call(
                    "proxy_on_vm_start",
                    ROOT_CONTEXT,
                    vm_start,
                    (root, raw_len(vm_config_len)),
                )
            });
        match vm_start {
            Ok(Some(0)) => {
                return Err(HarnessError::VmStartFailed {
                    reason: "proxy_on_vm_start returned false".to_owned(),
                    logs: plugin.take_logs(),
                })
            }
            Ok(_) => {}
            Err(e) => {
                return Err(HarnessError::VmStartFailed {
                    reason: e.to_string(),
                    logs: plugin.take_logs(),
                })
            }
        }

        plugin.store.data_mut().in_configure = true;
        let configure = plugin.exports.on_configure.clone();
        let configured = plugin.call(
            "proxy_on_configure",
            ROOT_CONTEXT,
            configure,
            (root, raw_len(plugin_config_len)),
        );
        plugin.store.data_mut().in_configure = false;
        match configured {
            Ok(Some(0)) => Err(HarnessError::ConfigureRejected {
                logs: plugin.take_logs(),
                trap: None,
            }),
            Ok(_) => {
                plugin.run_deferred()?;
                Ok(plugin)
            }
            Err(e) => Err(HarnessError::ConfigureRejected {
                logs: plugin.take_logs(),
                trap: Some(e.to_string()),
            }),
        }
    }

    /// Calls one guest export on behalf of `context`, within the execution budget. A missing
    /// export returns `Ok(None)`. A trap fails the VM.
    pub(crate) fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        callback: &'static str,
        context: u32,
        func: Export<P, R>,
        params: P,
    ) -> Result<Option<R>, HarnessError> {
        self.check_alive()?;
        let Some(func) = func else {
            return Ok(None);
        };
        self.store.data_mut().effective = context;
        let outer = std::mem::replace(&mut self.store.data_mut().callback, callback);
        self.store.set_epoch_deadline(self.budget_ticks);
        let result = func.call(&mut self.store, params);
        self.store.data_mut().callback = outer;
        match result {
            Ok(result) => Ok(Some(result)),
            Err(err) => Err(self.fail(callback, err)),
        }
    }

    fn fail(&mut self, callback: &'static str, err: wasmtime::Error) -> HarnessError {
        let error = if matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            HarnessError::Timeout {
                callback,
                budget: self.budget,
            }
        } else if let Some(exit) = err.downcast_ref::<ProcExit>() {
            HarnessError::Trap {
                callback,
                message: exit.to_string(),
            }
        } else {
            // The cause first ("wasm trap: ..."), then where it happened.
            let mut message = err.root_cause().to_string();
            if let Some(trace) = err.downcast_ref::<WasmBacktrace>() {
                message.push_str("\nwasm backtrace:\n");
                message.push_str(&trace.to_string());
            }
            HarnessError::Trap { callback, message }
        };
        self.failed = Some(error.to_string());
        error
    }

    pub(crate) fn check_alive(&self) -> Result<(), HarnessError> {
        match &self.failed {
            Some(reason) => Err(HarnessError::VmFailed(reason.clone())),
            None => Ok(()),
        }
    }

    /// `true` once a trap or timeout failed the VM.
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// The plugin's wall-clock time.
    pub fn now(&self) -> SystemTime {
        self.store.data().now
    }

    /// Sets the plugin's wall-clock time (the monotonic clock only moves forward with it).
    pub fn set_time(&mut self, t: SystemTime) {
        let host = self.store.data_mut();
        if let Ok(forward) = t.duration_since(host.now) {
            host.monotonic_ns = host.monotonic_ns.saturating_add(nanos(forward));
        }
        host.now = t;
    }

    /// Moves both clocks forward.
    pub fn advance_time(&mut self, d: Duration) {
        let host = self.store.data_mut();
        host.now += d;
        host.monotonic_ns = host.monotonic_ns.saturating_add(nanos(d));
    }

    /// Sets a property every context can read.
    pub fn set_property(&mut self, path: &[&str], value: &[u8]) {
        self.store.data_mut().properties.insert(
            path.iter().map(|s| (*s).to_owned()).collect(),
            value.to_vec(),
        );
    }

    /// Removes a property set with [`Plugin::set_property`] or the options.
    pub fn remove_property(&mut self, path: &[&str]) {
        let key: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        self.store.data_mut().properties.remove(&key);
    }

    /// Every log entry so far (also fd_write to stdout/stderr).
    pub fn logs(&self) -> &[LogEntry] {
        &self.store.data().logs
    }

    /// Takes the log entries so far.
    pub fn take_logs(&mut self) -> Vec<LogEntry> {
        std::mem::take(&mut self.store.data_mut().logs)
    }

    /// Whether some log message contains `needle`.
    pub fn log_contains(&self, needle: &str) -> bool {
        self.logs().iter().any(|l| l.message.contains(needle))
    }

    /// A counter or gauge by the name the guest defined it with (Envoy would show it as
    /// `wasmcustom.<name>`); `None` for histograms and unknown names.
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.store.data().metrics.by_name(name)?.value()
    }

    /// All metrics by name.
    pub fn metrics(&self) -> BTreeMap<String, MetricValue> {
        self.store.data().metrics.snapshot()
    }

    /// The tick period the guest set (`None`: no ticks).
    pub fn tick_period(&self) -> Option<Duration> {
        self.store.data().tick_period
    }

    /// Calls `proxy_on_tick` on the root context, as Envoy's timer would. Refused if the
    /// guest set no tick period.
    pub fn tick(&mut self) -> Result<(), HarnessError> {
        if self.tick_period().is_none() {
            return Err(HarnessError::Usage(
                "the plugin set no tick period, so Envoy would never tick it".to_owned(),
            ));
        }
        let on_tick = self.exports.on_tick.clone();
        self.call("proxy_on_tick", ROOT_CONTEXT, on_tick, raw(ROOT_CONTEXT))?;
        self.run_deferred()
    }

    /// The value of a shared-data key.
    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.store
            .data()
            .shared
            .get(key.as_bytes())
            .map(|(value, _)| value)
    }

    /// Sets a shared-data key (as another VM would).
    pub fn set_shared_data(&mut self, key: &str, value: &[u8]) {
        self.store.data().shared.set(key.as_bytes(), value);
    }

    /// The shared-data store (clone it into another plugin's options to share it).
    pub fn shared(&self) -> SharedData {
        self.store.data().shared.clone()
    }

    /// Delivers `proxy_on_queue_ready` for every queue this plugin registered that received
    /// items since the last delivery; returns how many were delivered.
    /// Kong (ngx_wasm_module) never calls `proxy_on_queue_ready`: a usage error there.
    pub fn deliver_queue_ready(&mut self) -> Result<usize, HarnessError> {
        let host = self.store.data();
        if host.profile == HostProfile::Kong {
            return Err(HarnessError::Usage(
                "ngx_wasm_module (Kong) never calls proxy_on_queue_ready".to_owned(),
            ));
        }
        let ready = host.shared.take_ready(host.uid);
        for id in &ready {
            let on_ready = self.exports.on_queue_ready.clone();
            self.call(
                "proxy_on_queue_ready",
                ROOT_CONTEXT,
                on_ready,
                (raw(ROOT_CONTEXT), raw(*id)),
            )?;
            self.run_deferred()?;
        }
        Ok(ready.len())
    }

    /// `proxy_http_call`s nobody answered yet, oldest first.
    pub fn pending_http_calls(&self) -> &[HttpCall] {
        &self.store.data().http_calls
    }

    /// Answers a pending `proxy_http_call`: calls `proxy_on_http_call_response` (on the root
    /// context, like Envoy; the SDK hands it to the context that made the call), with the
    /// response readable through the `HttpCallResponseHeaders` map and `HttpCallResponseBody`
    /// buffer during the callback.
    pub fn respond_http_call<N, V>(
        &mut self,
        token: u32,
        status: u16,
        headers: impl IntoIterator<Item = (N, V)>,
        body: impl Into<Vec<u8>>,
    ) -> Result<(), HarnessError>
    where
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut response = HttpCallResponse::new(status).body(body);
        for (name, value) in headers {
            response = response.header(name, value);
        }
        self.respond_http_call_with(token, response)
    }

    /// [`Plugin::respond_http_call`] with a prepared response.
    pub fn respond_http_call_with(
        &mut self,
        token: u32,
        response: HttpCallResponse,
    ) -> Result<(), HarnessError> {
        self.deliver_http_call(token, Some(response))
    }

    /// Fails a pending `proxy_http_call` as Envoy does when the connection resets: the
    /// callback gets no headers or body and `proxy_get_status` says `BrokenConnection`,
    /// `reset`.
    pub fn fail_http_call(&mut self, token: u32) -> Result<(), HarnessError> {
        self.deliver_http_call(token, None)
    }

    /// Answers every future `proxy_http_call` to `upstream` with `response` when
    /// [`Plugin::request`] would otherwise stall waiting for it.
    pub fn set_http_call_responder(
        &mut self,
        upstream: impl Into<String>,
        response: HttpCallResponse,
    ) {
        self.responders.insert(upstream.into(), response);
    }

    /// Restricts `proxy_http_call` to these cluster names (others get `BadArgument`).
    pub fn set_known_clusters<S: Into<String>>(&mut self, clusters: impl IntoIterator<Item = S>) {
        self.store.data_mut().known_clusters = Some(
            clusters
                .into_iter()
                .map(Into::into)
                .collect::<BTreeSet<String>>(),
        );
    }

    /// Lets `proxy_http_call` target any cluster name (the default).
    pub fn allow_any_cluster(&mut self) {
        self.store.data_mut().known_clusters = None;
    }

    /// Whether the guest called `proxy_done`.
    pub fn done_called(&self) -> bool {
        self.store.data().done_called
    }

    fn deliver_http_call(
        &mut self,
        token: u32,
        response: Option<HttpCallResponse>,
    ) -> Result<(), HarnessError> {
        self.check_alive()?;
        let host = self.store.data_mut();
        let Some(index) = host.http_calls.iter().position(|c| c.token == token) else {
            return Err(HarnessError::Usage(format!(
                "no pending http call has token `{token}`"
            )));
        };
        let call = host.http_calls.remove(index);
        let kong = host.profile == HostProfile::Kong;
        let sizes = match &response {
            Some(r) => (
                raw_len(r.headers.len()),
                raw_len(r.body.len()),
                raw_len(r.trailers.len()),
            ),
            None => (0, 0, 0),
        };
        host.status = match response {
            Some(_) => (0, Vec::new()),
            None => (
                crate::abi::Status::BrokenConnection as u32,
                b"reset".to_vec(),
            ),
        };
        host.call_response = match response {
            // ngx_wasm_module reports a failed call with no headers, but lets the guest read
            // why in the `:dispatch_status` pseudo-header.
            None if kong => Some(HttpCallResponse {
                headers: crate::headers::Headers::from_pairs([(
                    ":dispatch_status",
                    "broken connection",
                )]),
                body: Vec::new(),
                trailers: crate::headers::Headers::new(),
            }),
            other => other,
        };
        // Envoy makes every call on the root context (`http_call` uses `root_context()`), so
        // the response arrives there too; the SDK then switches to the calling context itself
        // (`proxy_set_effective_context`).
        let on_response = self.exports.on_http_call_response.clone();
        let root = raw(ROOT_CONTEXT);
        let result = self.call(
            "proxy_on_http_call_response",
            ROOT_CONTEXT,
            on_response,
            (root, raw(token), sizes.0, sizes.1, sizes.2),
        );
        let host = self.store.data_mut();
        host.call_response = None;
        host.status = (0, Vec::new());
        result?;
        if kong {
            // ngx_wasm_module resumes a paused request once its last call is answered.
            let context = call.context_id;
            let host = self.store.data_mut();
            let waiting = host.http_calls.iter().any(|c| c.context_id == context);
            if let Some(s) = host.stream_mut(context) {
                if !waiting && s.request_paused {
                    s.request_continue = true;
                }
            }
        }
        self.run_deferred()
    }
}

fn ticks(budget: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos().max(1);
    u64::try_from(budget.as_nanos().div_ceil(tick))
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn memory_limits() -> StoreLimits {
    StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT).build()
}
