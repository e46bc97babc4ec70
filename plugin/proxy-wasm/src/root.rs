//! The root context: loads and validates the configuration, and creates one filter per request.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bridle_core::{Authorizer, Clock};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::feed;
use crate::filter::BridleFilter;
use crate::host::log;
use crate::metrics::Metrics;
use crate::once::create_slots;

#[derive(Default)]
pub struct BridleRoot {
    authorizer: Option<Rc<RefCell<Authorizer>>>,
    metrics: Rc<Metrics>,
    /// The revocation-feed call in flight, if any.
    feed_call: Option<u32>,
}

fn now_secs() -> u64 {
    crate::host::ProxyHost.now_unix_nanos() / 1_000_000_000
}

impl Context for BridleRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if self.feed_call != Some(token_id) {
            return;
        }
        self.feed_call = None;
        if let Some(mut authorizer) = self
            .authorizer
            .as_ref()
            .and_then(|a| a.try_borrow_mut().ok())
        {
            feed::on_response(&mut authorizer, body_size, now_secs());
        }
    }
}

fn id_seed() -> u64 {
    let mut bytes = [0u8; 8];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        // Decision ids only need to be unique, not secret: the clock is an acceptable seed.
        Err(_) => crate::host::ProxyHost.now_unix_nanos(),
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
        match Authorizer::from_json(&bytes, id_seed()) {
            Ok(authorizer) => {
                // Log what was loaded, never the configuration itself (it may hold secrets).
                log(LogLevel::Info, "bridle: configuration loaded");
                if let Some(feed) = authorizer.revocation_feed() {
                    let period = Duration::from_secs(feed.poll_seconds);
                    if let Err(status) = hostcalls::set_tick_period(period) {
                        // Without ticks the feed is never polled: refuse rather than run unrevoked.
                        log(LogLevel::Error, &format!("bridle: configuration refused: revocation feed needs timers: {status:?}"));
                        return false;
                    }
                }
                self.authorizer = Some(Rc::new(RefCell::new(authorizer)));
                self.metrics = Rc::new(Metrics::define());
                create_slots();
                true
            }
            Err(err) => {
                log(
                    LogLevel::Error,
                    &format!("bridle: configuration refused: {err}"),
                );
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(authorizer) = self.authorizer.clone() else {
            return;
        };
        let Ok(mut authorizer) = authorizer.try_borrow_mut() else {
            return;
        };
        feed::sync_from_shared(&mut authorizer);
        if self.feed_call.is_none() {
            self.feed_call = feed::poll(&authorizer);
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // The host only creates streams after a successful configure; without an authorizer
        // the filter still refuses every request.
        Some(Box::new(BridleFilter::new(
            self.authorizer.clone(),
            Rc::clone(&self.metrics),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
