//! The control plane's IO on a proxy-wasm host: the calls the core's [`ControlPlane`] asks for
//! go out with `dispatch_http_call`, their answers come back to it, and verified documents
//! reach the other workers through shared data as `"<fetched-at>\n<document>"`.

use bridle_core::control::{Answer, ControlPlane, Fetch, Level, SharedDocuments};
use bridle_core::Authorizer;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType};

use crate::host::{log, AUDIT_PREFIX};
use crate::metrics::Metrics;

/// Starts `fetch` on its cluster; `None` when the host refused the call.
pub fn dispatch(fetch: &Fetch) -> Option<u32> {
    let mut headers = vec![
        (":method", fetch.method),
        (":path", fetch.path.as_str()),
        (":authority", fetch.authority.as_str()),
    ];
    headers.extend(fetch.headers.iter().map(|(n, v)| (*n, v.as_str())));
    hostcalls::dispatch_http_call(
        &fetch.cluster,
        headers,
        fetch.body.as_deref(),
        vec![],
        fetch.timeout,
    )
    .ok()
}

/// Reads the answer of a call; a body over `limit` is not read.
pub fn answer(num_headers: usize, body_size: usize, limit: usize) -> Answer {
    // A failed call (reset, timeout) has no header map at all; asking for it anyway is an error
    // status the SDK would turn into a trap.
    if num_headers == 0 {
        return Answer::default();
    }
    let header = |name: &str| {
        hostcalls::get_map_value(MapType::HttpCallResponseHeaders, name)
            .ok()
            .flatten()
    };
    let mut answer = Answer {
        status: header(":status"),
        etag: header("etag"),
        ..Answer::default()
    };
    if body_size > limit {
        answer.oversized = Some(body_size);
    } else if body_size > 0 {
        answer.body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
    }
    answer
}

/// Logs what the control plane noticed and updates the counters and gauges.
pub fn report(control: &mut ControlPlane, authorizer: &Authorizer, metrics: &Metrics, now: u64) {
    for notice in control.take_notices() {
        metrics.apply(bridle_core::metrics::of_notice(&notice));
        // Key set and bundle changes are identity events too: the same trail as decisions.
        if let Some(record) = notice.audit_record(now.saturating_mul(1_000_000_000)) {
            if authorizer.audit_settings().log {
                log(LogLevel::Info, &format!("{AUDIT_PREFIX}{record}"));
            }
            control.record(|| record);
        }
        let level = match notice.level() {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
        };
        log(level, &notice.to_string());
    }
    metrics.apply(bridle_core::metrics::gauges(control, authorizer, now));
}

/// Proxy-wasm shared data: one VM's documents, seen by every worker of the plugin.
pub struct ProxyShared;

impl SharedDocuments for ProxyShared {
    fn read(&self, key: &str) -> Option<(u64, Vec<u8>)> {
        let Ok((Some(value), _)) = hostcalls::get_shared_data(key) else {
            return None;
        };
        let split = value.iter().position(|b| *b == b'\n')?;
        let (head, body) = value.split_at(split);
        let fetched_at = std::str::from_utf8(head).ok()?.parse::<u64>().ok()?;
        Some((fetched_at, body.get(1..).unwrap_or_default().to_vec()))
    }

    fn publish(&mut self, key: &str, fetched_at: u64, document: &[u8]) {
        let mut shared = format!("{fetched_at}\n").into_bytes();
        shared.extend_from_slice(document);
        if let Err(status) = hostcalls::set_shared_data(key, Some(&shared), None) {
            log(
                LogLevel::Warn,
                &format!("bridle: cannot share `{key}` with other workers: {status:?}"),
            );
        }
    }
}
