//! The audit trail through the compiled `.wasm` in the harness: batched export to a collector
//! with a bounded buffer (dropped and counted when the collector is down), and dry run per
//! route (recorded as what would have happened, never enforced).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use host_tests::tokens::{Alg, TestIssuer};
use host_tests::{demo, ConfigBuilder};
use serde_json::{json, Value};
use wasmtime_harness::{Harness, HttpCall, HttpRequest, Plugin, PluginOptions};

const RESEARCH: &str = "spiffe://demo.bridle.dev/agent/research-bot";

fn start(config: &Value) -> Plugin {
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    harness
        .start(
            PluginOptions::with_config(config.to_string())
                .at(std::time::SystemTime::now())
                .known_clusters(["bridle-control"]),
        )
        .unwrap()
}

fn request(issuer: &TestIssuer, method: &str, path: &str) -> HttpRequest {
    HttpRequest::new(method, path)
        .authority("api.internal")
        .header(
            "authorization",
            format!("Bearer {}", issuer.token_for(RESEARCH).unwrap()),
        )
}

fn only_call(plugin: &Plugin) -> HttpCall {
    let calls = plugin.pending_http_calls();
    assert_eq!(calls.len(), 1, "one batch in flight at most");
    calls[0].clone()
}

fn batch_events(call: &HttpCall) -> Vec<Value> {
    String::from_utf8(call.body.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn events_are_exported_in_batches_and_bounded_while_the_collector_is_down() {
    let issuer = TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap();
    let config = ConfigBuilder::agents()
        .unwrap()
        .issuer(&issuer)
        .unwrap()
        .environment("prod")
        .set(
            "audit",
            json!({"log": false, "collector": {"cluster": "bridle-control", "path": "/audit",
            "batch_size": 3, "flush_ms": 1000, "max_buffered": 5}}),
        )
        .build();
    let mut plugin = start(&config);
    assert_eq!(plugin.tick_period(), Some(Duration::from_secs(1)));
    let mut ids = Vec::new();
    for _ in 0..4 {
        let r = plugin
            .request(&request(&issuer, "GET", "/api/reports"))
            .unwrap();
        assert!(r.is_forwarded());
        ids.push(r.header("x-bridle-decision-id").unwrap());
    }

    plugin.tick().unwrap();
    let call = only_call(&plugin);
    assert_eq!(call.upstream, "bridle-control");
    assert_eq!(call.headers.get(":method"), Some(b"POST".as_slice()));
    assert_eq!(call.headers.get(":path"), Some(b"/audit".as_slice()));
    let events = batch_events(&call);
    let exported: Vec<_> = events
        .iter()
        .map(|e| e["decision_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(exported, ids[..3], "oldest first, batch_size at most");
    assert!(events.iter().all(|e| e["kind"] == "bridle.decision"));
    let token = issuer.token_for(RESEARCH).unwrap();
    assert!(!String::from_utf8_lossy(&call.body).contains(&token[..40]));
    plugin
        .respond_http_call(call.token, 200, [("content-type", "text/plain")], "")
        .unwrap();
    assert_eq!(plugin.metric("bridle.audit.exported"), Some(3));

    // The collector is down: the batch in flight fails and is counted as dropped.
    plugin.tick().unwrap();
    let call = only_call(&plugin);
    assert_eq!(batch_events(&call).len(), 1);
    plugin.fail_http_call(call.token).unwrap();
    assert_eq!(plugin.metric("bridle.audit.dropped"), Some(1));
    assert!(plugin.log_contains("audit collector answered `no response`"));

    // While nothing leaves, the buffer keeps the newest `max_buffered` events and counts
    // the rest; a later answer of 503 drops its batch too.
    for _ in 0..12 {
        plugin
            .request(&request(&issuer, "GET", "/api/reports"))
            .unwrap();
    }
    plugin.tick().unwrap();
    assert_eq!(plugin.metric("bridle.audit.dropped"), Some(1 + 7));
    let call = only_call(&plugin);
    assert_eq!(batch_events(&call).len(), 3);
    plugin
        .respond_http_call(call.token, 503, [("content-type", "text/plain")], "down")
        .unwrap();
    assert_eq!(plugin.metric("bridle.audit.dropped"), Some(1 + 7 + 3));
    plugin.tick().unwrap();
    let call = only_call(&plugin);
    assert_eq!(
        batch_events(&call).len(),
        2,
        "what is left of the bounded buffer"
    );
    plugin
        .respond_http_call(call.token, 204, [("content-type", "text/plain")], "")
        .unwrap();
    assert_eq!(plugin.metric("bridle.audit.exported"), Some(5));
}

#[test]
fn a_dry_run_route_records_the_refusal_and_forwards() {
    let issuer = TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap();
    let config = ConfigBuilder::agents()
        .unwrap()
        .issuer(&issuer)
        .unwrap()
        .environment("prod")
        .set("routes", json!([{"name": "deployments", "path": "/api/deployments", "methods": ["POST"], "dry_run": true}]))
        .build();
    let mut plugin = start(&config);

    // The research agent may not deploy: in dry run the request goes through anyway, the
    // event says what would have happened, and the counter shows it.
    let r = plugin
        .request(&request(&issuer, "POST", "/api/deployments"))
        .unwrap();
    assert!(r.is_forwarded(), "{}", r.body_text());
    let event: Value = plugin
        .logs()
        .iter()
        .rev()
        .find_map(|l| {
            l.message
                .split_once("bridle.audit ")
                .map(|(_, json)| serde_json::from_str(json).unwrap())
        })
        .expect("an audit event");
    assert_eq!(event["outcome"], "deny");
    assert_eq!(event["status"], 403);
    assert_eq!(event["dry_run"], true);
    assert_eq!(plugin.metric("bridle.decisions.dry_run_forwarded"), Some(1));
    assert_eq!(plugin.metric("bridle.decisions.deny"), Some(1));

    // Other routes are enforced as usual.
    let r = plugin
        .request(&request(&issuer, "DELETE", "/api/reports"))
        .unwrap();
    assert_eq!(r.status(), 403, "{}", r.body_text());
}
