//! Envoy's `jwt_authn` verifies workload-token signatures natively and Bridle trusts that, and
//! only that, per request: the proof is `jwt_authn`'s dynamic metadata (no client can set it)
//! and the forwarded payload must be the payload of the token Bridle reads. This test walks
//! the trust boundary in a real Envoy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use host_tests::envoy::{self, EnvoyOptions};
use host_tests::tokens::{Alg, TestIssuer};
use host_tests::{demo, ConfigBuilder, Envoy, Upstream};
use serde_json::{json, Value};

const RESEARCH: &str = "spiffe://demo.bridle.dev/agent/research-bot";
const DEPLOY: &str = "spiffe://demo.bridle.dev/agent/deploy-bot";
const PAYLOAD: &str = "x-bridle-jwt-payload";

/// The shipped agent policy, with signatures left to the host.
fn config(issuer: &TestIssuer) -> Value {
    ConfigBuilder::agents()
        .unwrap()
        .issuer(issuer)
        .unwrap()
        .environment("prod")
        .set(
            "identity",
            json!({"host_verification": {"payload_header": PAYLOAD,
                "proof_property": ["metadata", "filter_metadata", "envoy.filters.http.jwt_authn"]}}),
        )
        .build()
}

#[test]
fn bridle_trusts_jwt_authn_only_for_the_token_it_verified() {
    let issuer = TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap();
    let config = config(&issuer);
    let upstream = Upstream::start().unwrap();
    let mut options = EnvoyOptions::new(config, upstream.port());
    options.pre_filters = vec![envoy::jwt_authn(&issuer, PAYLOAD).unwrap()];
    let envoy = Envoy::start_with(&options).unwrap();
    let bearer = |token: &str| format!("Bearer {token}");
    let research = issuer.token_for(RESEARCH).unwrap();

    // A good token: verified by jwt_authn, accepted by Bridle, decided by the policy.
    let ok = envoy
        .get("/api/reports", &[("authorization", &bearer(&research))])
        .unwrap();
    assert_eq!(ok.status, 200, "{}\n{}", ok.text(), envoy.log_tail(30));
    let seen = upstream.last().unwrap();
    assert_eq!(seen.header("x-bridle-agent"), Some(RESEARCH));
    assert_eq!(
        seen.header(PAYLOAD),
        None,
        "the payload header is not forwarded"
    );
    assert_eq!(seen.header("authorization"), None);

    // A client-supplied payload header claiming to be another agent is overwritten by
    // jwt_authn: Bridle sees the research agent, and its policy decides for that agent.
    let deploy_payload = issuer
        .token_for(DEPLOY)
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let forged = envoy
        .get(
            "/api/deployments/web",
            &[
                ("authorization", &bearer(&research)),
                (PAYLOAD, &deploy_payload),
            ],
        )
        .unwrap();
    assert_eq!(forged.status, 403, "{}", forged.text());

    // Bad tokens never get past jwt_authn; nothing reaches the upstream.
    let before = upstream.count();
    let impostor = issuer.impostor().unwrap().token_for(RESEARCH).unwrap();
    let stranger = TestIssuer::new("spiffe://elsewhere.example", Alg::Es256)
        .unwrap()
        .token_for(RESEARCH)
        .unwrap();
    for (what, headers) in [
        (
            "same kid, other key",
            vec![("authorization", bearer(&impostor))],
        ),
        (
            "untrusted issuer",
            vec![("authorization", bearer(&stranger))],
        ),
        (
            "no token, forged payload",
            vec![(PAYLOAD, deploy_payload.clone())],
        ),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let refused = envoy.get("/api/reports", &headers).unwrap();
        assert_eq!(refused.status, 401, "{what}: {}", refused.text());
    }
    assert_eq!(upstream.count(), before);
    assert!(
        envoy
            .stats("jwt_authn")
            .unwrap()
            .iter()
            .any(|(n, v)| n.ends_with("denied") && *v >= 3),
        "{:?}",
        envoy.stats("jwt_authn").unwrap()
    );
}

#[test]
fn without_jwt_authn_metadata_bridle_refuses_whatever_the_headers_say() {
    let issuer = TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap();
    let config = config(&issuer);
    let upstream = Upstream::start().unwrap();
    let mut options = EnvoyOptions::new(config, upstream.port());
    // A jwt_authn that verifies but records nothing in metadata: no proof for Bridle.
    let mut filter = envoy::jwt_authn(&issuer, PAYLOAD).unwrap();
    filter["typed_config"]["providers"]["workload"]
        .as_object_mut()
        .unwrap()
        .remove("payload_in_metadata");
    options.pre_filters = vec![filter];
    let envoy = Envoy::start_with(&options).unwrap();
    let token = issuer.token_for(RESEARCH).unwrap();
    let refused = envoy
        .get(
            "/api/reports",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .unwrap();
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(
        refused.json().unwrap()["reasons"],
        json!(["token was not verified by the host (its proof of verification is missing)"])
    );
    assert_eq!(upstream.count(), 0);
}
