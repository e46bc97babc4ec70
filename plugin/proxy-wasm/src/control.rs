//! Fetching control documents (revocation feed, policy bundle) from an upstream cluster, and
//! handing them to the other workers through shared data as `"<fetched-at>\n<document>"`.

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType};

use crate::host::log;

/// Where a control document comes from.
pub struct Source<'a> {
    /// For log lines: `revocation feed`, `policy bundle`.
    pub what: &'a str,
    pub cluster: &'a str,
    pub path: &'a str,
    pub authority: &'a str,
    pub timeout_ms: u64,
}

/// Starts `GET path` on the cluster; returns the call's token.
pub fn get(source: &Source, extra: &[(&str, &str)]) -> Option<u32> {
    let mut headers = vec![
        (":method", "GET"),
        (":path", source.path),
        (":authority", source.authority),
    ];
    headers.extend_from_slice(extra);
    match hostcalls::dispatch_http_call(
        source.cluster,
        headers,
        None,
        vec![],
        Duration::from_millis(source.timeout_ms),
    ) {
        Ok(token) => Some(token),
        Err(status) => {
            log(
                LogLevel::Warn,
                &format!(
                    "bridle: {}: cannot call cluster `{}`: {status:?}",
                    source.what, source.cluster
                ),
            );
            None
        }
    }
}

/// What the cluster answered. A failed call (reset, timeout) has no `:status`.
pub struct Answer {
    pub status: String,
    pub body: Vec<u8>,
    pub etag: Option<String>,
}

/// Reads the answer of a call; a body over `max_bytes` is not read.
pub fn answer(num_headers: usize, body_size: usize, max_bytes: usize) -> Result<Answer, String> {
    // A failed call has no header map at all; asking for it anyway is an error status the
    // SDK would turn into a trap.
    if num_headers == 0 {
        return Err("no response (reset or timed out)".to_owned());
    }
    let header = |name: &str| {
        hostcalls::get_map_value(MapType::HttpCallResponseHeaders, name)
            .ok()
            .flatten()
    };
    let status = header(":status").ok_or_else(|| "no response (reset or timed out)".to_owned())?;
    if body_size > max_bytes {
        return Err(format!(
            "body of {body_size} bytes is over the limit of {max_bytes}"
        ));
    }
    let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    Ok(Answer {
        status,
        body,
        etag: header("etag"),
    })
}

/// Publishes a verified document for the other workers.
pub fn publish(key: &str, fetched_at: u64, document: &[u8]) {
    let mut shared = format!("{fetched_at}\n").into_bytes();
    shared.extend_from_slice(document);
    if let Err(status) = hostcalls::set_shared_data(key, Some(&shared), None) {
        log(
            LogLevel::Warn,
            &format!("bridle: cannot share `{key}` with other workers: {status:?}"),
        );
    }
}

/// The document another worker published, with when it was fetched.
pub fn read_shared(key: &str) -> Option<(u64, Vec<u8>)> {
    let Ok((Some(value), _)) = hostcalls::get_shared_data(key) else {
        return None;
    };
    let split = value.iter().position(|b| *b == b'\n')?;
    let (head, body) = value.split_at(split);
    let fetched_at = std::str::from_utf8(head).ok()?.parse::<u64>().ok()?;
    Some((fetched_at, body.get(1..).unwrap_or_default().to_vec()))
}
