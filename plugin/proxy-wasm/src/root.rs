//! The root context: loads and validates the configuration, creates one filter per request,
//! and runs the periodic work (policy bundle, revocation feed, audit export) on its tick.

use std::cell::RefCell;
use std::rc::Rc;

use bridle_core::control::ControlPlane;
use bridle_core::{Authorizer, Capabilities};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::audit::AuditOutputs;
use crate::control::{self, ProxyShared};
use crate::filter::BridleFilter;
use crate::host::{log, now_unix_nanos};
use crate::metrics::Metrics;
use crate::once::create_slots;

pub struct BridleRoot {
    authorizer: Option<Rc<RefCell<Authorizer>>>,
    control: Rc<RefCell<ControlPlane>>,
    metrics: Rc<Metrics>,
    audit: Rc<AuditOutputs>,
}

impl Default for BridleRoot {
    fn default() -> Self {
        let control = Rc::new(RefCell::new(ControlPlane::default()));
        Self {
            authorizer: None,
            metrics: Rc::new(Metrics::default()),
            audit: Rc::new(AuditOutputs {
                log: true,
                control: Rc::clone(&control),
            }),
            control,
        }
    }
}

impl BridleRoot {
    /// Runs `f` with the authorizer and the control plane borrowed, at `now` (unix seconds),
    /// then logs and counts what the control plane noticed.
    fn with_control(&self, f: impl FnOnce(&mut ControlPlane, &mut Authorizer, u64)) {
        let Some(authorizer) = &self.authorizer else {
            return;
        };
        let (Ok(mut authorizer), Ok(mut control)) =
            (authorizer.try_borrow_mut(), self.control.try_borrow_mut())
        else {
            return;
        };
        let now = now_unix_nanos() / 1_000_000_000;
        f(&mut control, &mut authorizer, now);
        control::report(&mut control, &authorizer, &self.metrics, now);
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
        self.with_control(|control, authorizer, now| {
            let Some(job) = control.job_of(token_id) else {
                return;
            };
            let answer = control::answer(num_headers, body_size, control.body_limit(job));
            control.on_answer(job, answer, authorizer, now, &mut ProxyShared);
        });
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
        // The host is known only from a request (see `capabilities`): what Envoy cannot
        // honour is refused here, what only Kong lacks on each request.
        let authorizer = match Authorizer::from_json_on(&bytes, id_seed(), &Capabilities::ENVOY) {
            Ok(authorizer) => authorizer,
            Err(err) => {
                log(
                    LogLevel::Error,
                    &format!("bridle: configuration refused: {err}"),
                );
                return false;
            }
        };
        let control = ControlPlane::new(&authorizer);
        if let Some(period) = control.tick_period() {
            if let Err(status) = hostcalls::set_tick_period(period) {
                // Without ticks the feed is never polled and events never leave: refuse.
                log(LogLevel::Error, &format!("bridle: configuration refused: the policy bundle, revocation feed and audit export need timers: {status:?}"));
                return false;
            }
        }
        *self.control.borrow_mut() = control;
        self.audit = Rc::new(AuditOutputs {
            log: authorizer.audit_settings().log,
            control: Rc::clone(&self.control),
        });
        self.authorizer = Some(Rc::new(RefCell::new(authorizer)));
        self.metrics = Rc::new(Metrics::define());
        create_slots();
        // Log what was loaded, never the configuration itself (it may hold secrets).
        log(LogLevel::Info, "bridle: configuration loaded");
        true
    }

    fn on_tick(&mut self) {
        self.with_control(|control, authorizer, now| {
            for fetch in control.tick(authorizer, now, &mut ProxyShared) {
                let token = control::dispatch(&fetch);
                control.started(fetch.job, token, now);
            }
        });
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
