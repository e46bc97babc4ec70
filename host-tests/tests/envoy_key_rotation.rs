//! Issuers rotate their keys under a running Envoy: Bridle fetches each issuer's key set from
//! a real key server on loopback (the test's HTTP server behind the `bridle-control` cluster),
//! accepts a rotated-in key's tokens without a restart or configuration push, and refuses a
//! removed key's tokens, even ones it verified (and cached) before. One issuer refreshes on
//! its schedule (every second), the other only when a token names a key id it lacks.
//! Step by step with the host's clock under control: `harness_key_sets.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use host_tests::config::{allow_all_policy, fetched_keys_entry, jwks};
use host_tests::envoy::EnvoyOptions;
use host_tests::tokens::{Alg, TestIssuer};
use host_tests::upstream::Reply;
use host_tests::{demo, ConfigBuilder, Envoy, Upstream};
use serde_json::{json, Value};

const AGENT: &str = "spiffe://demo.bridle.dev/agent/research-bot";
const OIDC: &str = "https://oidc.rotation.test";

fn key(iss: &str, profile: &str, kid: &str) -> TestIssuer {
    TestIssuer::new(iss, Alg::Es256)
        .unwrap()
        .with_profile(profile)
        .with_kid(kid)
        .unwrap()
}

fn serve(control: &Upstream, path: &str, keys: &[&TestIssuer]) {
    let body = jwks(keys).unwrap().to_string().into_bytes();
    control.set_path_reply(
        path,
        Some(Reply {
            status: 200,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body,
        }),
    );
}

fn status(envoy: &Envoy, token: &str) -> u16 {
    envoy
        .get(
            "/api/reports",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .unwrap()
        .status
}

/// Waits until `token` gets `expected`, for at most `seconds`.
fn eventually(envoy: &Envoy, what: &str, token: &str, expected: u16, seconds: u64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let got = status(envoy, token);
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {got}, not {expected}, after {seconds} s\n{}",
            envoy.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn source(path: &str, refresh_seconds: u64) -> Value {
    json!({"cluster": "bridle-control", "path": path, "refresh_seconds": refresh_seconds,
        "min_refresh_seconds": 1, "max_staleness_seconds": 7200})
}

#[test]
fn envoy_follows_key_rotation_without_a_restart() {
    let svid_old = key(demo::ISSUER, "jwt-svid", "svid-1");
    let svid_new = key(demo::ISSUER, "jwt-svid", "svid-2");
    let oidc_old = key(OIDC, "oidc", "oidc-1");
    let oidc_new = key(OIDC, "oidc", "oidc-2");
    let app = Upstream::start().unwrap();
    let control = Upstream::start().unwrap();
    serve(&control, "/keys/svid", &[&svid_old]);
    serve(&control, "/keys/oidc", &[&oidc_old]);

    let mut config = ConfigBuilder::with_policy(allow_all_policy()).build();
    config["issuers"] = json!([
        fetched_keys_entry(&svid_old, source("/keys/svid", 1)).unwrap(),
        fetched_keys_entry(&oidc_old, source("/keys/oidc", 3600)).unwrap(),
    ]);
    let mut options = EnvoyOptions::new(config, app.port());
    options.control_port = Some(control.port());
    let envoy = Envoy::start_with(&options).unwrap();

    let svid_old_token = svid_old.token_for(AGENT).unwrap();
    let svid_new_token = svid_new.token_for(AGENT).unwrap();
    let oidc_new_token = oidc_new.token_for(AGENT).unwrap();
    eventually(&envoy, "the first key set", &svid_old_token, 200, 15);
    assert_eq!(status(&envoy, &oidc_old.token_for(AGENT).unwrap()), 200);
    assert_eq!(
        status(&envoy, &svid_new_token),
        401,
        "a key not yet published"
    );

    // Rotated in, found on the next scheduled refresh.
    serve(&control, "/keys/svid", &[&svid_old, &svid_new]);
    eventually(&envoy, "the new JWT-SVID key", &svid_new_token, 200, 15);

    // Rotated in at an issuer refreshed hourly: the first token naming the new key id asks for
    // a refresh.
    serve(&control, "/keys/oidc", &[&oidc_old, &oidc_new]);
    eventually(&envoy, "the new OIDC key", &oidc_new_token, 200, 15);

    // Rotated out: the old key's token, verified before, is refused.
    serve(&control, "/keys/svid", &[&svid_new]);
    eventually(&envoy, "the removed key", &svid_old_token, 401, 15);
    assert_eq!(status(&envoy, &svid_new_token), 200);

    let updates: u64 = envoy
        .stats("bridle.keys")
        .unwrap()
        .into_iter()
        .filter(|(name, _)| name.ends_with("bridle.keys.updates"))
        .map(|(_, n)| n)
        .sum();
    assert!(updates >= 5, "key set updates counted: {updates}");
    assert!(envoy.log_tail(200).contains("now: svid-2"));
}
