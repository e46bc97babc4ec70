//! Task credentials, delegation and MCP intent through the decision pipeline, natively.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use bridle_core::{Authorizer, Decision, Outcome, RequestView};
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};

const ISS: &str = "spiffe://demo.bridle.dev";
const TXN_ISS: &str = "https://txn.demo.bridle.dev";
/// A token-exchange service: its credentials are delegated (`act`), the caller is the actor.
const STS_ISS: &str = "https://sts.demo.bridle.dev";
const AUD: &str = "bridle-gateway";
const AGENT: &str = "spiffe://demo.bridle.dev/agent/ops-bot";
const OTHER: &str = "spiffe://demo.bridle.dev/agent/research-bot";

mod support;
use support::{es256_jwk, now, TestHost};

const POLICY: &str = r#"package agents
import rego.v1
default decision := {"allow": false, "reasons": ["not allowed"]}
decision := {"allow": true, "headers": {"x-txn": object.get(input, ["task", "txn"], ""), "x-action": input.intent.action, "x-depth": sprintf("%d", [input.delegation.depth])}} if {
    input.intent.tool in {"read_file", "list_reports"}
}
decision := {"allow": true, "headers": {"x-action": input.intent.action}} if {
    input.intent.tool == "deploy_service"
    input.intent.arguments.env != "prod"
}
decision := {"allow": false, "approval_required": true, "reasons": [sprintf("agent %s may not call tool deploy_service in prod without approval", [input.identity.spiffe.id])]} if {
    input.intent.tool == "deploy_service"
    input.intent.arguments.env == "prod"
}
decision := {"allow": true} if input.intent.rpc_method == "tools/list"
decision := {"allow": true, "headers": {"x-action": input.intent.action, "x-resource": input.intent.resource, "x-report": input.intent.params.report}} if input.intent.route == "reports"
"#;

struct Fixture {
    workload: ES256KeyPair,
    txn: ES256KeyPair,
    approver: ES256KeyPair,
    authorizer: Authorizer,
    host: TestHost,
}

impl Fixture {
    fn new() -> Self {
        Self::with(json!({}))
    }

    /// The standard configuration with top-level blocks of `extra` added or replaced.
    fn with(extra: Value) -> Self {
        let workload = ES256KeyPair::generate().with_key_id("w1");
        let txn = ES256KeyPair::generate().with_key_id("t1");
        let approver = ES256KeyPair::generate().with_key_id("a1");
        let config = json!({
            "issuers": [{"issuer": ISS, "profile": "jwt-svid", "trust_domain": "demo.bridle.dev", "audiences": [AUD], "algorithms": ["ES256"], "jwks": {"keys": [es256_jwk(&workload, "w1")]}},
                        {"issuer": STS_ISS, "profile": "oidc", "spiffe_subjects": true, "trust_domain": "demo.bridle.dev", "audiences": [AUD], "algorithms": ["ES256"], "jwks": {"keys": [es256_jwk(&workload, "w1")]}}],
            "task": {"issuers": [{"issuer": TXN_ISS, "profile": "txn-token", "audiences": [AUD], "algorithms": ["ES256"], "jwks": {"keys": [es256_jwk(&txn, "t1")]}}],
                     "max_lifetime_seconds": 600},
            "delegation": {"max_depth": 3, "inventory": "agents"},
            "approval": {"issuers": [{"issuer": "https://approvals.demo.bridle.dev", "profile": "approval", "audiences": [AUD], "algorithms": ["ES256"], "jwks": {"keys": [es256_jwk(&approver, "a1")]}}]},
            "routes": [
                {"name": "mcp", "path": "/mcp", "protocol": "mcp", "require_task": true},
                {"name": "reports", "path": "/api/reports/{report}", "methods": ["GET"], "resource": "report"}
            ],
            "mcp": {"max_body_bytes": 4096, "filter_tools_list": true, "tools": {
                "read_file": {"action": "read", "data_class": "internal"},
                "deploy_service": {"action": "execute", "data_class": "infrastructure"}}},
            "policy": {"entrypoint": "data.agents.decision", "modules": [{"name": "a.rego", "source": POLICY}],
                       "data": {"agents": {"spiffe://demo.bridle.dev/agent/planner": {"scopes": ["mcp:read"]}}}}
        });
        let mut config = config;
        for (key, value) in extra.as_object().unwrap() {
            config[key] = value.clone();
        }
        let authorizer = Authorizer::from_json(config.to_string().as_bytes(), 3).unwrap();
        Self {
            workload,
            txn,
            approver,
            authorizer,
            host: TestHost::at(now()),
        }
    }

    fn identity(&self, sub: &str) -> String {
        self.workload
            .sign(
                Claims::create(Duration::from_secs(300))
                    .with_issuer(ISS)
                    .with_subject(sub)
                    .with_audience(AUD),
            )
            .unwrap()
    }

    /// A credential of `issuer` for `sub` with extra claims (`act`, `may_act`, `scope`).
    fn credential(&self, issuer: &str, sub: &str, extra: Value) -> String {
        let custom = extra.as_object().unwrap().clone();
        let claims = Claims::with_custom_claims(custom, Duration::from_secs(300))
            .with_issuer(issuer)
            .with_subject(sub)
            .with_audience(AUD);
        self.workload.sign(claims).unwrap()
    }

    fn task(&self, extra: Value, lifetime: u64) -> String {
        let mut custom: Map<String, Value> =
            json!({"txn": "task-7", "req_wl": AGENT, "scope": "mcp:read mcp:execute"})
                .as_object()
                .unwrap()
                .clone();
        for (k, v) in extra.as_object().unwrap() {
            custom.insert(k.clone(), v.clone());
        }
        let claims = Claims::with_custom_claims(custom, Duration::from_secs(lifetime))
            .with_issuer(TXN_ISS)
            .with_subject("user:alice")
            .with_audience(AUD);
        let options = HeaderOptions {
            signature_type: Some("txntoken+jwt".into()),
            ..Default::default()
        };
        self.txn.sign_with_options(claims, &options).unwrap()
    }

    fn approval(&self, digest: &str, jti: &str, lifetime: u64) -> String {
        let custom = json!({"action_digest": digest, "approver": "alice@demo.bridle.dev"});
        let claims = Claims::with_custom_claims(
            custom.as_object().unwrap().clone(),
            Duration::from_secs(lifetime),
        )
        .with_issuer("https://approvals.demo.bridle.dev")
        .with_audience(AUD)
        .with_jwt_id(jti);
        self.approver.sign(claims).unwrap()
    }

    fn mcp(
        &mut self,
        identity: &str,
        task: Option<&str>,
        body: &[u8],
        extra_headers: &[(&str, &str)],
    ) -> Decision {
        let mut view = RequestView {
            method: "POST".into(),
            path: "/mcp".into(),
            authority: "mcp.internal".into(),
            ..Default::default()
        };
        view.headers.push((
            "authorization".into(),
            format!("Bearer {identity}").into_bytes(),
        ));
        view.headers
            .push(("content-type".into(), b"application/json".to_vec()));
        if let Some(task) = task {
            view.headers
                .push(("txn-token".into(), task.as_bytes().to_vec()));
        }
        for (n, v) in extra_headers {
            view.headers.push((n.to_string(), v.as_bytes().to_vec()));
        }
        assert_eq!(self.authorizer.body_limit(&view), Some(4096));
        view.body = Some(body.to_vec());
        self.authorizer.decide(&view, &mut self.host)
    }
}

fn call(tool: &str, arguments: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}).to_string().into_bytes()
}

fn header<'d>(d: &'d Decision, name: &str) -> Option<&'d str> {
    d.upstream_headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_bound_task_credential_lets_the_agent_call_its_tools() {
    let mut f = Fixture::new();
    let (identity, task) = (f.identity(AGENT), f.task(json!({}), 300));
    let d = f.mcp(
        &identity,
        Some(&task),
        &call("read_file", json!({"path": "/etc/motd"})),
        &[],
    );
    assert_eq!(d.outcome, Outcome::Allow, "{:?}", d.reasons);
    assert_eq!(header(&d, "x-txn"), Some("task-7"));
    assert_eq!(header(&d, "x-action"), Some("read"));
    assert!(
        d.remove_headers.contains(&"authorization".to_owned())
            && d.remove_headers.contains(&"txn-token".to_owned())
    );
    let event: Value = serde_json::from_str(f.host.events.last().unwrap()).unwrap();
    assert_eq!(event["task"], "task-7");
    assert_eq!(
        event["intent"],
        json!({"protocol": "mcp", "action": "read", "route": "mcp", "rpc_method": "tools/call", "tool": "read_file", "data_class": "internal"})
    );
    assert!(
        !f.host.events.last().unwrap().contains("/etc/motd"),
        "tool arguments stay out of the audit trail"
    );
}

#[test]
fn argument_level_rules_are_enforced_at_request_time() {
    let mut f = Fixture::new();
    let (identity, task) = (f.identity(AGENT), f.task(json!({}), 300));
    let staging = f.mcp(
        &identity,
        Some(&task),
        &call("deploy_service", json!({"env": "staging"})),
        &[],
    );
    assert_eq!(staging.outcome, Outcome::Allow, "{:?}", staging.reasons);
    assert_eq!(header(&staging, "x-action"), Some("execute"));
    let prod = f.mcp(
        &identity,
        Some(&task),
        &call("deploy_service", json!({"env": "prod"})),
        &[],
    );
    assert_eq!(
        (prod.outcome, prod.status()),
        (Outcome::ApprovalRequired, 403)
    );
    assert_eq!(
        prod.reasons,
        [format!(
            "agent {AGENT} may not call tool deploy_service in prod without approval"
        )]
    );
}

#[test]
fn task_credentials_are_required_short_lived_and_bound() {
    let mut f = Fixture::new();
    let identity = f.identity(AGENT);
    let body = call("read_file", json!({}));
    let missing = f.mcp(&identity, None, &body, &[]);
    assert_eq!(
        (missing.outcome, missing.reasons.as_slice()),
        (
            Outcome::Unauthenticated,
            ["route `mcp` requires a task credential in header `txn-token`".to_owned()].as_slice()
        )
    );
    let standing = f.task(json!({}), 3600);
    let d = f.mcp(&identity, Some(&standing), &body, &[]);
    assert_eq!(d.outcome, Outcome::Unauthenticated);
    assert_eq!(d.reasons, ["task credential: token lives 3600s (`exp` - `iat`), over the 600s maximum: standing access is refused"]);
    let theirs = f.task(json!({"req_wl": OTHER}), 300);
    let d = f.mcp(&identity, Some(&theirs), &body, &[]);
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(
        d.reasons,
        [format!(
            "task credential is bound to `{OTHER}`, not to the caller `{AGENT}`"
        )]
    );
    let workload_signed = f.identity(AGENT);
    let d = f.mcp(&identity, Some(&workload_signed), &body, &[]);
    assert_eq!(d.outcome, Outcome::Unauthenticated);
    assert!(
        d.reasons[0].starts_with("task credential: token issuer"),
        "{:?}",
        d.reasons
    );
}

#[test]
fn delegation_may_only_narrow() {
    let mut f = Fixture::new();
    let identity = f.identity(AGENT);
    let body = call("read_file", json!({}));
    let narrowing = f.task(json!({"scope": "mcp:read", "act": {"sub": AGENT, "act": {"sub": "spiffe://demo.bridle.dev/agent/planner"}}}), 300);
    let d = f.mcp(&identity, Some(&narrowing), &body, &[]);
    assert_eq!(d.outcome, Outcome::Allow, "{:?}", d.reasons);
    assert_eq!(header(&d, "x-depth"), Some("2"));

    let amplifying = f.task(json!({"scope": "mcp:read mcp:execute", "act": {"sub": AGENT, "scope": "mcp:read mcp:execute", "act": {"sub": "spiffe://demo.bridle.dev/agent/planner"}}}), 300);
    let d = f.mcp(&identity, Some(&amplifying), &body, &[]);
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(d.reasons, [format!("delegation hop 2 (spiffe://demo.bridle.dev/agent/planner → {AGENT}) amplifies privilege: {AGENT} holds `mcp:execute`, which spiffe://demo.bridle.dev/agent/planner did not")]);

    let not_me = f.task(json!({"act": {"sub": OTHER}}), 300);
    let d = f.mcp(&identity, Some(&not_me), &body, &[]);
    assert_eq!(
        d.reasons,
        [format!(
            "delegation chain's current actor `{OTHER}` is not the caller `{AGENT}`"
        )]
    );

    let deep = f.task(json!({"act": {"sub": AGENT, "act": {"sub": "a", "act": {"sub": "b", "act": {"sub": "c"}}}}}), 300);
    let d = f.mcp(&identity, Some(&deep), &body, &[]);
    assert_eq!(d.reasons, ["delegation chain is deeper than 3"]);

    let may_act = f.task(json!({"may_act": {"sub": OTHER}}), 300);
    let d = f.mcp(&identity, Some(&may_act), &body, &[]);
    assert_eq!(
        d.reasons,
        [format!(
            "`{AGENT}` is not permitted to act for `user:alice` (`may_act`)"
        )]
    );
}

#[test]
fn mcp_bodies_that_could_be_read_two_ways_are_refused() {
    let mut f = Fixture::new();
    let (identity, task) = (f.identity(AGENT), f.task(json!({}), 300));
    let body = call("read_file", json!({}));
    let mismatch = f.mcp(
        &identity,
        Some(&task),
        &body,
        &[("mcp-name", "deploy_service")],
    );
    assert_eq!(
        (mismatch.outcome, mismatch.status()),
        (Outcome::BadRequest, 400)
    );
    assert_eq!(
        mismatch.reasons,
        ["header `mcp-name` says `deploy_service` but the body says `read_file`"]
    );
    let agree = f.mcp(
        &identity,
        Some(&task),
        &body,
        &[("mcp-method", "tools/call"), ("mcp-name", "read_file")],
    );
    assert_eq!(agree.outcome, Outcome::Allow);
    for bad in [&b"[{\"jsonrpc\":\"2.0\",\"method\":\"tools/list\"}]"[..], b"{\"jsonrpc\":\"2.0\",", b"\xff\xfe", br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name":"deploy_service"}}"#] {
        let d = f.mcp(&identity, Some(&task), bad, &[]);
        assert_eq!(d.outcome, Outcome::BadRequest, "{:?}", String::from_utf8_lossy(bad));
    }
    let view = RequestView {
        method: "POST".into(),
        path: "/mcp".into(),
        ..Default::default()
    };
    let d = f.authorizer.refuse_oversized(&view, 4096, &mut f.host);
    assert_eq!((d.outcome, d.status()), (Outcome::PayloadTooLarge, 413));
}

#[test]
fn http_routes_give_action_resource_and_parameters() {
    let mut f = Fixture::new();
    let identity = f.identity(AGENT);
    let view = RequestView {
        method: "GET".into(),
        path: "/api/reports/q3".into(),
        headers: vec![(
            "authorization".into(),
            format!("Bearer {identity}").into_bytes(),
        )],
        ..Default::default()
    };
    assert_eq!(f.authorizer.body_limit(&view), None);
    let d = f.authorizer.decide(&view, &mut f.host);
    assert_eq!(d.outcome, Outcome::Allow, "{:?}", d.reasons);
    assert_eq!(
        (
            header(&d, "x-action"),
            header(&d, "x-resource"),
            header(&d, "x-report")
        ),
        (Some("read"), Some("report"), Some("q3"))
    );
}

#[test]
fn tools_list_shows_only_the_tools_the_agent_may_call() {
    let mut f = Fixture::new();
    let (identity, task) = (f.identity(AGENT), f.task(json!({}), 300));
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}).to_string();
    let d = f.mcp(&identity, Some(&task), list.as_bytes(), &[]);
    assert_eq!(d.outcome, Outcome::Allow, "{:?}", d.reasons);
    let filter = d.tools_filter.expect("tools/list responses are filtered");
    let response = json!({"jsonrpc": "2.0", "id": 3, "result": {"tools": [
        {"name": "read_file", "inputSchema": {}}, {"name": "deploy_service"}, {"name": "rm_rf"}]}});
    let out = f.authorizer.filter_tools_list(
        &filter,
        response.to_string().as_bytes(),
        "application/json",
    );
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        out["result"]["tools"],
        json!([{"name": "read_file", "inputSchema": {}}])
    );
    let broken = f
        .authorizer
        .filter_tools_list(&filter, b"not json", "application/json");
    let broken: Value = serde_json::from_slice(&broken).unwrap();
    assert_eq!(broken["error"]["code"], -32603);
    let call = f.mcp(&identity, Some(&task), &call("read_file", json!({})), &[]);
    assert!(call.tools_filter.is_none());
}

#[test]
fn an_approval_allows_exactly_the_approved_action_once() {
    let mut f = Fixture::new();
    let (identity, task) = (f.identity(AGENT), f.task(json!({}), 300));
    let body = call("deploy_service", json!({"env": "prod", "service": "web"}));
    let asked = f.mcp(&identity, Some(&task), &body, &[]);
    assert_eq!(asked.outcome, Outcome::ApprovalRequired);
    let request = asked.approval.clone().expect("the action to approve");
    let refusal: Value = serde_json::from_str(&asked.refusal_body()).unwrap();
    assert_eq!(refusal["error"], "approval_required");
    assert_eq!(refusal["action_digest"], request.digest.as_str());
    assert_eq!(refusal["action"]["tool"], "deploy_service");
    assert_eq!(
        refusal["action"]["arguments"],
        json!({"env": "prod", "service": "web"})
    );

    let approval = f.approval(&request.digest, "appr-1", 120);
    let approved = f.mcp(
        &identity,
        Some(&task),
        &body,
        &[("bridle-approval", &approval)],
    );
    assert_eq!(approved.outcome, Outcome::Allow, "{:?}", approved.reasons);
    assert_eq!(approved.reasons, ["approved by alice@demo.bridle.dev"]);
    assert!(approved
        .remove_headers
        .contains(&"bridle-approval".to_owned()));
    let event: Value = serde_json::from_str(f.host.events.last().unwrap()).unwrap();
    assert_eq!(event["approved_by"], "alice@demo.bridle.dev");
    assert_eq!(event["action_digest"], request.digest.as_str());

    let replay = f.mcp(
        &identity,
        Some(&task),
        &body,
        &[("bridle-approval", &approval)],
    );
    assert_eq!(
        (replay.outcome, replay.reasons.as_slice()),
        (
            Outcome::Deny,
            ["approval `appr-1` was already used".to_owned()].as_slice()
        )
    );

    let other_body = call("deploy_service", json!({"env": "prod", "service": "db"}));
    let fresh = f.approval(&request.digest, "appr-2", 120);
    let other = f.mcp(
        &identity,
        Some(&task),
        &other_body,
        &[("bridle-approval", &fresh)],
    );
    assert_eq!(other.outcome, Outcome::ApprovalRequired);
    assert_eq!(
        other.reasons.last().map(String::as_str),
        Some("approval credential approves another action (digest mismatch)")
    );

    let long = f.approval(&request.digest, "appr-3", 3600);
    let refused = f.mcp(&identity, Some(&task), &body, &[("bridle-approval", &long)]);
    assert_eq!(refused.outcome, Outcome::ApprovalRequired);
    assert!(
        refused
            .reasons
            .last()
            .unwrap()
            .contains("over the 300s maximum"),
        "{:?}",
        refused.reasons
    );
}

#[test]
fn revoked_tasks_tokens_and_agents_are_refused() {
    let mut f = Fixture::with(json!({"revocation": {"agents": [OTHER], "feed": {
        "cluster": "control", "path": "/revocations", "poll_seconds": 5, "max_staleness_seconds": 30}}}));
    let (identity, task) = (f.identity(AGENT), f.task(json!({"jti": "task-jti-1"}), 300));
    let body = call("read_file", json!({}));
    assert_eq!(
        f.mcp(&identity, Some(&task), &body, &[]).outcome,
        Outcome::Allow
    );

    let start = f.host.now;
    assert_eq!(
        f.authorizer
            .apply_revocation_feed(br#"{"version": 1, "txn": ["task-7"]}"#, start),
        Ok(1)
    );
    let d = f.mcp(&identity, Some(&task), &body, &[]);
    assert_eq!(
        (d.outcome, d.reasons.as_slice()),
        (
            Outcome::Unauthenticated,
            ["task `task-7` is revoked".to_owned()].as_slice()
        )
    );

    f.authorizer
        .apply_revocation_feed(br#"{"version": 2, "jti": ["task-jti-1"]}"#, start)
        .unwrap();
    let d = f.mcp(&identity, Some(&task), &body, &[]);
    assert_eq!(d.reasons, ["task credential `task-jti-1` is revoked"]);

    f.authorizer
        .apply_revocation_feed(br#"{"version": 3}"#, start)
        .unwrap();
    assert_eq!(
        f.mcp(&identity, Some(&task), &body, &[]).outcome,
        Outcome::Allow
    );

    let theirs = f.identity(OTHER);
    let their_task = f.task(json!({"req_wl": OTHER}), 300);
    let d = f.mcp(&theirs, Some(&their_task), &body, &[]);
    assert_eq!(
        (d.outcome, d.reasons.as_slice()),
        (
            Outcome::Deny,
            [format!("agent `{OTHER}` is revoked")].as_slice()
        )
    );

    f.host.now = start + 31;
    let d = f.mcp(&identity, Some(&task), &body, &[]);
    assert_eq!((d.outcome, d.status()), (Outcome::Unavailable, 503));
    assert_eq!(
        d.reasons,
        ["revocation feed is stale (last update 31s ago, limit 30s)"]
    );
    f.authorizer
        .apply_revocation_feed(br#"{"version": 3}"#, start + 31)
        .unwrap();
    assert_eq!(
        f.mcp(&identity, Some(&task), &body, &[]).outcome,
        Outcome::Allow
    );
}

#[test]
fn dry_run_records_but_never_refuses_and_arguments_can_be_audited_masked() {
    let mut f = Fixture::with(
        json!({"dry_run": true, "audit": {"arguments": "include", "mask": ["token"]}}),
    );
    let (identity, task) = (f.identity(AGENT), f.task(json!({}), 300));
    let d = f.mcp(
        &identity,
        Some(&task),
        &call("rm_rf", json!({"path": "/", "nested": {"token": "s3cret"}})),
        &[],
    );
    assert_eq!(d.outcome, Outcome::Deny);
    assert!(d.dry_run && d.forwards());
    assert!(
        d.remove_headers.contains(&"authorization".to_owned()),
        "credentials are stripped in dry run too"
    );
    let event: Value = serde_json::from_str(&d.audit.to_json()).unwrap();
    assert_eq!(event["dry_run"], true);
    assert_eq!(event["outcome"], "deny");
    assert_eq!(
        event["intent"]["arguments"],
        json!({"path": "/", "nested": {"token": "***"}})
    );
    assert!(!d.audit.to_json().contains("s3cret"));
    let unreadable = f.mcp(&identity, Some(&task), b"[1]", &[]);
    assert!(
        !unreadable.forwards(),
        "a body that cannot be read is refused even in dry run"
    );
}

#[test]
fn a_delegated_credential_names_its_current_actor_as_the_caller() {
    let mut f = Fixture::new();
    let body = call("read_file", json!({}));
    let task = f.task(json!({}), 300);
    let delegated = f.credential(STS_ISS, "user:alice", json!({"act": {"sub": AGENT}}));
    let d = f.mcp(&delegated, Some(&task), &body, &[]);
    assert_eq!(d.outcome, Outcome::Allow, "{:?}", d.reasons);
    assert_eq!(header(&d, "x-bridle-agent"), Some(AGENT));
    assert_eq!(header(&d, "x-depth"), Some("1"));
    let event: Value = serde_json::from_str(&d.audit.to_json()).unwrap();
    assert_eq!(event["agent"]["subject"], AGENT);
    assert_eq!(event["agent"]["principal"], "user:alice");
    assert_eq!(event["agent"]["spiffe_id"], AGENT);

    // The task credential's chain must end in the same actor.
    let other_actor = f.task(json!({"act": {"sub": OTHER}}), 300);
    let d = f.mcp(&delegated, Some(&other_actor), &body, &[]);
    assert_eq!(
        d.reasons,
        [format!(
            "delegation chain's current actor `{OTHER}` is not the caller `{AGENT}`"
        )]
    );
    let refused = f.credential(
        STS_ISS,
        "user:alice",
        json!({"act": {"sub": AGENT}, "may_act": {"sub": OTHER}}),
    );
    let d = f.mcp(&refused, Some(&task), &body, &[]);
    assert_eq!(
        d.reasons,
        [format!(
            "`{AGENT}` is not permitted to act for `user:alice` (`may_act`)"
        )]
    );
    let malformed = f.credential(
        STS_ISS,
        "user:alice",
        json!({"act": {"sub": AGENT, "act": 7}}),
    );
    let d = f.mcp(&malformed, Some(&task), &body, &[]);
    assert_eq!(d.outcome, Outcome::Deny, "{:?}", d.reasons);

    // Presented over mTLS by another workload: refused.
    let mut view = RequestView {
        method: "GET".into(),
        path: "/api/reports/q3".into(),
        authority: "api.internal".into(),
        ..Default::default()
    };
    view.headers.push((
        "authorization".into(),
        format!("Bearer {delegated}").into_bytes(),
    ));
    view.connection.peer_uri_san = Some(OTHER.to_owned());
    let d = f.authorizer.decide(&view, &mut f.host);
    assert_eq!(d.outcome, Outcome::Unauthenticated);
    assert_eq!(
        d.reasons,
        [format!("the delegated credential's current actor `{AGENT}` is not the mTLS peer `{OTHER}` presenting it")]
    );
    view.connection.peer_uri_san = Some(AGENT.to_owned());
    let d = f.authorizer.decide(&view, &mut f.host);
    assert_eq!(d.outcome, Outcome::Allow, "{:?}", d.reasons);
}

#[test]
fn an_issuer_asserts_spiffe_ids_of_its_own_trust_domain_only() {
    let mut f = Fixture::new();
    let body = call("read_file", json!({}));
    let task = f.task(json!({}), 300);
    for (credential, id) in [
        (
            f.identity("spiffe://elsewhere.example/agent/ops-bot"),
            "spiffe://elsewhere.example/agent/ops-bot",
        ),
        (
            f.credential(
                STS_ISS,
                "user:alice",
                json!({"act": {"sub": "spiffe://demo.bridle.dev.evil/agent/ops-bot"}}),
            ),
            "spiffe://demo.bridle.dev.evil/agent/ops-bot",
        ),
    ] {
        let d = f.mcp(&credential, Some(&task), &body, &[]);
        assert_eq!(d.outcome, Outcome::Unauthenticated);
        assert!(
            d.reasons[0].starts_with(&format!(
                "SPIFFE ID `{id}` is outside trust domain `demo.bridle.dev` of issuer"
            )),
            "{:?}",
            d.reasons
        );
    }
}

#[test]
fn a_caller_that_claims_the_spiffe_scheme_but_does_not_parse_is_refused() {
    let mut f = Fixture::new();
    let body = call("read_file", json!({}));
    let task = f.task(json!({}), 300);
    let mut credentials = vec![
        // On a JWT-SVID every caller is a SPIFFE ID, the delegated actor included.
        f.credential(ISS, AGENT, json!({"act": {"sub": "ops-bot"}})),
    ];
    for actor in [
        "spiffe://OTHER.example/agent/ops-bot",
        "spiffe://demo.bridle.dev/agent/ops-bot/",
        "spiffe://demo.bridle.dev/agent/../ops-bot",
        "SPIFFE://demo.bridle.dev/agent/ops-bot",
        "spiffe://demo.bridle.dev/agent/%41",
    ] {
        credentials.push(f.credential(STS_ISS, "user:alice", json!({"act": {"sub": actor}})));
    }
    credentials.push(f.credential(STS_ISS, "Spiffe:elsewhere", json!({})));
    for credential in credentials {
        let d = f.mcp(&credential, Some(&task), &body, &[]);
        assert_eq!(d.outcome, Outcome::Unauthenticated, "{:?}", d.reasons);
        assert!(d.reasons[0].contains("SPIFFE ID"), "{:?}", d.reasons);
    }
}
