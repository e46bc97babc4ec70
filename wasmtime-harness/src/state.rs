//! Host state kept in the wasmtime `Store`: everything host calls read and write.
//!
//! Availability of maps and buffers follows Envoy (`source/extensions/common/wasm/context.cc`):
//! request headers are writable from `on_request_headers` until the request continues, response
//! headers likewise for the response; afterwards a write or a single-value read gets
//! `BadArgument` and a pairs read gets an empty map. During `on_log` both header maps are
//! readable. Body buffers exist while the filter is looking at (or buffering) a body.
//!
//! Trailer maps (`RequestTrailers`, `ResponseTrailers`) exist from the trailers callback until
//! the stream continues past them (Envoy's `decodeTrailers` / `encodeTrailers` keep the pointer
//! only when the callback stops); during `on_log` Envoy shows the response trailers but not the
//! request trailers (`getConstMap`). A filter adding trailers from its last body callback
//! (Envoy's `addDecodedTrailers`) is not modelled: the map is not available there.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::{Memory, StoreLimits};

use crate::abi::{BufferType, LogLevel, MapType, Status};
use crate::headers::Headers;
use crate::http_call::{HttpCall, HttpCallResponse};
use crate::kong::Lookup;
use crate::metrics::Metrics;
use crate::options::{HostProfile, PluginOptions};
use crate::shared::SharedData;

/// One `proxy_log` call (or one `fd_write` to stdout / stderr, logged at info / error as
/// Envoy does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub level: LogLevel,
    pub message: String,
}

impl std::fmt::Display for LogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.level, self.message)
    }
}

/// A `proxy_send_local_response` not yet turned into a response.
#[derive(Debug, Clone)]
pub(crate) struct LocalReply {
    pub(crate) status: u16,
    pub(crate) details: String,
    pub(crate) body: Vec<u8>,
    pub(crate) headers: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Per-HTTP-context state.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    pub(crate) id: u32,
    pub(crate) properties: BTreeMap<Vec<String>, Vec<u8>>,

    pub(crate) request_headers: Headers,
    pub(crate) request_headers_sent: bool,
    /// The downstream sent its last request frame.
    pub(crate) request_ended: bool,
    /// Envoy's `request_headers_` is non-null: the map is readable and writable.
    pub(crate) request_headers_live: bool,
    /// The buffer `proxy_get_buffer_bytes(HttpRequestBody)` sees.
    pub(crate) request_body: Vec<u8>,
    pub(crate) request_body_live: bool,
    /// The last body callback returned StopIterationAndBuffer: the next chunk is appended.
    pub(crate) request_buffering: bool,
    /// Body already passed upstream.
    pub(crate) forwarded_body: Vec<u8>,
    /// The filter holds the request (its last callback returned a stop and nothing resumed
    /// it).
    pub(crate) request_paused: bool,
    /// `proxy_continue_stream(HttpRequest)` was called and is not processed yet.
    pub(crate) request_continue: bool,
    /// The request trailers, as the filter left them.
    pub(crate) request_trailers: Headers,
    /// The downstream sent request trailers (they ended the request).
    pub(crate) request_trailers_sent: bool,
    /// Envoy's `request_trailers_` is non-null: the map is readable and writable.
    pub(crate) request_trailers_live: bool,
    /// The request trailers went upstream.
    pub(crate) request_trailers_forwarded: bool,

    pub(crate) response_headers: Headers,
    pub(crate) response_headers_sent: bool,
    pub(crate) response_ended: bool,
    pub(crate) response_headers_live: bool,
    pub(crate) response_body: Vec<u8>,
    pub(crate) response_body_live: bool,
    pub(crate) response_buffering: bool,
    pub(crate) response_forwarded_body: Vec<u8>,
    pub(crate) response_paused: bool,
    pub(crate) response_continue: bool,
    pub(crate) response_trailers: Headers,
    pub(crate) response_trailers_sent: bool,
    pub(crate) response_trailers_live: bool,
    /// The response trailers went to the client.
    pub(crate) response_trailers_forwarded: bool,
    /// Status of the response headers the filter saw (`response.code` property).
    pub(crate) response_code: Option<u16>,

    /// Queued by `proxy_send_local_response`, delivered after the guest call returns.
    pub(crate) pending_local_reply: Option<LocalReply>,
    /// The local reply was delivered (its details).
    pub(crate) local_reply_details: Option<String>,
    /// `proxy_close_stream`: the stream was reset with these details.
    pub(crate) reset: Option<String>,
    /// `on_log` is running: header maps are read-only views.
    pub(crate) access_log: bool,

    /// Kong: the headers step is over and nginx is reading the body; nothing went upstream.
    pub(crate) kong_body_pending: bool,
    /// Kong: the body step ran (or there was no body to run it for).
    pub(crate) kong_body_delivered: bool,
    /// Kong: the whole body arrived while the body step was due; deliver it after this call.
    pub(crate) kong_deliver_body: bool,
    /// Kong: the response body is being buffered at the filter's request.
    pub(crate) kong_resp_buffering: bool,
    /// Kong: the filter already had its buffered response body; another pause is ignored.
    pub(crate) kong_resp_buffered: bool,
    /// Kong: a local response from `on_response_headers` (status, body) rewrites the response.
    pub(crate) kong_override: Option<(u16, Vec<u8>)>,
    /// Kong: the response was rewritten; the upstream's body is discarded.
    pub(crate) kong_replaced: bool,
}

impl StreamState {
    pub(crate) fn new(id: u32, properties: BTreeMap<Vec<String>, Vec<u8>>) -> Self {
        Self {
            id,
            properties,
            ..Self::default()
        }
    }

    /// The stream ended without going (further) upstream.
    pub(crate) fn ended(&self) -> bool {
        self.local_reply_details.is_some()
            || self.pending_local_reply.is_some()
            || self.reset.is_some()
    }
}

pub(crate) struct HostState {
    pub(crate) memory: Option<Memory>,
    pub(crate) alloc: crate::plugin::Export<i32, i32>,
    /// Caps guest memory (`Store::limiter`).
    pub(crate) limits: StoreLimits,
    /// Reused buffer for data returned to the guest.
    pub(crate) scratch: Vec<u8>,

    /// Unique per plugin (owner of shared queues).
    pub(crate) uid: u64,
    pub(crate) root_context: u32,
    /// The context host calls act on (`proxy_set_effective_context` can change it).
    pub(crate) effective: u32,

    pub(crate) now: SystemTime,
    pub(crate) monotonic_ns: u64,
    pub(crate) rng: u64,

    pub(crate) log_level: LogLevel,
    pub(crate) record_logs: bool,
    pub(crate) buffer_limit: Option<usize>,
    pub(crate) logs: Vec<LogEntry>,
    pub(crate) metrics: Metrics,
    pub(crate) shared: SharedData,

    pub(crate) profile: HostProfile,
    pub(crate) properties: BTreeMap<Vec<String>, Vec<u8>>,
    pub(crate) vm_id: String,
    pub(crate) plugin_name: String,
    pub(crate) root_id: String,
    pub(crate) vm_config: Vec<u8>,
    pub(crate) plugin_config: Vec<u8>,
    /// `on_configure` is running (Envoy only exposes the plugin configuration then).
    pub(crate) in_configure: bool,
    /// The guest export being called (`proxy_on_tick`, ...); empty between calls.
    pub(crate) callback: &'static str,
    /// Kong profile: room for a buffered response body (`wasm_response_body_buffers`).
    pub(crate) response_body_buffers: usize,

    pub(crate) tick_period: Option<Duration>,
    pub(crate) streams: Vec<StreamState>,

    pub(crate) known_clusters: Option<BTreeSet<String>>,
    pub(crate) http_calls: Vec<HttpCall>,
    pub(crate) next_token: u32,
    /// The response being delivered by `proxy_on_http_call_response`.
    pub(crate) call_response: Option<HttpCallResponse>,
    /// `proxy_get_status`: code and message of the last call outcome.
    pub(crate) status: (u32, Vec<u8>),
    /// `proxy_done` was called.
    pub(crate) done_called: bool,
}

impl HostState {
    pub(crate) fn new(opts: PluginOptions, uid: u64, root_context: u32, seed: u64) -> Self {
        Self {
            memory: None,
            alloc: None,
            limits: crate::plugin::memory_limits(),
            scratch: Vec::new(),
            uid,
            root_context,
            effective: root_context,
            now: opts.now,
            // A day in: guests that subtract durations from `Instant::now()` must not underflow.
            monotonic_ns: 86_400 * 1_000_000_000,
            rng: seed,
            log_level: opts.log_level,
            record_logs: opts.record_logs,
            buffer_limit: opts.buffer_limit,
            logs: Vec::new(),
            metrics: Metrics::default(),
            shared: opts.shared_data,
            profile: opts.profile,
            properties: opts.properties,
            vm_id: opts.vm_id,
            plugin_name: opts.plugin_name,
            root_id: opts.root_id,
            vm_config: opts.vm_config,
            plugin_config: opts.plugin_config,
            in_configure: false,
            callback: "",
            response_body_buffers: opts.response_body_buffers,
            tick_period: None,
            streams: Vec::new(),
            known_clusters: opts.known_clusters,
            http_calls: Vec::new(),
            next_token: 1,
            call_response: None,
            status: (0, Vec::new()),
            done_called: false,
        }
    }

    /// A state for a throwaway store (import checks at load time).
    pub(crate) fn empty() -> Self {
        Self::new(PluginOptions::default(), 0, 0, 0)
    }

    pub(crate) fn log(&mut self, level: LogLevel, message: String) {
        if self.record_logs {
            self.logs.push(LogEntry { level, message });
        }
    }

    pub(crate) fn now_nanos(&self) -> u64 {
        self.now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// splitmix64: good enough for WASI `random_get` in tests, and reproducible with a seed.
    pub(crate) fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn stream(&self, id: u32) -> Option<&StreamState> {
        self.streams.iter().find(|s| s.id == id)
    }

    pub(crate) fn stream_mut(&mut self, id: u32) -> Option<&mut StreamState> {
        self.streams.iter_mut().find(|s| s.id == id)
    }

    pub(crate) fn effective_stream(&self) -> Option<&StreamState> {
        self.stream(self.effective)
    }

    pub(crate) fn effective_stream_mut(&mut self) -> Option<&mut StreamState> {
        let id = self.effective;
        self.stream_mut(id)
    }

    pub(crate) fn context_exists(&self, id: u32) -> bool {
        id == self.root_context || self.stream(id).is_some()
    }

    /// A header map for reading, if it is available in the current phase.
    pub(crate) fn map(&self, map: MapType) -> Option<&Headers> {
        match map {
            MapType::RequestHeaders => self
                .effective_stream()
                .filter(|s| s.request_headers_live || s.access_log)
                .map(|s| &s.request_headers),
            MapType::ResponseHeaders => self
                .effective_stream()
                .filter(|s| s.response_headers_live || s.access_log)
                .map(|s| &s.response_headers),
            // Envoy's `getConstMap`: no request trailers in the access log phase, but the
            // response trailers the client got.
            MapType::RequestTrailers => self
                .effective_stream()
                .filter(|s| s.request_trailers_live && !s.access_log)
                .map(|s| &s.request_trailers),
            MapType::ResponseTrailers => self
                .effective_stream()
                .filter(|s| {
                    if s.access_log {
                        s.response_trailers_forwarded
                    } else {
                        s.response_trailers_live
                    }
                })
                .map(|s| &s.response_trailers),
            MapType::HttpCallResponseHeaders => self.call_response.as_ref().map(|r| &r.headers),
            MapType::HttpCallResponseTrailers => self.call_response.as_ref().map(|r| &r.trailers),
            // gRPC metadata is not modelled: the map is never available.
            MapType::GrpcReceiveInitialMetadata | MapType::GrpcReceiveTrailingMetadata => None,
        }
    }

    /// `on_log` is running on the effective context (Envoy's `access_log_phase_`).
    pub(crate) fn in_access_log(&self) -> bool {
        self.effective_stream().is_some_and(|s| s.access_log)
    }

    /// A header map for writing, if it is writable in the current phase.
    pub(crate) fn map_mut(&mut self, map: MapType) -> Option<&mut Headers> {
        match map {
            MapType::RequestHeaders => self
                .effective_stream_mut()
                .filter(|s| s.request_headers_live && !s.access_log)
                .map(|s| &mut s.request_headers),
            MapType::ResponseHeaders => self
                .effective_stream_mut()
                .filter(|s| s.response_headers_live && !s.access_log)
                .map(|s| &mut s.response_headers),
            MapType::RequestTrailers => self
                .effective_stream_mut()
                .filter(|s| s.request_trailers_live && !s.access_log)
                .map(|s| &mut s.request_trailers),
            MapType::ResponseTrailers => self
                .effective_stream_mut()
                .filter(|s| s.response_trailers_live && !s.access_log)
                .map(|s| &mut s.response_trailers),
            _ => None,
        }
    }

    /// A buffer for reading, if it exists in the current phase.
    pub(crate) fn buffer(&self, buffer: BufferType) -> Option<&[u8]> {
        match buffer {
            BufferType::HttpRequestBody => self
                .effective_stream()
                .filter(|s| s.request_body_live)
                .map(|s| s.request_body.as_slice()),
            BufferType::HttpResponseBody => self
                .effective_stream()
                .filter(|s| s.response_body_live)
                .map(|s| s.response_body.as_slice()),
            BufferType::HttpCallResponseBody => {
                self.call_response.as_ref().map(|r| r.body.as_slice())
            }
            BufferType::VmConfiguration => Some(&self.vm_config),
            BufferType::PluginConfiguration => {
                self.in_configure.then_some(self.plugin_config.as_slice())
            }
            BufferType::DownstreamData
            | BufferType::UpstreamData
            | BufferType::GrpcReceiveBuffer
            | BufferType::CallData => None,
        }
    }

    /// `proxy_set_buffer_bytes`: only HTTP bodies are writable.
    pub(crate) fn set_buffer(
        &mut self,
        buffer: BufferType,
        start: usize,
        len: usize,
        data: &[u8],
    ) -> Status {
        let body = match buffer {
            BufferType::HttpRequestBody => self
                .effective_stream_mut()
                .filter(|s| s.request_body_live)
                .map(|s| &mut s.request_body),
            BufferType::HttpResponseBody => self
                .effective_stream_mut()
                .filter(|s| s.response_body_live)
                .map(|s| &mut s.response_body),
            other => {
                return if self.buffer(other).is_some() {
                    Status::BadArgument
                } else {
                    Status::NotFound
                };
            }
        };
        match body {
            Some(body) => envoy_copy_from(body, start, len, data),
            None => Status::NotFound,
        }
    }

    /// Writes the value of a property into `out`; `false` if there is none (or the host
    /// fails the lookup, see [`HostState::lookup_property`]).
    #[cfg(test)]
    pub(crate) fn property_into(&self, path: &[String], out: &mut Vec<u8>) -> bool {
        self.lookup_property(path, out) == Lookup::Found
    }

    /// Looks a property up as the profile's host does.
    ///
    /// Envoy: the stream's own properties (per request, and those the guest set), the
    /// plugin's properties, then what Envoy derives (`request.*` from the current request
    /// headers, `response.code`, `plugin_name`, `plugin_root_id`, `plugin_vm_id`); anything
    /// else is `NotFound`. Kong: see [`crate::kong`].
    pub(crate) fn lookup_property(&self, path: &[String], out: &mut Vec<u8>) -> Lookup {
        if self.profile == HostProfile::Kong {
            return self.kong_property(path, out);
        }
        let stream = self.effective_stream();
        let supplied = stream
            .and_then(|s| s.properties.get(path))
            .or_else(|| self.properties.get(path));
        if let Some(value) = supplied {
            out.extend_from_slice(value);
            return Lookup::Found;
        }
        if self.envoy_property(stream, path, out) {
            Lookup::Found
        } else {
            Lookup::NotFound
        }
    }

    fn envoy_property(
        &self,
        stream: Option<&StreamState>,
        path: &[String],
        out: &mut Vec<u8>,
    ) -> bool {
        let segments: Vec<&str> = path.iter().map(String::as_str).collect();
        let header = |name: &str| stream.and_then(|s| s.request_headers.get(name));
        let value: Option<&[u8]> = match segments.as_slice() {
            ["plugin_name"] => Some(self.plugin_name.as_bytes()),
            ["plugin_root_id"] => Some(self.root_id.as_bytes()),
            ["plugin_vm_id"] => Some(self.vm_id.as_bytes()),
            ["request", "path"] => header(":path"),
            ["request", "url_path"] => {
                header(":path").map(|p| p.split(|b| *b == b'?').next().unwrap_or(p))
            }
            ["request", "host"] => header(":authority"),
            ["request", "scheme"] => header(":scheme"),
            ["request", "method"] => header(":method"),
            ["request", "id"] => header("x-request-id"),
            ["request", "protocol"] => stream.map(|_| &b"HTTP/1.1"[..]),
            ["request", "headers", name] => header(name),
            ["request", "headers"] => {
                return match stream {
                    Some(s) => {
                        s.request_headers.serialize_into(out);
                        true
                    }
                    None => false,
                };
            }
            ["response", "code"] => {
                return match stream.and_then(|s| s.response_code) {
                    Some(code) => {
                        out.extend_from_slice(&i64::from(code).to_le_bytes());
                        true
                    }
                    None => false,
                };
            }
            _ => None,
        };
        match value {
            Some(value) => {
                out.extend_from_slice(value);
                true
            }
            None => false,
        }
    }
}

/// Envoy's `Buffer::copyFrom` for HTTP bodies: at `start == 0`, `len == 0` prepends and
/// `len >= size` replaces everything; `start >= size` appends; any other range is refused
/// with `BadArgument` (Envoy cannot splice the middle of a body).
pub(crate) fn envoy_copy_from(body: &mut Vec<u8>, start: usize, len: usize, data: &[u8]) -> Status {
    if start == 0 {
        if len == 0 {
            body.splice(0..0, data.iter().copied());
            Status::Ok
        } else if len >= body.len() {
            body.clear();
            body.extend_from_slice(data);
            Status::Ok
        } else {
            Status::BadArgument
        }
    } else if start >= body.len() {
        body.extend_from_slice(data);
        Status::Ok
    } else {
        Status::BadArgument
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_writes_follow_envoy() {
        let mut b = b"world".to_vec();
        assert_eq!(envoy_copy_from(&mut b, 0, 0, b"hello "), Status::Ok);
        assert_eq!(b, b"hello world");
        let end = b.len();
        assert_eq!(envoy_copy_from(&mut b, end, 0, b"!"), Status::Ok);
        assert_eq!(b, b"hello world!");
        assert_eq!(envoy_copy_from(&mut b, 0, usize::MAX, b"new"), Status::Ok);
        assert_eq!(b, b"new");
        assert_eq!(envoy_copy_from(&mut b, 1, 1, b"x"), Status::BadArgument);
        assert_eq!(envoy_copy_from(&mut b, 0, 1, b"x"), Status::BadArgument);
        assert_eq!(b, b"new");
    }

    #[test]
    fn maps_follow_the_phase() {
        let mut state = HostState::empty();
        let mut stream = StreamState::new(2, BTreeMap::new());
        stream.request_headers.add(b":path", b"/a?b=1");
        state.streams.push(stream);
        state.effective = 2;
        assert!(state.map(MapType::RequestHeaders).is_none());
        assert!(state.map_mut(MapType::RequestHeaders).is_none());
        if let Some(s) = state.stream_mut(2) {
            s.request_headers_live = true;
        }
        assert!(state.map_mut(MapType::RequestHeaders).is_some());
        if let Some(s) = state.stream_mut(2) {
            s.request_headers_live = false;
            s.access_log = true;
        }
        assert!(state.map(MapType::RequestHeaders).is_some());
        assert!(state.map_mut(MapType::RequestHeaders).is_none());
        // The root context has no request.
        state.effective = 0;
        assert!(state.map(MapType::RequestHeaders).is_none());
    }

    #[test]
    fn properties_resolve_in_order() {
        let mut state = HostState::empty();
        let key = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        state.properties.insert(key(&["a"]), b"plugin".to_vec());
        let mut stream = StreamState::new(2, BTreeMap::new());
        stream.properties.insert(key(&["a"]), b"stream".to_vec());
        stream.request_headers.add(b":path", b"/x?q");
        state.streams.push(stream);

        let mut out = Vec::new();
        assert!(state.property_into(&key(&["a"]), &mut out));
        assert_eq!(out, b"plugin");
        state.effective = 2;
        out.clear();
        assert!(state.property_into(&key(&["a"]), &mut out));
        assert_eq!(out, b"stream");
        out.clear();
        assert!(state.property_into(&key(&["request", "url_path"]), &mut out));
        assert_eq!(out, b"/x");
        out.clear();
        assert!(!state.property_into(&key(&["no", "such"]), &mut out));
    }
}
