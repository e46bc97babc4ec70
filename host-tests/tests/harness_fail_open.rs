//! Fail-open paths a security review found, each closed in the core and checked here through
//! the compiled `.wasm` in the harness (the same cases in real Envoy: `envoy_fail_open.rs`).
//!
//! Every refusal is checked twice: the caller's status and JSON `error`, and that nothing went
//! upstream (a refusal that still forwards is the bug). Every allow is checked for exactly what
//! went upstream. Each test names the behaviour before the fix that it fails against.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::SystemTime;

use host_tests::config::{inline_policy, issuer_entry};
use host_tests::fixtures::{
    from_utf7, has_reason, tools_call, utf7_smuggling_body, SpiffeIssuers, DECISION_HEADER, DEPLOY,
    DEPLOY_OWNER, RESEARCH,
};
use host_tests::tokens::{Alg, Claims, TestIssuer};
use host_tests::{demo, ConfigBuilder};
use serde_json::{json, Value};
use wasmtime_harness::{Harness, HarnessError, HttpOutcome, HttpRequest, Plugin, PluginOptions};

/// The configuration field of the reserved header prefix (top level).
const PREFIX_FIELD: &str = "reserved_header_prefix";

fn harness() -> Harness {
    Harness::load(host_tests::paths::wasm().unwrap()).unwrap()
}

fn try_start(config: &Value) -> Result<Plugin, HarnessError> {
    harness().start(PluginOptions::with_config(config.to_string()).at(SystemTime::now()))
}

fn start(config: &Value) -> Plugin {
    try_start(config).unwrap()
}

fn workload() -> TestIssuer {
    TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap()
}

/// The issuer of approval credentials (`profile: approval`).
fn approvals() -> TestIssuer {
    TestIssuer::new("https://approvals.demo.bridle.dev", Alg::Es256)
        .unwrap()
        .with_profile("approval")
}

fn bearer(issuer: &TestIssuer, sub: &str) -> String {
    format!("Bearer {}", issuer.token_for(sub).unwrap())
}

/// A one-module inline policy (`package t`, entrypoint `data.t.decision`).
fn policy(source: &str, data: Value) -> Value {
    inline_policy("data.t.decision", &[("t.rego", source)], data)
}

/// Allows any caller with a SPIFFE ID, sets no header.
const ALLOW_AGENTS: &str = r#"package t
import rego.v1

default decision := {"allow": false, "reasons": ["no SPIFFE ID"]}

decision := {"allow": true, "reasons": []} if input.identity.spiffe.id
"#;

/// A refusal Bridle answered itself: `status`, JSON `error`, a non-empty `reasons`, and nothing
/// forwarded.
fn assert_refused(what: &str, outcome: &HttpOutcome, status: u16, error: &str) -> Value {
    assert!(
        outcome.is_local_response(),
        "{what}: forwarded to the upstream: {outcome:?}"
    );
    assert!(outcome.upstream_headers().is_none() && outcome.upstream_body().is_none());
    assert_eq!(outcome.status(), status, "{what}: {}", outcome.body_text());
    let body = outcome.body_json();
    assert_eq!(body["error"], error, "{what}: {body}");
    let reasons = body["reasons"].as_array().expect("reasons is an array");
    assert!(!reasons.is_empty(), "{what}: no reasons: {body}");
    body
}

fn assert_forwarded(what: &str, outcome: &HttpOutcome) {
    assert!(
        outcome.is_forwarded(),
        "{what}: not forwarded: {} {}",
        outcome.status(),
        outcome.body_text()
    );
    assert_eq!(outcome.status(), 200, "{what}");
}

fn audit_events(plugin: &Plugin) -> Vec<Value> {
    plugin
        .logs()
        .iter()
        .filter_map(|l| l.message.split_once("bridle.audit ").map(|(_, json)| json))
        .map(|json| serde_json::from_str(json).unwrap())
        .collect()
}

fn last_event(plugin: &Plugin) -> Value {
    audit_events(plugin).pop().expect("an audit event")
}

// --- 1. MCP bodies are read only as JSON in UTF-8, unencoded -------------------------------

fn mcp_config(issuer: &TestIssuer) -> Value {
    ConfigBuilder::agents()
        .unwrap()
        .issuer(issuer)
        .unwrap()
        .environment("prod")
        .set(
            "routes",
            json!([{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp"}]),
        )
        .set(
            "mcp",
            json!({"tools": {"read_report": {"action": "read", "data_class": "internal"},
                             "deploy_service": {"action": "execute", "data_class": "infrastructure"}}}),
        )
        .build()
}

/// Before: the body was read as UTF-8 whatever its `content-type` or `content-encoding`, and
/// the call forwarded; an upstream decoding it as declared could read another call.
#[test]
fn mcp_bodies_in_another_charset_type_or_coding_are_refused_415() {
    let issuer = workload();
    let mut plugin = start(&mcp_config(&issuer));
    let auth = bearer(&issuer, RESEARCH);
    let call = |headers: &[(&str, &str)], body: Vec<u8>| {
        let mut request = HttpRequest::post("/mcp")
            .authority("mcp.internal")
            .header("authorization", &auth);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.body(body)
    };
    // Read as UTF-8 the body calls `read_report`; an upstream reading it as UTF-7 (a JSON
    // parser keeps the last `name`) gets a call of `deploy_service`.
    let utf7_body = utf7_smuggling_body();
    let as_text = String::from_utf8(utf7_body.clone()).unwrap();
    let as_utf8: Value = serde_json::from_str(&as_text).unwrap();
    assert_eq!(as_utf8["params"]["name"], "read_report");
    assert!(!as_text.contains("deploy_service"));
    let decoded = from_utf7(&as_text).unwrap();
    let as_utf7: Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(
        as_utf7["params"]["name"], "deploy_service",
        "the body must name another tool when read as UTF-7: {decoded}"
    );
    let plain = tools_call("read_report").into_bytes();
    let utf16: Vec<u8> = String::from_utf8(plain.clone())
        .unwrap()
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();

    /// What, request headers, body, a fragment of the reason.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, &'a str);
    let refused: Vec<Case> = vec![
        (
            "charset=utf-7 smuggling deploy_service",
            vec![("content-type", "application/json; charset=utf-7")],
            utf7_body.clone(),
            "utf-7",
        ),
        (
            "charset=UTF-16, body sent as UTF-8",
            vec![("content-type", "application/json; charset=UTF-16")],
            plain.clone(),
            "UTF-16",
        ),
        (
            "charset=UTF-16, body in UTF-16LE",
            vec![("content-type", "application/json; charset=UTF-16")],
            utf16,
            "UTF-16",
        ),
        (
            "content-encoding: gzip",
            vec![
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            plain.clone(),
            "gzip",
        ),
        (
            "text/plain",
            vec![("content-type", "text/plain")],
            plain.clone(),
            "text/plain",
        ),
        (
            "two content-type headers",
            vec![
                ("content-type", "application/json"),
                ("content-type", "application/json; charset=utf-7"),
            ],
            plain.clone(),
            "content-type",
        ),
        ("no content-type", vec![], plain.clone(), "content-type"),
        (
            "another parameter",
            vec![("content-type", "application/json; profile=x")],
            plain.clone(),
            "profile",
        ),
    ];
    for (what, headers, body, reason) in &refused {
        let outcome = plugin.request(&call(headers, body.clone())).unwrap();
        let refusal = assert_refused(what, &outcome, 415, "unsupported_media_type");
        assert!(has_reason(&refusal, reason), "{what}: {refusal}");
        let event = last_event(&plugin);
        assert_eq!(
            event["outcome"], "unsupported_media_type",
            "{what}: {event}"
        );
        assert_eq!(event["status"], 415, "{what}");
        assert_eq!(
            event["decision_id"], refusal["decision_id"],
            "{what}: the event is this decision's"
        );
    }
    assert_eq!(
        plugin.metric("bridle.decisions.unsupported_media_type"),
        Some(refused.len() as u64)
    );

    // Authentication comes first: no credential is a 401 whatever the body's type.
    let outcome = plugin
        .request(
            &HttpRequest::post("/mcp")
                .authority("mcp.internal")
                .header("content-type", "application/json; charset=utf-7")
                .body(utf7_body.clone()),
        )
        .unwrap();
    assert_refused(
        "utf-7 without a credential",
        &outcome,
        401,
        "unauthenticated",
    );

    // JSON as UTF-8 is decided and forwarded byte for byte, in each accepted spelling.
    for (what, headers, body) in [
        (
            "application/json",
            vec![("content-type", "application/json")],
            plain.clone(),
        ),
        (
            "Application/JSON; charset=\"UTF-8\"",
            vec![("content-type", "Application/JSON; charset=\"UTF-8\"")],
            plain.clone(),
        ),
        (
            "charset=utf-8, content-encoding: identity",
            vec![
                ("content-type", "application/json; charset=utf-8"),
                ("content-encoding", "identity"),
            ],
            plain.clone(),
        ),
        (
            "the UTF-7 body declared as UTF-8 JSON: read as read_report, as Bridle reads it",
            vec![("content-type", "application/json")],
            utf7_body.clone(),
        ),
    ] {
        let outcome = plugin.request(&call(&headers, body.clone())).unwrap();
        assert_forwarded(what, &outcome);
        assert_eq!(outcome.upstream_body(), Some(body.as_slice()), "{what}");
        assert_eq!(last_event(&plugin)["outcome"], "allow", "{what}");
    }
    // And a UTF-8 call of a tool the agent may not use is still a 403.
    let outcome = plugin
        .request(&call(
            &[("content-type", "application/json")],
            tools_call("deploy_service").into_bytes(),
        ))
        .unwrap();
    assert_refused("deploy_service as UTF-8", &outcome, 403, "forbidden");
}

// --- 2. Revocation by `jti` compares the raw claim ------------------------------------------

/// Before: the token's `jti` was cut to 96 characters and stripped of control characters
/// before the comparison, so a revoked 100-character `jti` passed and `a\u{7}bc` was refused
/// as `abc`.
#[test]
fn revoked_jtis_are_compared_as_the_raw_claim() {
    let issuer = workload();
    let long_jti = format!("revoked-{}", "j".repeat(92));
    assert_eq!(long_jti.len(), 100);
    let config = ConfigBuilder::with_policy(policy(ALLOW_AGENTS, json!({})))
        .issuer(&issuer)
        .unwrap()
        .set("revocation", json!({"jti": [long_jti, "abc"]}))
        .build();
    let mut plugin = start(&config);
    let get = |jti: &str| {
        HttpRequest::get("/api/reports").header(
            "authorization",
            format!(
                "Bearer {}",
                issuer.mint(&Claims::new(RESEARCH).jti(jti)).unwrap()
            ),
        )
    };

    let outcome = plugin.request(&get(&long_jti)).unwrap();
    let refusal = assert_refused(
        "100-character revoked jti",
        &outcome,
        401,
        "unauthenticated",
    );
    assert!(has_reason(&refusal, "is revoked"), "{refusal}");
    assert!(
        has_reason(&refusal, &long_jti[..40]),
        "names the jti: {refusal}"
    );

    let outcome = plugin.request(&get("abc")).unwrap();
    let refusal = assert_refused("revoked jti `abc`", &outcome, 401, "unauthenticated");
    assert!(has_reason(&refusal, "token `abc` is revoked"), "{refusal}");

    // Other identifiers that only look alike once cut or cleaned are not revoked.
    let prefix_96 = &long_jti[..96];
    let sharing_96 = format!("{prefix_96}XXXX");
    for (what, jti) in [
        ("jti with a control character", "a\u{7}bc"),
        ("the revoked jti's first 96 characters", prefix_96),
        (
            "another jti sharing those 96 characters",
            sharing_96.as_str(),
        ),
    ] {
        let outcome = plugin.request(&get(jti)).unwrap();
        assert_forwarded(what, &outcome);
        assert!(outcome.upstream_header("authorization").is_none());
    }
}

// --- 3. Caller-supplied reserved headers never reach the upstream ---------------------------

/// Allows GET, asks for approval on DELETE, denies the rest; sets no header.
const GET_ONLY: &str = r#"package t
import rego.v1

default decision := {"allow": false, "reasons": ["only reads are allowed"]}

decision := {"allow": true, "reasons": []} if input.request.method == "GET"

decision := {"allow": false, "approval_required": true, "reasons": ["deletes need approval"]} if {
	input.request.method == "DELETE"
}
"#;

/// Headers a caller uses to pose as another agent, or to inject Bridle-looking headers.
fn spoofing(request: HttpRequest, prefix: &str) -> HttpRequest {
    request
        .header(
            format!("{prefix}agent"),
            DEPLOY.replace("deploy-bot", "admin-bot"),
        )
        .header(format!("{prefix}agent"), "spiffe://evil.example/agent/x")
        .header(
            format!("{}Agent-Owner", prefix.to_ascii_uppercase()),
            "mallory",
        )
        .header(format!("{prefix}anything"), "1")
        .header(DECISION_HEADER, "forged-decision-id")
}

/// What went upstream: `<prefix>agent` is `agent`, `<prefix>agent-owner` is `owner`, nothing
/// else under the prefix but the decision id, no caller value anywhere, the decision id is the
/// decision's.
fn assert_identity_headers(
    what: &str,
    outcome: &HttpOutcome,
    prefix: &str,
    agent: &str,
    owner: Option<&str>,
) {
    assert!(
        outcome.is_forwarded(),
        "{what}: not forwarded: {} {}",
        outcome.status(),
        outcome.body_text()
    );
    let sent = outcome.upstream_headers().unwrap();
    let values = |name: &str| -> Vec<String> {
        sent.get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    };
    assert_eq!(
        values(&format!("{prefix}agent")),
        [agent],
        "{what}: {sent:?}"
    );
    assert_eq!(
        values(&format!("{prefix}agent-owner")),
        owner.into_iter().collect::<Vec<_>>(),
        "{what}: {sent:?}"
    );
    assert!(
        values(&format!("{prefix}anything")).is_empty(),
        "{what}: {sent:?}"
    );
    for (name, value) in sent.iter() {
        let value = String::from_utf8_lossy(value);
        assert!(
            !value.contains("mallory")
                && !value.contains("evil.example")
                && !value.contains("admin-bot")
                && !value.contains("forged"),
            "{what}: a caller's value reached the upstream: {name}: {value}"
        );
        if name.starts_with(prefix) {
            assert!(
                [format!("{prefix}agent"), format!("{prefix}agent-owner")].contains(name)
                    || name == DECISION_HEADER,
                "{what}: unexpected reserved header {name}"
            );
        }
    }
    let id = outcome.header(DECISION_HEADER).expect("decision id");
    assert_eq!(values(DECISION_HEADER), [id], "{what}");
}

fn reserved_config(workload: &TestIssuer, approvals: &TestIssuer, oidc: &TestIssuer) -> Value {
    ConfigBuilder::with_policy(policy(
        GET_ONLY,
        json!({"agents": {DEPLOY: {"owner": DEPLOY_OWNER}}}),
    ))
    .issuer(workload)
    .unwrap()
    .issuer(oidc)
    .unwrap()
    .set("delegation", json!({"inventory": "agents"}))
    .set(
        "approval",
        json!({"issuers": [issuer_entry(approvals).unwrap()]}),
    )
    .set(
        "routes",
        json!([{"name": "deployments", "path": "/api/deployments", "methods": ["POST"], "dry_run": true}]),
    )
    .build()
}

/// Before: a policy that set no header left the caller's `x-bridle-*` headers in place, so the
/// upstream trusted the caller's `x-bridle-agent` and `x-bridle-agent-owner`.
#[test]
fn caller_supplied_reserved_headers_never_reach_the_upstream() {
    let workload = workload();
    let approvals = approvals();
    let oidc = TestIssuer::new("https://idp.demo.bridle.dev", Alg::Es256)
        .unwrap()
        .with_profile("oidc");
    let mut plugin = start(&reserved_config(&workload, &approvals, &oidc));
    let as_deploy = |method: &str, path: &str| {
        spoofing(
            HttpRequest::new(method, path)
                .authority("api.internal")
                .header("authorization", bearer(&workload, DEPLOY)),
            "x-bridle-",
        )
    };

    // Allowed by a policy that sets no header.
    let outcome = plugin.request(&as_deploy("GET", "/api/reports")).unwrap();
    assert_identity_headers("allowed", &outcome, "x-bridle-", DEPLOY, Some(DEPLOY_OWNER));
    assert!(outcome.upstream_header("authorization").is_none());

    // An agent the inventory has no owner for: no owner header at all, not the caller's.
    let outcome = plugin
        .request(&spoofing(
            HttpRequest::get("/api/reports").header("authorization", bearer(&workload, RESEARCH)),
            "x-bridle-",
        ))
        .unwrap();
    assert_identity_headers("allowed, no owner", &outcome, "x-bridle-", RESEARCH, None);

    // A caller without a SPIFFE ID is named by its subject.
    let outcome = plugin
        .request(&spoofing(
            HttpRequest::get("/api/reports").header("authorization", bearer(&oidc, "user:alice")),
            "x-bridle-",
        ))
        .unwrap();
    // The one-rule policy allows every GET, SPIFFE ID or not.
    assert_identity_headers(
        "allowed, subject",
        &outcome,
        "x-bridle-",
        "user:alice",
        None,
    );

    // A dry-run route forwards a denied request: the same cleaning applies.
    let outcome = plugin
        .request(&as_deploy("POST", "/api/deployments"))
        .unwrap();
    assert_identity_headers(
        "dry-run route, denied",
        &outcome,
        "x-bridle-",
        DEPLOY,
        Some(DEPLOY_OWNER),
    );
    let event = last_event(&plugin);
    assert_eq!(event["outcome"], "deny");
    assert_eq!(event["dry_run"], true);

    // Approved by a human: forwarded with Bridle's identity headers, none of the caller's.
    let asked = plugin
        .request(&as_deploy("DELETE", "/api/deployments/web"))
        .unwrap();
    let refusal = assert_refused("approval needed", &asked, 403, "approval_required");
    let approval = approvals
        .mint(
            &Claims::new("approver:bob")
                .claim("action_digest", refusal["action_digest"].clone())
                .jti("approval-reserved-1"),
        )
        .unwrap();
    let outcome = plugin
        .request(&as_deploy("DELETE", "/api/deployments/web").header("bridle-approval", &approval))
        .unwrap();
    assert_identity_headers(
        "approved",
        &outcome,
        "x-bridle-",
        DEPLOY,
        Some(DEPLOY_OWNER),
    );
    assert!(outcome.upstream_header("bridle-approval").is_none());
    assert_eq!(last_event(&plugin)["approved_by"], "approver:bob");

    // A whole configuration in dry run, with a policy that denies everything.
    let mut config = reserved_config(&workload, &approvals, &oidc);
    config["policy"] = policy(
        "package t\nimport rego.v1\n\ndecision := {\"allow\": false, \"reasons\": [\"no\"]}\n",
        json!({"agents": {DEPLOY: {"owner": DEPLOY_OWNER}}}),
    );
    config["dry_run"] = json!(true);
    let mut dry = start(&config);
    let outcome = dry.request(&as_deploy("GET", "/api/reports")).unwrap();
    assert_identity_headers(
        "dry_run: true, denied",
        &outcome,
        "x-bridle-",
        DEPLOY,
        Some(DEPLOY_OWNER),
    );
    let event = last_event(&dry);
    assert_eq!(event["outcome"], "deny");
    assert_eq!(event["dry_run"], true);
}

/// Before: there was no reserved prefix; `x-gw-agent` from the caller went through.
#[test]
fn a_custom_reserved_prefix_is_cleaned_and_the_default_one_is_then_the_callers() {
    let workload = workload();
    let config = ConfigBuilder::with_policy(policy(
        ALLOW_AGENTS,
        json!({"agents": {DEPLOY: {"owner": DEPLOY_OWNER}}}),
    ))
    .issuer(&workload)
    .unwrap()
    .set("delegation", json!({"inventory": "agents"}))
    .set(PREFIX_FIELD, json!("x-gw-"))
    .build();
    let mut plugin = start(&config);
    let outcome = plugin
        .request(
            &spoofing(
                HttpRequest::get("/api/reports").header("authorization", bearer(&workload, DEPLOY)),
                "x-gw-",
            )
            .header("x-bridle-foo", "bar"),
        )
        .unwrap();
    assert_identity_headers(
        "x-gw- prefix",
        &outcome,
        "x-gw-",
        DEPLOY,
        Some(DEPLOY_OWNER),
    );
    // No longer reserved: passed through as the caller sent it; Bridle sets none of its own.
    assert_eq!(
        outcome.upstream_header("x-bridle-foo").as_deref(),
        Some("bar")
    );
    assert!(outcome.upstream_header("x-bridle-agent").is_none());
    assert!(outcome.upstream_header("x-bridle-agent-owner").is_none());
}

/// Before: the field did not exist; now a prefix that cannot start a header name is
/// refused at configuration, naming the field.
#[test]
fn a_reserved_prefix_that_is_not_a_header_name_is_refused_at_configuration() {
    let workload = workload();
    let config = |prefix: &str| {
        ConfigBuilder::with_policy(policy(ALLOW_AGENTS, json!({})))
            .issuer(&workload)
            .unwrap()
            .set(PREFIX_FIELD, json!(prefix))
            .build()
    };
    // A header-name prefix is accepted.
    try_start(&config("x-gw-")).unwrap();
    for prefix in ["bad prefix", "", "x-bridle-\n", "x:"] {
        match try_start(&config(prefix)) {
            Err(err @ HarnessError::ConfigureRejected { .. }) => {
                let logs: Vec<String> = err.logs().iter().map(|l| l.message.clone()).collect();
                assert!(
                    logs.iter().any(|l| l.contains("configuration refused")
                        && l.contains(PREFIX_FIELD)
                        && !l.contains("unknown field")),
                    "{prefix:?}: {logs:#?}"
                );
            }
            Err(other) => panic!("{prefix:?}: unexpected failure: {other}"),
            Ok(_) => panic!("{prefix:?}: the plugin accepted the prefix"),
        }
    }
}

// --- 4. SPIFFE IDs only from issuers allowed to assert them --------------------------------

/// Before: any issuer whose `sub` parsed as a SPIFFE ID produced `input.identity.spiffe`, so
/// an OIDC user named `spiffe://…/agent/deploy-bot` was deploy-bot to the policy.
#[test]
fn only_spiffe_issuers_assert_spiffe_ids() {
    let issuers = SpiffeIssuers::new().unwrap();
    let source = format!(
        "package t\nimport rego.v1\n\n\
         default decision := {{\"allow\": false, \"reasons\": [\"not deploy-bot\"]}}\n\n\
         decision := {{\"allow\": true, \"reasons\": []}} if input.identity.spiffe.id == \"{DEPLOY}\"\n"
    );
    let config = issuers
        .config(ConfigBuilder::with_policy(policy(&source, json!({}))))
        .unwrap();
    assert_eq!(
        config["issuers"][2]["issuer"],
        issuers.trusted_oidc.iss.as_str()
    );
    assert_eq!(config["issuers"][2]["spiffe_subjects"], true);
    let mut plugin = start(&config);
    let get = |issuer: &TestIssuer| {
        HttpRequest::get("/api/deployments").header("authorization", bearer(issuer, DEPLOY))
    };

    let outcome = plugin.request(&get(&issuers.plain_oidc)).unwrap();
    let refusal = assert_refused("OIDC sub = deploy-bot's ID", &outcome, 403, "forbidden");
    assert_eq!(refusal["reasons"], json!(["not deploy-bot"]));

    let outcome = plugin.request(&get(&issuers.trusted_oidc)).unwrap();
    assert_forwarded("OIDC issuer with spiffe_subjects", &outcome);
    assert_eq!(
        outcome.upstream_header("x-bridle-agent").as_deref(),
        Some(DEPLOY)
    );

    let outcome = plugin.request(&get(&issuers.svid)).unwrap();
    assert_forwarded("JWT-SVID", &outcome);
    assert_eq!(
        outcome.upstream_header("x-bridle-agent").as_deref(),
        Some(DEPLOY)
    );
}

// --- 5. No `;` in path segments -------------------------------------------------------------

/// Before: `;` was an ordinary character of a segment, so `/api/deployments/..;/..;/mcp` was
/// judged as a deployments path while a servlet container serves `/mcp`.
#[test]
fn path_parameters_are_refused() {
    let issuer = workload();
    let config = ConfigBuilder::with_policy(policy(ALLOW_AGENTS, json!({})))
        .issuer(&issuer)
        .unwrap()
        .build();
    let mut plugin = start(&config);
    let auth = bearer(&issuer, DEPLOY);
    for (method, path) in [
        ("POST", "/api/deployments/..;/..;/mcp"),
        ("GET", "/api/reports;jsessionid=1"),
        ("GET", "/api/reports/q3;"),
        ("GET", "/a/%3b/b"),
        ("GET", "/a/%3B/b"),
        ("GET", "/api/deployments/%2e%2e;/mcp"),
    ] {
        let what = format!("{method} {path}");
        for request in [
            HttpRequest::new(method, path).header("authorization", &auth),
            // Checked before the credential.
            HttpRequest::new(method, path),
        ] {
            let outcome = plugin.request(&request.body(b"{}".to_vec())).unwrap();
            let refusal = assert_refused(&what, &outcome, 400, "bad_request");
            assert!(has_reason(&refusal, "`;`"), "{what}: {refusal}");
        }
    }
    // In the query, `;` is data.
    let outcome = plugin
        .request(&HttpRequest::get("/api/reports?x=1;2").header("authorization", &auth))
        .unwrap();
    assert_forwarded("`;` in the query", &outcome);
}

// --- 6. `audit.mask` matches keys in any case -----------------------------------------------

/// Before: `mask: ["password"]` left `Password` and `PASSWORD` in the audit event.
#[test]
fn audit_mask_matches_keys_in_any_case() {
    let issuer = workload();
    let config = ConfigBuilder::with_policy(policy(ALLOW_AGENTS, json!({})))
        .issuer(&issuer)
        .unwrap()
        .set(
            "routes",
            json!([{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp"}]),
        )
        .set(
            "audit",
            json!({"arguments": "include", "mask": ["password"]}),
        )
        .build();
    let mut plugin = start(&config);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "login", "arguments": {
            "Password": "hunter2",
            "nested": {"PASSWORD": "nested-secret-x", "list": [{"pAsSwOrD": "third-secret"}]},
            "user": "alice"}}})
    .to_string();
    let outcome = plugin
        .request(
            &HttpRequest::post("/mcp")
                .header("authorization", bearer(&issuer, RESEARCH))
                .header("content-type", "application/json")
                .body(body.clone()),
        )
        .unwrap();
    assert_forwarded("masked call", &outcome);
    assert_eq!(
        outcome.upstream_body(),
        Some(body.as_bytes()),
        "the body is forwarded untouched"
    );

    let event = last_event(&plugin);
    assert_eq!(event["intent"]["tool"], "login");
    assert_eq!(
        event["intent"]["arguments"],
        json!({"Password": "***", "nested": {"PASSWORD": "***", "list": [{"pAsSwOrD": "***"}]},
               "user": "alice"})
    );
    for line in plugin.logs() {
        for secret in ["hunter2", "nested-secret-x", "third-secret"] {
            assert!(
                !line.message.contains(secret),
                "`{secret}` is in the log: {}",
                line.message
            );
        }
    }
}

// --- 7. Configured credential headers are hidden from the policy ----------------------------

/// Before: only the workload credential's header was left out of `input.request.headers`; the
/// task and approval credentials were visible to the policy (and to anything it logs).
#[test]
fn configured_credential_headers_are_hidden_from_the_policy() {
    let workload = workload();
    let tasks = TestIssuer::new("https://txn.demo.bridle.dev", Alg::Es256)
        .unwrap()
        .with_profile("txn-token");
    let approvals = approvals();
    let task = tasks
        .mint(
            &Claims::new("user:alice")
                .typ("txntoken+jwt")
                .claim("txn", json!("t-hidden"))
                .claim("req_wl", json!(RESEARCH))
                .claim("scope", json!("reports:read")),
        )
        .unwrap();
    let approval = approvals
        .mint(
            &Claims::new("approver:bob")
                .claim("action_digest", json!("0".repeat(64)))
                .jti("approval-hidden"),
        )
        .unwrap();
    let workload_token = workload.token_for(RESEARCH).unwrap();
    const SEES: &str = r#"package t
import rego.v1

default decision := {"allow": false, "reasons": ["no SPIFFE ID"]}

decision := {"allow": true, "reasons": []} if {
	input.identity.spiffe.id
	count(seen) == 0
}

decision := {"allow": false, "reasons": sort(seen)} if {
	input.identity.spiffe.id
	count(seen) > 0
}

seen contains "txn-token header" if input.request.headers["txn-token"]

seen contains "approval header" if input.request.headers["bridle-approval"]

seen contains "authorization header" if input.request.headers.authorization

seen contains "a credential's text" if {
	some secret in data.secrets
	contains(json.marshal(input), secret)
}

seen contains "x-probe header" if input.request.headers["x-probe"]
"#;
    // The signatures are unique to each token: finding one in the input means the token is there.
    let signature = |token: &str| token.rsplit('.').next().unwrap().to_owned();
    let config = ConfigBuilder::with_policy(policy(
        SEES,
        json!({"secrets": [signature(&task), signature(&approval), signature(&workload_token)]}),
    ))
    .issuer(&workload)
    .unwrap()
    .set("task", json!({"issuers": [issuer_entry(&tasks).unwrap()]}))
    .set(
        "approval",
        json!({"issuers": [issuer_entry(&approvals).unwrap()]}),
    )
    .build();
    let mut plugin = start(&config);
    let request = HttpRequest::get("/api/reports")
        .header("authorization", format!("Bearer {workload_token}"))
        .header("txn-token", &task)
        .header("bridle-approval", &approval);

    let outcome = plugin.request(&request).unwrap();
    assert_forwarded("credentials present, hidden from the policy", &outcome);
    for credential in ["authorization", "txn-token", "bridle-approval"] {
        assert!(
            outcome.upstream_header(credential).is_none(),
            "{credential} forwarded"
        );
    }
    assert_eq!(
        last_event(&plugin)["task"],
        "t-hidden",
        "the task credential was used"
    );

    // The policy does read the request headers: another header is seen, and refused.
    let outcome = plugin
        .request(&request.clone().header("x-probe", "1"))
        .unwrap();
    let refusal = assert_refused("x-probe", &outcome, 403, "forbidden");
    assert_eq!(refusal["reasons"], json!(["x-probe header"]));
}

// --- 8. A policy cannot set framing or hop-by-hop headers -----------------------------------

/// Before: a decision's `headers` could set `content-length`, `transfer-encoding`, `host`, …
/// on the forwarded request, re-framing or re-routing it.
#[test]
fn policies_cannot_set_framing_headers() {
    let issuer = workload();
    let auth = bearer(&issuer, RESEARCH);
    let start_with = |name: &str, value: &str| {
        let source = format!(
            "package t\nimport rego.v1\n\n\
             decision := {{\"allow\": true, \"reasons\": [], \"headers\": {{\"{name}\": \"{value}\"}}}}\n"
        );
        let config = ConfigBuilder::with_policy(policy(&source, json!({})))
            .issuer(&issuer)
            .unwrap()
            .build();
        start(&config)
    };
    let post = || {
        HttpRequest::post("/api/reports")
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(br#"{"title": "q4"}"#.to_vec())
    };

    // A policy header that frames nothing is set as asked.
    let mut plugin = start_with("x-report-class", "internal");
    let outcome = plugin.request(&post()).unwrap();
    assert_forwarded("x-report-class", &outcome);
    assert_eq!(
        outcome.upstream_header("x-report-class").as_deref(),
        Some("internal")
    );

    for (name, value) in [
        ("content-length", "0"),
        ("transfer-encoding", "chunked"),
        ("connection", "close"),
        ("host", "admin.internal"),
        ("te", "trailers"),
        ("upgrade", "websocket"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "close"),
        ("trailer", "x-checksum"),
    ] {
        let mut plugin = start_with(name, value);
        let outcome = plugin.request(&post()).unwrap();
        let refusal = assert_refused(name, &outcome, 500, "policy_error");
        assert_eq!(last_event(&plugin)["outcome"], "error", "{name}");
        assert!(has_reason(&refusal, name), "{name}: {refusal}");
    }
}
