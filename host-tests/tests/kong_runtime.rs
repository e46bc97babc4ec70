//! The release `.wasm` inside Kong's own wasm runtime: nginx with ngx_wasm_module on the
//! Wasmtime C API (`scripts/build-kong-host.sh`), not our emulation of it. Every shipped
//! policy case (MCP bodies included), hostile credentials, a chunked MCP body (411: the runtime
//! never hands a body of unknown length to a filter before it goes upstream), and a setting
//! Kong cannot honour refused by name (503).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use host_tests::kong::Nginx;
use host_tests::{cases, demo, ConfigBuilder, Request, TestIssuer, Upstream};
use serde_json::{json, Value};

fn reasons(body: &Value) -> Vec<String> {
    body["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn policy_cases_in_kongs_runtime() {
    let set = cases::agents().unwrap();
    let names: Vec<&String> = set.configs.keys().collect();
    let configs: Vec<Value> = set.configs.values().cloned().collect();
    let upstream = Upstream::start().unwrap();
    let nginx = Nginx::start(&configs, upstream.port()).unwrap();
    let mut failures = Vec::new();
    for case in &set.cases {
        let index = names.iter().position(|n| **n == case.config).unwrap();
        let before = upstream.count();
        let mut request = Request::new(&case.method, &case.path).header("host", "api.internal");
        for (name, value) in &case.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &case.body {
            request = request.body(body.as_bytes().to_vec());
        }
        let response = match nginx.send(index, &request) {
            Ok(response) => response,
            Err(err) => {
                failures.push(format!("{}: {err}", case.name));
                continue;
            }
        };
        let seen = upstream.requests().into_iter().nth(before);
        let body = response.json().unwrap_or(Value::Null);
        let expect = &case.expect;
        let ok = if expect.allow {
            response.status == 200 && seen.is_some_and(|r| no_credential(&r))
        } else {
            seen.is_none()
                && response.status == expect.status()
                && body["error"].as_str() == expect.error()
                && reasons(&body) == expect.reasons
        };
        if !ok {
            failures.push(format!(
                "{} ({}): expected {:?}, got {} {}",
                case.name,
                case.description,
                expect,
                response.status,
                response.text()
            ));
        }
    }
    assert!(set.cases.iter().any(|c| c.body.is_some()), "no MCP case");
    assert!(
        failures.is_empty(),
        "{}\n--- nginx error log ---\n{}",
        failures.join("\n"),
        tail(&nginx.error_log(), 30)
    );
}

#[test]
fn hostile_requests_and_settings_kong_cannot_honour_in_kongs_runtime() {
    let issuer = TestIssuer::new(demo::ISSUER, demo_alg()).unwrap();
    let base = ConfigBuilder::agents()
        .unwrap()
        .issuer(&issuer)
        .unwrap()
        .environment("prod")
        .set(
            "routes",
            json!([{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp"}]),
        )
        .build();
    let mut filter_state = base.clone();
    filter_state["audit"] = json!({"filter_state": true});
    let upstream = Upstream::start().unwrap();
    let nginx = Nginx::start(&[base, filter_state], upstream.port()).unwrap();
    let research = "spiffe://demo.bridle.dev/agent/research-bot";
    let token = issuer.token_for(research).unwrap();

    // The filter runs: an allowed read goes upstream without the credential.
    let allowed = nginx
        .send(
            0,
            &Request::get("/api/reports")
                .header("host", "api.internal")
                .bearer(&token),
        )
        .unwrap();
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(upstream.count(), 1);
    assert!(no_credential(&upstream.last().unwrap()));

    // Credentials that must never pass.
    let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
    segments[2] = segments[2].chars().rev().collect();
    let tampered = segments.join(".");
    let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), segments[1]);
    for (what, credential) in [
        ("none", None),
        ("tampered", Some(tampered)),
        ("alg none", Some(none)),
    ] {
        let mut request = Request::get("/api/reports").header("host", "api.internal");
        if let Some(credential) = &credential {
            request = request.bearer(credential);
        }
        let refused = nginx.send(0, &request).unwrap();
        assert_eq!(refused.status, 401, "{what}: {}", refused.text());
        assert!(refused.header("www-authenticate").is_some(), "{what}");
    }
    assert_eq!(upstream.count(), 1, "nothing refused went upstream");

    // An MCP body of unknown length: the runtime would forward it undecided, so 411.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "read_report", "arguments": {}}})
    .to_string();
    let head = Request::post("/mcp")
        .header("host", "api.internal")
        .header("content-type", "application/json")
        .bearer(&token);
    let (first, rest) = call.as_bytes().split_at(10);
    let chunked = host_tests::envoy::send_chunked_to(
        nginx.port(0).unwrap(),
        &head,
        &[first, rest],
        Duration::from_millis(10),
    )
    .unwrap();
    assert_eq!(chunked.status, 411, "{}", chunked.text());
    assert_eq!(upstream.count(), 1);

    // Filter state is an Envoy facility: refused by name, with a decision id, never forwarded.
    let unsupported = nginx
        .send(
            1,
            &Request::get("/api/reports")
                .header("host", "api.internal")
                .bearer(&token),
        )
        .unwrap();
    assert_eq!(unsupported.status, 503, "{}", unsupported.text());
    let body = unsupported.json().unwrap();
    assert!(reasons(&body)[0].contains("`audit.filter_state`"), "{body}");
    assert!(body["decision_id"].is_string(), "{body}");
    assert_eq!(upstream.count(), 1);
}

/// The runtime proxies a header the filter removed (ngx_wasm_module marks it, nginx 1.22.1's
/// proxy module sends it), so Bridle empties it first: absent or empty, never the credential.
fn no_credential(request: &host_tests::upstream::ReceivedRequest) -> bool {
    ["authorization", "txn-token", "bridle-approval"]
        .iter()
        .all(|name| request.header(name).is_none_or(str::is_empty))
}

fn demo_alg() -> host_tests::tokens::Alg {
    host_tests::tokens::Alg::Es256
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
