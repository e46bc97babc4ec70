//! Signed policy bundles through the compiled `.wasm` in the harness: fetched on the tick,
//! verified before activation, activated atomically, the last good bundle kept on any failure,
//! shared with the other workers, and named in every decision.
//!
//! Bundles are built by `host-tests/bundles/make_bundle.py` (Python tarfile, gzip and PyJWT).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use host_tests::bundle::{BundleKey, BundleSpec};
use host_tests::tokens::{Alg, TestIssuer};
use host_tests::{demo, ConfigBuilder};
use serde_json::{json, Value};
use wasmtime_harness::{Harness, HttpRequest, Plugin, PluginOptions, SharedData};

const RESEARCH: &str = "spiffe://demo.bridle.dev/agent/research-bot";
const BUNDLE_PATH: &str = "/bundles/agents.tar.gz";

fn agents_bundle(revision: &str, without_agent: Option<&str>) -> BundleSpec {
    BundleSpec::agents(revision, without_agent).unwrap()
}

fn config(issuer: &TestIssuer, key: &BundleKey) -> Value {
    let mut config = ConfigBuilder::agents()
        .unwrap()
        .issuer(issuer)
        .unwrap()
        .environment("prod")
        .set(
            "bundle",
            json!({"cluster": "bridle-control", "path": BUNDLE_PATH, "poll_seconds": 30,
                "keys": {"keys": [key.jwk()]}}),
        )
        .build();
    // Bundle only: no inline modules, so nothing is allowed before the first bundle.
    config["policy"]["modules"] = json!([]);
    config["policy"]["data"] = json!({});
    config
}

fn start(harness: &Harness, config: &Value, shared: Option<SharedData>) -> Plugin {
    let mut options = PluginOptions::with_config(config.to_string())
        .at(std::time::SystemTime::now())
        .known_clusters(["bridle-control"]);
    if let Some(shared) = shared {
        options = options.shared_data(shared);
    }
    harness.start(options).unwrap()
}

fn reports(issuer: &TestIssuer) -> HttpRequest {
    HttpRequest::get("/api/reports")
        .authority("api.internal")
        .header(
            "authorization",
            format!("Bearer {}", issuer.token_for(RESEARCH).unwrap()),
        )
}

/// Ticks and returns the bundle call the tick made.
fn tick_for_bundle_call(plugin: &mut Plugin) -> wasmtime_harness::HttpCall {
    plugin.tick().unwrap();
    let call = plugin
        .pending_http_calls()
        .iter()
        .find(|c| c.headers.get(":path") == Some(BUNDLE_PATH.as_bytes()))
        .cloned()
        .expect("the tick fetches the bundle");
    assert_eq!(call.upstream, "bridle-control");
    call
}

fn serve(
    plugin: &mut Plugin,
    call: &wasmtime_harness::HttpCall,
    status: u16,
    etag: &str,
    body: Vec<u8>,
) {
    plugin
        .respond_http_call(call.token, status, [("etag", etag)], body)
        .unwrap();
}

#[test]
fn bundles_are_verified_before_activation_and_the_last_good_one_stays() {
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let issuer = TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap();
    let key = BundleKey::generate("bundle-1");
    let mut plugin = start(&harness, &config(&issuer, &key), None);
    assert_eq!(plugin.tick_period(), Some(Duration::from_secs(1)));

    // Before any bundle: fail closed, and say why.
    let waiting = plugin.request(&reports(&issuer)).unwrap();
    assert_eq!(waiting.status(), 503, "{}", waiting.body_text());
    assert!(waiting.body_text().contains("no policy is active yet"));

    let call = tick_for_bundle_call(&mut plugin);
    assert_eq!(call.headers.get("if-none-match"), None);
    serve(
        &mut plugin,
        &call,
        200,
        "\"r1\"",
        agents_bundle("r1", None).build(&key).unwrap(),
    );
    let allowed = plugin.request(&reports(&issuer)).unwrap();
    assert!(allowed.is_forwarded(), "{}", allowed.body_text());
    assert!(plugin.log_contains("policy bundle revision `r1` active"));
    assert!(
        plugin.log_contains(r#""source":"bundle","revision":"r1""#),
        "audit events name the revision"
    );
    assert_eq!(plugin.metric("bridle.bundle.activations"), Some(1));

    // Every broken bundle is refused, logged and counted; r1 keeps deciding.
    let other_key = BundleKey::generate("bundle-1");
    let mut tampered = agents_bundle("r2", Some(RESEARCH));
    tampered
        .tamper
        .insert("data.json".into(), "{\"agents\": {}}".into());
    let mut unsigned = agents_bundle("r2", Some(RESEARCH));
    unsigned.unsigned.insert(
        "extra/backdoor.rego".into(),
        "package extra\nallow := true".into(),
    );
    let mut dropped = agents_bundle("r2", Some(RESEARCH));
    dropped.drop.push("data.json".into());
    let mut unsigned_bundle = agents_bundle("r2", Some(RESEARCH));
    unsigned_bundle.no_signature = true;
    let not_compiling = agents_bundle("r2", None)
        .file("agents/broken.rego", "package bridle.agents\ndecision := {");
    let broken: Vec<(&str, u16, Vec<u8>, &str)> = vec![
        (
            "tampered",
            200,
            tampered.build(&key).unwrap(),
            "does not match its signed hash",
        ),
        (
            "unsigned file",
            200,
            unsigned.build(&key).unwrap(),
            "is not covered by the signature",
        ),
        (
            "signed file missing",
            200,
            dropped.build(&key).unwrap(),
            "is signed but missing",
        ),
        (
            "other key",
            200,
            agents_bundle("r2", Some(RESEARCH))
                .build(&other_key)
                .unwrap(),
            "does not verify",
        ),
        (
            "no signature",
            200,
            unsigned_bundle.build(&key).unwrap(),
            "`.signatures.json` is missing",
        ),
        (
            "does not compile",
            200,
            not_compiling.build(&key).unwrap(),
            "policy does not compile",
        ),
        (
            "not gzip",
            200,
            b"<html>proxy error</html>".to_vec(),
            "not a gzip stream",
        ),
        ("server error", 500, Vec::new(), "answered `500`"),
    ];
    let mut failures = 0;
    for (what, status, body, logged) in broken {
        plugin.advance_time(Duration::from_secs(30));
        let call = tick_for_bundle_call(&mut plugin);
        assert_eq!(
            call.headers.get("if-none-match"),
            Some(b"\"r1\"".as_slice()),
            "{what}"
        );
        plugin.take_logs();
        serve(&mut plugin, &call, status, "\"r2\"", body);
        failures += 1;
        assert!(plugin.log_contains(logged), "{what}: {:?}", plugin.logs());
        assert!(plugin.log_contains("keeping revision `r1`"), "{what}");
        assert_eq!(
            plugin.metric("bridle.bundle.failures"),
            Some(failures),
            "{what}"
        );
        let still = plugin.request(&reports(&issuer)).unwrap();
        assert!(still.is_forwarded(), "{what}: {}", still.body_text());
    }
    // A reset connection too.
    plugin.advance_time(Duration::from_secs(30));
    let call = tick_for_bundle_call(&mut plugin);
    plugin.fail_http_call(call.token).unwrap();
    assert_eq!(plugin.metric("bridle.bundle.failures"), Some(failures + 1));

    // A good r2 that drops the research agent: activated whole, and the agent is refused.
    plugin.advance_time(Duration::from_secs(30));
    let call = tick_for_bundle_call(&mut plugin);
    serve(
        &mut plugin,
        &call,
        200,
        "\"r2\"",
        agents_bundle("r2", Some(RESEARCH)).build(&key).unwrap(),
    );
    let refused = plugin.request(&reports(&issuer)).unwrap();
    assert_eq!(refused.status(), 403, "{}", refused.body_text());
    assert_eq!(refused.body_json()["policy_revision"], "r2");

    // An older signed bundle, one that still lists the research agent, cannot come back: a
    // replayed or stale copy never replaces a newer policy.
    let signed_earlier = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    let mut replayed = agents_bundle("r1", None);
    replayed.issued_at = Some(signed_earlier);
    plugin.advance_time(Duration::from_secs(30));
    let call = tick_for_bundle_call(&mut plugin);
    plugin.take_logs();
    serve(
        &mut plugin,
        &call,
        200,
        "\"r1\"",
        replayed.build(&key).unwrap(),
    );
    assert!(
        plugin.log_contains("is older than the active one"),
        "{:?}",
        plugin.logs()
    );
    assert!(plugin.log_contains("keeping revision `r2`"));
    let still_refused = plugin.request(&reports(&issuer)).unwrap();
    assert_eq!(still_refused.status(), 403, "{}", still_refused.body_text());
    assert_eq!(still_refused.body_json()["policy_revision"], "r2");

    // Not modified: nothing changes, the bundle counts as confirmed.
    plugin.advance_time(Duration::from_secs(30));
    let call = tick_for_bundle_call(&mut plugin);
    assert_eq!(
        call.headers.get("if-none-match"),
        Some(b"\"r2\"".as_slice())
    );
    serve(&mut plugin, &call, 304, "\"r2\"", Vec::new());
    plugin.tick().unwrap();
    assert_eq!(plugin.metric("bridle.bundle.age_seconds"), Some(0));
    assert_eq!(plugin.metric("bridle.bundle.activations"), Some(2));
}

#[test]
fn another_worker_adopts_a_verified_bundle_through_shared_data() {
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let issuer = TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap();
    let key = BundleKey::generate("bundle-1");
    let config = config(&issuer, &key);
    let mut first = start(&harness, &config, None);
    let mut second = start(&harness, &config, Some(first.shared()));

    let call = tick_for_bundle_call(&mut first);
    serve(
        &mut first,
        &call,
        200,
        "\"r7\"",
        agents_bundle("r7", None).build(&key).unwrap(),
    );
    assert!(first.shared_data("bridle.bundle").is_some());

    // The second worker has not fetched anything itself; its tick adopts r7.
    assert_eq!(second.request(&reports(&issuer)).unwrap().status(), 503);
    second.tick().unwrap();
    assert!(second.log_contains("policy bundle revision `r7` active"));
    let allowed = second.request(&reports(&issuer)).unwrap();
    assert!(allowed.is_forwarded(), "{}", allowed.body_text());

    // A forged document in shared data is verified like a fetched one, and refused.
    first.set_shared_data("bridle.bundle", b"99999999999\nnot a bundle");
    second.tick().unwrap();
    assert!(second.log_contains("policy bundle refused"));
    assert!(second.request(&reports(&issuer)).unwrap().is_forwarded());
}

#[test]
fn bundle_configuration_is_checked_at_load() {
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let issuer = TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap();
    let key = BundleKey::generate("bundle-1");
    let mut config = config(&issuer, &key);
    config["bundle"]["keys"]["keys"][0]["crv"] = json!("P-521");
    let Err(err) = harness.start(PluginOptions::with_config(config.to_string())) else {
        panic!("accepted at configure");
    };
    assert!(err.to_string().contains("bundle.keys.keys[0].crv"), "{err}");

    // Without a bundle, inline modules stay mandatory.
    let mut config = ConfigBuilder::agents()
        .unwrap()
        .issuer(&issuer)
        .unwrap()
        .build();
    config["policy"]["modules"] = json!([]);
    let Err(err) = harness.start(PluginOptions::with_config(config.to_string())) else {
        panic!("accepted at configure");
    };
    assert!(err.to_string().contains("policy.modules"), "{err}");
}
