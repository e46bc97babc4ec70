//! The revocation feed: polled on the root context's tick, shared with the other workers.

use bridle_core::Authorizer;
use proxy_wasm::types::LogLevel;

use crate::control::{self, Source};
use crate::host::log;

const SHARED_KEY: &str = "bridle.revocations";
const MAX_FEED_BYTES: usize = 16 * 1024 * 1024;

/// Starts a poll; returns the call's token.
pub fn poll(authorizer: &Authorizer) -> Option<u32> {
    let feed = authorizer.revocation_feed()?;
    control::get(
        &Source {
            what: "revocation feed",
            cluster: &feed.cluster,
            path: &feed.path,
            authority: &feed.authority,
            timeout_ms: feed.timeout_ms,
        },
        &[],
    )
}

/// Handles the feed's answer: applies it and publishes it to the other workers.
pub fn on_response(authorizer: &mut Authorizer, num_headers: usize, body_size: usize, now: u64) {
    let answer = match control::answer(num_headers, body_size, MAX_FEED_BYTES) {
        Ok(answer) if answer.status == "200" => answer,
        Ok(answer) => {
            return log(
                LogLevel::Warn,
                &format!(
                    "bridle: revocation feed answered `{}`; keeping version {:?}",
                    answer.status,
                    authorizer.revocation_version()
                ),
            )
        }
        Err(err) => {
            return log(
                LogLevel::Warn,
                &format!(
                    "bridle: revocation feed: {err}; keeping version {:?}",
                    authorizer.revocation_version()
                ),
            )
        }
    };
    match authorizer.apply_revocation_feed(&answer.body, now) {
        Ok(version) => {
            control::publish(SHARED_KEY, now, &answer.body);
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
    let Some((fetched_at, body)) = control::read_shared(SHARED_KEY) else {
        return;
    };
    if authorizer
        .revocation_updated_at()
        .is_some_and(|local| local >= fetched_at)
    {
        return;
    }
    if let Err(err) = authorizer.apply_revocation_feed(&body, fetched_at) {
        log(
            LogLevel::Debug,
            &format!("bridle: shared revocation document not applied: {err}"),
        );
    }
}
