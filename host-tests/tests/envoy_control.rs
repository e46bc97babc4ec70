//! Runtime control in a real Envoy, against a real control server on loopback (the test's own
//! HTTP server, reached through the `bridle-control` cluster): signed policy bundles fetched,
//! activated and refused; the revocation feed; audit events exported in batches to a
//! collector, in filter state for the access log, and counted when the collector is down.
//!
//! One Envoy for the whole story (a V8 start costs seconds); each step says what it checks.
//! Changes on the control server show up within a poll (1 s here), so steps wait for them
//! with a bound instead of sleeping a fixed time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use host_tests::bundle::{BundleKey, BundleSpec};
use host_tests::envoy::EnvoyOptions;
use host_tests::tokens::{Alg, TestIssuer};
use host_tests::upstream::Reply;
use host_tests::{demo, ConfigBuilder, Envoy, Response, Upstream};
use serde_json::{json, Value};

const RESEARCH: &str = "spiffe://demo.bridle.dev/agent/research-bot";
const BUNDLE: &str = "/bundles/agents.tar.gz";

fn agents_bundle(revision: &str, without_agent: Option<&str>) -> BundleSpec {
    BundleSpec::agents(revision, without_agent).unwrap()
}

fn reply(status: u16, content_type: &str, etag: Option<&str>, body: Vec<u8>) -> Reply {
    let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
    if let Some(etag) = etag {
        headers.push(("etag".to_owned(), etag.to_owned()));
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn feed(version: u64, agents: &[&str]) -> Reply {
    let body = json!({"version": version, "agents": agents}).to_string();
    reply(200, "application/json", None, body.into_bytes())
}

/// Polls `check` until it returns `Some`, for at most `seconds`.
fn eventually<T>(what: &str, seconds: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {seconds} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy
        .stats("bridle")
        .unwrap()
        .into_iter()
        .find(|(n, _)| n.ends_with(name))
        .map_or(0, |(_, v)| v)
}

#[test]
fn bundles_feed_and_audit_export_against_a_real_control_server() {
    let issuer = TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap();
    let key = BundleKey::generate("bundle-1");
    let app = Upstream::start().unwrap();
    let control = Upstream::start().unwrap();
    control.set_path_reply(
        BUNDLE,
        Some(reply(
            200,
            "application/gzip",
            Some("\"r1\""),
            agents_bundle("r1", None).build(&key).unwrap(),
        )),
    );
    control.set_path_reply("/revocations", Some(feed(1, &[])));
    control.set_path_reply("/audit", Some(reply(204, "text/plain", None, Vec::new())));

    let mut config = ConfigBuilder::agents()
        .unwrap()
        .issuer(&issuer)
        .unwrap()
        .environment("prod")
        .set("delegation", json!({"inventory": "agents"}))
        .set(
            "bundle",
            json!({"cluster": "bridle-control", "path": BUNDLE, "poll_seconds": 1,
                "keys": {"keys": [key.jwk()]}}),
        )
        .set(
            "revocation",
            json!({"feed": {"cluster": "bridle-control", "path": "/revocations", "poll_seconds": 1, "max_staleness_seconds": 30}}),
        )
        .set(
            "audit",
            json!({"log": true, "filter_state": true,
                "collector": {"cluster": "bridle-control", "path": "/audit", "batch_size": 10, "flush_ms": 200, "max_buffered": 100}}),
        )
        .build();
    config["policy"]["modules"] = json!([]);
    config["policy"]["data"] = json!({});
    let mut options = EnvoyOptions::new(config, app.port());
    options.control_port = Some(control.port());
    let envoy = Envoy::start_with(&options).unwrap();
    let token = issuer.token_for(RESEARCH).unwrap();
    let reports = || -> Response {
        envoy
            .get(
                "/api/reports",
                &[("authorization", &format!("Bearer {token}"))],
            )
            .unwrap()
    };

    // 1. The first bundle arrives within a tick or two; until then nothing is forwarded.
    let first = eventually("bundle r1 active", 15, || {
        let r = reports();
        match r.status {
            200 => Some(r),
            503 => None,
            other => panic!("before the bundle: {other} {}", r.text()),
        }
    });
    assert!(app.count() >= 1);
    let decision_id = first.header("x-bridle-decision-id").unwrap().to_owned();
    assert!(control
        .requests_for(BUNDLE)
        .iter()
        .all(|r| r.method == "GET"));

    // 2. The audit event: in Envoy's log, in the access log through filter state, and at
    //    the collector — each naming the bundle revision, none carrying the token.
    let event = envoy
        .audit_events()
        .into_iter()
        .find(|e| e["decision_id"] == decision_id)
        .expect("audit event in the log");
    assert_eq!(event["policy"]["revision"], "r1");
    assert_eq!(event["policy"]["source"], "bundle");
    assert_eq!(
        event["agent"]["owner"], "research-team@demo.bridle.dev",
        "the owner comes from the bundle's agent inventory"
    );
    let access = eventually("access log entry", 15, || {
        envoy
            .access_log_entries()
            .into_iter()
            .find(|e| e["decision_id"] == decision_id)
    });
    assert_eq!(access["path"], "/api/reports", "{access}");
    let with_query = envoy
        .get(
            "/api/reports?sig=s3cr3t",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .unwrap();
    let query_id = with_query
        .header("x-bridle-decision-id")
        .unwrap()
        .to_owned();
    let entry = eventually("access log entry with a query", 15, || {
        envoy
            .access_log_entries()
            .into_iter()
            .find(|e| e["decision_id"] == query_id)
    });
    assert_eq!(
        entry["path"], "/api/reports",
        "the query string stays out of the log"
    );
    assert!(!entry.to_string().contains("s3cr3t"));
    let from_filter_state: Value =
        serde_json::from_str(access["bridle"].as_str().unwrap()).unwrap();
    assert_eq!(from_filter_state["decision_id"], decision_id);
    assert_eq!(from_filter_state["policy"]["revision"], "r1");
    let exported = eventually("event at the collector", 10, || {
        control
            .requests_for("/audit")
            .into_iter()
            .find(|r| r.contains(&decision_id))
    });
    assert_eq!(exported.method, "POST");
    assert!(
        !exported.contains(&token),
        "the collector never sees a token"
    );
    assert!(!envoy.log().contains(&token), "the log never shows a token");

    // 3. The feed revokes the agent: refused within a poll, and allowed again once lifted.
    control.set_path_reply("/revocations", Some(feed(2, &[RESEARCH])));
    let revoked = eventually("agent revoked", 10, || {
        let r = reports();
        (r.status == 403).then_some(r)
    });
    assert!(revoked.text().contains("is revoked"), "{}", revoked.text());
    control.set_path_reply("/revocations", Some(feed(3, &[])));
    eventually("revocation lifted", 10, || {
        (reports().status == 200).then_some(())
    });

    // 4. A tampered bundle is refused; r1 keeps deciding and the failure is counted.
    let mut tampered = agents_bundle("r2", Some(RESEARCH));
    tampered.tamper.insert(
        "agents/agents.rego".into(),
        "package bridle.agents\nimport rego.v1\ndecision := {\"allow\": true}".into(),
    );
    control.set_path_reply(
        BUNDLE,
        Some(reply(
            200,
            "application/gzip",
            Some("\"r2-bad\""),
            tampered.build(&key).unwrap(),
        )),
    );
    eventually("tampered bundle refused", 10, || {
        (stat(&envoy, "bridle.bundle.failures") >= 1).then_some(())
    });
    assert!(envoy.log().contains("does not match its signed hash"));
    assert_eq!(reports().status, 200);

    // 5. A good r2 without the research agent: activated whole.
    control.set_path_reply(
        BUNDLE,
        Some(reply(
            200,
            "application/gzip",
            Some("\"r2\""),
            agents_bundle("r2", Some(RESEARCH)).build(&key).unwrap(),
        )),
    );
    let refused = eventually("bundle r2 active", 10, || {
        let r = reports();
        (r.status == 403).then_some(r)
    });
    assert_eq!(refused.json().unwrap()["policy_revision"], "r2");
    // Later polls carry the ETag and are answered 304.
    eventually("conditional poll", 10, || {
        control
            .requests_for(BUNDLE)
            .iter()
            .any(|r| r.header("if-none-match") == Some("\"r2\""))
            .then_some(())
    });
    assert!(stat(&envoy, "bridle.bundle.activations") >= 2);
    assert!(stat(&envoy, "bridle.bundle.age_seconds") <= 5);

    // 6. The collector goes down: events are dropped and counted, requests still decided.
    control.set_path_reply(
        "/audit",
        Some(reply(503, "text/plain", None, b"down".to_vec())),
    );
    let before = stat(&envoy, "bridle.audit.dropped");
    for _ in 0..5 {
        assert_eq!(reports().status, 403);
    }
    eventually("dropped events counted", 10, || {
        (stat(&envoy, "bridle.audit.dropped") > before).then_some(())
    });
    assert!(envoy.log().contains("audit collector answered `503`"));
}
