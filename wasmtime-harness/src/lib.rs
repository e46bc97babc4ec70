//! A native proxy-wasm host (ABI v0.2.1) on wasmtime that drives a compiled filter `.wasm`
//! the way Envoy does — for tests, the `bridle-harness` CLI and benchmarks.
//!
//! ```no_run
//! use wasmtime_harness::{Harness, HttpRequest, PluginOptions};
//!
//! let harness = Harness::load("target/wasm32-wasip1/release/bridle.wasm")?;
//! let mut plugin = harness.start(PluginOptions::with_config(r#"{"...": "..."}"#).at_unix(1_700_000_000))?;
//! let outcome = plugin.request(&HttpRequest::get("/api/reports").header("authorization", "Bearer x"))?;
//! assert_eq!(outcome.status(), 401);
//! # Ok::<(), wasmtime_harness::HarnessError>(())
//! ```
//!
//! The host is state-based (like `proxytest` of the Go SDK): tests assert on outcomes — the
//! response the client got, the request as it went upstream, logs, metrics, shared data,
//! pending calls — not on the order of host calls.
//!
//! What is reproduced from Envoy (proxy-wasm-cpp-host + `extensions/common/wasm`):
//! - start-up: `_initialize`, `proxy_on_context_create(root, 0)`, `proxy_on_vm_start`,
//!   `proxy_on_configure` (plugin configuration readable only then; `false` refuses the
//!   plugin);
//! - the stream lifecycle and buffering rules, local replies passing through the filter's
//!   own response callbacks, and which header maps / buffers exist in which phase
//!   (see [`lifecycle`](crate::Plugin::request) and the `state` module docs);
//! - status codes of every host call (`NotFound` for unknown properties, `BadArgument` for
//!   unknown clusters or maps not available in the phase, `CasMismatch`, metrics rules);
//! - data returned to the guest is allocated with its `proxy_on_memory_allocate` (or
//!   `malloc`); empty values come back as a null pointer, like Envoy;
//! - WASI: only what Envoy gives (no files, args or environment; stdout/stderr become logs).
//!
//! [`HostProfile::Kong`] imitates Kong Gateway's host, ngx_wasm_module, instead: its
//! properties, the host functions it leaves unimplemented (they trap), request bodies held
//! until the headers step continued, response phases that cannot be held, response body
//! buffering and `proxy_http_call` to hosts (see the `kong` module).
//!
//! Trailers follow Envoy: they end the stream, so the last body chunk has no end of stream and
//! `proxy_on_request_trailers` / `proxy_on_response_trailers` get the stream's last word (with
//! a buffered body still readable); the Kong profile never calls them (see the `kong` module).
//!
//! Not modelled: gRPC calls and streams (a module importing them is refused at load),
//! metadata, TCP streams, foreign functions (all `NotFound`), headers Envoy
//! adds on its own (`x-request-id`, `x-forwarded-proto`, ...).
//!
//! Execution is bounded with wasmtime epoch interruption: each guest call gets a wall-clock
//! budget ([`PluginOptions::call_budget`], default 10 s) and traps when it runs out. Epoch
//! checks cost a few percent, unlike fuel, so benchmarks run with them on.

mod abi;
mod error;
mod fmt;
mod harness;
#[cfg(test)]
mod harness_tests;
mod headers;
mod hostcalls;
mod http_call;
mod kong;
mod lifecycle;
mod memory;
mod metrics;
mod options;
mod plugin;
mod request;
mod shared;
mod state;
mod stream;
mod wasi;

pub use abi::{Action, LogLevel};
pub use error::HarnessError;
pub use harness::Harness;
pub use headers::Headers;
pub use http_call::{HttpCall, HttpCallResponse};
pub use metrics::MetricValue;
pub use options::{HostProfile, PluginOptions};
pub use plugin::Plugin;
pub use request::{HttpOutcome, HttpRequest, UpstreamResponse};
pub use shared::SharedData;
pub use state::LogEntry;
pub use stream::HttpStream;

#[cfg(test)]
mod tests {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_cross_threads() {
        // Tests may compile once and run plugins on several threads.
        send_sync::<super::Harness>();
        send::<super::Plugin>();
        send_sync::<super::SharedData>();
        send_sync::<super::HarnessError>();
    }
}
