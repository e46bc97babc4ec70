//! The root context: loads and validates the configuration, and creates one filter per request.

use std::cell::RefCell;
use std::rc::Rc;

use bridle_core::{Authorizer, Clock};

use crate::once::create_slots;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::filter::BridleFilter;
use crate::host::log;
use crate::metrics::Metrics;

#[derive(Default)]
pub struct BridleRoot {
    authorizer: Option<Rc<RefCell<Authorizer>>>,
    metrics: Rc<Metrics>,
}

impl Context for BridleRoot {}

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
