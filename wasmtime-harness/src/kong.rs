//! The Kong profile: Kong Gateway's proxy-wasm host, ngx_wasm_module.
//!
//! Reproduced from the ngx_wasm_module sources (Kong/ngx_wasm_module at 3bed278, 2025-04:
//! `docs/PROXY_WASM.md`, `src/common/proxy_wasm/ngx_proxy_wasm_host.c`,
//! `ngx_proxy_wasm_properties.c`, `ngx_proxy_wasm.c`, `src/http/proxy_wasm/*.c`,
//! `src/wasm/ngx_wasm_ops.c`, tests `t/03-proxy_wasm/006-on_http_next_action.t`):
//!
//! - Host functions it registers as "not yet implemented" trap when called:
//!   `proxy_get_log_level`, `proxy_done`, `proxy_close_stream`, `proxy_get_status`, every gRPC
//!   call, `proxy_resolve_shared_queue` (`ngx_proxy_wasm_hfuncs_nop` → `NGX_WAVM_NYI`).
//! - Properties are strings; only the attributes it implements resolve (`request.*`,
//!   `response.code` and `response.headers.*`, `connection.mtls`/`id`/`tls_version`/...,
//!   `source.*`, `destination.*`, `upstream.address`/`port`, `plugin_name`, `plugin_root_id`,
//!   `ngx.*`, `wasmx.*`, Kong's `kong.*`); the rest — among them
//!   `connection.uri_san_peer_certificate`, `plugin_vm_id`, Envoy `metadata.*` — is `NotFound`.
//!   A dotted path read or written outside a request (root context, `on_tick`) is
//!   `InternalFailure`. Only `wasmx.*` (and a few `ngx.*`) can be set; any other path is
//!   `NotFound` (the Rust SDK's `set_property` panics on that).
//! - `proxy_http_call` takes a host (`name[:port]`, resolved by the gateway), not a cluster;
//!   it needs `:method` and `:path` (not `:authority`); it may only be called from
//!   `on_request_headers`, `on_request_body`, `on_tick` and `on_http_call_response` (anything
//!   else traps). A failed call is delivered with no headers, body or trailers, except the
//!   `:dispatch_status` pseudo-header. A paused stream resumes by itself once its last call
//!   has been answered.
//! - `on_request_headers` and `on_response_headers` always get `end_of_stream = false`.
//! - A pause in `on_request_headers` or `on_request_body` holds the request until
//!   `proxy_continue_stream` or the end of its calls: with neither the request hangs. The
//!   request body is read only after the headers step continued, and is delivered once, whole,
//!   with `end_of_stream = true` — and not at all when it is empty.
//! - Response phases cannot be held (`proxy_continue_response` is unsupported): a pause in
//!   `on_response_headers` is ignored (a warning, unless a local response replaced the
//!   response); a pause in `on_response_body` asks the host to buffer the body, and the
//!   callback runs again with the body when it ended or the buffers are full
//!   (`wasm_response_body_buffers`); a second pause is ignored (an error log) and the chunk
//!   goes to the client. `proxy_continue_stream(HttpResponse)` is accepted and does nothing.
//! - A local response from `on_response_headers` replaces the status and body (a line feed is
//!   appended to the body); from `on_response_body` it traps ("response already sent").
//! - Trailers (checked against the vendored ngx_wasm_module 0.6.0 sources): neither trailers
//!   callback is ever called. `proxy_on_request_trailers` is looked up
//!   (`src/common/proxy_wasm/ngx_proxy_wasm.c:1699-1727`) but the step dispatch
//!   (`ngx_proxy_wasm.c:822-859`) and `ngx_http_proxy_wasm_resume`
//!   (`src/http/proxy_wasm/ngx_http_proxy_wasm.c:451-492`) have no case for
//!   `NGX_PROXY_WASM_STEP_REQ_TRAILERS`, and no phase resumes it (`src/wasm/ngx_wasm_ops.c`);
//!   the response trailers step only exists under `#ifdef NGX_WASM_RESPONSE_TRAILERS`
//!   (`ngx_proxy_wasm.c:827-829`, `ngx_http_proxy_wasm.c:267-303, 469-473`,
//!   `ngx_wasm_ops.c:543-548`), which `config` never defines. `docs/PROXY_WASM.md:659,663`
//!   lists both callbacks as NYI. The request body step still gets the whole body with
//!   `end_of_stream = true` (`ngx_http_proxy_wasm.c:72`), and the response's end reaches the
//!   body step as its last buffer. There is no trailer map: `ngx_proxy_wasm_maps_get_map`
//!   (`src/common/proxy_wasm/ngx_proxy_wasm_maps.c:95-145`) logs "NYI - get_map bad map_type"
//!   and returns none for map types 1 and 3, so `proxy_get_header_map_pairs` answers
//!   `BadArgument` (`src/common/proxy_wasm/ngx_proxy_wasm_host.c:578-581`; the Rust SDK panics
//!   on it), `proxy_get_header_map_value` `NotFound` (`:617-626`), and every write
//!   `BadArgument` (`ngx_proxy_wasm_hfuncs_set_header_check`, `:706-711`). Trailers are not
//!   passed on in either direction (nginx's proxy module; not in ngx_wasm_module's sources).
//! - Shared data and shared queues work (`on_queue_ready` is never called). A trap fails the
//!   request with `500` (Envoy, fail-closed: `503`); ngx_wasm_module then replaces the
//!   instance, which the harness does not model (it keeps the VM failed, as Envoy does).

use crate::state::{HostState, StreamState};

/// Host functions ngx_wasm_module registers but does not implement: calling one traps.
pub(crate) const NOT_IMPLEMENTED: [&str; 10] = [
    "proxy_get_log_level",
    "proxy_done",
    "proxy_close_stream",
    "proxy_get_status",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_resolve_shared_queue",
];

/// The trap ngx_wasm_module raises for a function it does not implement.
pub(crate) fn not_implemented(name: &str) -> wasmtime::Error {
    wasmtime::Error::msg(format!("host trap (function not yet implemented): {name}"))
}

/// Callbacks during which `proxy_http_call` is allowed.
pub(crate) fn may_dispatch(callback: &str) -> bool {
    matches!(
        callback,
        "proxy_on_request_headers"
            | "proxy_on_request_body"
            | "proxy_on_tick"
            | "proxy_on_http_call_response"
    )
}

pub(crate) fn dispatch_trap() -> wasmtime::Error {
    wasmtime::Error::msg(
        "host trap (bad usage): can only send HTTP dispatch during \"on_request_headers\", \
         \"on_request_body\", \"on_tick\", \"on_dispatch_response\", \"on_foreign_function\"",
    )
}

/// What a property lookup gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    Found,
    NotFound,
    /// `InternalFailure`: a scoped (dotted) path outside a request.
    Failure,
}

/// Envoy attributes ngx_wasm_module lists as not implemented or not supported.
fn unsupported(segments: &[&str]) -> bool {
    match segments {
        ["connection", name] => matches!(
            *name,
            "subject_peer_certificate"
                | "dns_san_local_certificate"
                | "dns_san_peer_certificate"
                | "uri_san_local_certificate"
                | "uri_san_peer_certificate"
                | "sha256_peer_certificate_digest"
                | "termination_details"
        ),
        ["upstream", name] => !matches!(*name, "address" | "port"),
        ["response", name] => {
            matches!(*name, "grpc_status" | "trailers" | "code_details" | "flags")
        }
        _ => false,
    }
}

/// Namespaces whose values a test may supply (they stand for what the gateway knows about the
/// connection, the route or nginx variables).
fn suppliable(segments: &[&str]) -> bool {
    match segments.first() {
        Some(
            &("request" | "response" | "connection" | "source" | "destination" | "upstream"
            | "ngx" | "wasmx" | "kong"),
        ) => !unsupported(segments),
        _ => false,
    }
}

impl HostState {
    /// Property lookup as ngx_wasm_module does it.
    pub(crate) fn kong_property(&self, path: &[String], out: &mut Vec<u8>) -> Lookup {
        let stream = self.effective_stream();
        let segments: Vec<&str> = path.iter().map(String::as_str).collect();
        if stream.is_none() && segments.len() > 1 {
            return Lookup::Failure;
        }
        let found = |value: &[u8], out: &mut Vec<u8>| {
            out.extend_from_slice(value);
            Lookup::Found
        };
        match segments.as_slice() {
            ["plugin_name"] => return found(self.plugin_name.as_bytes(), out),
            ["plugin_root_id"] => return found(self.root_id.as_bytes(), out),
            _ => {}
        }
        if !suppliable(&segments) {
            return Lookup::NotFound;
        }
        if let Some(value) = stream
            .and_then(|s| s.properties.get(path))
            .or_else(|| self.properties.get(path))
        {
            return found(value, out);
        }
        let Some(stream) = stream else {
            return Lookup::NotFound;
        };
        match kong_derived(stream, &segments) {
            Some(value) => found(&value, out),
            None => Lookup::NotFound,
        }
    }

    /// `proxy_set_property` as ngx_wasm_module does it: `wasmx.*` is stored in the current
    /// context's scope; other paths are `NotFound`.
    pub(crate) fn kong_set_property(&mut self, path: Vec<String>, value: &[u8]) -> Lookup {
        let in_request = self.effective_stream().is_some();
        if !in_request && path.len() > 1 {
            return Lookup::Failure;
        }
        if path.len() < 2 || path.first().map(String::as_str) != Some("wasmx") {
            return Lookup::NotFound;
        }
        if let Some(stream) = self.effective_stream_mut() {
            stream.properties.insert(path, value.to_vec());
        }
        Lookup::Found
    }
}

/// Values ngx_wasm_module derives from the request itself.
fn kong_derived(stream: &StreamState, segments: &[&str]) -> Option<Vec<u8>> {
    let header = |name: &str| stream.request_headers.get(name).map(<[u8]>::to_vec);
    let path = header(":path");
    match segments {
        ["request", "path"] => path,
        ["request", "url_path"] => {
            path.map(|p| p.split(|b| *b == b'?').next().unwrap_or(&p).to_vec())
        }
        ["request", "query"] => Some(
            path.and_then(|p| {
                p.iter()
                    .position(|b| *b == b'?')
                    .map(|at| p.get(at + 1..).unwrap_or_default().to_vec())
            })
            .unwrap_or_default(),
        ),
        // nginx's `$hostname`: the gateway machine's name, not the request's authority.
        ["request", "host"] => Some(b"kong".to_vec()),
        ["request", "scheme"] => header(":scheme"),
        ["request", "method"] => header(":method"),
        ["request", "protocol"] => Some(b"HTTP/1.1".to_vec()),
        ["request", "id"] => header("x-request-id"),
        ["request", "referer"] => header("referer"),
        ["request", "useragent"] => header("user-agent"),
        ["request", "size"] => header("content-length"),
        ["request", "is_subrequest"] => Some(b"false".to_vec()),
        ["request", "headers", name] => header(name),
        ["response", "code"] => stream.response_code.map(|c| c.to_string().into_bytes()),
        ["response", "headers", name] => stream.response_headers.get(name).map(<[u8]>::to_vec),
        ["connection", "mtls"] => Some(b"false".to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::options::{HostProfile, PluginOptions};

    fn key(path: &[&str]) -> Vec<String> {
        path.iter().map(|s| (*s).to_owned()).collect()
    }

    fn lookup(state: &HostState, path: &[&str]) -> (Lookup, String) {
        let mut out = Vec::new();
        let found = state.lookup_property(&key(path), &mut out);
        (found, String::from_utf8_lossy(&out).into_owned())
    }

    fn kong_state() -> HostState {
        let opts = PluginOptions::new()
            .profile(HostProfile::Kong)
            .property(&["connection", "uri_san_peer_certificate"], "spiffe://x/y")
            .property(&["metadata", "filter_metadata", "jwt"], "proof")
            .property(&["source", "address"], "10.0.0.1");
        let mut state = HostState::new(opts, 1, 1, 0);
        let mut stream = StreamState::new(2, BTreeMap::new());
        stream.request_headers.add(b":path", b"/a/b?c=1");
        stream.request_headers.add(b":method", b"GET");
        stream.request_headers.add(b"x-trace", b"t1");
        stream.response_code = Some(201);
        state.streams.push(stream);
        state
    }

    #[test]
    fn properties_follow_ngx_wasm_module() {
        let mut state = kong_state();
        // Root context: only unscoped names; a dotted path is a failure, not NotFound.
        assert_eq!(lookup(&state, &["plugin_name"]).0, Lookup::Found);
        assert_eq!(lookup(&state, &["request", "path"]).0, Lookup::Failure);
        state.effective = 2;
        assert_eq!(
            lookup(&state, &["request", "path"]),
            (Lookup::Found, "/a/b?c=1".into())
        );
        assert_eq!(lookup(&state, &["request", "url_path"]).1, "/a/b");
        assert_eq!(lookup(&state, &["request", "query"]).1, "c=1");
        assert_eq!(lookup(&state, &["request", "headers", "x-trace"]).1, "t1");
        assert_eq!(lookup(&state, &["request", "is_subrequest"]).1, "false");
        // Strings, not Envoy's 8-byte integers.
        assert_eq!(lookup(&state, &["response", "code"]).1, "201");
        assert_eq!(lookup(&state, &["source", "address"]).1, "10.0.0.1");
        // What it lacks stays missing even when a test supplies it.
        for missing in [
            &["connection", "uri_san_peer_certificate"][..],
            &["metadata", "filter_metadata", "jwt"],
            &["plugin_vm_id"],
            &["node"],
            &["response", "code_details"],
        ] {
            assert_eq!(lookup(&state, missing).0, Lookup::NotFound, "{missing:?}");
        }
    }

    #[test]
    fn only_wasmx_properties_can_be_set() {
        let mut state = kong_state();
        assert_eq!(
            state.kong_set_property(key(&["wasmx", "a"]), b"1"),
            Lookup::Failure,
            "no request in the root context"
        );
        state.effective = 2;
        assert_eq!(
            state.kong_set_property(key(&["wasmx", "a"]), b"1"),
            Lookup::Found
        );
        assert_eq!(lookup(&state, &["wasmx", "a"]).1, "1");
        assert_eq!(
            state.kong_set_property(key(&["bridle_decision"]), b"{}"),
            Lookup::NotFound
        );
    }

    #[test]
    fn dispatch_steps() {
        assert!(may_dispatch("proxy_on_tick"));
        assert!(may_dispatch("proxy_on_request_body"));
        assert!(!may_dispatch("proxy_on_response_headers"));
        assert!(!may_dispatch("proxy_on_configure"));
        assert!(!may_dispatch("proxy_on_log"));
    }
}
