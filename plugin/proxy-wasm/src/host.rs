//! The core's host traits over proxy-wasm host calls.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use bridle_core::{AuditEvent, AuditSink, Clock, Once, OnceStore};
use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

use crate::audit::AuditOutputs;
use crate::once::SharedOnceStore;

pub fn now_unix_nanos() -> u64 {
    // A host without a clock yields 0: every token then looks issued in the future and is
    // refused, which is the safe direction.
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Clock, audit sink and once-store of a proxy-wasm host.
pub struct ProxyHost {
    pub audit: Rc<AuditOutputs>,
}

impl Clock for ProxyHost {
    fn now_unix_nanos(&self) -> u64 {
        now_unix_nanos()
    }
}

pub const AUDIT_PREFIX: &str = "bridle.audit ";

impl AuditSink for ProxyHost {
    fn record(&mut self, event: &AuditEvent) {
        let mut json = None;
        if self.audit.log {
            let line = event.to_json();
            // One JSON object per line behind a fixed prefix, so a log pipeline can pick them out.
            let _ = hostcalls::log(LogLevel::Info, &format!("{AUDIT_PREFIX}{line}"));
            json = Some(line);
        }
        if let Ok(mut control) = self.audit.control.try_borrow_mut() {
            control.record(|| json.unwrap_or_else(|| event.to_json()));
        }
    }
}

impl OnceStore for ProxyHost {
    fn use_once(&mut self, key: &str, expires_at: u64, now: u64) -> Once {
        SharedOnceStore.use_once(key, expires_at, now)
    }
}

pub fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}
