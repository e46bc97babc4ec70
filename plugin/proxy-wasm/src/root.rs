//! The root context: loads and validates the configuration, creates one filter per request,
//! and runs the periodic work (policy bundle, revocation feed, audit export) on its tick.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bridle_core::Authorizer;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::audit::{AuditBuffer, AuditOutputs};
use crate::bundle::BundlePoller;
use crate::feed;
use crate::filter::BridleFilter;
use crate::host::{log, now_unix_nanos};
use crate::metrics::Metrics;
use crate::once::create_slots;

pub struct BridleRoot {
    authorizer: Option<Rc<RefCell<Authorizer>>>,
    metrics: Rc<Metrics>,
    audit: Rc<AuditOutputs>,
    /// The revocation-feed call in flight, if any.
    feed_call: Option<u32>,
    next_feed_poll: u64,
    bundle: BundlePoller,
}

impl Default for BridleRoot {
    fn default() -> Self {
        Self {
            authorizer: None,
            metrics: Rc::new(Metrics::default()),
            audit: Rc::new(AuditOutputs {
                log: true,
                collector: None,
            }),
            feed_call: None,
            next_feed_poll: 0,
            bundle: BundlePoller::default(),
        }
    }
}

fn id_seed() -> u64 {
    let mut bytes = [0u8; 8];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        // Decision ids only need to be unique, not secret: the clock is an acceptable seed.
        Err(_) => now_unix_nanos(),
    }
}

impl Context for BridleRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if let Some(buffer) = &self.audit.collector {
            if let Ok(mut buffer) = buffer.try_borrow_mut() {
                if buffer.on_response(token_id, num_headers) {
                    self.metrics.audit(buffer.exported, buffer.dropped);
                    return;
                }
            }
        }
        let Some(mut authorizer) = self
            .authorizer
            .as_ref()
            .and_then(|a| a.try_borrow_mut().ok())
        else {
            return;
        };
        let now = now_unix_nanos() / 1_000_000_000;
        if self.bundle.is_call(token_id) {
            self.bundle
                .on_response(&mut authorizer, &self.metrics, num_headers, body_size, now);
        } else if self.feed_call == Some(token_id) {
            self.feed_call = None;
            feed::on_response(&mut authorizer, num_headers, body_size, now);
        }
    }
}

impl RootContext for BridleRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            log(
                LogLevel::Error,
                "bridle: configuration refused: configuration is empty",
            );
            return false;
        };
        let authorizer = match Authorizer::from_json(&bytes, id_seed()) {
            Ok(authorizer) => authorizer,
            Err(err) => {
                log(
                    LogLevel::Error,
                    &format!("bridle: configuration refused: {err}"),
                );
                return false;
            }
        };
        let audit = authorizer.audit_settings();
        let collector = audit.collector.clone().map(AuditBuffer::new);
        // One tick drives every periodic job. Polls keep their own schedules in seconds, so
        // with a bundle or a feed the tick is at most a second: the first fetch happens at
        // once instead of a whole poll period after start.
        let control =
            authorizer.revocation_feed().is_some() || authorizer.bundle_source().is_some();
        let periods = [
            control.then_some(Duration::from_secs(1)),
            collector.as_ref().map(AuditBuffer::flush_period),
        ];
        if let Some(period) = periods.into_iter().flatten().min() {
            if let Err(status) = hostcalls::set_tick_period(period) {
                // Without ticks the feed is never polled and events never leave: refuse.
                log(LogLevel::Error, &format!("bridle: configuration refused: the policy bundle, revocation feed and audit export need timers: {status:?}"));
                return false;
            }
        }
        self.audit = Rc::new(AuditOutputs {
            log: audit.log,
            collector: collector.map(RefCell::new),
        });
        self.authorizer = Some(Rc::new(RefCell::new(authorizer)));
        self.metrics = Rc::new(Metrics::define());
        create_slots();
        // Log what was loaded, never the configuration itself (it may hold secrets).
        log(LogLevel::Info, "bridle: configuration loaded");
        true
    }

    fn on_tick(&mut self) {
        if let Some(buffer) = &self.audit.collector {
            if let Ok(mut buffer) = buffer.try_borrow_mut() {
                buffer.flush();
                self.metrics.audit(buffer.exported, buffer.dropped);
            }
        }
        let Some(authorizer) = self.authorizer.clone() else {
            return;
        };
        let Ok(mut authorizer) = authorizer.try_borrow_mut() else {
            return;
        };
        feed::sync_from_shared(&mut authorizer);
        let now = now_unix_nanos() / 1_000_000_000;
        self.bundle.tick(&mut authorizer, &self.metrics, now);
        self.metrics.ages(
            self.bundle.confirmed_at.map(|at| now.saturating_sub(at)),
            authorizer
                .revocation_updated_at()
                .map(|at| now.saturating_sub(at)),
        );
        if let Some(poll) = authorizer.revocation_feed().map(|f| f.poll_seconds) {
            if self.feed_call.is_none() && now >= self.next_feed_poll {
                self.feed_call = feed::poll(&authorizer);
                self.next_feed_poll = now.saturating_add(poll);
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // The host only creates streams after a successful configure; without an authorizer
        // the filter still refuses every request.
        Some(Box::new(BridleFilter::new(
            self.authorizer.clone(),
            Rc::clone(&self.metrics),
            Rc::clone(&self.audit),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
