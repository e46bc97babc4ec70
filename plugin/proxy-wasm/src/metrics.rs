//! Counters exported through the host's metrics (Envoy prefixes them with `wasmcustom.`).

use bridle_core::Outcome;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MetricType};

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    allow: Option<u32>,
    deny: Option<u32>,
    unauthenticated: Option<u32>,
    bad_request: Option<u32>,
    error: Option<u32>,
    cache_hit: Option<u32>,
    cache_miss: Option<u32>,
    dry_run: Option<u32>,
    audit_exported: Option<u32>,
    audit_dropped: Option<u32>,
    unavailable: Option<u32>,
    payload_too_large: Option<u32>,
    unsupported_media_type: Option<u32>,
    bundle_activated: Option<u32>,
    bundle_failed: Option<u32>,
    bundle_age: Option<u32>,
    keys_updated: Option<u32>,
    keys_failed: Option<u32>,
    keys_ignored: Option<u32>,
    feed_age: Option<u32>,
}

fn counter(name: &str) -> Option<u32> {
    define(MetricType::Counter, name)
}

fn gauge(name: &str) -> Option<u32> {
    define(MetricType::Gauge, name)
}

fn define(kind: MetricType, name: &str) -> Option<u32> {
    match hostcalls::define_metric(kind, name) {
        Ok(id) => Some(id),
        Err(status) => {
            // A host without metrics still enforces; only the counter is lost.
            crate::host::log(
                LogLevel::Warn,
                &format!("bridle: metric `{name}` unavailable: {status:?}"),
            );
            None
        }
    }
}

impl Metrics {
    pub fn define() -> Self {
        Self {
            allow: counter("bridle.decisions.allow"),
            deny: counter("bridle.decisions.deny"),
            unauthenticated: counter("bridle.decisions.unauthenticated"),
            bad_request: counter("bridle.decisions.bad_request"),
            error: counter("bridle.decisions.error"),
            cache_hit: counter("bridle.token_cache.hit"),
            cache_miss: counter("bridle.token_cache.miss"),
            dry_run: counter("bridle.decisions.dry_run_forwarded"),
            audit_exported: gauge("bridle.audit.exported"),
            audit_dropped: gauge("bridle.audit.dropped"),
            unavailable: counter("bridle.decisions.unavailable"),
            payload_too_large: counter("bridle.decisions.payload_too_large"),
            unsupported_media_type: counter("bridle.decisions.unsupported_media_type"),
            bundle_activated: counter("bridle.bundle.activations"),
            bundle_failed: counter("bridle.bundle.failures"),
            bundle_age: gauge("bridle.bundle.age_seconds"),
            keys_updated: counter("bridle.keys.updates"),
            keys_failed: counter("bridle.keys.failures"),
            keys_ignored: counter("bridle.keys.ignored"),
            feed_age: gauge("bridle.revocation_feed.age_seconds"),
        }
    }

    /// Totals of this worker's audit export.
    pub fn audit(&self, exported: u64, dropped: u64) {
        for (id, value) in [
            (self.audit_exported, exported),
            (self.audit_dropped, dropped),
        ] {
            if let Some(id) = id {
                let _ = hostcalls::record_metric(id, value);
            }
        }
    }

    pub fn count_bundle(&self, activated: bool) {
        increment(if activated {
            self.bundle_activated
        } else {
            self.bundle_failed
        });
    }

    /// A fetched key set replaced an issuer's keys (ignoring `ignored` of its keys), or not.
    pub fn count_key_set(&self, updated: bool, ignored: usize) {
        increment(if updated {
            self.keys_updated
        } else {
            self.keys_failed
        });
        if let Some(id) = self.keys_ignored.filter(|_| ignored > 0) {
            let _ = hostcalls::increment_metric(id, i64::try_from(ignored).unwrap_or(i64::MAX));
        }
    }

    /// Seconds since the bundle was last confirmed and the feed last updated, when known.
    pub fn ages(&self, bundle: Option<u64>, feed: Option<u64>) {
        for (id, age) in [(self.bundle_age, bundle), (self.feed_age, feed)] {
            if let (Some(id), Some(age)) = (id, age) {
                let _ = hostcalls::record_metric(id, age);
            }
        }
    }

    pub fn count_dry_run(&self) {
        increment(self.dry_run);
    }

    pub fn count(&self, outcome: Outcome, cache_hit: Option<bool>) {
        let id = match outcome {
            Outcome::Allow => self.allow,
            Outcome::Deny | Outcome::ApprovalRequired => self.deny,
            Outcome::Unauthenticated => self.unauthenticated,
            Outcome::BadRequest | Outcome::LengthRequired => self.bad_request,
            Outcome::PayloadTooLarge => self.payload_too_large,
            Outcome::UnsupportedMediaType => self.unsupported_media_type,
            Outcome::Error => self.error,
            Outcome::Unavailable => self.unavailable,
        };
        increment(id);
        match cache_hit {
            Some(true) => increment(self.cache_hit),
            Some(false) => increment(self.cache_miss),
            None => {}
        }
    }
}

fn increment(id: Option<u32>) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, 1);
    }
}
