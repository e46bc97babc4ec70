//! Runs whole decisions natively in a loop (a cached ES256 token, a GET the policy allows) for
//! `perf record` and a native per-decision time, with the shipped agent policy and with a
//! one-rule policy making the same check (the decision's cost apart from the agent policy):
//! `cargo run --release -p bridle-core --example decide_profile [iterations] [agents|equivalent]`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bridle_core::{
    AuditEvent, AuditSink, Authorizer, Clock, MemoryOnceStore, Once, OnceStore, Outcome,
    RequestView,
};
use jwt_simple::prelude::*;
use serde_json::json;

const REGO: &str = include_str!("../../../policies/agents/agents.rego");
const DATA: &str = include_str!("../../../policies/agents/data.json");
const AGENT: &str = "spiffe://demo.bridle.dev/agent/research-bot";
const EQUIVALENT: &str = include_str!("../../../policies/bench/equivalent.rego");

struct Host {
    now: u64,
    once: MemoryOnceStore,
}

impl Clock for Host {
    fn now_unix_nanos(&self) -> u64 {
        self.now * 1_000_000_000
    }
}

impl AuditSink for Host {
    fn record(&mut self, event: &AuditEvent) {
        std::hint::black_box(event);
    }
}

impl OnceStore for Host {
    fn use_once(&mut self, key: &str, expires_at: u64, now: u64) -> Once {
        self.once.use_once(key, expires_at, now)
    }
}

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let which = std::env::args().nth(2).unwrap_or_else(|| "both".to_owned());
    let key = ES256KeyPair::generate().with_key_id("k1");
    let point = key.public_key().public_key().to_bytes_uncompressed();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
    let token = key
        .sign(
            Claims::create(Duration::from_secs(3600))
                .with_issuer("spiffe://demo.bridle.dev")
                .with_subject(AGENT)
                .with_audience("bridle-gateway"),
        )
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let view = RequestView {
        method: "GET".into(),
        scheme: "http".into(),
        authority: "api.internal".into(),
        path: "/api/reports/q3".into(),
        headers: vec![
            (
                "authorization".into(),
                format!("Bearer {token}").into_bytes(),
            ),
            ("accept".into(), b"*/*".to_vec()),
            ("user-agent".into(), b"bench".to_vec()),
        ],
        ..Default::default()
    };
    let policies = [
        (
            "agents",
            json!({"entrypoint": "data.bridle.agents.decision",
                   "modules": [{"name": "agents.rego", "source": REGO}],
                   "data": serde_json::from_str::<serde_json::Value>(DATA).unwrap()}),
        ),
        (
            "equivalent",
            json!({"entrypoint": "data.bench.decision",
                   "modules": [{"name": "bench.rego", "source": EQUIVALENT}]}),
        ),
    ];
    for (name, policy) in policies {
        if which != "both" && which != name {
            continue;
        }
        let config = json!({
            "issuers": [{"issuer": "spiffe://demo.bridle.dev", "profile": "jwt-svid", "trust_domain": "demo.bridle.dev",
                         "audiences": ["bridle-gateway"], "algorithms": ["ES256"],
                         "jwks": {"keys": [jwk]}}],
            "policy": policy,
            "environment": {"name": "prod"},
            "audit": {"log": false},
        });
        let mut authorizer = Authorizer::from_json(config.to_string().as_bytes(), 7).unwrap();
        let mut host = Host {
            now,
            once: MemoryOnceStore::new(16),
        };
        let first = authorizer.decide(&view, &mut host);
        assert_eq!(first.outcome, Outcome::Allow, "{name}: {:?}", first.reasons);
        let start = Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(authorizer.decide(&view, &mut host));
        }
        let per = start.elapsed() / iterations;
        println!("{name}: {per:?} per cached decision ({iterations} iterations)");
    }
}
