//! Signatures checked by the runtime (Web Crypto in the edge build): the core hands out a job
//! only when every other check passes, with the key it chose, and takes the verdict only for
//! the token it asked about. The edge tests run the same through real Web Crypto.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use bridle_core::{Authorizer, Outcome, RequestView};
use jwt_simple::prelude::*;
use serde_json::json;

mod support;
use support::{es256_jwk, now, TestHost};

const ISS: &str = "spiffe://demo.bridle.dev";
const AGENT: &str = "spiffe://demo.bridle.dev/agent/research-bot";

fn authorizer(key: &ES256KeyPair) -> Authorizer {
    let config = json!({
        "issuers": [{"issuer": ISS, "profile": "jwt-svid", "trust_domain": "demo.bridle.dev", "audiences": ["gw"], "algorithms": ["ES256"],
                     "jwks": {"keys": [es256_jwk(key, "k1")]}}],
        "policy": {"entrypoint": "data.t.decision", "modules": [{"name": "t.rego",
            "source": "package t\ndecision := {\"allow\": true}"}]}
    });
    Authorizer::from_json(config.to_string().as_bytes(), 1).unwrap()
}

fn token(key: &ES256KeyPair, lifetime: u64) -> String {
    key.sign(
        Claims::create(Duration::from_secs(lifetime))
            .with_issuer(ISS)
            .with_subject(AGENT)
            .with_audience("gw"),
    )
    .unwrap()
}

fn view(token: &str) -> RequestView {
    let mut view = RequestView {
        method: "GET".into(),
        path: "/".into(),
        ..Default::default()
    };
    view.headers.push((
        "authorization".into(),
        format!("Bearer {token}").into_bytes(),
    ));
    view
}

#[test]
fn a_job_names_the_key_and_the_verdict_decides_only_for_its_token() {
    let key = ES256KeyPair::generate().with_key_id("k1");
    let mut authorizer = authorizer(&key);
    let mut host = TestHost::at(now());
    let good = token(&key, 300);

    let job = authorizer.signature_job(&view(&good), now()).unwrap();
    assert_eq!(job.alg, "ES256");
    let mut jwk = es256_jwk(&key, "k1");
    jwk.as_object_mut().unwrap().remove("kid");
    assert_eq!(job.jwk, jwk);
    assert_eq!(format!("{}.{}", job.signing_input, job.signature), good);

    // The runtime says the signature is bad: refused exactly like the software path would.
    let refused = authorizer.decide_with_signature(&view(&good), false, &mut host);
    assert_eq!(refused.outcome, Outcome::Unauthenticated);
    assert_eq!(refused.reasons, ["token signature does not verify"]);

    // A verdict nobody asked for is ignored: the core verifies itself (and this impostor
    // fails there, even though the runtime claimed it valid).
    let impostor = token(&ES256KeyPair::generate().with_key_id("k1"), 300);
    let unasked = authorizer.decide_with_signature(&view(&impostor), true, &mut host);
    assert_eq!(unasked.reasons, ["token signature does not verify"]);

    // Asked and found valid: allowed, cached, and no second job for it.
    authorizer.signature_job(&view(&good), now()).unwrap();
    let allowed = authorizer.decide_with_signature(&view(&good), true, &mut host);
    assert_eq!(allowed.outcome, Outcome::Allow, "{:?}", allowed.reasons);
    assert!(authorizer.signature_job(&view(&good), now()).is_none());

    // A token refused for anything but its signature gets no job; deciding says why.
    let expired = {
        let mut claims = Claims::create(Duration::from_secs(1))
            .with_issuer(ISS)
            .with_subject(AGENT)
            .with_audience("gw");
        claims.expires_at = Some(Clock::now_since_epoch() - Duration::from_secs(600));
        claims.issued_at = Some(Clock::now_since_epoch() - Duration::from_secs(900));
        key.sign(claims).unwrap()
    };
    assert!(authorizer.signature_job(&view(&expired), now()).is_none());
    assert_eq!(
        authorizer.decide(&view(&expired), &mut host).reasons,
        ["token has expired"]
    );
}
