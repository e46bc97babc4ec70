//! Decisions through the compiled `.wasm` in the harness (release build of the harness):
//! a refused request without a credential (the filter's floor), a cached token, a new token
//! per request for ES256 / EdDSA / RS256 (and ES256 verified by the host, as Envoy's `jwt_authn`
//! in front of Bridle with `identity.host_verification`), and an MCP `tools/call` with the
//! shipped policy (small and with a 48 KiB argument).
//! Compare within one run: `cargo bench -p host-tests --bench decisions`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::Cell;

use criterion::{criterion_group, criterion_main, Criterion};
use host_tests::tokens::corrupt_signature;
use host_tests::{Alg, Claims, ConfigBuilder, TestIssuer};
use serde_json::json;
use wasmtime_harness::{Harness, HttpRequest, Plugin, PluginOptions};

const AGENT: &str = "spiffe://demo.bridle.dev/agent/research-bot";
const FRESH_TOKENS: usize = 4000;
const LARGE_ARGUMENT: usize = 48 * 1024;
/// What Envoy's `jwt_authn` is configured with in `scripts/bench-envoy.py` and
/// `host_tests::envoy::jwt_authn`: the verified payload segment is forwarded in this header, and
/// its dynamic metadata (the proof) is read at this property path.
const PAYLOAD_HEADER: &str = "x-bridle-jwt-payload";
const PROOF_PROPERTY: [&str; 3] = [
    "metadata",
    "filter_metadata",
    "envoy.filters.http.jwt_authn",
];

/// The check Envoy's RBAC makes in `scripts/bench-envoy.py` (b), as Rego: what a decision costs
/// apart from the agent policy's evaluation.
const EQUIVALENT_REGO: &str = include_str!("../../policies/bench/equivalent.rego");

fn plugin(harness: &Harness, issuers: &[&TestIssuer]) -> Plugin {
    plugin_with(harness, issuers, None)
}

fn plugin_with(harness: &Harness, issuers: &[&TestIssuer], rego: Option<&str>) -> Plugin {
    start(harness, issuers, rego, false)
}

/// Signatures left to the host: the proof property is present for every request, as
/// `jwt_authn`'s metadata is after it verified a token (what this plugin checks is that the
/// payload header matches the token).
fn host_verified_plugin(harness: &Harness, issuers: &[&TestIssuer]) -> Plugin {
    start(harness, issuers, None, true)
}

fn start(harness: &Harness, issuers: &[&TestIssuer], rego: Option<&str>, by_host: bool) -> Plugin {
    let mut builder = ConfigBuilder::agents().unwrap().environment("prod");
    if let Some(source) = rego {
        builder = builder.set(
            "policy",
            json!({"entrypoint": "data.bench.decision", "modules": [{"name": "bench.rego", "source": source}]}),
        );
    }
    for issuer in issuers {
        builder = builder.issuer(issuer).unwrap();
    }
    let identity = if by_host {
        json!({"cache_entries": 1024, "host_verification": {
            "payload_header": PAYLOAD_HEADER, "proof_property": PROOF_PROPERTY}})
    } else {
        json!({"cache_entries": 1024})
    };
    let config = builder
        .set("identity", identity)
        .set("audit", json!({"log": false}))
        .set(
            "routes",
            json!([{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp"}]),
        )
        .set(
            "mcp",
            json!({"tools": {"read_report": {"action": "read", "data_class": "internal"}}}),
        )
        .build();
    let mut options = PluginOptions::with_config(config.to_string())
        .record_logs(false)
        .at(std::time::SystemTime::now());
    if by_host {
        // jwt_authn's `payload_in_metadata` writes a non-empty struct; any non-empty value is a proof.
        options = options.property(&PROOF_PROPERTY, r#"{"workload":{"sub":"…"}}"#);
    }
    harness.start(options).unwrap()
}

/// A request as it leaves `jwt_authn` (`forward: true`, `forward_payload_header`): the token,
/// and its payload segment in the payload header.
fn host_verified_get(token: &str) -> HttpRequest {
    get(token).header(PAYLOAD_HEADER, token.split('.').nth(1).unwrap())
}

fn get(token: &str) -> HttpRequest {
    HttpRequest::get("/api/reports/q3")
        .authority("api.internal")
        .header("authorization", format!("Bearer {token}"))
}

fn decisions(c: &mut Criterion) {
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let es256 = TestIssuer::new("spiffe://demo.bridle.dev", Alg::Es256).unwrap();
    let mut group = c.benchmark_group("decision");
    // One token for the cached cases, minted before the plugins start: the plugins' clocks are
    // fixed at start, and a token minted minutes of benchmarking later would not be valid yet.
    let token = es256.token_for(AGENT).unwrap();

    let mut p = plugin(&harness, &[&es256]);
    let floor = HttpRequest::get("/api/reports/q3").authority("api.internal");
    assert_eq!(p.request(&floor).unwrap().status(), 401);
    group.bench_function("floor_no_credential_401", |b| {
        b.iter(|| p.request(&floor).unwrap())
    });

    let cached = get(&token);
    assert!(p.request(&cached).unwrap().is_forwarded());
    group.bench_function("cached_token_allow", |b| {
        b.iter(|| p.request(&cached).unwrap())
    });

    let mut equivalent = plugin_with(&harness, &[&es256], Some(EQUIVALENT_REGO));
    assert!(equivalent.request(&cached).unwrap().is_forwarded());
    group.bench_function("cached_token_allow_equivalent_policy", |b| {
        b.iter(|| equivalent.request(&cached).unwrap())
    });

    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "read_report", "arguments": {"id": "q3"}}}).to_string();
    let mcp = HttpRequest::post("/mcp")
        .authority("mcp.internal")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.into_bytes());
    assert!(p.request(&mcp).unwrap().is_forwarded());
    group.bench_function("cached_token_mcp_tools_call", |b| {
        b.iter(|| p.request(&mcp).unwrap())
    });

    // A large MCP body: the parse cost grows with the arguments, the decision does not.
    let large = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "read_report", "arguments": {"id": "q3", "note": "x".repeat(LARGE_ARGUMENT)}}}).to_string();
    let large_mcp = HttpRequest::post("/mcp")
        .authority("mcp.internal")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(large.into_bytes());
    let reply = p.request(&large_mcp).unwrap();
    assert!(reply.is_forwarded(), "large MCP body: {:?}", reply.status());
    group.bench_function("cached_token_mcp_tools_call_large_body", |b| {
        b.iter(|| p.request(&large_mcp).unwrap())
    });

    for alg in [Alg::Es256, Alg::EdDsa, Alg::Rs256] {
        let issuer = TestIssuer::new("spiffe://demo.bridle.dev", alg).unwrap();
        let profile_issuer = if alg == Alg::EdDsa {
            issuer.with_profile("oidc")
        } else {
            issuer
        };
        let mut p = plugin(&harness, &[&profile_issuer]);
        let requests: Vec<HttpRequest> = (0..FRESH_TOKENS)
            .map(|_| {
                get(&profile_issuer
                    .mint(&Claims::new(AGENT).unique_jti())
                    .unwrap())
            })
            .collect();
        let next = Cell::new(0usize);
        group.bench_function(format!("new_token_{}", alg.name()), |b| {
            b.iter(|| {
                let i = next.get();
                next.set((i + 1) % FRESH_TOKENS);
                p.request(&requests[i]).unwrap()
            })
        });
    }

    // ES256 verified by the host: Bridle still parses the token and makes every other check,
    // and compares the payload header with the token, but does not verify the signature.
    let issuer = TestIssuer::new("spiffe://demo.bridle.dev", Alg::Es256).unwrap();
    let mut by_host = host_verified_plugin(&harness, &[&issuer]);
    let mut by_wasm = plugin(&harness, &[&issuer]);
    let fresh = || issuer.mint(&Claims::new(AGENT).unique_jti()).unwrap();
    // The host-verified path is really the one measured: a token whose signature is wrong is
    // accepted only by the plugin that trusts the host, and never without the payload header.
    let bad = corrupt_signature(&fresh()).unwrap();
    let reply = by_host.request(&host_verified_get(&bad)).unwrap();
    assert!(reply.is_forwarded(), "host-verified: {:?}", reply.status());
    assert_eq!(
        by_wasm.request(&host_verified_get(&bad)).unwrap().status(),
        401
    );
    assert_eq!(by_host.request(&get(&fresh())).unwrap().status(), 401);
    let requests: Vec<HttpRequest> = (0..FRESH_TOKENS)
        .map(|_| host_verified_get(&fresh()))
        .collect();
    assert!(by_host.request(&requests[0]).unwrap().is_forwarded());
    let next = Cell::new(0usize);
    group.bench_function("new_token_ES256_host_verified", |b| {
        b.iter(|| {
            let i = next.get();
            next.set((i + 1) % FRESH_TOKENS);
            by_host.request(&requests[i]).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
