//! Trailers in real Envoy: an HTTP/2 request whose stream ends with trailers (no DATA frame
//! carries END_STREAM) is still decided on its whole body, and a `tools/list` response that
//! ends with trailers is still filtered. Without the filter's trailer callbacks Envoy ends such
//! a stream in `on_http_request_trailers` / `on_http_response_trailers`, never in a body
//! callback, and forwards it undecided (or unfiltered).
//!
//! The caller is `host-tests/h2/client.py` (Python `h2`, h2c with prior knowledge); the
//! upstream is the HTTP/1.1 recorder, behind an `upstream` cluster that keeps HTTP/1 trailers.
//! One Envoy for every case; the cases run in order and all of them run even when one fails,
//! so a failure names every case that broke.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use host_tests::tokens::{Alg, TestIssuer};
use host_tests::upstream::Reply;
use host_tests::{demo, ConfigBuilder, Envoy, EnvoyOptions, Upstream};
use serde_json::{json, Value};

const RESEARCH: &str = "spiffe://demo.bridle.dev/agent/research-bot";
const TRAILER: (&str, &str) = ("x-request-checksum", "sha256-abc");
/// Between DATA frames and before the trailers, so Envoy sees each as its own callback.
const PAUSE: f64 = 0.05;

struct Fixture {
    envoy: Envoy,
    upstream: Upstream,
    token: String,
}

fn python() -> PathBuf {
    let python = host_tests::paths::repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh",
        python.display()
    );
    python
}

/// What the h2 client got back.
#[derive(Debug)]
struct H2Response {
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: String,
    trailers: Vec<(String, String)>,
    /// The RST_STREAM error code when Envoy reset the stream instead of ending it.
    reset: Option<u64>,
}

impl H2Response {
    fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    fn trailer(&self, name: &str) -> Option<&str> {
        find(&self.trailers, name)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"))
    }
}

fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn pairs(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Sends `request` (see host-tests/h2/client.py) to Envoy's listener over h2c.
fn h2(envoy: &Envoy, request: &Value) -> H2Response {
    let client = host_tests::paths::repo_root().join("host-tests/h2/client.py");
    let mut child = Command::new(python())
        .arg(client)
        .args(["--port", &envoy.port().to_string(), "--timeout", "20"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "h2 client failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    H2Response {
        status: result["status"].as_u64().map(|s| u16::try_from(s).unwrap()),
        headers: pairs(&result["headers"]),
        body: result["body"].as_str().unwrap_or_default().to_owned(),
        trailers: pairs(&result["trailers"]),
        reset: result["reset"].as_u64(),
    }
}

fn tools_call(tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": tool, "arguments": {"id": "q3", "service": "web"}}})
    .to_string()
}

/// An h2 POST to `/mcp`: `body` in two DATA frames (none with END_STREAM), then one trailer
/// that ends the stream.
fn mcp_post_with_trailer(token: Option<&str>, body: &str) -> Value {
    let mut headers = vec![json!(["content-type", "application/json"])];
    if let Some(token) = token {
        headers.push(json!(["authorization", format!("Bearer {token}")]));
    }
    let (first, second) = body.split_at(body.len() / 2);
    json!({"method": "POST", "path": "/mcp", "headers": headers,
           "data": [first, second], "trailers": [TRAILER], "pause": PAUSE})
}

impl Fixture {
    fn start() -> Self {
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
                json!({"filter_tools_list": true, "tools": {
                    "read_report": {"action": "read", "data_class": "internal"},
                    "deploy_service": {"action": "execute", "data_class": "infrastructure"}}}),
            )
            .build();
        let mut options = EnvoyOptions::new(config, upstream.port());
        options.upstream_http1_trailers = true;
        let envoy = Envoy::start_with(&options).unwrap();
        let token = issuer.token_for(RESEARCH).unwrap();
        Self {
            envoy,
            upstream,
            token,
        }
    }

    /// Sends `request`; returns the response and the audit events logged meanwhile.
    fn send(&self, request: &Value) -> (H2Response, Vec<Value>) {
        let events = self.envoy.audit_events().len();
        let response = h2(&self.envoy, request);
        let after = self.envoy.audit_events();
        let new = after.get(events..).unwrap_or_default().to_vec();
        (response, new)
    }
}

/// Exactly one decision was made (one audit event), with `status`.
fn assert_one_decision(what: &str, events: &[Value], status: u16) {
    assert_eq!(
        events.len(),
        1,
        "{what}: expected one decision (audit event), got {events:#?}"
    );
    assert_eq!(
        events[0]["status"], status,
        "{what}: audit event {}",
        events[0]
    );
}

/// The stream ended normally (no RST_STREAM) with `status`.
fn assert_status(what: &str, response: &H2Response, status: u16) {
    assert_eq!(
        response.reset, None,
        "{what}: Envoy reset the stream: {response:?}"
    );
    assert_eq!(response.status, Some(status), "{what}: {response:?}");
}

/// A refusal Bridle sent: status and its JSON body's `error`.
fn assert_refused(what: &str, response: &H2Response, status: u16, error: &str) -> Value {
    assert_status(what, response, status);
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{what}: {response:?}"
    );
    let body = response.json();
    assert_eq!(body["error"], error, "{what}: {body}");
    body
}

/// Not vacuous: HTTP/1 trailers from the upstream really reach an h2 caller through Envoy.
fn upstream_trailers_reach_the_caller(fx: &Fixture) {
    fx.upstream.set_path_reply_chunked(
        "/api/reports",
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"reports": ["q1", "q2", "q3"]}"#.to_vec(),
        },
        3,
        &[("x-upstream-trailer", "reports-done")],
    );
    let before = fx.upstream.count();
    let (response, events) = fx.send(&json!({"method": "GET", "path": "/api/reports?limit=10",
                "headers": [["authorization", format!("Bearer {}", fx.token)]]}));
    fx.upstream.set_path_reply("/api/reports", None);
    assert_status("plain GET", &response, 200);
    assert_eq!(response.body, r#"{"reports": ["q1", "q2", "q3"]}"#);
    assert_eq!(
        response.trailer("x-upstream-trailer"),
        Some("reports-done"),
        "the upstream's trailer did not reach the caller: {response:?}"
    );
    assert_eq!(fx.upstream.count(), before + 1);
    assert_one_decision("plain GET", &events, 200);
}

/// a. No credential: the trailers end the stream, the request is still decided (401) and
/// nothing reaches the upstream.
fn call_with_trailer_and_no_credential_is_refused(fx: &Fixture) {
    let before = fx.upstream.count();
    let (response, events) = fx.send(&mcp_post_with_trailer(None, &tools_call("read_report")));
    assert_eq!(
        fx.upstream.count(),
        before,
        "a call without a credential reached the upstream: {:?}; client got {response:?}",
        fx.upstream.last()
    );
    assert_refused("no credential", &response, 401, "unauthenticated");
    assert!(
        response.header("www-authenticate").is_some(),
        "{response:?}"
    );
    assert_one_decision("no credential", &events, 401);
}

/// b. A valid token and an allowed tool: forwarded, the body byte for byte.
fn allowed_call_with_trailer_is_forwarded_whole(fx: &Fixture) {
    let before = fx.upstream.count();
    let body = tools_call("read_report");
    let (response, events) = fx.send(&mcp_post_with_trailer(Some(&fx.token), &body));
    assert_status("allowed call", &response, 200);
    assert_eq!(
        fx.upstream.count(),
        before + 1,
        "allowed call not forwarded"
    );
    let seen = fx.upstream.last().unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/mcp");
    assert_eq!(
        String::from_utf8_lossy(&seen.body),
        body,
        "forwarded body differs"
    );
    assert_eq!(seen.header("authorization"), None, "credential forwarded");
    assert_eq!(seen.header("x-bridle-agent"), Some(RESEARCH));
    assert_one_decision("allowed call", &events, 200);
}

/// c. A valid token and a tool the agent may not call: 403, never forwarded.
fn denied_call_with_trailer_is_refused(fx: &Fixture) {
    let before = fx.upstream.count();
    let (response, events) = fx.send(&mcp_post_with_trailer(
        Some(&fx.token),
        &tools_call("deploy_service"),
    ));
    assert_eq!(
        fx.upstream.count(),
        before,
        "a denied call reached the upstream: {:?}; client got {response:?}",
        fx.upstream.last()
    );
    let body = assert_refused("denied call", &response, 403, "forbidden");
    assert!(body.to_string().contains("deploy_service"), "{body}");
    assert_one_decision("denied call", &events, 403);
}

/// d. Headers, then trailers, no DATA at all: an MCP request without a body is refused.
fn headers_then_trailers_without_body_is_refused(fx: &Fixture) {
    let before = fx.upstream.count();
    let request = json!({"method": "POST", "path": "/mcp",
        "headers": [["content-type", "application/json"],
                    ["authorization", format!("Bearer {}", fx.token)]],
        "data": [], "trailers": [TRAILER], "pause": PAUSE});
    let (response, events) = fx.send(&request);
    assert_eq!(
        fx.upstream.count(),
        before,
        "a bodiless call reached the upstream: {:?}; client got {response:?}",
        fx.upstream.last()
    );
    assert_status("no body", &response, 400);
    assert_one_decision("no body", &events, 400);
}

/// e. An allowed `tools/list` whose response ends with trailers: the caller sees only the tools
/// it may call, and the trailer still arrives.
fn tools_list_answered_with_trailers_is_filtered(fx: &Fixture) {
    let list = json!({"jsonrpc": "2.0", "id": 3, "result": {"tools": [
        {"name": "read_report", "description": "Read a report",
         "inputSchema": {"type": "object"}},
        {"name": "deploy_service", "description": "Deploy a service",
         "inputSchema": {"type": "object"}}]}});
    fx.upstream.set_path_reply_chunked(
        "/mcp",
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: list.to_string().into_bytes(),
        },
        3,
        &[("x-upstream-trailer", "list-done")],
    );
    let before = fx.upstream.count();
    let request = json!({"method": "POST", "path": "/mcp",
        "headers": [["content-type", "application/json"],
                    ["authorization", format!("Bearer {}", fx.token)]],
        "data": [json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}).to_string()]});
    let (response, events) = fx.send(&request);
    fx.upstream.set_path_reply("/mcp", None);
    assert_eq!(fx.upstream.count(), before + 1, "tools/list not forwarded");
    assert_status("tools/list", &response, 200);
    let body = response.json();
    let names: Vec<&str> = body["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {body}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["read_report"],
        "the list was not filtered: {}",
        response.body
    );
    assert_eq!(
        response.trailer("x-upstream-trailer"),
        Some("list-done"),
        "the filtered response lost its trailer: {response:?}"
    );
    assert_one_decision("tools/list", &events, 200);
}

/// One case: it panics when it fails.
type Case = fn(&Fixture);

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(non-string panic)".into())
}

#[test]
fn h2_trailers_never_let_a_request_or_response_skip_bridle() {
    let fx = Fixture::start();
    let cases: [(&str, Case); 6] = [
        (
            "upstream_trailers_reach_the_caller",
            upstream_trailers_reach_the_caller,
        ),
        (
            "a_call_with_trailer_and_no_credential_is_refused",
            call_with_trailer_and_no_credential_is_refused,
        ),
        (
            "b_allowed_call_with_trailer_is_forwarded_whole",
            allowed_call_with_trailer_is_forwarded_whole,
        ),
        (
            "c_denied_call_with_trailer_is_refused",
            denied_call_with_trailer_is_refused,
        ),
        (
            "d_headers_then_trailers_without_body_is_refused",
            headers_then_trailers_without_body_is_refused,
        ),
        (
            "e_tools_list_answered_with_trailers_is_filtered",
            tools_list_answered_with_trailers_is_filtered,
        ),
    ];
    let mut failures = Vec::new();
    for (name, case) in cases {
        eprintln!("--- case {name}");
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| case(&fx))) {
            failures.push(format!("{name}: {}", panic_message(payload.as_ref())));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
