//! Runtime behaviour of the compiled `.wasm` in the harness: MCP bodies in several chunks and
//! over the limit, approvals that are single-use across workers (shared data), and the
//! revocation feed polled on the root context's tick.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use host_tests::{Alg, Claims, ConfigBuilder, TestIssuer};
use serde_json::{json, Value};
use wasmtime_harness::{Harness, HttpRequest, Plugin, PluginOptions, SharedData};

const DEPLOY: &str = "spiffe://demo.bridle.dev/agent/deploy-bot";

struct Issuers {
    workload: TestIssuer,
    tasks: TestIssuer,
    approvals: TestIssuer,
}

fn issuers() -> Issuers {
    Issuers {
        workload: TestIssuer::new("spiffe://demo.bridle.dev", Alg::Es256).unwrap(),
        tasks: TestIssuer::new("https://txn.demo.bridle.dev", Alg::Es256)
            .unwrap()
            .with_profile("txn-token"),
        approvals: TestIssuer::new("https://approvals.demo.bridle.dev", Alg::Es256)
            .unwrap()
            .with_profile("approval"),
    }
}

fn config(issuers: &Issuers, extra: &[(&str, Value)]) -> Value {
    let mut builder = ConfigBuilder::agents()
        .unwrap()
        .issuer(&issuers.workload)
        .unwrap()
        .environment("prod")
        .set("task", json!({"issuers": [host_tests::config::issuer_entry(&issuers.tasks).unwrap()]}))
        .set("approval", json!({"issuers": [host_tests::config::issuer_entry(&issuers.approvals).unwrap()]}))
        .set("routes", json!([{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp", "require_task": true}]))
        .set("mcp", json!({"max_body_bytes": 2048, "tools": {"deploy_service": {"action": "execute", "data_class": "infrastructure"}}}));
    for (key, value) in extra {
        builder = builder.set(key, value.clone());
    }
    builder.build()
}

fn start(harness: &Harness, config: &Value, shared: Option<SharedData>) -> Plugin {
    let mut options =
        PluginOptions::with_config(config.to_string()).at(std::time::SystemTime::now());
    if let Some(shared) = shared {
        options = options.shared_data(shared);
    }
    harness.start(options).unwrap()
}

fn deploy_request(issuers: &Issuers, txn: &str, env: &str) -> HttpRequest {
    let task = Claims::new("user:alice")
        .typ("txntoken+jwt")
        .claim("txn", json!(txn))
        .claim("req_wl", json!(DEPLOY))
        .claim("scope", json!("deploy:execute"));
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "deploy_service", "arguments": {"service": "web", "env": env}}}).to_string();
    let (first, second) = body.as_bytes().split_at(body.len() / 2);
    HttpRequest::post("/mcp")
        .authority("mcp.internal")
        .header(
            "authorization",
            format!("Bearer {}", issuers.workload.token_for(DEPLOY).unwrap()),
        )
        .header("txn-token", issuers.tasks.mint(&task).unwrap())
        .header("content-type", "application/json")
        .body_chunks([first.to_vec(), second.to_vec()])
}

#[test]
fn mcp_bodies_in_chunks_are_judged_whole_and_oversized_ones_are_refused() {
    let issuers = issuers();
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let mut plugin = start(
        &harness,
        &config(&issuers, &[("environment", json!({"name": "staging"}))]),
        None,
    );
    let outcome = plugin
        .request(&deploy_request(&issuers, "t-1", "staging"))
        .unwrap();
    assert!(
        outcome.is_forwarded(),
        "{} {}",
        outcome.status(),
        outcome.body_text()
    );
    assert!(
        outcome.upstream_header("authorization").is_none()
            && outcome.upstream_header("txn-token").is_none()
    );
    let sent: Value = serde_json::from_slice(outcome.upstream_body().unwrap()).unwrap();
    assert_eq!(
        sent["params"]["name"], "deploy_service",
        "the upstream gets the body untouched"
    );

    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "deploy_service", "arguments": {"pad": "x".repeat(4096)}}}).to_string();
    let request = deploy_request(&issuers, "t-2", "staging").body_chunks([
        big.as_bytes()[..3000].to_vec(),
        big.as_bytes()[3000..].to_vec(),
    ]);
    let outcome = plugin.request(&request).unwrap();
    assert_eq!(outcome.status(), 413, "{}", outcome.body_text());
    assert_eq!(outcome.body_json()["error"], "payload_too_large");
}

#[test]
fn an_approval_is_single_use_across_workers() {
    let issuers = issuers();
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let config = config(&issuers, &[]);
    let shared = SharedData::default();
    let mut worker_a = start(&harness, &config, Some(shared.clone()));
    let mut worker_b = start(&harness, &config, Some(shared));

    let asked = worker_a
        .request(&deploy_request(&issuers, "t-3", "prod"))
        .unwrap();
    assert_eq!(asked.status(), 403);
    let refusal = asked.body_json();
    assert_eq!(refusal["error"], "approval_required");
    let digest = refusal["action_digest"].as_str().unwrap().to_owned();
    assert_eq!(
        refusal["action"]["arguments"],
        json!({"service": "web", "env": "prod"})
    );

    let approval = issuers
        .approvals
        .mint(
            &Claims::new("approver:bob")
                .claim("action_digest", json!(digest))
                .jti("approval-1"),
        )
        .unwrap();
    let approved = worker_a
        .request(&deploy_request(&issuers, "t-3", "prod").header("bridle-approval", &approval))
        .unwrap();
    assert!(
        approved.is_forwarded(),
        "{} {}",
        approved.status(),
        approved.body_text()
    );
    assert!(approved.upstream_header("bridle-approval").is_none());

    let replay = worker_b
        .request(&deploy_request(&issuers, "t-3", "prod").header("bridle-approval", &approval))
        .unwrap();
    assert_eq!(replay.status(), 403, "{}", replay.body_text());
    assert_eq!(
        replay.body_json()["reasons"],
        json!(["approval `approval-1` was already used"])
    );

    let other = issuers
        .approvals
        .mint(
            &Claims::new("approver:bob")
                .claim("action_digest", json!(digest))
                .jti("approval-2"),
        )
        .unwrap();
    let elsewhere = worker_b
        .request(&deploy_request(&issuers, "t-3", "staging").header("bridle-approval", &other))
        .unwrap();
    assert_eq!(
        elsewhere.body_json()["error"],
        "approval_required",
        "an approval never covers another action"
    );
}

#[test]
fn a_revoked_task_is_refused_within_one_poll_interval() {
    let issuers = issuers();
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let feed = json!({"feed": {"cluster": "bridle-control", "path": "/revocations", "poll_seconds": 5, "max_staleness_seconds": 30}});
    let config = config(
        &issuers,
        &[
            ("environment", json!({"name": "staging"})),
            ("revocation", feed),
            (
                "routes",
                json!([{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp", "require_task": true},
                       {"name": "reports", "path": "/api/reports", "methods": ["GET"], "fresh_revocations": false}]),
            ),
        ],
    );
    let mut plugin = harness
        .start(
            PluginOptions::with_config(config.to_string())
                .at(std::time::SystemTime::now())
                .known_clusters(["bridle-control"]),
        )
        .unwrap();
    // Ticks every second; the feed keeps its own 5 s schedule.
    assert_eq!(
        plugin.tick_period(),
        Some(std::time::Duration::from_secs(1))
    );
    assert!(plugin
        .request(&deploy_request(&issuers, "t-4", "staging"))
        .unwrap()
        .is_forwarded());

    // The feed revokes the task; one tick later the worker has it.
    plugin.advance_time(std::time::Duration::from_secs(5));
    plugin.tick().unwrap();
    let call = plugin
        .pending_http_calls()
        .first()
        .cloned()
        .expect("the tick polls the feed");
    assert_eq!(call.upstream, "bridle-control");
    plugin
        .respond_http_call(
            call.token,
            200,
            [("content-type", "application/json")],
            br#"{"version": 7, "txn": ["t-4"]}"#,
        )
        .unwrap();
    let refused = plugin
        .request(&deploy_request(&issuers, "t-4", "staging"))
        .unwrap();
    assert_eq!(refused.status(), 401, "{}", refused.body_text());
    assert_eq!(
        refused.body_json()["reasons"],
        json!(["task `t-4` is revoked"])
    );
    assert!(
        plugin.shared_data("bridle.revocations").is_some(),
        "published for the other workers"
    );
    plugin.tick().unwrap();
    assert!(
        plugin.pending_http_calls().is_empty(),
        "no new poll before 5 s have passed"
    );

    // A reset connection is a failed poll, not a trap; the version stays.
    plugin.advance_time(std::time::Duration::from_secs(5));
    plugin.tick().unwrap();
    let call = plugin.pending_http_calls().first().cloned().unwrap();
    plugin.fail_http_call(call.token).unwrap();
    assert!(plugin.log_contains("no response (reset or timed out); keeping version Some(7)"));
    assert_eq!(
        plugin.metric("bridle.revocation_feed.age_seconds"),
        Some(5),
        "the feed's age is exported"
    );

    // The feed goes silent: past the staleness bound Bridle fails closed, and says why.
    plugin.advance_time(std::time::Duration::from_secs(26));
    let stale = plugin
        .request(&deploy_request(&issuers, "t-5", "staging"))
        .unwrap();
    assert_eq!(stale.status(), 503, "{}", stale.body_text());
    assert_eq!(
        stale.body_json()["reasons"],
        json!(["revocation feed is stale (last update 31s ago, limit 30s)"])
    );
    // A route that does not require a fresh feed keeps being decided.
    let reports = HttpRequest::get("/api/reports")
        .authority("api.internal")
        .header(
            "authorization",
            format!("Bearer {}", issuers.workload.token_for(DEPLOY).unwrap()),
        );
    let still = plugin.request(&reports).unwrap();
    assert!(still.is_forwarded(), "{}", still.body_text());
}
