//! What the core needs from its host, as small traits each adapter implements.

use std::collections::HashMap;

use crate::audit::AuditEvent;

/// Wall-clock time as the host sees it. Token expiry is judged by this clock.
pub trait Clock {
    fn now_unix_nanos(&self) -> u64;
}

/// Where audit events go (the proxy log, a worker's console, a collector).
pub trait AuditSink {
    fn record(&mut self, event: &AuditEvent);
}

/// The answer of a [`OnceStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Once {
    /// The key had not been used: it is now.
    First,
    /// The key was used before.
    Replayed,
    /// The store could not answer; the caller must fail closed.
    Unavailable,
}

/// Keys that may be used once across every worker of a host (approval `jti`s). Proxy-wasm
/// hosts back it with shared data, so a replay on another worker is still a replay.
pub trait OnceStore {
    fn use_once(&mut self, key: &str, expires_at: u64, now: u64) -> Once;
}

/// Everything the core asks of its host.
pub trait Host: Clock + AuditSink + OnceStore {}

impl<T: Clock + AuditSink + OnceStore> Host for T {}

/// An in-process [`OnceStore`] for single-process hosts and tests, bounded: expired keys are
/// dropped first, and a full store refuses new keys (fail closed) rather than forgetting used ones.
#[derive(Debug)]
pub struct MemoryOnceStore {
    capacity: usize,
    used: HashMap<String, u64>,
}

impl MemoryOnceStore {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            used: HashMap::new(),
        }
    }
}

impl OnceStore for MemoryOnceStore {
    fn use_once(&mut self, key: &str, expires_at: u64, now: u64) -> Once {
        if self.used.contains_key(key) {
            return Once::Replayed;
        }
        if self.used.len() >= self.capacity {
            self.used.retain(|_, until| *until >= now);
            if self.used.len() >= self.capacity {
                return Once::Unavailable;
            }
        }
        self.used.insert(key.to_owned(), expires_at);
        Once::First
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_used_once_and_the_store_stays_bounded() {
        let mut store = MemoryOnceStore::new(2);
        assert_eq!(store.use_once("a", 100, 10), Once::First);
        assert_eq!(store.use_once("a", 100, 10), Once::Replayed);
        assert_eq!(store.use_once("b", 20, 10), Once::First);
        assert_eq!(store.use_once("c", 100, 10), Once::Unavailable);
        assert_eq!(store.use_once("c", 100, 30), Once::First);
        assert_eq!(store.use_once("a", 100, 30), Once::Replayed);
    }
}
