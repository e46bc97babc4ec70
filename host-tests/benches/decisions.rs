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

mod common;

use std::cell::Cell;

use common::*;
use criterion::{criterion_group, criterion_main, Criterion};
use host_tests::tokens::corrupt_signature;
use host_tests::{Alg, Claims, TestIssuer};
use wasmtime_harness::{Harness, HttpRequest};

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

    let mcp = mcp_call(&token, 0);
    assert!(p.request(&mcp).unwrap().is_forwarded());
    group.bench_function("cached_token_mcp_tools_call", |b| {
        b.iter(|| p.request(&mcp).unwrap())
    });

    // A large MCP body: the parse cost grows with the arguments, the decision does not.
    let large_mcp = mcp_call(&token, LARGE_ARGUMENT);
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
