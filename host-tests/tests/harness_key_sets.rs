//! Issuers' keys fetched and rotated through the compiled `.wasm` in the harness (the host's
//! clock and the key server under the test's control): nothing is accepted before the first
//! fetch, a rotated-in key is fetched when a token names it (at most once per
//! `min_refresh_seconds`, however many made-up key ids arrive), a removed key's tokens are
//! refused even when cached, the last good keys stay on any failure, keys the issuer cannot
//! use are ignored and counted, and the issuer fails closed once its keys are stale.
//! The same rotation in real Envoy: `envoy_key_rotation.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, SystemTime};

use host_tests::config::{allow_all_policy, fetched_keys_entry, jwks};
use host_tests::tokens::{Alg, Claims, TestIssuer};
use host_tests::{demo, ConfigBuilder};
use serde_json::{json, Value};
use wasmtime_harness::{Harness, HostProfile, HttpCall, HttpRequest, Plugin, PluginOptions};

const AGENT: &str = "spiffe://demo.bridle.dev/agent/research-bot";
const KEYS_PATH: &str = "/spire/keys";

fn issuer(kid: &str) -> TestIssuer {
    TestIssuer::new(demo::ISSUER, Alg::Es256)
        .unwrap()
        .with_kid(kid)
        .unwrap()
}

fn start(issuer: &TestIssuer, profile: HostProfile) -> Plugin {
    let source = json!({"cluster": "bridle-control", "path": KEYS_PATH, "refresh_seconds": 60,
        "min_refresh_seconds": 5, "max_staleness_seconds": 250, "max_bytes": 4096});
    let mut config = ConfigBuilder::with_policy(allow_all_policy()).build();
    config["issuers"] = json!([fetched_keys_entry(issuer, source).unwrap()]);
    let options = PluginOptions::with_config(config.to_string())
        .profile(profile)
        .at(SystemTime::now())
        .known_clusters(["bridle-control"]);
    Harness::load(host_tests::paths::wasm().unwrap())
        .unwrap()
        .start(options)
        .unwrap()
}

/// A token of `issuer` issued at the host's time (the test moves it on).
fn token(plugin: &Plugin, issuer: &TestIssuer) -> String {
    let now = plugin
        .now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    issuer.mint(&Claims::new(AGENT).at(now)).unwrap()
}

fn status(plugin: &mut Plugin, issuer: &TestIssuer) -> (u16, String) {
    let token = token(plugin, issuer);
    send(plugin, &token)
}

fn send(plugin: &mut Plugin, token: &str) -> (u16, String) {
    let outcome = plugin
        .request(
            &HttpRequest::get("/api/reports").header("authorization", format!("Bearer {token}")),
        )
        .unwrap();
    (outcome.status(), outcome.body_text())
}

/// The key-set call the last tick made, if any.
fn key_call(plugin: &Plugin) -> Option<HttpCall> {
    plugin
        .pending_http_calls()
        .iter()
        .find(|c| c.headers.get(":path") == Some(KEYS_PATH.as_bytes()))
        .cloned()
}

fn serve(plugin: &mut Plugin, status: u16, etag: &str, body: &Value) {
    let call = key_call(plugin).expect("a key set call is pending");
    plugin
        .respond_http_call(
            call.token,
            status,
            [("etag", etag)],
            body.to_string().into_bytes(),
        )
        .unwrap();
}

fn tick_after(plugin: &mut Plugin, seconds: u64) {
    plugin.advance_time(Duration::from_secs(seconds));
    plugin.tick().unwrap();
}

#[test]
fn keys_rotate_through_the_control_plane_and_fail_closed_when_stale() {
    rotate(HostProfile::Envoy);
}

/// Kong's runtime (ngx_wasm_module) has timers and outbound calls too: the same story.
#[test]
fn keys_rotate_the_same_way_under_the_kong_profile() {
    rotate(HostProfile::Kong);
}

fn rotate(profile: HostProfile) {
    let old = issuer("k-old");
    let new = issuer("k-new");
    let mut plugin = start(&old, profile);

    // No keys yet: the gateway cannot check anything, so 503, never a guess.
    let (code, body) = status(&mut plugin, &old);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("has not been fetched yet"), "{body}");

    plugin.tick().unwrap();
    serve(&mut plugin, 200, "\"v1\"", &jwks(&[&old]).unwrap());
    assert_eq!(status(&mut plugin, &old).0, 200);
    assert!(plugin.log_contains("keys of issuer `spiffe://demo.bridle.dev` now: k-old"));
    assert_eq!(plugin.metric("bridle.keys.updates"), Some(1));
    let changes = key_set_records(&plugin);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["outcome"], "updated");
    assert_eq!(changes[0]["kids"], json!(["k-old"]));
    assert_eq!(changes[0]["issuer"], demo::ISSUER);

    // A key rotated in: its first token is refused and asks for a refresh, which waits for
    // min_refresh_seconds after the last fetch and then carries the ETag.
    assert_eq!(status(&mut plugin, &new).0, 401);
    plugin.tick().unwrap();
    assert!(
        key_call(&plugin).is_none(),
        "refreshed before min_refresh_seconds"
    );
    tick_after(&mut plugin, 5);
    let call = key_call(&plugin).expect("a token naming an unknown key id refreshes the set");
    assert_eq!(call.headers.get("if-none-match"), Some(&b"\"v1\""[..]));
    serve(&mut plugin, 200, "\"v2\"", &jwks(&[&old, &new]).unwrap());
    assert_eq!(status(&mut plugin, &new).0, 200);
    assert_eq!(status(&mut plugin, &old).0, 200);

    // A flood of made-up key ids costs one fetch per min_refresh_seconds, not one each.
    for n in 0..50 {
        assert_eq!(status(&mut plugin, &issuer(&format!("made-up-{n}"))).0, 401);
    }
    for _ in 0..4 {
        tick_after(&mut plugin, 1);
        assert!(key_call(&plugin).is_none());
    }
    tick_after(&mut plugin, 1);
    serve(&mut plugin, 304, "\"v2\"", &json!(null));
    assert_eq!(plugin.metric("bridle.keys.updates"), Some(2));

    // The old key removed: its tokens are refused although they were verified (and cached)
    // before.
    plugin.advance_time(Duration::from_secs(60));
    let cached = token(&plugin, &old);
    assert_eq!(send(&mut plugin, &cached).0, 200);
    plugin.tick().unwrap();
    serve(&mut plugin, 200, "\"v3\"", &jwks(&[&new]).unwrap());
    let (code, body) = send(&mut plugin, &cached);
    assert_eq!(code, 401, "{body}");
    assert!(
        body.contains("`k-old` is not among the issuer's keys"),
        "{body}"
    );

    // Keys the issuer cannot use are ignored one by one and counted.
    let mut x509 = new.jwk().unwrap();
    x509["use"] = json!("x509-svid");
    x509["kid"] = json!("x509");
    let mut private = old.jwk().unwrap();
    private["d"] = json!("c2VjcmV0");
    let mixed = json!({"keys": [x509, private, new.jwk().unwrap(), {"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]});
    tick_after(&mut plugin, 60);
    serve(&mut plugin, 200, "\"v4\"", &mixed);
    assert_eq!(status(&mut plugin, &new).0, 200);
    assert_eq!(plugin.metric("bridle.keys.ignored"), Some(3));
    assert!(plugin.log_contains("3 ignored"));

    // Failures keep the last good keys: an error status, no usable key, an oversized or
    // malformed document, no answer at all.
    let failures = [
        (500, json!({"error": "down"})),
        (200, json!({"keys": [x509_only(&new)]})),
        (200, json!({"keys": [], "padding": "x".repeat(5000)})),
        (200, json!(["not", "a", "key", "set"])),
    ];
    for (n, (code, body)) in failures.iter().enumerate() {
        tick_after(&mut plugin, 60);
        serve(&mut plugin, *code, "\"bad\"", body);
        assert_eq!(status(&mut plugin, &new).0, 200, "failure {n}");
        assert_eq!(plugin.metric("bridle.keys.failures"), Some(n as u64 + 1));
    }
    assert!(plugin.log_contains("keeping the last good keys"));
    let kept = key_set_records(&plugin)
        .into_iter()
        .filter(|r| r["outcome"] == "kept")
        .count();
    assert_eq!(kept, failures.len(), "each failure is in the audit trail");
    let cached = token(&plugin, &new);
    assert_eq!(send(&mut plugin, &cached).0, 200);
    tick_after(&mut plugin, 60);
    let call = key_call(&plugin).unwrap();
    plugin.fail_http_call(call.token).unwrap();

    // Over 250 s without a good answer: the issuer fails closed, cached tokens included.
    let (code, body) = send(&mut plugin, &cached);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("its key set is stale"), "{body}");
    assert!(!plugin.is_failed(), "the VM trapped");
}

/// The audit trail's key set records (`bridle.audit` lines of kind `bridle.key_set`).
fn key_set_records(plugin: &Plugin) -> Vec<Value> {
    plugin
        .logs()
        .iter()
        .filter_map(|l| l.message.split_once("bridle.audit "))
        .filter_map(|(_, json)| serde_json::from_str::<Value>(json).ok())
        .filter(|record| record["kind"] == "bridle.key_set")
        .collect()
}

fn x509_only(issuer: &TestIssuer) -> Value {
    let mut key = issuer.jwk().unwrap();
    key["use"] = json!("x509-svid");
    key
}
