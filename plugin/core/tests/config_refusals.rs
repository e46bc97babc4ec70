//! Bad configurations, one field at a time: each is refused at load with an error naming the
//! field. Complements `bad_configurations_are_refused_naming_the_field` in `authorizer.rs`
//! (unknown fields, algorithms, profiles, keys, skew, header, policy) with the blocks it does
//! not cover: issuers and keys in depth, identity limits, task and approval credentials,
//! routes, MCP, revocation, bundles, audit and response settings.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code)]
mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bridle_core::Authorizer;
use jwt_simple::prelude::*;
use serde_json::{json, Value};
use support::es256_jwk;

const POLICY: &str = "package t\nimport rego.v1\ndecision := {\"allow\": true}\n";

fn issuer(profile: &str, iss: &str, jwk: &Value) -> Value {
    json!({"issuer": iss, "profile": profile, "audiences": ["gw"], "algorithms": ["ES256"],
           "jwks": {"keys": [jwk]}})
}

fn svid_issuer(jwk: &Value) -> Value {
    let mut entry = issuer("jwt-svid", "spiffe://example.org", jwk);
    entry["trust_domain"] = json!("example.org");
    entry
}

fn good(jwk: &Value) -> Value {
    json!({
        "issuers": [svid_issuer(jwk)],
        "task": {"issuers": [issuer("txn-token", "https://txn.example.org", jwk)]},
        "approval": {"issuers": [issuer("approval", "https://approvals.example.org", jwk)]},
        "routes": [{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp", "require_task": true}],
        "mcp": {"max_body_bytes": 4096, "tools": {"deploy": {"action": "execute", "data_class": "infrastructure"}}},
        "policy": {"entrypoint": "data.t.decision", "modules": [{"name": "t.rego", "source": POLICY}]}
    })
}

fn key_source() -> Value {
    json!({"cluster": "spire", "path": "/keys"})
}

/// The first issuer's keys fetched instead of inline, with `field` set to `value`.
fn fetched(config: &mut Value, field: &str, value: Value) {
    let issuer = config["issuers"][0].as_object_mut().unwrap();
    issuer.remove("jwks");
    let mut source = key_source();
    source[field] = value;
    issuer.insert("jwks_source".into(), source);
}

/// A 1024-bit RSA public key (the modulus only needs its size to be judged).
fn weak_rsa_jwk() -> Value {
    let mut n = vec![0xc5u8; 128];
    n[127] = 0x01;
    json!({"kty": "RSA", "kid": "weak", "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"})
}

type Mutation = Box<dyn Fn(&mut Value)>;

fn cases(jwk: &Value) -> Vec<(&'static str, Mutation)> {
    let jwk = jwk.clone();
    let second = jwk.clone();
    vec![
        (
            "issuers[0].issuer",
            Box::new(|c| c["issuers"][0]["issuer"] = json!("")),
        ),
        (
            "issuers[1].issuer",
            Box::new(move |c| {
                let copy = c["issuers"][0].clone();
                c["issuers"].as_array_mut().unwrap().push(copy);
            }),
        ),
        (
            "issuers[0].jwks.keys[1].kid",
            Box::new(move |c| c["issuers"][0]["jwks"]["keys"] = json!([jwk, second])),
        ),
        (
            "issuers[0].jwks.keys[0].crv",
            Box::new(|c| c["issuers"][0]["jwks"]["keys"][0]["crv"] = json!("P-521")),
        ),
        (
            "issuers[0].jwks.keys[0].y",
            Box::new(|c| {
                c["issuers"][0]["jwks"]["keys"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("y");
            }),
        ),
        (
            "issuers[0].jwks.keys[0]",
            // Private key material never belongs in a configuration.
            Box::new(|c| c["issuers"][0]["jwks"]["keys"][0]["d"] = json!("AAAA")),
        ),
        (
            "issuers[0].jwks.keys[0]",
            Box::new(|c| c["issuers"][0]["jwks"]["keys"][0]["alg"] = json!("RS256")),
        ),
        (
            "issuers[0].jwks.keys[0].n",
            Box::new(|c| {
                c["issuers"][0]["algorithms"] = json!(["RS256"]);
                c["issuers"][0]["jwks"]["keys"] = json!([weak_rsa_jwk()]);
            }),
        ),
        (
            "issuers[0].algorithms[0]",
            Box::new(|c| c["issuers"][0]["algorithms"] = json!(["EdDSA"])),
        ),
        (
            "issuers[0].algorithms",
            Box::new(|c| c["issuers"][0]["algorithms"] = json!([])),
        ),
        (
            "issuers[0].audiences",
            Box::new(|c| c["issuers"][0]["audiences"] = json!([""])),
        ),
        (
            "issuers[0].profile",
            Box::new(|c| c["issuers"][0]["profile"] = json!("txn-token")),
        ),
        (
            "issuers[0].trust_domain",
            Box::new(|c| {
                c["issuers"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("trust_domain");
            }),
        ),
        (
            "issuers[0].trust_domain",
            Box::new(|c| c["issuers"][0]["trust_domain"] = json!("spiffe://example.org")),
        ),
        (
            "issuers[0].trust_domain",
            Box::new(|c| c["issuers"][0]["trust_domain"] = json!("Example.org")),
        ),
        (
            "issuers[0].trust_domain",
            Box::new(|c| c["issuers"][0]["trust_domain"] = json!("example.org/agents")),
        ),
        (
            "issuers[0].trust_domain",
            // Only an issuer that asserts SPIFFE IDs is bound to a trust domain.
            Box::new(|c| c["issuers"][0]["profile"] = json!("oidc")),
        ),
        (
            "issuers[0].max_lifetime_seconds",
            Box::new(|c| c["issuers"][0]["max_lifetime_seconds"] = json!(0)),
        ),
        (
            "issuers[0].max_lifetime_seconds",
            Box::new(|c| c["issuers"][0]["max_lifetime_seconds"] = json!(86_401)),
        ),
        (
            "issuers[0].jwks",
            Box::new(|c| {
                c["issuers"][0].as_object_mut().unwrap().remove("jwks");
            }),
        ),
        (
            "issuers[0].jwks_source",
            Box::new(|c| c["issuers"][0]["jwks_source"] = key_source()),
        ),
        (
            "issuers[0].jwks_source.path",
            Box::new(|c| fetched(c, "path", json!("keys"))),
        ),
        (
            "issuers[0].jwks_source.cluster",
            Box::new(|c| fetched(c, "cluster", json!(""))),
        ),
        (
            "issuers[0].jwks_source.refresh_seconds",
            Box::new(|c| fetched(c, "refresh_seconds", json!(0))),
        ),
        (
            "issuers[0].jwks_source.min_refresh_seconds",
            // More often than the schedule itself.
            Box::new(|c| fetched(c, "min_refresh_seconds", json!(301))),
        ),
        (
            "issuers[0].jwks_source.max_staleness_seconds",
            // Stale before the next scheduled refresh.
            Box::new(|c| fetched(c, "max_staleness_seconds", json!(299))),
        ),
        (
            "issuers[0].jwks_source.timeout_ms",
            Box::new(|c| fetched(c, "timeout_ms", json!(0))),
        ),
        (
            "issuers[0].jwks_source.max_bytes",
            Box::new(|c| fetched(c, "max_bytes", json!(2 * 1024 * 1024))),
        ),
        (
            "task.issuers[0].jwks_source",
            Box::new(|c| c["task"]["issuers"][0]["jwks_source"] = key_source()),
        ),
        (
            "task.issuers[0].spiffe_subjects",
            Box::new(|c| c["task"]["issuers"][0]["spiffe_subjects"] = json!(true)),
        ),
        (
            "task.issuers[0].trust_domain",
            Box::new(|c| c["task"]["issuers"][0]["trust_domain"] = json!("example.org")),
        ),
        (
            "audit.collector.flush_ms",
            Box::new(|c| {
                c["audit"] = json!({"collector": {"cluster": "a", "path": "/e", "flush_ms": 0}})
            }),
        ),
        (
            "audit.collector.batch_size",
            Box::new(|c| {
                c["audit"] = json!({"collector": {"cluster": "a", "path": "/e", "batch_size": 0}})
            }),
        ),
        (
            "audit.collector.max_buffered",
            Box::new(
                |c| c["audit"] = json!({"collector": {"cluster": "a", "path": "/e", "batch_size": 10, "max_buffered": 5}}),
            ),
        ),
        (
            "audit.collector.path",
            Box::new(|c| c["audit"] = json!({"collector": {"cluster": "a", "path": "e"}})),
        ),
        (
            "identity.max_token_bytes",
            Box::new(|c| c["identity"] = json!({"max_token_bytes": 0})),
        ),
        (
            "identity.max_token_bytes",
            Box::new(|c| c["identity"] = json!({"max_token_bytes": 1_000_000_000})),
        ),
        (
            "task.issuers[0].profile",
            Box::new(|c| c["task"]["issuers"][0]["profile"] = json!("oidc")),
        ),
        (
            "task.header",
            Box::new(|c| c["task"]["header"] = json!("authorization")),
        ),
        (
            "task.issuers",
            Box::new(|c| c["task"]["issuers"] = json!([])),
        ),
        (
            "approval.max_lifetime_seconds",
            Box::new(|c| c["approval"]["max_lifetime_seconds"] = json!(0)),
        ),
        (
            "approval.max_lifetime_seconds",
            Box::new(|c| c["approval"]["max_lifetime_seconds"] = json!(86_400)),
        ),
        (
            "approval.header",
            Box::new(|c| c["approval"]["header"] = json!("authorization")),
        ),
        (
            "approval.issuers[0].profile",
            Box::new(|c| c["approval"]["issuers"][0]["profile"] = json!("jwt-svid")),
        ),
        (
            "routes[0].path",
            Box::new(|c| c["routes"][0]["path"] = json!("mcp")),
        ),
        (
            "routes[0].path",
            Box::new(|c| c["routes"][0]["path"] = json!("/a/**/b")),
        ),
        (
            "routes[1].name",
            Box::new(|c| {
                let copy = c["routes"][0].clone();
                c["routes"].as_array_mut().unwrap().push(copy);
            }),
        ),
        (
            "routes[0].require_task",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("task");
            }),
        ),
        (
            "routes[0].protocol",
            Box::new(|c| c["routes"][0]["protocol"] = json!("grpc")),
        ),
        (
            "mcp.max_body_bytes",
            Box::new(|c| c["mcp"]["max_body_bytes"] = json!(0)),
        ),
        (
            "mcp.tools.deploy.action",
            Box::new(|c| c["mcp"]["tools"]["deploy"]["action"] = json!("launch")),
        ),
        (
            "revocation.feed.poll_seconds",
            Box::new(|c| {
                c["revocation"] =
                    json!({"feed": {"cluster": "bridle-control", "path": "/r", "poll_seconds": 0}})
            }),
        ),
        (
            "revocation.feed.path",
            Box::new(|c| {
                c["revocation"] = json!({"feed": {"cluster": "bridle-control", "path": "r"}})
            }),
        ),
        (
            "bundle.keys.keys",
            Box::new(|c| {
                c["bundle"] =
                    json!({"cluster": "bridle-control", "path": "/b", "keys": {"keys": []}})
            }),
        ),
        (
            "audit.arguments",
            Box::new(|c| c["audit"] = json!({"arguments": "everything"})),
        ),
        (
            "response.decision_id_header",
            Box::new(|c| c["response"] = json!({"decision_id_header": "bad header"})),
        ),
        (
            "reserved_header_prefix",
            Box::new(|c| c["reserved_header_prefix"] = json!("x bridle")),
        ),
        (
            "reserved_header_prefix",
            Box::new(|c| c["reserved_header_prefix"] = json!("")),
        ),
        (
            "policy.modules",
            Box::new(|c| c["policy"]["modules"] = json!([])),
        ),
        (
            "policy.modules[1].name",
            Box::new(|c| {
                let first = c["policy"]["modules"][0].clone();
                c["policy"]["modules"] = json!([first.clone(), first]);
            }),
        ),
        (
            "issuers",
            Box::new(|c| c["issuers"] = json!({"issuer": "x"})),
        ),
        ("dry_run", Box::new(|c| c["dry_run"] = json!("yes"))),
    ]
}

#[test]
fn each_bad_configuration_is_refused_naming_its_field() {
    let key = ES256KeyPair::generate().with_key_id("k1");
    let jwk = es256_jwk(&key, "k1");
    let good = good(&jwk);
    Authorizer::from_json(good.to_string().as_bytes(), 1).expect("the base configuration loads");
    let cases = cases(&jwk);
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (field, mutate) in &cases {
        let mut config = good.clone();
        mutate(&mut config);
        match Authorizer::from_json(config.to_string().as_bytes(), 1) {
            Ok(_) => failures.push(format!("{field}: accepted")),
            Err(err) => {
                eprintln!("{field}: {err}");
                let names = err.field() == *field
                    || err.field().starts_with(&format!("{field}."))
                    || err.to_string().contains(&format!("`{field}`"))
                    || err.to_string().contains(field);
                if !names {
                    failures.push(format!("{field}: refused without naming it: {err}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Fetched keys need a host that calls out on a timer: Envoy and Kong load them, the edge
/// build refuses them naming the field and the host.
#[test]
fn fetched_keys_load_where_the_host_can_fetch_them() {
    let key = ES256KeyPair::generate().with_key_id("k1");
    let mut config = good(&es256_jwk(&key, "k1"));
    fetched(&mut config, "refresh_seconds", json!(60));
    let bytes = config.to_string();
    for host in [
        bridle_core::Capabilities::ENVOY,
        bridle_core::Capabilities::KONG,
    ] {
        let authorizer = Authorizer::from_json_on(bytes.as_bytes(), 1, &host).unwrap();
        assert_eq!(authorizer.key_sources().len(), 1, "{}", host.host);
    }
    let err = Authorizer::from_json_on(bytes.as_bytes(), 1, &bridle_core::Capabilities::EDGE)
        .err()
        .expect("refused on the edge");
    assert_eq!(err.field(), "issuers[0].jwks_source", "{err}");
    assert!(
        err.to_string().contains("edge runtimes and browsers"),
        "{err}"
    );
}
