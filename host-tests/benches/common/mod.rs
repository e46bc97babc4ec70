//! Plugins and requests shared by the `decisions` bench and the `request_profile` example: the
//! bench configuration (the agent policy or the one-rule equivalent, audit log off, a token
//! cache of 1,024), and the requests they send.

#![allow(dead_code)]

use serde_json::json;
use wasmtime_harness::{Harness, HttpRequest, Plugin, PluginOptions};

use host_tests::{ConfigBuilder, TestIssuer};

pub const AGENT: &str = "spiffe://demo.bridle.dev/agent/research-bot";
pub const FRESH_TOKENS: usize = 4000;
pub const LARGE_ARGUMENT: usize = 48 * 1024;
/// What Envoy's `jwt_authn` is configured with in `scripts/bench-envoy.py` and
/// `host_tests::envoy::jwt_authn`: the verified payload segment is forwarded in this header, and
/// its dynamic metadata (the proof) is read at this property path.
pub const PAYLOAD_HEADER: &str = "x-bridle-jwt-payload";
pub const PROOF_PROPERTY: [&str; 3] = [
    "metadata",
    "filter_metadata",
    "envoy.filters.http.jwt_authn",
];

/// The check Envoy's RBAC makes in `scripts/bench-envoy.py` (b), as Rego: what a decision costs
/// apart from the agent policy's evaluation.
pub const EQUIVALENT_REGO: &str = include_str!("../../../policies/bench/equivalent.rego");

pub fn plugin(harness: &Harness, issuers: &[&TestIssuer]) -> Plugin {
    plugin_with(harness, issuers, None)
}

pub fn plugin_with(harness: &Harness, issuers: &[&TestIssuer], rego: Option<&str>) -> Plugin {
    start(harness, issuers, rego, false)
}

/// Signatures left to the host: the proof property is present for every request, as
/// `jwt_authn`'s metadata is after it verified a token (what this plugin checks is that the
/// payload header matches the token).
pub fn host_verified_plugin(harness: &Harness, issuers: &[&TestIssuer]) -> Plugin {
    start(harness, issuers, None, true)
}

pub fn start(
    harness: &Harness,
    issuers: &[&TestIssuer],
    rego: Option<&str>,
    by_host: bool,
) -> Plugin {
    let mut builder = ConfigBuilder::agents().unwrap().environment("prod");
    if let Some(source) = rego {
        builder = builder.set(
            "policy",
            json!({"entrypoint": "data.bench.decision", "modules": [{"name": "bench.rego", "source": source}]}),
        );
    }
    for issuer in issuers {
        builder = builder.issuer(issuer).unwrap();
    }
    let identity = if by_host {
        json!({"cache_entries": 1024, "host_verification": {
            "payload_header": PAYLOAD_HEADER, "proof_property": PROOF_PROPERTY}})
    } else {
        json!({"cache_entries": 1024})
    };
    let config = builder
        .set("identity", identity)
        .set("audit", json!({"log": false}))
        .set(
            "routes",
            json!([{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp"}]),
        )
        .set(
            "mcp",
            json!({"tools": {"read_report": {"action": "read", "data_class": "internal"}}}),
        )
        .build();
    let mut options = PluginOptions::with_config(config.to_string())
        .record_logs(false)
        .at(std::time::SystemTime::now());
    if by_host {
        // jwt_authn's `payload_in_metadata` writes a non-empty struct; any non-empty value is a proof.
        options = options.property(&PROOF_PROPERTY, r#"{"workload":{"sub":"…"}}"#);
    }
    harness.start(options).unwrap()
}

/// A request as it leaves `jwt_authn` (`forward: true`, `forward_payload_header`): the token,
/// and its payload segment in the payload header.
pub fn host_verified_get(token: &str) -> HttpRequest {
    get(token).header(PAYLOAD_HEADER, token.split('.').nth(1).unwrap())
}

pub fn get(token: &str) -> HttpRequest {
    HttpRequest::get("/api/reports/q3")
        .authority("api.internal")
        .header("authorization", format!("Bearer {token}"))
}

/// An MCP `tools/call` of `read_report`; `padding` bytes of extra argument make a large body.
pub fn mcp_call(token: &str, padding: usize) -> HttpRequest {
    let mut arguments = json!({"id": "q3"});
    if padding > 0 {
        arguments["note"] = json!("x".repeat(padding));
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "read_report", "arguments": arguments}}).to_string();
    HttpRequest::post("/mcp")
        .authority("mcp.internal")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.into_bytes())
}
