//! A host for the native tests: a settable clock, recorded audit events, an in-memory once-store.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bridle_core::{AuditEvent, AuditSink, Clock, MemoryOnceStore, Once, OnceStore};
use jwt_simple::prelude::{ECDSAP256PublicKeyLike, ES256KeyPair};
use serde_json::{json, Value};

pub struct TestHost {
    pub now: u64,
    pub events: Vec<String>,
    pub once: MemoryOnceStore,
}

impl TestHost {
    pub fn at(now: u64) -> Self {
        Self {
            now,
            events: Vec::new(),
            once: MemoryOnceStore::new(1024),
        }
    }
}

impl Clock for TestHost {
    fn now_unix_nanos(&self) -> u64 {
        self.now * 1_000_000_000
    }
}

impl AuditSink for TestHost {
    fn record(&mut self, event: &AuditEvent) {
        self.events.push(event.to_json());
    }
}

impl OnceStore for TestHost {
    fn use_once(&mut self, key: &str, expires_at: u64, now: u64) -> Once {
        self.once.use_once(key, expires_at, now)
    }
}

pub fn now() -> u64 {
    jwt_simple::prelude::Clock::now_since_epoch().as_secs()
}

/// The public JWK of an ES256 key, as a configuration lists it.
pub fn es256_jwk(key: &ES256KeyPair, kid: &str) -> Value {
    let point = key.public_key().public_key().to_bytes_uncompressed();
    json!({"kty": "EC", "crv": "P-256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])})
}
