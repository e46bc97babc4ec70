//! The policy bundle: fetched on the root context's tick, verified and activated by the core,
//! and shared with the other workers. A bundle that fails anywhere leaves the last good policy
//! active; the failure is logged and counted.

use bridle_core::Authorizer;
use proxy_wasm::types::LogLevel;

use crate::control::{self, Source};
use crate::host::log;
use crate::metrics::Metrics;

const SHARED_KEY: &str = "bridle.bundle";
/// After a failure, try again sooner than the normal poll period, but not in a tight loop.
const RETRY_SECONDS: u64 = 5;

#[derive(Default)]
pub struct BundlePoller {
    call: Option<u32>,
    next_poll: u64,
    etag: Option<String>,
    /// The newest shared document this worker has activated or published.
    shared_seen: u64,
    /// When the control plane last confirmed the active bundle (fetched or not modified).
    pub confirmed_at: Option<u64>,
}

impl BundlePoller {
    pub fn is_call(&self, token: u32) -> bool {
        self.call == Some(token)
    }

    /// Runs on every tick: adopts a bundle another worker verified, then polls when due.
    pub fn tick(&mut self, authorizer: &mut Authorizer, metrics: &Metrics, now: u64) {
        let Some(source) = authorizer.bundle_source() else {
            return;
        };
        let poll_seconds = source.poll_seconds;
        if let Some((fetched_at, bytes)) = control::read_shared(SHARED_KEY) {
            if fetched_at > self.shared_seen {
                self.shared_seen = fetched_at;
                self.activate(authorizer, metrics, &bytes, fetched_at, false);
            }
        }
        if self.call.is_some() || now < self.next_poll {
            return;
        }
        let Some(source) = authorizer.bundle_source() else {
            return;
        };
        let etag = self.etag.clone();
        let mut extra = Vec::new();
        if let Some(tag) = &etag {
            extra.push(("if-none-match", tag.as_str()));
        }
        self.call = control::get(
            &Source {
                what: "policy bundle",
                cluster: &source.cluster,
                path: &source.path,
                authority: &source.authority,
                timeout_ms: source.timeout_ms,
            },
            &extra,
        );
        self.next_poll = now.saturating_add(if self.call.is_some() {
            poll_seconds
        } else {
            RETRY_SECONDS.min(poll_seconds)
        });
    }

    pub fn on_response(
        &mut self,
        authorizer: &mut Authorizer,
        metrics: &Metrics,
        num_headers: usize,
        body_size: usize,
        now: u64,
    ) {
        self.call = None;
        let max_bytes = authorizer.bundle_source().map_or(0, |b| b.max_bytes);
        let failure = match control::answer(num_headers, body_size, max_bytes) {
            Ok(answer) if answer.status == "304" => {
                self.confirmed_at = Some(now);
                return;
            }
            Ok(answer) if answer.status == "200" => {
                if self.activate(authorizer, metrics, &answer.body, now, true) {
                    self.etag = answer.etag;
                    self.shared_seen = now;
                    self.confirmed_at = Some(now);
                    control::publish(SHARED_KEY, now, &answer.body);
                }
                // A refused bundle was logged and counted; the next poll is the normal one.
                return;
            }
            Ok(answer) => format!("the cluster answered `{}`", answer.status),
            Err(err) => err,
        };
        metrics.count_bundle(false);
        log(
            LogLevel::Warn,
            &format!(
                "bridle: policy bundle not fetched: {failure}; keeping revision `{}`",
                authorizer.policy_revision()
            ),
        );
        self.next_poll = now.saturating_add(RETRY_SECONDS);
    }

    fn activate(
        &mut self,
        authorizer: &mut Authorizer,
        metrics: &Metrics,
        bytes: &[u8],
        now: u64,
        fetched_here: bool,
    ) -> bool {
        let previous = authorizer.policy_revision().to_owned();
        match authorizer.activate_bundle(bytes, now) {
            Ok(revision) => {
                metrics.count_bundle(true);
                if !fetched_here {
                    self.confirmed_at = Some(now);
                }
                log(
                    LogLevel::Info,
                    &format!(
                        "bridle: policy bundle revision `{revision}` active (was `{previous}`)"
                    ),
                );
                true
            }
            Err(err) => {
                metrics.count_bundle(false);
                log(
                    LogLevel::Warn,
                    &format!("bridle: policy bundle refused: {err}; keeping revision `{previous}`"),
                );
                false
            }
        }
    }
}
