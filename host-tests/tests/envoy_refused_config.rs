//! A configuration Bridle refuses must never leave Envoy forwarding unchecked traffic.
//!
//! Envoy 1.40 with a static listener: the plugin's `on_configure` returns false, Envoy logs
//! "Unable to create Wasm plugin bridle" and exits with status 1 before the listener exists
//! (`failure_policy: FAIL_CLOSED`). So the operator learns at start-up, and the upstream is
//! never reached. `envoy --mode validate` runs `on_configure` too and refuses the same file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use host_tests::envoy::{self, EnvoyOptions};
use host_tests::tokens::{Alg, TestIssuer};
use host_tests::{demo, ConfigBuilder, Envoy, Error, Upstream};
use serde_json::{json, Value};

fn good_config() -> Value {
    let issuer = TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap();
    ConfigBuilder::agents()
        .unwrap()
        .issuer(&issuer)
        .unwrap()
        .environment("prod")
        .build()
}

/// Starts Envoy with `config` and asserts it refused to run, naming `field` in its log, and
/// that the upstream saw nothing.
fn assert_refused_at_start(config: &Value, field: &str) {
    let upstream = Upstream::start().unwrap();
    match Envoy::start(config, &upstream) {
        Ok(envoy) => {
            // Had it started, it must at least not forward anything.
            let status = envoy.get("/api/reports", &[]).unwrap().status;
            panic!(
                "envoy started with a refused configuration (answered {status}, upstream saw {})",
                upstream.count()
            );
        }
        Err(Error::EnvoyExited { status, log }) => {
            assert!(
                log.contains("bridle: configuration refused"),
                "no refusal in the log ({status}):\n{log}"
            );
            assert!(
                log.contains(field),
                "refusal does not name `{field}`:\n{log}"
            );
            assert!(
                log.contains("Unable to create Wasm plugin bridle"),
                "envoy did not refuse the plugin:\n{log}"
            );
        }
        Err(other) => panic!("unexpected failure: {other}"),
    }
    assert_eq!(upstream.count(), 0, "a request reached the upstream");
}

#[test]
fn a_misspelt_key_stops_envoy_and_validation_catches_it() {
    let mut config = good_config();
    config["issuers"][0]["audiance"] = json!(["bridle-gateway"]);
    assert_refused_at_start(&config, "audiance");

    let options = EnvoyOptions::new(config, 9);
    match envoy::validate(&options) {
        Err(Error::Invalid { output, .. }) => {
            assert!(output.contains("audiance"), "{output}");
        }
        other => panic!("validate accepted a refused configuration: {other:?}"),
    }
}

#[test]
fn a_broken_jwks_stops_envoy() {
    let mut config = good_config();
    // A P-256 key whose point is not on the curve.
    config["issuers"][0]["jwks"]["keys"][0]["x"] =
        json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_refused_at_start(&config, "jwks");
}

#[test]
fn a_policy_that_does_not_compile_stops_envoy() {
    let mut config = good_config();
    config["policy"]["modules"][0]["source"] = json!("package bridle.agents\n\ndecision := {");
    assert_refused_at_start(&config, "policy");
}

#[test]
fn an_audit_collector_that_could_never_export_stops_envoy() {
    // `flush_ms: 0` became `set_tick_period(0)`, which in Envoy creates no timer: audit export,
    // bundle polling and feed polling all stopped without a word. `batch_size: 0` sent nothing.
    for (field, value) in [("flush_ms", json!(0)), ("batch_size", json!(0))] {
        let mut config = good_config();
        config["audit"] =
            json!({"collector": {"cluster": "audit", "path": "/events", field: value}});
        assert_refused_at_start(&config, &format!("audit.collector.{field}"));
    }
}
