//! Trailers through the compiled `.wasm` in the harness, with Envoy's semantics: a stream that
//! ends with trailers never gives the body callback `end_of_stream = true`; it ends in
//! `on_http_request_trailers` / `on_http_response_trailers`, and if that callback returns
//! Continue (the SDK's default) Envoy sends the buffered body on. So a request on an MCP route
//! must still be decided on its whole body, and a `tools/list` answer must still be filtered,
//! when trailers end the stream. The real-Envoy counterpart is `envoy_trailers.rs`.
//!
//! Under the Kong profile ngx_wasm_module never calls either trailers callback (see
//! `wasmtime-harness/src/kong.rs`): the body step gets the whole body with end of stream, and
//! no trailers are passed on.
//!
//! The policy: an authenticated agent may make any MCP call but `tools/call`, and may call only
//! `read_report`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::OnceLock;
use std::time::SystemTime;

use host_tests::config::inline_policy;
use host_tests::fixtures::tools_call;
use host_tests::{demo, ConfigBuilder, TestIssuer};
use serde_json::{json, Value};
use wasmtime_harness::{
    Harness, HostProfile, HttpOutcome, HttpRequest, Plugin, PluginOptions, UpstreamResponse,
};

const POLICY: &str = r#"package t
import rego.v1

default decision := {"allow": false, "reasons": ["tool not allowed"]}

decision := {"allow": true, "reasons": []} if {
	input.identity.spiffe.id
	tool_allowed
}

tool_allowed if not input.intent.tool

tool_allowed if input.intent.tool in {"read_report"}
"#;

const TRAILER: (&str, &str) = ("x-request-checksum", "sha256-abc");

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| Harness::load(host_tests::paths::wasm().unwrap()).unwrap())
}

fn config(issuer: &TestIssuer) -> Value {
    ConfigBuilder::with_policy(inline_policy(
        "data.t.decision",
        &[("t.rego", POLICY)],
        json!({}),
    ))
    .issuer(issuer)
    .unwrap()
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
    .build()
}

fn start(issuer: &TestIssuer, profile: HostProfile) -> Plugin {
    harness()
        .start(
            PluginOptions::with_config(config(issuer).to_string())
                .profile(profile)
                .at(SystemTime::now()),
        )
        .unwrap()
}

fn envoy(issuer: &TestIssuer) -> Plugin {
    start(issuer, HostProfile::Envoy)
}

fn kong(issuer: &TestIssuer) -> Plugin {
    start(issuer, HostProfile::Kong)
}

fn bearer(issuer: &TestIssuer) -> String {
    format!(
        "Bearer {}",
        issuer.token_for(&demo::agent("research-bot")).unwrap()
    )
}

/// `POST /mcp` with `body` in two chunks (no `content-length`, as an HTTP/2 client may send
/// it), then one trailer that ends the stream.
fn mcp_post(token: Option<&str>, body: &str) -> HttpRequest {
    let (first, second) = body.split_at(body.len() / 2);
    let mut request = HttpRequest::post("/mcp")
        .authority("mcp.internal")
        .header("content-type", "application/json")
        .body_chunks([first.as_bytes(), second.as_bytes()])
        .trailer(TRAILER.0, TRAILER.1);
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    request
}

/// Nothing went upstream, and the client got Bridle's refusal `status` / `error`.
fn assert_refused(what: &str, outcome: &HttpOutcome, status: u16, error: &str) {
    assert!(
        !outcome.is_forwarded(),
        "{what}: went upstream undecided: body {:?}, trailers {:?}",
        outcome.upstream_body().map(String::from_utf8_lossy),
        outcome.upstream_trailers()
    );
    assert_eq!(outcome.status(), status, "{what}: {}", outcome.body_text());
    assert_eq!(
        outcome.body_json()["error"],
        error,
        "{what}: {}",
        outcome.body_text()
    );
}

fn tool_names(body: &[u8]) -> Vec<String> {
    let list: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {list}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

const TOOLS: &str = r#"{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"read_report","description":"Read a report","inputSchema":{"type":"object"}},{"name":"deploy_service","description":"Deploy a service","inputSchema":{"type":"object"}}]}}"#;

/// An allowed `tools/list`, answered by the upstream in three chunks and one trailer.
fn tools_list(issuer: &TestIssuer) -> HttpRequest {
    let third = TOOLS.len() / 3;
    let (a, rest) = TOOLS.as_bytes().split_at(third);
    let (b, c) = rest.split_at(third);
    HttpRequest::post("/mcp")
        .header("authorization", bearer(issuer))
        .header("content-type", "application/json")
        .body(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}).to_string())
        .upstream_response(
            UpstreamResponse::new(200)
                .header("content-type", "application/json")
                .header("content-length", TOOLS.len().to_string())
                .body_chunks([a, b, c])
                .trailer("x-upstream-trailer", "list-done"),
        )
}

/// Not vacuous: without trailers, the same policy forwards an allowed call and refuses the rest.
#[test]
fn without_trailers_the_policy_decides_as_stated() {
    let issuer = demo::issuer().unwrap();
    let mut plugin = envoy(&issuer);
    let token = bearer(&issuer);
    let plain = |tool: &str| {
        HttpRequest::post("/mcp")
            .header("authorization", &token)
            .header("content-type", "application/json")
            .body(tools_call(tool))
    };
    let allowed = plugin.request(&plain("read_report")).unwrap();
    assert!(allowed.is_forwarded(), "{}", allowed.body_text());
    let denied = plugin.request(&plain("deploy_service")).unwrap();
    assert_refused("denied, no trailers", &denied, 403, "forbidden");
}

/// a. No credential: the trailers end the stream; still 401, nothing upstream.
#[test]
fn a_call_ended_by_trailers_without_credential_is_refused() {
    let issuer = demo::issuer().unwrap();
    let outcome = envoy(&issuer)
        .request(&mcp_post(None, &tools_call("read_report")))
        .unwrap();
    assert_refused("no credential", &outcome, 401, "unauthenticated");
    assert!(outcome.header("www-authenticate").is_some(), "{outcome:?}");
}

/// b. A valid token and an allowed tool: forwarded, with the whole body and the trailer.
#[test]
fn b_allowed_call_ended_by_trailers_is_forwarded_whole() {
    let issuer = demo::issuer().unwrap();
    let body = tools_call("read_report");
    let outcome = envoy(&issuer)
        .request(&mcp_post(Some(&bearer(&issuer)), &body))
        .unwrap();
    assert!(outcome.is_forwarded(), "{}", outcome.body_text());
    assert_eq!(outcome.status(), 200);
    assert_eq!(
        outcome
            .upstream_body()
            .map(String::from_utf8_lossy)
            .as_deref(),
        Some(body.as_str()),
        "the upstream must get the body byte for byte"
    );
    assert_eq!(
        outcome.upstream_trailer(TRAILER.0).as_deref(),
        Some(TRAILER.1),
        "{outcome:?}"
    );
    // Decided, not just let through: Bridle stripped the credential and stamped its decision.
    assert!(
        outcome.upstream_header("authorization").is_none(),
        "credential forwarded: {outcome:?}"
    );
    assert!(
        outcome.upstream_header("x-bridle-decision-id").is_some(),
        "no decision id upstream: {outcome:?}"
    );
}

/// c. A valid token and a tool the policy denies: 403, nothing upstream.
#[test]
fn c_denied_call_ended_by_trailers_is_refused() {
    let issuer = demo::issuer().unwrap();
    let outcome = envoy(&issuer)
        .request(&mcp_post(
            Some(&bearer(&issuer)),
            &tools_call("deploy_service"),
        ))
        .unwrap();
    assert_refused("denied tool", &outcome, 403, "forbidden");
    assert_eq!(outcome.body_json()["reasons"], json!(["tool not allowed"]));
}

/// c'. The same, step by step: the trailers callback, not a body callback, gets the last
/// word, and the request is held until then.
#[test]
fn c_the_trailers_callback_decides_a_held_request() {
    let issuer = demo::issuer().unwrap();
    let mut plugin = envoy(&issuer);
    let mut stream = plugin.stream().unwrap();
    let body = tools_call("deploy_service");
    let request = HttpRequest::post("/mcp")
        .header("authorization", bearer(&issuer))
        .header("content-type", "application/json");
    stream.send_request_headers(&request, false).unwrap();
    let (first, second) = body.as_bytes().split_at(body.len() / 2);
    stream.send_request_body(first, false).unwrap();
    stream.send_request_body(second, false).unwrap();
    assert!(
        !stream.is_forwarded(),
        "forwarded before the end of the body"
    );
    stream.send_request_trailers([TRAILER]).unwrap();
    assert!(
        !stream.is_forwarded() && !stream.request_trailers_forwarded(),
        "forwarded undecided when the trailers ended the stream"
    );
    let reply = stream
        .local_response()
        .expect("no decision after the trailers");
    assert_refused("denied tool, step by step", &reply, 403, "forbidden");
    stream.finish().unwrap();
}

/// d. Headers, then trailers, no body at all: an MCP request is decided on an empty body and
/// refused.
#[test]
fn d_headers_then_trailers_without_body_is_refused() {
    let issuer = demo::issuer().unwrap();
    let request = HttpRequest::post("/mcp")
        .header("authorization", bearer(&issuer))
        .header("content-type", "application/json")
        .trailer(TRAILER.0, TRAILER.1);
    let outcome = envoy(&issuer).request(&request).unwrap();
    assert_refused("no body", &outcome, 400, "bad_request");
}

/// e. An allowed `tools/list` whose answer ends with a trailer: the client gets the filtered
/// list (never `deploy_service`), and the trailer.
#[test]
fn e_tools_list_answer_ended_by_trailers_is_filtered() {
    let issuer = demo::issuer().unwrap();
    let outcome = envoy(&issuer).request(&tools_list(&issuer)).unwrap();
    assert!(outcome.is_forwarded(), "{}", outcome.body_text());
    assert_eq!(outcome.status(), 200);
    assert!(
        !outcome.body_text().contains("deploy_service"),
        "the client got the unfiltered list: {}",
        outcome.body_text()
    );
    assert_eq!(tool_names(outcome.body()), ["read_report"]);
    assert_eq!(
        outcome.trailer("x-upstream-trailer").as_deref(),
        Some("list-done"),
        "{outcome:?}"
    );
}

/// f. Kong: ngx_wasm_module never calls the trailers callbacks. A request whose body ends with
/// trailers is decided on its whole body in the body step (HTTP/2 with `content-length`), one
/// without a length (HTTP/1.1 chunked) is refused up front, and no trailer is passed on.
#[test]
fn f_kong_decides_calls_ended_by_trailers_in_the_body_step() {
    let issuer = demo::issuer().unwrap();
    let mut plugin = kong(&issuer);
    let with_length =
        |request: HttpRequest, body: &str| request.header("content-length", body.len().to_string());

    let body = tools_call("read_report");
    let outcome = plugin
        .request(&with_length(mcp_post(None, &body), &body))
        .unwrap();
    assert_refused("kong, no credential", &outcome, 401, "unauthenticated");

    let outcome = plugin
        .request(&with_length(mcp_post(Some(&bearer(&issuer)), &body), &body))
        .unwrap();
    assert!(outcome.is_forwarded(), "{}", outcome.body_text());
    assert_eq!(
        outcome
            .upstream_body()
            .map(String::from_utf8_lossy)
            .as_deref(),
        Some(body.as_str())
    );
    assert!(
        outcome.upstream_trailers().unwrap().is_empty(),
        "nginx passes no request trailers on: {outcome:?}"
    );

    let denied = tools_call("deploy_service");
    let outcome = plugin
        .request(&with_length(
            mcp_post(Some(&bearer(&issuer)), &denied),
            &denied,
        ))
        .unwrap();
    assert_refused("kong, denied tool", &outcome, 403, "forbidden");

    // HTTP/1.1 trailers come with chunked framing: without a length nginx cannot be asked to
    // hold the body for the filter, so the request is refused before anything is read.
    let chunked = mcp_post(Some(&bearer(&issuer)), &body).header("transfer-encoding", "chunked");
    let outcome = plugin.request(&chunked).unwrap();
    assert_refused("kong, chunked", &outcome, 411, "length_required");

    // No body, only trailers (and no length): decided on the empty body.
    let bodiless = HttpRequest::post("/mcp")
        .header("authorization", bearer(&issuer))
        .header("content-type", "application/json")
        .trailer(TRAILER.0, TRAILER.1);
    let outcome = plugin.request(&bodiless).unwrap();
    assert_refused("kong, no body", &outcome, 400, "bad_request");
}

/// f'. Kong: a `tools/list` answer ending with trailers reaches the body step with end of
/// stream and is filtered; the trailer does not reach the client.
#[test]
fn f_kong_filters_a_tools_list_answer_ended_by_trailers() {
    let issuer = demo::issuer().unwrap();
    let outcome = kong(&issuer).request(&tools_list(&issuer)).unwrap();
    assert!(outcome.is_forwarded(), "{}", outcome.body_text());
    assert_eq!(tool_names(outcome.body()), ["read_report"]);
    assert!(outcome.trailers().is_empty(), "{outcome:?}");
}
