//! The decision pipeline natively: tokens, policy outcomes, configuration errors, audit events.
//! The same behaviour is exercised through the compiled `.wasm` in `host-tests`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bridle_core::{Authorizer, Decision, Outcome, RequestView};
use jwt_simple::prelude::*;
use serde_json::{json, Value};

const ISS: &str = "spiffe://demo.bridle.dev";
const AUD: &str = "bridle-gateway";
const AGENT: &str = "spiffe://demo.bridle.dev/agent/research-bot";

mod support;
use support::{es256_jwk, now, TestHost};

struct Fixture {
    key: ES256KeyPair,
    authorizer: Authorizer,
    host: TestHost,
}

const POLICY: &str = r#"package test
import rego.v1
default decision := {"allow": false, "reasons": ["path not allowed"]}
decision := {"allow": true, "headers": {"x-agent": input.identity.spiffe.id}} if input.request.path == "/allowed"
decision := {"allow": "broken"} if input.request.path == "/broken"
"#;

fn config(jwk: Value) -> Value {
    json!({
        "issuers": [{"issuer": ISS, "profile": "jwt-svid", "trust_domain": "demo.bridle.dev", "audiences": [AUD], "algorithms": ["ES256"],
                     "jwks": {"keys": [jwk]}}],
        "policy": {"entrypoint": "data.test.decision", "modules": [{"name": "t.rego", "source": POLICY}]},
        "environment": {"name": "test"}
    })
}

impl Fixture {
    fn new() -> Self {
        let key = ES256KeyPair::generate().with_key_id("k1");
        let cfg = config(es256_jwk(&key, "k1"));
        let authorizer = Authorizer::from_json(cfg.to_string().as_bytes(), 7).unwrap();
        Self {
            key,
            authorizer,
            host: TestHost::at(now()),
        }
    }

    fn claims(&self) -> JWTClaims<NoCustomClaims> {
        Claims::create(Duration::from_secs(300))
            .with_issuer(ISS)
            .with_subject(AGENT)
            .with_audience(AUD)
    }

    fn token(&self, claims: JWTClaims<NoCustomClaims>) -> String {
        self.key.sign(claims).unwrap()
    }

    fn decide(&mut self, path: &str, authorization: Option<&str>) -> Decision {
        let mut view = RequestView {
            method: "GET".into(),
            scheme: "http".into(),
            authority: "api".into(),
            path: path.into(),
            ..Default::default()
        };
        if let Some(value) = authorization {
            view.headers
                .push(("authorization".into(), value.as_bytes().to_vec()));
        }
        view.headers.push(("x-trace".into(), b"abc".to_vec()));
        self.authorizer.decide(&view, &mut self.host)
    }

    fn refused_with(&mut self, token: &str, outcome: Outcome, reason: &str) {
        let decision = self.decide("/allowed", Some(&format!("Bearer {token}")));
        assert_eq!(decision.outcome, outcome, "{:?}", decision.reasons);
        assert_eq!(decision.reasons, [reason]);
    }
}

fn b64json(value: Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[test]
fn valid_token_is_allowed_and_cached() {
    let mut f = Fixture::new();
    let token = f.token(f.claims());
    let first = f.decide("/allowed", Some(&format!("Bearer {token}")));
    assert_eq!(first.outcome, Outcome::Allow, "{:?}", first.reasons);
    assert_eq!(first.cache_hit, Some(false));
    assert!(first
        .upstream_headers
        .contains(&("x-agent".into(), AGENT.into())));
    assert!(first
        .upstream_headers
        .iter()
        .any(|(n, v)| n == "x-bridle-decision-id" && *v == first.decision_id));
    assert_eq!(first.remove_headers, ["authorization"]);
    let second = f.decide("/allowed", Some(&format!("bearer  {token}")));
    assert_eq!(second.outcome, Outcome::Allow);
    assert_eq!(second.cache_hit, Some(true));
    assert_ne!(first.decision_id, second.decision_id);
    // 16 hex digits of the instance's seed, then 16 of a counter.
    let counter = |id: &str| u64::from_str_radix(id.get(16..).unwrap(), 16).unwrap();
    for id in [&first.decision_id, &second.decision_id] {
        assert_eq!(id.len(), 32, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{id}"
        );
    }
    assert_eq!(first.decision_id.get(..16), second.decision_id.get(..16));
    assert_eq!(
        counter(&second.decision_id),
        counter(&first.decision_id) + 1
    );
    assert_eq!(first.audit.agent.as_ref().map(|a| a.cache_hit), Some(false));
    assert_eq!(second.audit.agent.as_ref().map(|a| a.cache_hit), Some(true));
}

#[test]
fn missing_and_malformed_credentials_are_unauthenticated() {
    let mut f = Fixture::new();
    let d = f.decide("/allowed", None);
    assert_eq!(d.outcome, Outcome::Unauthenticated);
    assert_eq!(d.reasons, ["no credential in header `authorization`"]);
    assert!(d
        .response_headers
        .contains(&("www-authenticate".into(), "Bearer realm=\"bridle\"".into())));
    let d = f.decide("/allowed", Some("Basic dXNlcjpwYXNz"));
    assert_eq!(
        d.reasons,
        ["header `authorization` does not carry a `Bearer` credential"]
    );
    for (token, reason) in [
        ("abc", "token malformed: a JWS has exactly three segments"),
        (
            "a.b.c.d",
            "token malformed: a JWS has exactly three segments",
        ),
        ("a..c", "token malformed: a segment is empty"),
        (
            "a$.b.c",
            "token malformed: a segment is not base64url without padding",
        ),
        (
            "eyJ.e30.c2ln",
            "token malformed: a segment is not base64url without padding",
        ),
    ] {
        f.refused_with(token, Outcome::Unauthenticated, reason);
    }
    let not_object = format!(
        "{}.{}.c2ln",
        b64json(json!({"alg": "ES256"})),
        b64json(json!([1, 2]))
    );
    f.refused_with(
        &not_object,
        Outcome::Unauthenticated,
        "token malformed: payload is not a JSON object",
    );
    let huge = "a".repeat(9000);
    f.refused_with(
        &huge,
        Outcome::Unauthenticated,
        "token is larger than 8192 bytes",
    );
}

#[test]
fn hostile_headers_are_refused_before_any_key_is_used() {
    let mut f = Fixture::new();
    let payload = b64json(json!({"iss": ISS, "sub": AGENT, "aud": AUD, "exp": now() + 60}));
    for (header, reason) in [
        (
            json!({"alg": "none"}),
            "token algorithm `none` is not allowed for issuer `spiffe://demo.bridle.dev`",
        ),
        (
            json!({"alg": "HS256", "kid": "k1"}),
            "token algorithm `HS256` is not allowed for issuer `spiffe://demo.bridle.dev`",
        ),
        (
            json!({"alg": "ES256", "kid": "k1", "jku": "https://evil.example/jwks"}),
            "token header parameter `jku` is not accepted (keys are never taken from a token)",
        ),
        (
            json!({"alg": "ES256", "kid": "k1", "jwk": {"kty": "EC"}}),
            "token header parameter `jwk` is not accepted (keys are never taken from a token)",
        ),
        (
            json!({"alg": "ES256", "kid": "k1", "crit": ["exp"]}),
            "token header lists critical extensions, none of which are supported",
        ),
        (
            json!({"alg": "ES256", "kid": "nope"}),
            "token key id `nope` is not among the issuer's keys",
        ),
        (
            json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"}),
            "token type `at+jwt` does not fit the `jwt-svid` profile",
        ),
    ] {
        let token = format!("{}.{payload}.c2ln", b64json(header));
        f.refused_with(&token, Outcome::Unauthenticated, reason);
    }
}

#[test]
fn claim_checks_name_the_failing_check() {
    let mut f = Fixture::new();
    let mut expired = f.claims();
    expired.expires_at = Some(Duration::from_secs(now() - 3600));
    expired.issued_at = Some(Duration::from_secs(now() - 4000));
    let expired = f.token(expired);
    f.refused_with(&expired, Outcome::Unauthenticated, "token has expired");

    let wrong_aud = f.token(f.claims().with_audience("someone-else"));
    f.refused_with(
        &wrong_aud,
        Outcome::Unauthenticated,
        "token audience is not accepted",
    );

    let mut no_aud = f.claims();
    no_aud.audiences = None;
    let no_aud = f.token(no_aud);
    f.refused_with(
        &no_aud,
        Outcome::Unauthenticated,
        "token has no `aud` claim",
    );

    let mut no_exp = f.claims();
    no_exp.expires_at = None;
    let no_exp = f.token(no_exp);
    f.refused_with(
        &no_exp,
        Outcome::Unauthenticated,
        "token has no `exp` claim",
    );

    let mut future = f.claims();
    future.issued_at = Some(Duration::from_secs(now() + 3600));
    let future = f.token(future);
    f.refused_with(
        &future,
        Outcome::Unauthenticated,
        "token was issued in the future (`iat`)",
    );

    let not_yet = f.token(f.claims().invalid_before(Duration::from_secs(now() + 3600)));
    f.refused_with(
        &not_yet,
        Outcome::Unauthenticated,
        "token is not valid yet (`nbf`)",
    );

    let not_spiffe = f.token(f.claims().with_subject("alice"));
    f.refused_with(
        &not_spiffe,
        Outcome::Unauthenticated,
        "token subject is not a SPIFFE ID: not a SPIFFE ID (scheme must be `spiffe://`)",
    );

    let other_iss = f.token(f.claims().with_issuer("https://evil.example"));
    f.refused_with(
        &other_iss,
        Outcome::Unauthenticated,
        "token issuer `https://evil.example` is not trusted",
    );

    let impostor = ES256KeyPair::generate().with_key_id("k1");
    let forged = impostor.sign(f.claims()).unwrap();
    f.refused_with(
        &forged,
        Outcome::Unauthenticated,
        "token signature does not verify",
    );

    let valid = f.token(f.claims());
    let (head, _) = valid.rsplit_once('.').unwrap();
    let tampered_payload = b64json(
        json!({"iss": ISS, "sub": "spiffe://demo.bridle.dev/agent/admin", "aud": AUD, "exp": now() + 60}),
    );
    let tampered = format!(
        "{}.{tampered_payload}.{}",
        head.split('.').next().unwrap(),
        valid.rsplit('.').next().unwrap()
    );
    f.refused_with(
        &tampered,
        Outcome::Unauthenticated,
        "token signature does not verify",
    );
}

#[test]
fn policy_outcomes_map_to_statuses() {
    let mut f = Fixture::new();
    let token = format!("Bearer {}", f.token(f.claims()));
    let denied = f.decide("/elsewhere", Some(&token));
    assert_eq!((denied.outcome, denied.status()), (Outcome::Deny, 403));
    assert_eq!(denied.reasons, ["path not allowed"]);
    let broken = f.decide("/broken", Some(&token));
    assert_eq!((broken.outcome, broken.status()), (Outcome::Error, 500));
    assert_eq!(
        broken.reasons,
        ["policy decision malformed: `allow` must be a boolean"]
    );
    let bad_path = f.decide("/a/../allowed", Some(&token));
    assert_eq!(
        (bad_path.outcome, bad_path.status()),
        (Outcome::BadRequest, 400)
    );
    let body: Value = serde_json::from_str(&denied.refusal_body()).unwrap();
    assert_eq!(
        body,
        json!({"error": "forbidden", "reasons": ["path not allowed"], "decision_id": denied.decision_id,
            "policy_revision": denied.policy_revision})
    );
    assert!(
        denied.policy_revision.starts_with("sha256:")
            && denied.audit.policy.revision == denied.policy_revision,
        "an inline policy is named by its digest in the decision and the audit event"
    );
}

#[test]
fn audit_events_never_carry_the_token() {
    let mut f = Fixture::new();
    let token = f.token(f.claims().with_jwt_id("task-42"));
    f.decide("/allowed?secret=1", Some(&format!("Bearer {token}")));
    f.decide("/allowed", Some("Bearer not.a.token"));
    assert_eq!(f.host.events.len(), 2);
    for event in &f.host.events {
        assert!(
            !event.contains(&token) && !event.contains("not.a.token") && !event.contains("secret"),
            "{event}"
        );
    }
    let first: Value = serde_json::from_str(&f.host.events[0]).unwrap();
    assert_eq!(first["outcome"], "allow");
    assert_eq!(first["agent"]["spiffe_id"], AGENT);
    assert_eq!(first["agent"]["jti"], "task-42");
    assert_eq!(first["agent"]["token_digest"].as_str().unwrap().len(), 16);
    assert_eq!(first["request"]["path"], "/allowed");
}

#[test]
fn other_algorithms_verify() {
    let ed = Ed25519KeyPair::generate().with_key_id("ed");
    let rsa = PS256KeyPair::generate(2048).unwrap().with_key_id("ps");
    let comps = rsa.public_key().to_components();
    let cfg = json!({
        "issuers": [{"issuer": "https://idp.example", "profile": "oidc", "audiences": [AUD], "algorithms": ["EdDSA", "PS256"],
            "jwks": {"keys": [
                {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": URL_SAFE_NO_PAD.encode(ed.public_key().to_bytes())},
                {"kty": "RSA", "kid": "ps", "n": URL_SAFE_NO_PAD.encode(&comps.n), "e": URL_SAFE_NO_PAD.encode(&comps.e)}
            ]}}],
        "policy": {"entrypoint": "data.test.decision", "modules": [{"name": "t.rego", "source": POLICY}]}
    });
    let mut authorizer = Authorizer::from_json(cfg.to_string().as_bytes(), 1).unwrap();
    let claims = || {
        Claims::create(Duration::from_secs(60))
            .with_issuer("https://idp.example")
            .with_subject("alice")
            .with_audience(AUD)
    };
    for token in [ed.sign(claims()).unwrap(), rsa.sign(claims()).unwrap()] {
        let view = RequestView {
            method: "GET".into(),
            path: "/elsewhere".into(),
            headers: vec![(
                "authorization".into(),
                format!("Bearer {token}").into_bytes(),
            )],
            ..Default::default()
        };
        let d = authorizer.decide(&view, &mut TestHost::at(now()));
        assert_eq!(d.outcome, Outcome::Deny, "{:?}", d.reasons);
    }
}

#[test]
fn bad_configurations_are_refused_naming_the_field() {
    let key = ES256KeyPair::generate().with_key_id("k1");
    let good = config(es256_jwk(&key, "k1"));
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "audiance",
            Box::new(|c| c["issuers"][0]["audiance"] = json!(["x"])),
        ),
        ("issuers", Box::new(|c| c["issuers"] = json!([]))),
        (
            "issuers[0].audiences",
            Box::new(|c| c["issuers"][0]["audiences"] = json!([])),
        ),
        (
            "issuers[0].algorithms[0]",
            Box::new(|c| c["issuers"][0]["algorithms"] = json!(["HS256"])),
        ),
        (
            "issuers[0].algorithms[0]",
            Box::new(|c| c["issuers"][0]["algorithms"] = json!(["none"])),
        ),
        (
            "issuers[0].profile",
            Box::new(|c| c["issuers"][0]["profile"] = json!("saml")),
        ),
        (
            "issuers[0].jwks.keys[0].x",
            Box::new(|c| c["issuers"][0]["jwks"]["keys"][0]["x"] = json!("!!")),
        ),
        (
            "issuers[0].jwks.keys[0].x",
            Box::new(|c| c["issuers"][0]["jwks"]["keys"][0]["x"] = json!("AAAA")),
        ),
        (
            "issuers[0].jwks.keys[0].kty",
            Box::new(|c| c["issuers"][0]["jwks"]["keys"][0]["kty"] = json!("oct")),
        ),
        (
            "issuers[0].jwks.keys",
            Box::new(|c| c["issuers"][0]["jwks"]["keys"] = json!([])),
        ),
        (
            "identity.clock_skew_seconds",
            Box::new(|c| c["identity"] = json!({"clock_skew_seconds": "30"})),
        ),
        (
            "identity.clock_skew_seconds",
            Box::new(|c| c["identity"] = json!({"clock_skew_seconds": 3600})),
        ),
        (
            "identity.header",
            Box::new(|c| c["identity"] = json!({"header": "bad header"})),
        ),
        (
            "policy.entrypoint",
            Box::new(|c| c["policy"]["entrypoint"] = json!("data.test.missing")),
        ),
        (
            "policy.modules[0].source",
            Box::new(|c| c["policy"]["modules"][0]["source"] = json!("package x\nallow if {")),
        ),
        (
            "policy.max_instructions",
            Box::new(|c| c["policy"]["max_instructions"] = json!(0)),
        ),
        (
            "response.decision_id_header",
            Box::new(|c| c["response"] = json!({"decision_id_header": ""})),
        ),
    ];
    for (field, mutate) in cases {
        let mut cfg = good.clone();
        mutate(&mut cfg);
        let err = Authorizer::from_json(cfg.to_string().as_bytes(), 1)
            .err()
            .unwrap_or_else(|| panic!("accepted: {cfg}"));
        assert!(
            err.to_string().contains(&format!("`{field}`")) || err.field().ends_with(field),
            "{field}: {err}"
        );
    }
    assert!(Authorizer::from_json(b"{", 1).is_err());
    assert!(Authorizer::from_json(b"", 1).is_err());
    assert!(Authorizer::from_json(good.to_string().as_bytes(), 1).is_ok());
}
