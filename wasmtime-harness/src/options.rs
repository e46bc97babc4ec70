//! How a plugin is started: configuration, clock, properties, host profile, limits.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use crate::abi::LogLevel;
use crate::shared::SharedData;

/// Which host the harness imitates. Host quirks (which properties exist, which calls are
/// supported, how pauses and bodies behave) hang off this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HostProfile {
    /// Envoy with the V8 runtime (proxy-wasm-cpp-host).
    #[default]
    Envoy,
    /// Kong Gateway 3.4–3.9, whose proxy-wasm host is ngx_wasm_module (see the `kong` module
    /// docs for every behaviour reproduced and its source).
    Kong,
}

/// Everything a plugin is started with. Build it with [`PluginOptions::new`] (or
/// [`PluginOptions::with_config`]) and the builder methods; every field is public.
#[derive(Debug, Clone)]
pub struct PluginOptions {
    /// Envoy's `configuration`, read by `on_configure` as the plugin configuration buffer.
    pub plugin_config: Vec<u8>,
    /// Envoy's `vm_config.configuration`, read by `on_vm_start`.
    pub vm_config: Vec<u8>,
    /// The wall-clock time the plugin sees (`proxy_get_current_time_nanoseconds`, WASI
    /// realtime clock). It only moves when the test moves it.
    pub now: SystemTime,
    /// Properties every context can read (`proxy_get_property`), keyed by path segments, e.g.
    /// `["connection", "uri_san_peer_certificate"]`. Values are the raw bytes Envoy would
    /// return (strings as-is; integers as 8-byte little-endian).
    pub properties: BTreeMap<Vec<String>, Vec<u8>>,
    /// The host being imitated.
    pub profile: HostProfile,
    /// What `proxy_get_log_level` reports (Envoy's default is `info`). Every `proxy_log` call
    /// is recorded whatever its level; the guest may skip formatting below this level.
    pub log_level: LogLevel,
    /// Keep log entries (default). Benchmarks turn this off so logs do not pile up.
    pub record_logs: bool,
    /// Envoy's buffer limit (`per_connection_buffer_limit_bytes`, default 1 MiB): when a
    /// body the filter buffers (StopIterationAndBuffer) would grow past it, Envoy answers
    /// itself — `413` for a request, `500` for a response — and the filter never sees that
    /// chunk. `None`: no limit.
    pub buffer_limit: Option<usize>,
    /// Wall-clock budget of every single call into the guest; a call that runs longer traps
    /// (epoch interruption, ~10 ms granularity).
    pub call_budget: Duration,
    /// Clusters `proxy_http_call` may target; `None` accepts any name. Like Envoy, an unknown
    /// cluster makes the call fail with `BadArgument`.
    pub known_clusters: Option<BTreeSet<String>>,
    /// Seed of WASI `random_get`; `None` seeds from the OS.
    pub random_seed: Option<u64>,
    /// Shared data and queues; pass a clone to several plugins to share them.
    pub shared_data: SharedData,
    /// Kong profile: the room ngx_wasm_module has for buffering a response body
    /// (`wasm_response_body_buffers`, default `4 4096`: 16 KiB). A body callback that asked for
    /// buffering is called again once the body ends or this much is held.
    pub response_body_buffers: usize,
    /// Envoy's `vm_config.vm_id` (shared data / queue scope, `plugin_vm_id` property).
    pub vm_id: String,
    /// Envoy's plugin `name` (`plugin_name` property).
    pub plugin_name: String,
    /// Envoy's plugin `root_id` (`plugin_root_id` property).
    pub root_id: String,
}

impl Default for PluginOptions {
    fn default() -> Self {
        Self {
            plugin_config: Vec::new(),
            vm_config: Vec::new(),
            now: SystemTime::now(),
            properties: BTreeMap::new(),
            profile: HostProfile::Envoy,
            log_level: LogLevel::Info,
            record_logs: true,
            buffer_limit: Some(1 << 20),
            call_budget: Duration::from_secs(10),
            known_clusters: None,
            random_seed: None,
            shared_data: SharedData::new(),
            response_body_buffers: 4 * 4096,
            vm_id: String::new(),
            plugin_name: "bridle".to_owned(),
            root_id: String::new(),
        }
    }
}

impl PluginOptions {
    /// Defaults: empty configuration, current time, Envoy profile, `info` log level.
    pub fn new() -> Self {
        Self::default()
    }

    /// Defaults with this plugin configuration.
    pub fn with_config(config: impl Into<Vec<u8>>) -> Self {
        Self::new().config(config)
    }

    /// Sets the plugin configuration.
    pub fn config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.plugin_config = config.into();
        self
    }

    /// Sets the VM configuration.
    pub fn vm_config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.vm_config = config.into();
        self
    }

    /// Sets the plugin's clock.
    pub fn at(mut self, now: SystemTime) -> Self {
        self.now = now;
        self
    }

    /// Sets the plugin's clock to `secs` after the Unix epoch.
    pub fn at_unix(self, secs: u64) -> Self {
        self.at(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// Adds a property readable from every context.
    pub fn property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> Self {
        self.properties
            .insert(path.iter().map(|s| (*s).to_owned()).collect(), value.into());
        self
    }

    /// Sets the host profile.
    pub fn profile(mut self, profile: HostProfile) -> Self {
        self.profile = profile;
        self
    }

    /// Sets what `proxy_get_log_level` reports.
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// Keeps or drops log entries.
    pub fn record_logs(mut self, record: bool) -> Self {
        self.record_logs = record;
        self
    }

    /// Sets Envoy's buffer limit (`None`: unlimited).
    pub fn buffer_limit(mut self, limit: Option<usize>) -> Self {
        self.buffer_limit = limit;
        self
    }

    /// Sets the per-call execution budget.
    pub fn call_budget(mut self, budget: Duration) -> Self {
        self.call_budget = budget;
        self
    }

    /// Restricts `proxy_http_call` to these cluster names.
    pub fn known_clusters<S: Into<String>>(
        mut self,
        clusters: impl IntoIterator<Item = S>,
    ) -> Self {
        self.known_clusters = Some(clusters.into_iter().map(Into::into).collect());
        self
    }

    /// Kong profile: sets the room for a buffered response body.
    pub fn response_body_buffers(mut self, bytes: usize) -> Self {
        self.response_body_buffers = bytes;
        self
    }

    /// Makes WASI `random_get` deterministic.
    pub fn random_seed(mut self, seed: u64) -> Self {
        self.random_seed = Some(seed);
        self
    }

    /// Uses this shared-data store (e.g. one shared with another plugin).
    pub fn shared_data(mut self, shared: SharedData) -> Self {
        self.shared_data = shared;
        self
    }
}
