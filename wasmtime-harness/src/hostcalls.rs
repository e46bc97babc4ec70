//! The `env.proxy_*` host functions of proxy-wasm ABI v0.2.1, as the Rust SDK 0.2.5 imports
//! them, with Envoy's status codes.
//!
//! Every function validates guest pointers ([`crate::memory`]) and answers
//! `InvalidMemoryAccess` instead of touching memory out of bounds. Only allocator traps and
//! `proc_exit` abort a call.

use std::time::Duration;

use wasmtime::{Caller, Linker};

use crate::abi::{word, BufferType, LogLevel, MapType, MetricKind, Status, StreamType};
use crate::headers::{parse_pairs, parse_property_path, Headers};
use crate::http_call::HttpCall;
use crate::kong::{self, Lookup};
use crate::memory::{
    copy_to_guest, mem_state, read_u32, return_scratch, slice, write_u32, write_u64,
};
use crate::options::HostProfile;
use crate::state::{HostState, LocalReply};

type C<'a> = Caller<'a, HostState>;
type R = wasmtime::Result<i32>;

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_log", proxy_log)?;
    linker.func_wrap("env", "proxy_get_log_level", proxy_get_log_level)?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        proxy_get_current_time_nanoseconds,
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        proxy_set_tick_period_milliseconds,
    )?;
    linker.func_wrap("env", "proxy_get_buffer_bytes", proxy_get_buffer_bytes)?;
    linker.func_wrap("env", "proxy_set_buffer_bytes", proxy_set_buffer_bytes)?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        proxy_get_header_map_pairs,
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        proxy_set_header_map_pairs,
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        proxy_get_header_map_value,
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_size",
        proxy_get_header_map_size,
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        proxy_add_header_map_value,
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        proxy_replace_header_map_value,
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        proxy_remove_header_map_value,
    )?;
    linker.func_wrap("env", "proxy_get_property", proxy_get_property)?;
    linker.func_wrap("env", "proxy_set_property", proxy_set_property)?;
    linker.func_wrap("env", "proxy_get_shared_data", proxy_get_shared_data)?;
    linker.func_wrap("env", "proxy_set_shared_data", proxy_set_shared_data)?;
    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        proxy_register_shared_queue,
    )?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        proxy_resolve_shared_queue,
    )?;
    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        proxy_enqueue_shared_queue,
    )?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        proxy_dequeue_shared_queue,
    )?;
    linker.func_wrap("env", "proxy_continue_stream", proxy_continue_stream)?;
    linker.func_wrap("env", "proxy_close_stream", proxy_close_stream)?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        proxy_send_local_response,
    )?;
    linker.func_wrap("env", "proxy_http_call", proxy_http_call)?;
    linker.func_wrap("env", "proxy_get_status", proxy_get_status)?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        proxy_set_effective_context,
    )?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        proxy_call_foreign_function,
    )?;
    linker.func_wrap("env", "proxy_done", proxy_done)?;
    linker.func_wrap("env", "proxy_define_metric", proxy_define_metric)?;
    linker.func_wrap("env", "proxy_get_metric", proxy_get_metric)?;
    linker.func_wrap("env", "proxy_record_metric", proxy_record_metric)?;
    linker.func_wrap("env", "proxy_increment_metric", proxy_increment_metric)?;
    // The SDK's trait objects reference the gRPC calls even in filters that never use them,
    // so they must exist; a call is logged and refused rather than pretending to work.
    linker.func_wrap("env", "proxy_grpc_call", proxy_grpc_call)?;
    linker.func_wrap("env", "proxy_grpc_stream", proxy_grpc_stream)?;
    linker.func_wrap("env", "proxy_grpc_send", proxy_grpc_send)?;
    linker.func_wrap("env", "proxy_grpc_cancel", proxy_grpc_cancel)?;
    linker.func_wrap("env", "proxy_grpc_close", proxy_grpc_close)?;
    Ok(())
}

fn code(status: Status) -> i32 {
    status.code()
}

/// Kong (ngx_wasm_module) registers some host functions without implementing them: calling
/// one traps there.
fn kong_unimplemented(caller: &C<'_>, name: &str) -> wasmtime::Result<()> {
    if caller.data().profile == HostProfile::Kong && kong::NOT_IMPLEMENTED.contains(&name) {
        return Err(kong::not_implemented(name));
    }
    Ok(())
}

/// Guest memory and host state; a module without memory cannot get here (start refuses it).
macro_rules! mem_state {
    ($caller:expr) => {
        match mem_state($caller) {
            Some(pair) => pair,
            None => return Ok(code(Status::InternalFailure)),
        }
    };
}

/// A bounds-checked guest slice, or `InvalidMemoryAccess`.
macro_rules! guest {
    ($mem:expr, $ptr:expr, $len:expr) => {
        match slice($mem, $ptr, $len) {
            Some(bytes) => bytes,
            None => return Ok(code(Status::InvalidMemoryAccess)),
        }
    };
}

/// Runs `fill` with the state and the scratch buffer; on `Ok` the buffer is returned to the
/// guest through `ret_ptr` / `ret_size`.
fn respond(
    caller: &mut C<'_>,
    ret_ptr: i32,
    ret_size: i32,
    fill: impl FnOnce(&HostState, &mut Vec<u8>) -> Result<(), Status>,
) -> R {
    let mut scratch = std::mem::take(&mut caller.data_mut().scratch);
    scratch.clear();
    match fill(caller.data(), &mut scratch) {
        Ok(()) => Ok(code(return_scratch(caller, scratch, ret_ptr, ret_size)?)),
        Err(status) => {
            caller.data_mut().scratch = scratch;
            Ok(code(status))
        }
    }
}

fn proxy_log(mut caller: C<'_>, level: i32, ptr: i32, len: i32) -> R {
    let (mem, state) = mem_state!(&mut caller);
    let Some(level) = LogLevel::from_raw(level) else {
        return Ok(code(Status::BadArgument));
    };
    let message = guest!(mem, ptr, len);
    if state.record_logs {
        state.log(level, String::from_utf8_lossy(message).into_owned());
    }
    Ok(code(Status::Ok))
}

fn proxy_get_log_level(mut caller: C<'_>, ret: i32) -> R {
    kong_unimplemented(&caller, "proxy_get_log_level")?;
    let (mem, state) = mem_state!(&mut caller);
    Ok(code(match write_u32(mem, ret, state.log_level.raw()) {
        Some(()) => Status::Ok,
        None => Status::InvalidMemoryAccess,
    }))
}

fn proxy_get_current_time_nanoseconds(mut caller: C<'_>, ret: i32) -> R {
    let (mem, state) = mem_state!(&mut caller);
    Ok(code(match write_u64(mem, ret, state.now_nanos()) {
        Some(()) => Status::Ok,
        None => Status::InvalidMemoryAccess,
    }))
}

fn proxy_set_tick_period_milliseconds(mut caller: C<'_>, period: i32) -> R {
    let period = word(period);
    caller.data_mut().tick_period = (period != 0).then(|| Duration::from_millis(u64::from(period)));
    Ok(code(Status::Ok))
}

fn proxy_get_buffer_bytes(
    mut caller: C<'_>,
    buffer: i32,
    start: i32,
    max: i32,
    ret_ptr: i32,
    ret_size: i32,
) -> R {
    let Some(buffer) = BufferType::from_raw(buffer) else {
        return Ok(code(Status::BadArgument));
    };
    let (Ok(start), Ok(max)) = (usize::try_from(word(start)), usize::try_from(word(max))) else {
        return Ok(code(Status::BadArgument));
    };
    respond(&mut caller, ret_ptr, ret_size, |state, out| {
        let bytes = state.buffer(buffer).ok_or(Status::NotFound)?;
        let end = start.checked_add(max).ok_or(Status::BadArgument)?;
        // Like Envoy: never read past the end; a start beyond it yields nothing.
        let end = end.min(bytes.len());
        if let Some(part) = bytes.get(start..end) {
            out.extend_from_slice(part);
        }
        Ok(())
    })
}

fn proxy_set_buffer_bytes(
    mut caller: C<'_>,
    buffer: i32,
    start: i32,
    len: i32,
    ptr: i32,
    size: i32,
) -> R {
    let (mem, state) = mem_state!(&mut caller);
    let Some(buffer) = BufferType::from_raw(buffer) else {
        return Ok(code(Status::BadArgument));
    };
    let data = guest!(mem, ptr, size);
    let (Ok(start), Ok(len)) = (usize::try_from(word(start)), usize::try_from(word(len))) else {
        return Ok(code(Status::BadArgument));
    };
    Ok(code(state.set_buffer(buffer, start, len, data)))
}

/// Kong: ngx_wasm_module has no request or response trailer map
/// (`ngx_proxy_wasm_maps_get_map`, `ngx_proxy_wasm_hfuncs_set_header_check`: "NYI - get_map /
/// set_map bad map_type", see the `kong` module); `true` (and the host's log line) when `map`
/// is one of them under the Kong profile.
fn kong_no_trailer_map(state: &mut HostState, map: MapType, op: &str) -> bool {
    let trailers = matches!(map, MapType::RequestTrailers | MapType::ResponseTrailers);
    if state.profile != HostProfile::Kong || !trailers {
        return false;
    }
    let raw = if map == MapType::RequestTrailers {
        1
    } else {
        3
    };
    state.log(
        LogLevel::Critical,
        format!("ngx_wasm_module: NYI - {op} bad map_type: {raw}"),
    );
    true
}

fn proxy_get_header_map_pairs(mut caller: C<'_>, map: i32, ret_ptr: i32, ret_size: i32) -> R {
    let Some(map) = MapType::from_raw(map) else {
        return Ok(code(Status::BadArgument));
    };
    // ngx_wasm_module answers a map it does not have with BadArgument, not an empty map.
    if kong_no_trailer_map(caller.data_mut(), map, "get_map") {
        return Ok(code(Status::BadArgument));
    }
    respond(&mut caller, ret_ptr, ret_size, |state, out| {
        // Envoy returns an empty map (null pointer) when the map is not available.
        if let Some(headers) = state.map(map).filter(|h| !h.is_empty()) {
            headers.serialize_into(out);
        }
        Ok(())
    })
}

fn proxy_set_header_map_pairs(mut caller: C<'_>, map: i32, ptr: i32, size: i32) -> R {
    let (mem, state) = mem_state!(&mut caller);
    let Some(map) = MapType::from_raw(map) else {
        return Ok(code(Status::BadArgument));
    };
    let Some(pairs) = parse_pairs(guest!(mem, ptr, size)) else {
        return Ok(code(Status::BadArgument));
    };
    if kong_no_trailer_map(state, map, "set_map") {
        return Ok(code(Status::BadArgument));
    }
    Ok(code(match state.map_mut(map) {
        Some(headers) => {
            headers.set_all(pairs);
            Status::Ok
        }
        None => Status::BadArgument,
    }))
}

fn proxy_get_header_map_value(
    mut caller: C<'_>,
    map: i32,
    key_ptr: i32,
    key_size: i32,
    ret_ptr: i32,
    ret_size: i32,
) -> R {
    let Some(map) = MapType::from_raw(map) else {
        return Ok(code(Status::BadArgument));
    };
    let (mem, state) = mem_state!(&mut caller);
    let key = guest!(mem, key_ptr, key_size);
    // ngx_wasm_module looks the key up in no map at all: NotFound.
    if kong_no_trailer_map(state, map, "get_map") {
        return Ok(code(Status::NotFound));
    }
    let mut scratch = std::mem::take(&mut state.scratch);
    scratch.clear();
    let status = match state.map(map) {
        // Envoy: maps may be missing in the access log phase (NotFound); otherwise the map is
        // not available in this phase (BadArgument).
        None if state.in_access_log() => Status::NotFound,
        None => Status::BadArgument,
        Some(headers) => match headers.first(key) {
            Some(value) => {
                scratch.extend_from_slice(value);
                Status::Ok
            }
            None => Status::NotFound,
        },
    };
    if status != Status::Ok {
        state.scratch = scratch;
        return Ok(code(status));
    }
    Ok(code(return_scratch(
        &mut caller,
        scratch,
        ret_ptr,
        ret_size,
    )?))
}

fn proxy_get_header_map_size(mut caller: C<'_>, map: i32, ret: i32) -> R {
    let (mem, state) = mem_state!(&mut caller);
    let Some(map) = MapType::from_raw(map) else {
        return Ok(code(Status::BadArgument));
    };
    let Some(size) = state.map_mut(map).map(|h| h.byte_size()) else {
        return Ok(code(Status::BadArgument));
    };
    let size = u32::try_from(size).unwrap_or(u32::MAX);
    Ok(code(match write_u32(mem, ret, size) {
        Some(()) => Status::Ok,
        None => Status::InvalidMemoryAccess,
    }))
}

fn edit_map(
    caller: &mut C<'_>,
    map: i32,
    key: (i32, i32),
    value: (i32, i32),
    edit: fn(&mut Headers, &[u8], &[u8]),
) -> R {
    let (mem, state) = mem_state!(caller);
    let Some(map) = MapType::from_raw(map) else {
        return Ok(code(Status::BadArgument));
    };
    let key = guest!(mem, key.0, key.1);
    let value = guest!(mem, value.0, value.1);
    if kong_no_trailer_map(state, map, "set_map") {
        return Ok(code(Status::BadArgument));
    }
    Ok(code(match state.map_mut(map) {
        Some(headers) => {
            edit(headers, key, value);
            Status::Ok
        }
        None => Status::BadArgument,
    }))
}

fn proxy_add_header_map_value(
    mut caller: C<'_>,
    map: i32,
    kp: i32,
    ks: i32,
    vp: i32,
    vs: i32,
) -> R {
    edit_map(&mut caller, map, (kp, ks), (vp, vs), |h, k, v| h.add(k, v))
}

fn proxy_replace_header_map_value(
    mut caller: C<'_>,
    map: i32,
    kp: i32,
    ks: i32,
    vp: i32,
    vs: i32,
) -> R {
    edit_map(&mut caller, map, (kp, ks), (vp, vs), |h, k, v| {
        h.replace(k, v)
    })
}

fn proxy_remove_header_map_value(mut caller: C<'_>, map: i32, kp: i32, ks: i32) -> R {
    edit_map(&mut caller, map, (kp, ks), (0, 0), |h, k, _| h.remove(k))
}

fn proxy_get_property(
    mut caller: C<'_>,
    path_ptr: i32,
    path_size: i32,
    ret_ptr: i32,
    ret_size: i32,
) -> R {
    let (mem, state) = mem_state!(&mut caller);
    let path = parse_property_path(guest!(mem, path_ptr, path_size));
    let mut scratch = std::mem::take(&mut state.scratch);
    scratch.clear();
    let found = state.lookup_property(&path, &mut scratch);
    if found != Lookup::Found {
        state.scratch = scratch;
        return Ok(code(match found {
            Lookup::Failure => Status::InternalFailure,
            _ => Status::NotFound,
        }));
    }
    Ok(code(return_scratch(
        &mut caller,
        scratch,
        ret_ptr,
        ret_size,
    )?))
}

fn proxy_set_property(
    mut caller: C<'_>,
    path_ptr: i32,
    path_size: i32,
    value_ptr: i32,
    value_size: i32,
) -> R {
    let (mem, state) = mem_state!(&mut caller);
    let path = parse_property_path(guest!(mem, path_ptr, path_size));
    let value = guest!(mem, value_ptr, value_size);
    if state.profile == HostProfile::Kong {
        return Ok(code(match state.kong_set_property(path, value) {
            Lookup::Found => Status::Ok,
            Lookup::NotFound => Status::NotFound,
            Lookup::Failure => Status::InternalFailure,
        }));
    }
    // Envoy keeps guest-set properties in the stream's filter state; a root context has none.
    Ok(code(match state.effective_stream_mut() {
        Some(stream) => {
            stream.properties.insert(path, value.to_vec());
            Status::Ok
        }
        None => Status::NotFound,
    }))
}

fn proxy_get_shared_data(
    mut caller: C<'_>,
    key_ptr: i32,
    key_size: i32,
    ret_ptr: i32,
    ret_size: i32,
    ret_cas: i32,
) -> R {
    let (mem, state) = mem_state!(&mut caller);
    let key = guest!(mem, key_ptr, key_size);
    let Some((value, cas)) = state.shared.get(key) else {
        return Ok(code(Status::NotFound));
    };
    if write_u32(mem, ret_cas, cas).is_none() {
        return Ok(code(Status::InvalidMemoryAccess));
    }
    Ok(code(copy_to_guest(&mut caller, &value, ret_ptr, ret_size)?))
}

fn proxy_set_shared_data(
    mut caller: C<'_>,
    key_ptr: i32,
    key_size: i32,
    value_ptr: i32,
    value_size: i32,
    cas: i32,
) -> R {
    let (mem, state) = mem_state!(&mut caller);
    let key = guest!(mem, key_ptr, key_size);
    let value = guest!(mem, value_ptr, value_size);
    Ok(code(state.shared.set_cas(key, value, word(cas))))
}

fn proxy_register_shared_queue(mut caller: C<'_>, name_ptr: i32, name_size: i32, ret_id: i32) -> R {
    let (mem, state) = mem_state!(&mut caller);
    let name = String::from_utf8_lossy(guest!(mem, name_ptr, name_size)).into_owned();
    let Some(id) = state.shared.register_queue(&state.vm_id, &name, state.uid) else {
        return Ok(code(Status::InternalFailure));
    };
    Ok(code(match write_u32(mem, ret_id, id) {
        Some(()) => Status::Ok,
        None => Status::InvalidMemoryAccess,
    }))
}

fn proxy_resolve_shared_queue(
    mut caller: C<'_>,
    vm_ptr: i32,
    vm_size: i32,
    name_ptr: i32,
    name_size: i32,
    ret_id: i32,
) -> R {
    kong_unimplemented(&caller, "proxy_resolve_shared_queue")?;
    let (mem, state) = mem_state!(&mut caller);
    let vm_id = String::from_utf8_lossy(guest!(mem, vm_ptr, vm_size)).into_owned();
    let name = String::from_utf8_lossy(guest!(mem, name_ptr, name_size)).into_owned();
    let Some(id) = state.shared.resolve_queue(&vm_id, &name) else {
        return Ok(code(Status::NotFound));
    };
    Ok(code(match write_u32(mem, ret_id, id) {
        Some(()) => Status::Ok,
        None => Status::InvalidMemoryAccess,
    }))
}

fn proxy_enqueue_shared_queue(mut caller: C<'_>, id: i32, value_ptr: i32, value_size: i32) -> R {
    let (mem, state) = mem_state!(&mut caller);
    let value = guest!(mem, value_ptr, value_size);
    Ok(code(state.shared.enqueue(word(id), value)))
}

fn proxy_dequeue_shared_queue(mut caller: C<'_>, id: i32, ret_ptr: i32, ret_size: i32) -> R {
    let item = caller.data().shared.dequeue(word(id));
    match item {
        Ok(value) => Ok(code(copy_to_guest(&mut caller, &value, ret_ptr, ret_size)?)),
        Err(status) => Ok(code(status)),
    }
}

fn proxy_continue_stream(mut caller: C<'_>, stream: i32) -> R {
    let state = caller.data_mut();
    let kong = state.profile == HostProfile::Kong;
    let status = match StreamType::from_raw(stream) {
        // ngx_wasm_module cannot hold a response (no `proxy_continue_response`): the call is
        // accepted and has nothing to resume.
        Some(StreamType::HttpResponse) if kong => Status::Ok,
        Some(StreamType::Downstream | StreamType::Upstream) if kong => Status::InternalFailure,
        Some(StreamType::HttpRequest) => {
            if let Some(s) = state.effective_stream_mut() {
                // Envoy drops its pointer to the request headers at once; the stream itself
                // resumes after the current callback returns.
                s.request_continue = true;
                s.request_headers_live = false;
            }
            Status::Ok
        }
        Some(StreamType::HttpResponse) => {
            if let Some(s) = state.effective_stream_mut() {
                s.response_continue = true;
            }
            Status::Ok
        }
        Some(StreamType::Downstream) => Status::Ok,
        Some(StreamType::Upstream) => Status::Unimplemented,
        None => Status::BadArgument,
    };
    Ok(code(status))
}

fn proxy_close_stream(mut caller: C<'_>, stream: i32) -> R {
    kong_unimplemented(&caller, "proxy_close_stream")?;
    let state = caller.data_mut();
    let status = match StreamType::from_raw(stream) {
        Some(StreamType::HttpRequest | StreamType::HttpResponse) => {
            if let Some(s) = state.effective_stream_mut() {
                s.reset
                    .get_or_insert_with(|| "wasm_close_stream".to_owned());
            }
            Status::Ok
        }
        Some(StreamType::Downstream | StreamType::Upstream) => Status::Ok,
        None => Status::BadArgument,
    };
    Ok(code(status))
}

#[allow(clippy::too_many_arguments)] // reason: the ABI signature
fn proxy_send_local_response(
    mut caller: C<'_>,
    status: i32,
    details_ptr: i32,
    details_size: i32,
    body_ptr: i32,
    body_size: i32,
    headers_ptr: i32,
    headers_size: i32,
    _grpc_status: i32,
) -> R {
    let (mem, state) = mem_state!(&mut caller);
    let details = guest!(mem, details_ptr, details_size);
    let body = guest!(mem, body_ptr, body_size);
    let Some(headers) = parse_pairs(guest!(mem, headers_ptr, headers_size)) else {
        return Ok(code(Status::BadArgument));
    };
    let Ok(status) = u16::try_from(word(status)) else {
        return Ok(code(Status::BadArgument));
    };
    // Envoy replaces white space in response code details (they end up in access logs).
    let details: String = String::from_utf8_lossy(details)
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    if state.profile == HostProfile::Kong {
        match state.callback {
            "proxy_on_response_body" => {
                return Err(wasmtime::Error::msg(
                    "host trap (bad usage): response already sent",
                ))
            }
            "proxy_on_response_headers" => {
                // ngx_wasm_module rewrites the response being sent: status and body (with a
                // line feed), not its headers.
                if let Some(stream) = state.effective_stream_mut() {
                    let mut body = body.to_vec();
                    if !body.is_empty() {
                        body.push(b'\n');
                    }
                    stream.kong_override = Some((status, body));
                }
                return Ok(code(Status::Ok));
            }
            _ => {}
        }
    }
    // From a root context Envoy has no stream to answer and ignores the call. A second reply
    // on the same stream is ignored too (the first one already ends it).
    if let Some(stream) = state.effective_stream_mut() {
        if stream.local_reply_details.is_none() && stream.pending_local_reply.is_none() {
            stream.pending_local_reply = Some(LocalReply {
                status,
                details,
                body: body.to_vec(),
                headers,
            });
        }
    }
    Ok(code(Status::Ok))
}

#[allow(clippy::too_many_arguments)] // reason: the ABI signature
fn proxy_http_call(
    mut caller: C<'_>,
    upstream_ptr: i32,
    upstream_size: i32,
    headers_ptr: i32,
    headers_size: i32,
    body_ptr: i32,
    body_size: i32,
    trailers_ptr: i32,
    trailers_size: i32,
    timeout_ms: i32,
    ret_token: i32,
) -> R {
    let kong = caller.data().profile == HostProfile::Kong;
    if kong && !kong::may_dispatch(caller.data().callback) {
        return Err(kong::dispatch_trap());
    }
    let (mem, state) = mem_state!(&mut caller);
    let upstream = String::from_utf8_lossy(guest!(mem, upstream_ptr, upstream_size)).into_owned();
    let body = guest!(mem, body_ptr, body_size).to_vec();
    let (Some(headers), Some(trailers)) = (
        parse_pairs(guest!(mem, headers_ptr, headers_size)),
        parse_pairs(guest!(mem, trailers_ptr, trailers_size)),
    ) else {
        return Ok(code(Status::BadArgument));
    };
    if timeout_ms < 0 {
        return Ok(code(Status::BadArgument));
    }
    // Kong resolves the host when it connects: an unknown one fails later, not here.
    if !kong
        && state
            .known_clusters
            .as_ref()
            .is_some_and(|known| !known.contains(&upstream))
    {
        return Ok(code(Status::BadArgument));
    }
    let headers = Headers::from_pairs(headers);
    // Envoy refuses a call without these (its async client needs them); ngx_wasm_module
    // needs a method and a path, and fails the call itself (InternalFailure).
    if kong {
        if ![":path", ":method"].iter().all(|h| headers.contains(h)) {
            return Ok(code(Status::InternalFailure));
        }
    } else if ![":path", ":method", ":authority"]
        .iter()
        .all(|h| headers.contains(h))
    {
        return Ok(code(Status::BadArgument));
    }
    let token = state.next_token;
    if write_u32(mem, ret_token, token).is_none() {
        return Ok(code(Status::InvalidMemoryAccess));
    }
    state.next_token = state.next_token.checked_add(1).unwrap_or(1);
    let timeout = u64::from(word(timeout_ms));
    state.http_calls.push(HttpCall {
        token,
        upstream,
        headers,
        body,
        trailers: Headers::from_pairs(trailers),
        timeout: (timeout != 0).then(|| Duration::from_millis(timeout)),
        context_id: state.effective,
    });
    Ok(code(Status::Ok))
}

fn proxy_get_status(mut caller: C<'_>, ret_code: i32, ret_ptr: i32, ret_size: i32) -> R {
    kong_unimplemented(&caller, "proxy_get_status")?;
    let (mem, state) = mem_state!(&mut caller);
    if write_u32(mem, ret_code, state.status.0).is_none() {
        return Ok(code(Status::InvalidMemoryAccess));
    }
    let message = state.status.1.clone();
    Ok(code(copy_to_guest(
        &mut caller,
        &message,
        ret_ptr,
        ret_size,
    )?))
}

fn proxy_set_effective_context(mut caller: C<'_>, context: i32) -> R {
    let state = caller.data_mut();
    let context = word(context);
    if !state.context_exists(context) {
        return Ok(code(Status::BadArgument));
    }
    state.effective = context;
    Ok(code(Status::Ok))
}

/// Envoy registers a few foreign functions (`compress`, `declare_property`, ...); the harness
/// registers none, so every name is `NotFound`.
fn proxy_call_foreign_function(
    mut caller: C<'_>,
    name_ptr: i32,
    name_size: i32,
    args_ptr: i32,
    args_size: i32,
    _ret_ptr: i32,
    _ret_size: i32,
) -> R {
    let (mem, state) = mem_state!(&mut caller);
    let name = String::from_utf8_lossy(guest!(mem, name_ptr, name_size)).into_owned();
    let _ = guest!(mem, args_ptr, args_size);
    state.log(
        LogLevel::Debug,
        format!("wasmtime-harness: foreign function `{name}` is not available"),
    );
    Ok(code(Status::NotFound))
}

fn proxy_done(mut caller: C<'_>) -> R {
    kong_unimplemented(&caller, "proxy_done")?;
    caller.data_mut().done_called = true;
    Ok(code(Status::Ok))
}

fn proxy_define_metric(
    mut caller: C<'_>,
    kind: i32,
    name_ptr: i32,
    name_size: i32,
    ret_id: i32,
) -> R {
    let (mem, state) = mem_state!(&mut caller);
    let Some(kind) = MetricKind::from_raw(word(kind)) else {
        return Ok(code(Status::BadArgument));
    };
    let name = String::from_utf8_lossy(guest!(mem, name_ptr, name_size)).into_owned();
    // Checked first so a bad pointer does not leave a defined metric behind.
    if read_u32(mem, ret_id).is_none() {
        return Ok(code(Status::InvalidMemoryAccess));
    }
    let Some(id) = state.metrics.define(kind, &name) else {
        return Ok(code(Status::InternalFailure));
    };
    Ok(code(match write_u32(mem, ret_id, id) {
        Some(()) => Status::Ok,
        None => Status::InvalidMemoryAccess,
    }))
}

fn proxy_get_metric(mut caller: C<'_>, id: i32, ret: i32) -> R {
    let (mem, state) = mem_state!(&mut caller);
    Ok(code(match state.metrics.get(word(id)) {
        Ok(value) => match write_u64(mem, ret, value) {
            Some(()) => Status::Ok,
            None => Status::InvalidMemoryAccess,
        },
        Err(status) => status,
    }))
}

fn proxy_record_metric(mut caller: C<'_>, id: i32, value: i64) -> R {
    let value = u64::from_ne_bytes(value.to_ne_bytes());
    Ok(code(caller.data_mut().metrics.record(word(id), value)))
}

fn proxy_increment_metric(mut caller: C<'_>, id: i32, offset: i64) -> R {
    Ok(code(caller.data_mut().metrics.increment(word(id), offset)))
}

fn grpc_unsupported(caller: &mut C<'_>, call: &str) -> R {
    kong_unimplemented(caller, call)?;
    caller.data_mut().log(
        LogLevel::Warn,
        format!("wasmtime-harness: `{call}` is not implemented (gRPC is not modelled); returning Unimplemented"),
    );
    Ok(code(Status::Unimplemented))
}

#[allow(clippy::too_many_arguments)] // reason: the ABI signature
fn proxy_grpc_call(
    mut caller: C<'_>,
    _up: i32,
    _up_size: i32,
    _svc: i32,
    _svc_size: i32,
    _method: i32,
    _method_size: i32,
    _meta: i32,
    _meta_size: i32,
    _msg: i32,
    _msg_size: i32,
    _timeout: i32,
    _ret_token: i32,
) -> R {
    grpc_unsupported(&mut caller, "proxy_grpc_call")
}

#[allow(clippy::too_many_arguments)] // reason: the ABI signature
fn proxy_grpc_stream(
    mut caller: C<'_>,
    _up: i32,
    _up_size: i32,
    _svc: i32,
    _svc_size: i32,
    _method: i32,
    _method_size: i32,
    _meta: i32,
    _meta_size: i32,
    _ret_token: i32,
) -> R {
    grpc_unsupported(&mut caller, "proxy_grpc_stream")
}

/// No gRPC call or stream can exist, so every token is unknown.
fn proxy_grpc_send(caller: C<'_>, _token: i32, _msg: i32, _msg_size: i32, _end_stream: i32) -> R {
    kong_unimplemented(&caller, "proxy_grpc_send")?;
    Ok(code(Status::NotFound))
}

fn proxy_grpc_cancel(caller: C<'_>, _token: i32) -> R {
    kong_unimplemented(&caller, "proxy_grpc_cancel")?;
    Ok(code(Status::NotFound))
}

fn proxy_grpc_close(caller: C<'_>, _token: i32) -> R {
    kong_unimplemented(&caller, "proxy_grpc_close")?;
    Ok(code(Status::NotFound))
}
