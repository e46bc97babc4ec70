//! Request bodies from slow clients in real Envoy: an MCP call uploaded chunk by chunk with
//! pauses is judged whole (never on a prefix), a denied one is never forwarded, and one that
//! grows past the limit is refused with 413.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use host_tests::tokens::{Alg, TestIssuer};
use host_tests::{demo, ConfigBuilder, Envoy, Request, Upstream};
use serde_json::json;

const RESEARCH: &str = "spiffe://demo.bridle.dev/agent/research-bot";
const LIMIT: usize = 8 * 1024;
const PAUSE: Duration = Duration::from_millis(150);

fn tools_call(tool: &str, pad: usize) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": tool, "arguments": {"id": "q3", "pad": "x".repeat(pad)}}})
    .to_string()
    .into_bytes()
}

/// `body` in `n` pieces of about equal size.
fn pieces(body: &[u8], n: usize) -> Vec<&[u8]> {
    body.chunks(body.len().div_ceil(n)).collect()
}

#[test]
fn slow_chunked_uploads_are_judged_whole_and_oversized_ones_refused() {
    let issuer = TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap();
    let upstream = Upstream::start().unwrap();
    let config = ConfigBuilder::agents()
        .unwrap()
        .issuer(&issuer)
        .unwrap()
        .environment("prod")
        .set(
            "routes",
            json!([{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp"}]),
        )
        .set(
            "mcp",
            json!({"max_body_bytes": LIMIT,
                   "tools": {"read_report": {"action": "read", "data_class": "internal"}}}),
        )
        .build();
    let envoy = Envoy::start(&config, &upstream).unwrap();
    let token = issuer.token_for(RESEARCH).unwrap();
    let request = Request::post("/mcp")
        .bearer(&token)
        .header("content-type", "application/json");

    // Allowed: five pieces over ~750 ms, forwarded byte for byte.
    let body = tools_call("read_report", 2000);
    let response = envoy
        .send_chunked(&request, &pieces(&body, 5), PAUSE)
        .unwrap();
    assert_eq!(
        response.status,
        200,
        "slow allowed call: {}",
        response.text()
    );
    assert_eq!(upstream.count(), 1);
    assert_eq!(
        upstream.last().unwrap().body,
        body,
        "forwarded body differs"
    );

    // Denied: the tool name only arrives in the last piece; nothing may be forwarded early.
    let body = tools_call("deploy_service", 2000);
    let split = body.len() - 40;
    let (head, tail) = body.split_at(split);
    assert!(String::from_utf8_lossy(tail).contains("deploy_service"));
    let response = envoy.send_chunked(&request, &[head, tail], PAUSE).unwrap();
    assert_eq!(
        response.status,
        403,
        "slow denied call: {}",
        response.text()
    );
    assert!(
        response.text().contains("deploy_service"),
        "{}",
        response.text()
    );
    assert_eq!(upstream.count(), 1, "a denied call reached the upstream");

    // Over the limit, arriving slowly: 413, never forwarded.
    let body = tools_call("read_report", 4 * LIMIT);
    let response = envoy
        .send_chunked(&request, &pieces(&body, 8), PAUSE)
        .unwrap();
    assert_eq!(
        response.status,
        413,
        "oversized upload: {}",
        response.text()
    );
    let refusal = response.json().unwrap();
    assert_eq!(refusal["error"], "payload_too_large", "{refusal}");
    assert_eq!(
        upstream.count(),
        1,
        "an oversized call reached the upstream"
    );

    // A body that is not JSON, slowly: 400, not forwarded.
    let response = envoy
        .send_chunked(
            &request,
            &[b"{\"jsonrpc\": \"2.0\", ", b"\"method\": "],
            PAUSE,
        )
        .unwrap();
    assert_eq!(response.status, 400, "truncated JSON: {}", response.text());
    assert_eq!(upstream.count(), 1, "a malformed call reached the upstream");
}
