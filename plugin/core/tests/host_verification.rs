//! Host-verified workload tokens (Envoy `jwt_authn` in front of Bridle): the signature is the
//! host's, bound to the very token by its payload; every other check stays Bridle's, and no
//! request without the host's proof gets through, cached token or not.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use bridle_core::{Authorizer, Decision, Outcome, RequestView};
use jwt_simple::prelude::*;
use serde_json::json;

mod support;
use support::{es256_jwk, now, TestHost};

const ISS: &str = "spiffe://demo.bridle.dev";
const AGENT: &str = "spiffe://demo.bridle.dev/agent/research-bot";
const PAYLOAD: &str = "x-jwt-payload";

fn authorizer(key: &ES256KeyPair) -> Authorizer {
    let config = json!({
        "identity": {"host_verification": {"payload_header": PAYLOAD,
            "proof_property": ["metadata", "filter_metadata", "envoy.filters.http.jwt_authn"]}},
        "issuers": [{"issuer": ISS, "profile": "jwt-svid", "trust_domain": "demo.bridle.dev", "audiences": ["gw"], "algorithms": ["ES256"],
                     "jwks": {"keys": [es256_jwk(key, "k1")]}}],
        "policy": {"entrypoint": "data.t.decision", "modules": [{"name": "t.rego",
            "source": "package t\nimport rego.v1\ndecision := {\"allow\": input.identity.spiffe.id == \"spiffe://demo.bridle.dev/agent/research-bot\"}"}]}
    });
    Authorizer::from_json(config.to_string().as_bytes(), 1).unwrap()
}

fn token(key: &ES256KeyPair, lifetime: u64) -> String {
    let claims = Claims::create(Duration::from_secs(lifetime))
        .with_issuer(ISS)
        .with_subject(AGENT)
        .with_audience("gw");
    key.sign(claims).unwrap()
}

fn payload_of(token: &str) -> String {
    token.split('.').nth(1).unwrap().to_owned()
}

fn decide(
    authorizer: &mut Authorizer,
    token: &str,
    payload: Option<&str>,
    host_verified: bool,
) -> Decision {
    let mut view = RequestView {
        method: "GET".into(),
        path: "/".into(),
        host_verified,
        ..Default::default()
    };
    view.headers.push((
        "authorization".into(),
        format!("Bearer {token}").into_bytes(),
    ));
    if let Some(payload) = payload {
        view.headers
            .push((PAYLOAD.into(), payload.as_bytes().to_vec()));
    }
    authorizer.decide(&view, &mut TestHost::at(now()))
}

#[test]
fn the_hosts_signature_check_is_trusted_only_with_its_proof_for_this_token() {
    let key = ES256KeyPair::generate().with_key_id("k1");
    let mut authorizer = authorizer(&key);
    // Signed by another key with the same kid: the software path would refuse it, so an
    // allow below can only come from trusting the host's verification.
    let other = ES256KeyPair::generate().with_key_id("k1");
    let good = token(&other, 300);

    let allowed = decide(&mut authorizer, &good, Some(&payload_of(&good)), true);
    assert_eq!(allowed.outcome, Outcome::Allow, "{:?}", allowed.reasons);
    assert!(
        allowed.remove_headers.iter().any(|h| h == PAYLOAD),
        "the payload header is not forwarded"
    );

    // The same token, now cached, without the proof: refused.
    let unproven = decide(&mut authorizer, &good, Some(&payload_of(&good)), false);
    assert_eq!(unproven.outcome, Outcome::Unauthenticated);
    assert_eq!(
        unproven.reasons,
        ["token was not verified by the host (its proof of verification is missing)"]
    );
    let no_header = decide(&mut authorizer, &good, None, true);
    assert_eq!(no_header.outcome, Outcome::Unauthenticated);

    // The host verified some other token: its payload does not bind this one.
    let another = key
        .sign(
            Claims::create(Duration::from_secs(300))
                .with_issuer(ISS)
                .with_subject("spiffe://demo.bridle.dev/agent/other")
                .with_audience("gw"),
        )
        .unwrap();
    let mismatch = decide(&mut authorizer, &good, Some(&payload_of(&another)), true);
    assert_eq!(mismatch.outcome, Outcome::Unauthenticated);
    assert_eq!(
        mismatch.reasons,
        ["the payload the host verified is not the payload of this token"]
    );

    // Every check but the signature is still Bridle's.
    let expired = {
        let claims = Claims::create(Duration::from_secs(1))
            .with_issuer(ISS)
            .with_subject(AGENT)
            .with_audience("gw")
            .invalid_before(Clock::now_since_epoch() - Duration::from_secs(3600));
        let mut claims = claims;
        claims.expires_at = Some(Clock::now_since_epoch() - Duration::from_secs(600));
        other.sign(claims).unwrap()
    };
    let refused = decide(&mut authorizer, &expired, Some(&payload_of(&expired)), true);
    assert_eq!(refused.reasons, ["token has expired"]);
    let wrong_audience = other
        .sign(
            Claims::create(Duration::from_secs(300))
                .with_issuer(ISS)
                .with_subject(AGENT)
                .with_audience("elsewhere"),
        )
        .unwrap();
    let refused = decide(
        &mut authorizer,
        &wrong_audience,
        Some(&payload_of(&wrong_audience)),
        true,
    );
    assert_eq!(refused.reasons, ["token audience is not accepted"]);
}

#[test]
fn host_verification_settings_are_checked_at_load() {
    let key = ES256KeyPair::generate().with_key_id("k1");
    for (host, field) in [
        (
            json!({"payload_header": "authorization", "proof_property": ["metadata"]}),
            "identity.host_verification.payload_header",
        ),
        (
            json!({"payload_header": "x-jwt-payload", "proof_property": []}),
            "identity.host_verification.proof_property",
        ),
        (
            json!({"payload_header": "x jwt", "proof_property": ["metadata"]}),
            "identity.host_verification.payload_header",
        ),
    ] {
        let config = json!({
            "identity": {"host_verification": host},
            "issuers": [{"issuer": ISS, "profile": "jwt-svid", "trust_domain": "demo.bridle.dev", "audiences": ["gw"], "algorithms": ["ES256"],
                         "jwks": {"keys": [es256_jwk(&key, "k1")]}}],
            "policy": {"entrypoint": "data.t.decision", "modules": [{"name": "t.rego", "source": "package t\ndecision := {\"allow\": true}"}]}
        });
        let err = Authorizer::from_json(config.to_string().as_bytes(), 1)
            .err()
            .unwrap();
        assert_eq!(err.field(), field);
    }
}
