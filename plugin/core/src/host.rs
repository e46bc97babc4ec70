//! What the core needs from its host, as small traits each adapter implements.

use crate::audit::AuditEvent;

/// Wall-clock time as the host sees it. Token expiry is judged by this clock.
pub trait Clock {
    fn now_unix_nanos(&self) -> u64;
}

/// Where audit events go (the proxy log, a worker's console, a collector).
pub trait AuditSink {
    fn record(&mut self, event: &AuditEvent);
}
