//! Human approval in a real Envoy: a risky MCP tool call is answered 403 with the action's
//! digest; the same call with an approval for that digest is forwarded once; a replay and an
//! approval for another action are refused, and the upstream never sees them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use host_tests::tokens::{Alg, Claims, TestIssuer};
use host_tests::{config::issuer_entry, demo, ConfigBuilder, Envoy, Request, Upstream};
use serde_json::{json, Value};

const DEPLOY: &str = "spiffe://demo.bridle.dev/agent/deploy-bot";

#[test]
fn an_approval_is_bound_to_one_action_and_used_once() {
    let workload = TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap();
    let tasks = TestIssuer::new("https://txn.demo.bridle.dev", Alg::Es256)
        .unwrap()
        .with_profile("txn-token");
    let approvals = TestIssuer::new("https://approvals.demo.bridle.dev", Alg::EdDsa)
        .unwrap()
        .with_profile("approval");
    let config = ConfigBuilder::agents()
        .unwrap()
        .issuer(&workload)
        .unwrap()
        .environment("prod")
        .set("task", json!({"issuers": [issuer_entry(&tasks).unwrap()]}))
        .set("approval", json!({"issuers": [issuer_entry(&approvals).unwrap()]}))
        .set("routes", json!([{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp", "require_task": true}]))
        .set("mcp", json!({"tools": {"deploy_service": {"action": "execute", "data_class": "infrastructure"}}}))
        .build();
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::start(&config, &upstream).unwrap();
    let identity = workload.token_for(DEPLOY).unwrap();
    let task = tasks
        .mint(
            &Claims::new("user:alice")
                .typ("txntoken+jwt")
                .claim("txn", json!("t-9"))
                .claim("req_wl", json!(DEPLOY))
                .claim("scope", json!("deploy:execute")),
        )
        .unwrap();
    let deploy = |env: &str, approval: Option<&str>| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "deploy_service", "arguments": {"service": "web", "env": env}}});
        let mut request = Request::post("/mcp")
            .bearer(&identity)
            .header("txn-token", &task)
            .json(&body);
        if let Some(approval) = approval {
            request = request.header("bridle-approval", approval);
        }
        envoy.send(&request).unwrap()
    };
    let approval_for = |digest: &str, jti: &str| {
        approvals
            .mint(
                &Claims::new("approver:bob")
                    .claim("action_digest", json!(digest))
                    .jti(jti),
            )
            .unwrap()
    };

    let asked = deploy("prod", None);
    assert_eq!(asked.status, 403, "{}", asked.text());
    let refusal: Value = asked.json().unwrap();
    assert_eq!(refusal["error"], "approval_required");
    let digest = refusal["action_digest"].as_str().unwrap().to_owned();
    assert_eq!(refusal["action"]["tool"], "deploy_service");
    assert_eq!(upstream.count(), 0);

    let approval = approval_for(&digest, "approval-1");
    let approved = deploy("prod", Some(&approval));
    assert_eq!(approved.status, 200, "{}", approved.text());
    assert_eq!(upstream.count(), 1);
    assert!(
        !upstream.ever_saw(&approval),
        "the approval is not forwarded"
    );

    let replay = deploy("prod", Some(&approval));
    assert_eq!(replay.status, 403, "{}", replay.text());
    assert_eq!(
        replay.json().unwrap()["reasons"],
        json!(["approval `approval-1` was already used"])
    );

    // Approving the prod deploy never approves another action.
    let elsewhere = deploy("staging-eu", Some(&approval_for(&digest, "approval-2")));
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.text());
    assert_ne!(elsewhere.json().unwrap()["action_digest"], json!(digest));
    assert_eq!(upstream.count(), 1, "nothing else reached the upstream");

    let event = envoy
        .audit_events()
        .into_iter()
        .find(|e| e["approved_by"].is_string())
        .expect("the approved call's audit event");
    assert_eq!(event["action_digest"], json!(digest));
}
