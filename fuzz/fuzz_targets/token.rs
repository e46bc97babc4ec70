//! Token parsing and verification: arbitrary bytes as a compact JWS against an ES256 and an
//! RS256 issuer, on both paths (signature checked here, or by the host).
#![no_main]

use bridle_core::compile::{self, IssuerRole};
use bridle_core::config::RawIssuer;
use bridle_core::identity::TokenVerifier;
use libfuzzer_sys::fuzz_target;

// The decision target's fixtures are not this target's.
#[allow(dead_code)]
#[path = "common.rs"]
mod common;

fn verifier() -> Option<TokenVerifier> {
    let raw: Vec<RawIssuer> = [common::ES256_ISSUER, common::RS256_ISSUER]
        .iter()
        .map(|text| serde_json::from_str(text))
        .collect::<Result<_, _>>()
        .ok()?;
    let issuers = compile::issuers(&raw, "issuers", IssuerRole::Workload).ok()?;
    Some(TokenVerifier::new(issuers, 30, 8192))
}

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static VERIFIER: Option<TokenVerifier> = verifier();
    }
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    VERIFIER.with(|verifier| {
        let verifier = verifier.as_ref().expect("fixture issuers compile");
        let _ = verifier.verify(token, common::NOW);
        let _ = verifier.verify_signed_by_host(token, common::NOW);
    });
});
