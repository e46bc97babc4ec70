//! Fail-open paths a security review found, closed in the core, in a real Envoy (V8): one
//! Envoy, one configuration holding every case (a V8 start costs seconds). The same cases, and
//! more, through the harness: `harness_fail_open.rs`.
//!
//! Every refusal is checked for its status and JSON `error` and for the upstream having seen
//! nothing; every allow for exactly what the upstream received.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use host_tests::config::inline_policy;
use host_tests::fixtures::{
    has_reason, tools_call, utf7_smuggling_body, SpiffeIssuers, DECISION_HEADER, DEPLOY,
    DEPLOY_OWNER, RESEARCH,
};
use host_tests::tokens::{Claims, TestIssuer};
use host_tests::{ConfigBuilder, Envoy, ReceivedRequest, Request, Upstream};
use serde_json::{json, Value};

/// One rule per case, on disjoint requests; none sets a header except the re-framing one.
const POLICY: &str = r#"package t
import rego.v1

default decision := {"allow": false, "reasons": ["denied"]}

# Reads of reports: any verified caller.
decision := {"allow": true, "reasons": []} if {
	input.request.method == "GET"
	startswith(input.request.path, "/api/reports")
}

# Only deploy-bot's SPIFFE ID.
decision := {"allow": true, "reasons": []} if {
	input.request.path == "/api/agent-only"
	input.identity.spiffe.id == "spiffe://demo.bridle.dev/agent/deploy-bot"
}

# MCP: calls of read_report.
decision := {"allow": true, "reasons": []} if input.intent.tool == "read_report"

# A decision that tries to re-frame the forwarded request.
decision := {"allow": true, "reasons": [], "headers": {"content-length": "0"}} if {
	input.request.path == "/api/reframe"
}
"#;

/// Sends `request`, expects Bridle's own refusal (`status`, JSON `error`, the decision id in
/// the header) and the upstream to have received nothing.
fn refused(
    envoy: &Envoy,
    upstream: &Upstream,
    what: &str,
    request: &Request,
    status: u16,
    error: &str,
) -> Value {
    let before = upstream.count();
    let response = envoy.send(request).unwrap();
    assert_eq!(upstream.count(), before, "{what}: reached the upstream");
    assert_eq!(response.status, status, "{what}: {}", response.text());
    let body = response
        .json()
        .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {}", response.text()));
    assert_eq!(body["error"], error, "{what}: {body}");
    assert!(
        body["reasons"].as_array().is_some_and(|r| !r.is_empty()),
        "{what}: {body}"
    );
    assert_eq!(
        response.header(DECISION_HEADER),
        body["decision_id"].as_str(),
        "{what}"
    );
    body
}

/// Sends `request`, expects 200 and exactly one request at the upstream, which it returns.
fn forwarded(envoy: &Envoy, upstream: &Upstream, what: &str, request: &Request) -> ReceivedRequest {
    let before = upstream.count();
    let response = envoy.send(request).unwrap();
    assert_eq!(response.status, 200, "{what}: {}", response.text());
    assert_eq!(upstream.count(), before + 1, "{what}: not forwarded once");
    let seen = upstream.last().unwrap();
    assert_eq!(
        seen.header("authorization"),
        None,
        "{what}: credential forwarded"
    );
    assert_eq!(
        seen.header(DECISION_HEADER),
        response.header(DECISION_HEADER),
        "{what}: decision id"
    );
    seen
}

fn event_for(envoy: &Envoy, decision_id: &str) -> Value {
    envoy
        .audit_events()
        .into_iter()
        .find(|e| e["decision_id"] == decision_id)
        .unwrap_or_else(|| panic!("no audit event for {decision_id}"))
}

/// Headers a caller uses to pose as another agent, or to inject Bridle-looking headers.
fn spoofing(request: Request) -> Request {
    request
        .header("x-bridle-agent", "spiffe://demo.bridle.dev/agent/admin-bot")
        .header("X-Bridle-Agent-Owner", "mallory")
        .header("x-bridle-anything", "1")
        .header(DECISION_HEADER, "forged-decision-id")
}

/// The upstream got Bridle's identity headers once each and none of the caller's values.
fn assert_identity_headers(what: &str, seen: &ReceivedRequest, agent: &str, owner: &str) {
    let values = |name: &str| -> Vec<&str> {
        seen.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(
        values("x-bridle-agent"),
        [agent],
        "{what}: {:?}",
        seen.headers
    );
    assert_eq!(
        values("x-bridle-agent-owner"),
        [owner],
        "{what}: {:?}",
        seen.headers
    );
    assert!(
        values("x-bridle-anything").is_empty(),
        "{what}: {:?}",
        seen.headers
    );
    assert_eq!(values(DECISION_HEADER).len(), 1, "{what}");
    for caller_value in ["mallory", "admin-bot", "forged"] {
        assert!(
            !seen.contains(caller_value),
            "{what}: `{caller_value}` reached the upstream: {:?}",
            seen.headers
        );
    }
}

#[test]
fn envoy_closes_the_fail_open_paths() {
    let issuers = SpiffeIssuers::new().unwrap();
    let long_jti = format!("revoked-{}", "j".repeat(92));
    assert_eq!(long_jti.len(), 100);
    let config = issuers
        .config(
            ConfigBuilder::with_policy(inline_policy(
                "data.t.decision",
                &[("t.rego", POLICY)],
                json!({"agents": {DEPLOY: {"owner": DEPLOY_OWNER}}}),
            ))
            .set("delegation", json!({"inventory": "agents"}))
            .set("revocation", json!({"jti": [long_jti, "abc"]}))
            .set(
                "routes",
                json!([{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp"},
                       {"name": "deployments", "path": "/api/deployments", "methods": ["POST"], "dry_run": true}]),
            ),
        )
        .unwrap();
    let SpiffeIssuers {
        svid,
        plain_oidc,
        trusted_oidc,
    } = issuers;
    assert_eq!(config["issuers"][2]["issuer"], trusted_oidc.iss.as_str());
    assert_eq!(config["issuers"][2]["spiffe_subjects"], true);
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::start(&config, &upstream).unwrap();
    let deploy_token = svid.token_for(DEPLOY).unwrap();

    // --- 1. MCP bodies: JSON as UTF-8, unencoded, or 415
    let mcp = |content_type: &str| {
        Request::post("/mcp")
            .bearer(&deploy_token)
            .header("content-type", content_type)
    };
    let utf7_body = utf7_smuggling_body();
    assert!(String::from_utf8_lossy(&utf7_body)
        .contains("+ACIAfQ-,+ACI-name+ACI-:+ACI-deploy+AF8-service"));
    let plain = tools_call("read_report").into_bytes();
    let mut refused_ids = Vec::new();
    for (what, request, reason) in [
        (
            "charset=utf-7 smuggling deploy_service",
            mcp("application/json; charset=utf-7").body(utf7_body.clone()),
            "utf-7",
        ),
        (
            "content-encoding: gzip",
            mcp("application/json")
                .header("content-encoding", "gzip")
                .body(plain.clone()),
            "gzip",
        ),
    ] {
        let body = refused(
            &envoy,
            &upstream,
            what,
            &request,
            415,
            "unsupported_media_type",
        );
        assert!(has_reason(&body, reason), "{what}: {body}");
        refused_ids.push(body["decision_id"].as_str().unwrap().to_owned());
    }
    refused(
        &envoy,
        &upstream,
        "utf-7 without a credential: authentication first",
        &Request::post("/mcp")
            .header("content-type", "application/json; charset=utf-7")
            .body(utf7_body.clone()),
        401,
        "unauthenticated",
    );
    for (what, content_type) in [
        ("application/json", "application/json"),
        (
            "Application/JSON; charset=\"UTF-8\"",
            "Application/JSON; charset=\"UTF-8\"",
        ),
    ] {
        let seen = forwarded(
            &envoy,
            &upstream,
            what,
            &mcp(content_type).body(plain.clone()),
        );
        assert_eq!(seen.body, plain, "{what}: body changed");
        assert_eq!(seen.header("content-type"), Some(content_type), "{what}");
    }

    // --- 2. Revoked jtis compared as the raw claim
    let with_jti = |jti: &str| {
        Request::get("/api/reports").bearer(&svid.mint(&Claims::new(RESEARCH).jti(jti)).unwrap())
    };
    let body = refused(
        &envoy,
        &upstream,
        "100-character revoked jti",
        &with_jti(&long_jti),
        401,
        "unauthenticated",
    );
    assert!(has_reason(&body, "is revoked"), "{body}");
    refused(
        &envoy,
        &upstream,
        "revoked jti `abc`",
        &with_jti("abc"),
        401,
        "unauthenticated",
    );
    forwarded(
        &envoy,
        &upstream,
        "jti `a\\u{7}bc` is not `abc`",
        &with_jti("a\u{7}bc"),
    );

    // --- 3. Reserved headers: the caller's never reach the upstream
    let seen = forwarded(
        &envoy,
        &upstream,
        "allowed, policy sets no header",
        &spoofing(Request::get("/api/reports").bearer(&deploy_token)),
    );
    assert_identity_headers("allowed", &seen, DEPLOY, DEPLOY_OWNER);
    let seen = forwarded(
        &envoy,
        &upstream,
        "dry-run route, denied",
        &spoofing(Request::post("/api/deployments").bearer(&deploy_token)),
    );
    assert_eq!(seen.path, "/api/deployments");
    assert_identity_headers(
        "dry-run forward of a denied request",
        &seen,
        DEPLOY,
        DEPLOY_OWNER,
    );
    let event = event_for(&envoy, seen.header(DECISION_HEADER).unwrap());
    assert_eq!(event["outcome"], "deny", "{event}");
    assert_eq!(event["dry_run"], true, "{event}");

    // --- 4. SPIFFE IDs only from issuers allowed to assert them
    let agent_only = |issuer: &TestIssuer| {
        Request::get("/api/agent-only").bearer(&issuer.token_for(DEPLOY).unwrap())
    };
    let body = refused(
        &envoy,
        &upstream,
        "OIDC user named like deploy-bot",
        &agent_only(&plain_oidc),
        403,
        "forbidden",
    );
    assert_eq!(body["reasons"], json!(["denied"]));
    for (what, issuer) in [
        ("OIDC issuer with spiffe_subjects", &trusted_oidc),
        ("JWT-SVID", &svid),
    ] {
        let seen = forwarded(&envoy, &upstream, what, &agent_only(issuer));
        assert_eq!(seen.header("x-bridle-agent"), Some(DEPLOY), "{what}");
    }

    // --- 5. `;` in a path segment
    for (method, target) in [
        ("GET", "/api/reports;jsessionid=1"),
        ("GET", "/api/reports/q3;x=1"),
        ("GET", "/a/%3b/b"),
    ] {
        let what = format!("{method} {target}");
        let body = refused(
            &envoy,
            &upstream,
            &what,
            &Request::new(method, target).bearer(&deploy_token),
            400,
            "bad_request",
        );
        assert!(has_reason(&body, "`;`"), "{what}: {body}");
    }
    // Envoy's `normalize_path` resolves `..;` segments (and decodes `%2e`) before Bridle sees
    // the path: whatever it makes of them, the request is refused and never forwarded. When
    // Bridle still sees a `;`, it is its 400.
    for target in [
        "/api/deployments/..;/..;/mcp",
        "/api/deployments/%2e%2e;/mcp",
    ] {
        let before = upstream.count();
        let response = envoy
            .send(&Request::post(target).bearer(&deploy_token))
            .unwrap();
        let decided = response
            .header(DECISION_HEADER)
            .map(|id| event_for(&envoy, id)["request"]["path"].clone());
        println!(
            "POST {target}: {} {} (path Bridle decided on: {decided:?})",
            response.status,
            response.text(),
        );
        assert_eq!(
            upstream.count(),
            before,
            "POST {target} reached the upstream"
        );
        assert!(response.status >= 400, "POST {target}: {}", response.status);
        if decided
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|path| path.contains(';'))
        {
            assert_eq!(response.status, 400, "{}", response.text());
            assert_eq!(response.json().unwrap()["error"], "bad_request");
        }
    }

    // --- 8. A policy cannot re-frame the forwarded request
    let body = refused(
        &envoy,
        &upstream,
        "policy sets content-length",
        &Request::get("/api/reframe").bearer(&deploy_token),
        500,
        "policy_error",
    );
    assert!(has_reason(&body, "content-length"), "{body}");

    // --- the refusals of 1. were audited as such
    for id in &refused_ids {
        let event = event_for(&envoy, id);
        assert_eq!(event["outcome"], "unsupported_media_type", "{event}");
        assert_eq!(event["status"], 415, "{event}");
    }
    // No token ever reached the upstream.
    assert!(!upstream.ever_saw(&deploy_token));
}
