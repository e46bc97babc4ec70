//! The revocation feed: polled on the root context's tick with `dispatch_http_call`, shared
//! with the other workers through shared data (`fetched-at` line, then the document).

use std::time::Duration;

use bridle_core::Authorizer;
use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

use crate::host::log;

const SHARED_KEY: &str = "bridle.revocations";

/// Starts a poll; returns the call's token.
pub fn poll(authorizer: &Authorizer) -> Option<u32> {
    let feed = authorizer.revocation_feed()?;
    let headers = vec![
        (":method", "GET"),
        (":path", feed.path.as_str()),
        (":authority", feed.authority.as_str()),
    ];
    match hostcalls::dispatch_http_call(
        &feed.cluster,
        headers,
        None,
        vec![],
        Duration::from_millis(feed.timeout_ms),
    ) {
        Ok(token) => Some(token),
        Err(status) => {
            log(
                LogLevel::Warn,
                &format!(
                    "bridle: revocation feed: cannot call cluster `{}`: {status:?}",
                    feed.cluster
                ),
            );
            None
        }
    }
}

/// Handles the feed's answer: applies it and publishes it to the other workers.
pub fn on_response(authorizer: &mut Authorizer, body_size: usize, now: u64) {
    let status = hostcalls::get_map_value(
        proxy_wasm::types::MapType::HttpCallResponseHeaders,
        ":status",
    )
    .ok()
    .flatten()
    .unwrap_or_default();
    if status != "200" {
        log(
            LogLevel::Warn,
            &format!(
                "bridle: revocation feed answered `{status}`; keeping version {:?}",
                authorizer.revocation_version()
            ),
        );
        return;
    }
    let body = hostcalls::get_buffer(
        proxy_wasm::types::BufferType::HttpCallResponseBody,
        0,
        body_size,
    )
    .ok()
    .flatten()
    .unwrap_or_default();
    match authorizer.apply_revocation_feed(&body, now) {
        Ok(version) => {
            let mut shared = format!("{now}\n").into_bytes();
            shared.extend_from_slice(&body);
            let _ = hostcalls::set_shared_data(SHARED_KEY, Some(&shared), None);
            log(
                LogLevel::Debug,
                &format!("bridle: revocation feed version {version} active"),
            );
        }
        Err(err) => log(
            LogLevel::Warn,
            &format!("bridle: revocation feed refused: {err}"),
        ),
    }
}

/// Applies what another worker fetched, when it is newer than what this worker has.
pub fn sync_from_shared(authorizer: &mut Authorizer) {
    let Ok((Some(value), _)) = hostcalls::get_shared_data(SHARED_KEY) else {
        return;
    };
    let Some(split) = value.iter().position(|b| *b == b'\n') else {
        return;
    };
    let (head, body) = value.split_at(split);
    let Some(fetched_at) = std::str::from_utf8(head)
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
    else {
        return;
    };
    if authorizer
        .revocation_updated_at()
        .is_some_and(|local| local >= fetched_at)
    {
        return;
    }
    let body = body.get(1..).unwrap_or_default();
    if let Err(err) = authorizer.apply_revocation_feed(body, fetched_at) {
        log(
            LogLevel::Debug,
            &format!("bridle: shared revocation document not applied: {err}"),
        );
    }
}
