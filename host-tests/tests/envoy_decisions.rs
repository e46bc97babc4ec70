//! The compiled filter in a real Envoy (V8), with the shipped agent policy: what is forwarded,
//! what is refused, and what the caller and the upstream see. One Envoy for all requests (a
//! V8 start costs seconds); each check says which request it is about.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use host_tests::tokens::{self, Alg, Claims, TestIssuer};
use host_tests::{demo, ConfigBuilder, Envoy, Request, Response, Upstream};
use serde_json::{json, Value};

const RESEARCH: &str = "spiffe://demo.bridle.dev/agent/research-bot";
const DECISION_HEADER: &str = "x-bridle-decision-id";

/// A refusal Bridle sent itself: status, JSON body `{error, reasons, decision_id}`, and the
/// same decision id in the response header.
fn assert_refused(what: &str, response: &Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status, status, "{what}: {}", response.text());
    let body = response
        .json()
        .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {}", response.text()));
    assert_eq!(body["error"], error, "{what}: {body}");
    let reasons = body["reasons"].as_array().expect("reasons is an array");
    assert!(!reasons.is_empty(), "{what}: no reasons: {body}");
    assert!(reasons.iter().all(Value::is_string), "{what}: {body}");
    let id = body["decision_id"]
        .as_str()
        .expect("decision_id is a string");
    assert!(!id.is_empty(), "{what}: empty decision id");
    assert_eq!(
        response.header(DECISION_HEADER),
        Some(id),
        "{what}: decision id header"
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{what}"
    );
    body
}

/// A 401 with its challenge. `error="invalid_token"` when a credential was sent, no error
/// code when none was (RFC 6750 §3.1).
fn assert_unauthenticated(what: &str, response: &Response, credential_sent: bool) -> Value {
    let body = assert_refused(what, response, 401, "unauthenticated");
    let challenge = response
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    assert!(
        challenge.starts_with("Bearer realm=\"bridle\""),
        "{what}: {challenge}"
    );
    assert_eq!(
        challenge.contains("error=\"invalid_token\""),
        credential_sent,
        "{what}: {challenge}"
    );
    body
}

fn has_reason(body: &Value, fragment: &str) -> bool {
    body["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|r| r.contains(fragment))
}

#[test]
fn envoy_forwards_allowed_requests_and_refuses_the_rest() {
    let issuer = TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap();
    let upstream = Upstream::start().unwrap();
    // The environment carries characters that would break a naively embedded YAML string.
    let config = ConfigBuilder::agents()
        .unwrap()
        .issuer(&issuer)
        .unwrap()
        .set(
            "environment",
            json!({"name": "prod", "note": "\"quoted\" # not: yaml\n${LISTEN_PORT} é"}),
        )
        .build();
    let envoy = Envoy::start(&config, &upstream).unwrap();
    let mut sent_tokens = Vec::new();

    // --- allowed: forwarded with the decision id and the policy's headers, without the token
    let token = issuer.token_for(RESEARCH).unwrap();
    sent_tokens.push(token.clone());
    let response = envoy
        .send(
            &Request::get("/api/reports?limit=10")
                .bearer(&token)
                .header("x-bridle-agent", "spoofed"),
        )
        .unwrap();
    assert_eq!(response.status, 200, "allowed read: {}", response.text());
    assert_eq!(upstream.count(), 1);
    let seen = upstream.last().unwrap();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, "/api/reports?limit=10");
    assert_eq!(seen.header("authorization"), None, "credential forwarded");
    assert!(!seen.contains(&token), "the token reached the upstream");
    let id = seen.header(DECISION_HEADER).expect("decision id forwarded");
    assert!(!id.is_empty());
    assert_eq!(response.header(DECISION_HEADER), Some(id));
    // Policy headers replace whatever the caller sent under the same name.
    assert_eq!(seen.header("x-bridle-agent"), Some(RESEARCH));
    assert_eq!(
        seen.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-bridle-agent"))
            .count(),
        1
    );
    assert_eq!(
        seen.header("x-bridle-agent-owner"),
        Some("research-team@demo.bridle.dev")
    );

    // A second allowed request with the same token (the verified-token cache path).
    let response = envoy
        .send(&Request::get("/api/reports/q3").bearer(&token))
        .unwrap();
    assert_eq!(response.status, 200, "cached token: {}", response.text());
    assert_eq!(upstream.count(), 2);
    let allowed = upstream.count();

    // --- unauthenticated: 401, JSON, challenge; never forwarded
    let response = envoy.get("/api/reports", &[]).unwrap();
    let body = assert_unauthenticated("no credential", &response, false);
    assert!(has_reason(&body, "no credential"), "{body}");

    let now = tokens::unix_now();
    let mut hostile: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            issuer
                .mint(&Claims::new(RESEARCH).at(now).iat(-7200).exp(-3600))
                .unwrap(),
            "expired",
        ),
        (
            "wrong audience",
            issuer
                .mint(&Claims::new(RESEARCH).aud("some-other-service"))
                .unwrap(),
            "audience",
        ),
        (
            "bad signature",
            tokens::corrupt_signature(&issuer.token_for(RESEARCH).unwrap()).unwrap(),
            "signature",
        ),
        (
            "other key, same kid",
            issuer.impostor().unwrap().token_for(RESEARCH).unwrap(),
            "signature",
        ),
        (
            "payload tampered to another agent",
            tokens::tamper(&issuer.token_for(RESEARCH).unwrap(), |claims| {
                claims.insert(
                    "sub".into(),
                    "spiffe://demo.bridle.dev/agent/deploy-bot".into(),
                );
            })
            .unwrap(),
            "signature",
        ),
        (
            "alg none",
            tokens::alg_none(&issuer.payload(&Claims::new(RESEARCH))).unwrap(),
            "",
        ),
        (
            "untrusted issuer",
            TestIssuer::new("spiffe://evil.example", Alg::Es256)
                .unwrap()
                .token_for("spiffe://evil.example/agent/research-bot")
                .unwrap(),
            "",
        ),
        (
            "no exp",
            issuer.mint(&Claims::new(RESEARCH).without("exp")).unwrap(),
            "",
        ),
    ];
    for malformed in tokens::MALFORMED {
        hostile.push(("malformed", (*malformed).to_owned(), ""));
    }
    for (what, token, reason) in &hostile {
        sent_tokens.push(token.clone());
        let response = envoy
            .send(&Request::get("/api/reports").bearer(token))
            .unwrap();
        let body = assert_unauthenticated(what, &response, true);
        assert!(
            has_reason(&body, reason),
            "{what}: expected a reason about `{reason}`: {body}"
        );
    }
    let response = envoy
        .send(&Request::get("/api/reports").header("authorization", &format!("Basic {token}")))
        .unwrap();
    assert_unauthenticated("wrong scheme", &response, true);

    // --- forbidden: a verified agent asking for what its inventory entry does not grant
    let response = envoy
        .send(
            &Request::post("/api/reports")
                .bearer(&token)
                .json(&json!({"title": "x"})),
        )
        .unwrap();
    let body = assert_refused("write by a reader", &response, 403, "forbidden");
    assert!(has_reason(&body, "holds no write grant"), "{body}");
    assert!(has_reason(&body, "may not POST /api/reports"), "{body}");

    let response = envoy
        .send(&Request::get("/api/deployments/web").bearer(&token))
        .unwrap();
    let body = assert_refused("path outside the inventory", &response, 403, "forbidden");
    assert!(
        has_reason(&body, "may not GET /api/deployments/web"),
        "{body}"
    );

    let unknown = issuer
        .token_for("spiffe://demo.bridle.dev/agent/intruder")
        .unwrap();
    sent_tokens.push(unknown.clone());
    let response = envoy
        .send(&Request::get("/api/reports").bearer(&unknown))
        .unwrap();
    let body = assert_refused("unknown agent", &response, 403, "forbidden");
    assert!(has_reason(&body, "is not in the inventory"), "{body}");

    // --- nothing refused reached the upstream, and no token ever did
    assert_eq!(upstream.count(), allowed, "a refused request was forwarded");
    for token in &sent_tokens {
        assert!(!upstream.ever_saw(token), "a token reached the upstream");
    }

    // --- one audit event per decision, and tokens never in the log
    let log = envoy.log();
    for token in sent_tokens.iter().filter(|t| t.len() > 20) {
        assert!(!log.contains(token.as_str()), "a token is in Envoy's log");
    }
    let events = envoy.audit_events();
    let expected = 2 + 1 + hostile.len() + 1 + 3;
    assert_eq!(events.len(), expected, "audit events: {events:#?}");
    assert!(events.iter().all(|e| e["kind"] == "bridle.decision"));
}
