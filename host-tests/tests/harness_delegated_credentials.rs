//! A delegated credential (RFC 8693) as a request's only credential, through the compiled
//! `.wasm` in the harness under the shipped agent policy: a token-exchange service's token for
//! `user:alice` whose `act.sub` is an agent makes that agent the caller — the policy judges
//! the agent, sees alice as the principal and the delegation chain, the upstream and the audit
//! event name the agent. The scenario and its cases: `host_tests::fixtures::DelegatedCredentials`
//! (the same cases in real Envoy: `envoy_delegated_credentials.rs`). And such a credential is
//! bound to the mTLS peer presenting it (`host_tests::peer_binding`), the peer's URI SAN set
//! as the host property `connection.uri_san_peer_certificate`.
//!
//! Before the fix, such a credential's caller was its `sub` and every one of them was refused
//! 403 ("delegation chain's current actor … is not the caller `user:alice`").

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::SystemTime;

use host_tests::fixtures::{
    DelegatedCase, DelegatedCredentials, DelegatedExpect, DelegatedObserved, ALICE,
    DECISION_HEADER, RESEARCH, RESEARCH_OWNER, SEEN_HEADER,
};
use host_tests::peer_binding::PeerBinding;
use serde_json::{json, Value};
use wasmtime_harness::{Harness, HttpOutcome, HttpRequest, Plugin, PluginOptions};

const PEER_SAN: [&str; 2] = ["connection", "uri_san_peer_certificate"];

fn start(config: Value) -> Plugin {
    Harness::load(host_tests::paths::wasm().unwrap())
        .unwrap()
        .start(PluginOptions::with_config(config.to_string()).at(SystemTime::now()))
        .unwrap()
}

fn request(case: &DelegatedCase) -> HttpRequest {
    case.headers.iter().fold(
        HttpRequest::get(case.path).authority("api.internal"),
        |request, (name, value)| request.header(name, value),
    )
}

/// The audit event of the decision `outcome` answers.
fn event_of(plugin: &Plugin, outcome: &HttpOutcome) -> Option<Value> {
    let id = outcome.header(DECISION_HEADER)?;
    plugin
        .logs()
        .iter()
        .filter_map(|l| l.message.split_once("bridle.audit "))
        .filter_map(|(_, json)| serde_json::from_str::<Value>(json).ok())
        .find(|event| event["decision_id"] == id.as_str())
}

fn observed(plugin: &Plugin, outcome: &HttpOutcome) -> DelegatedObserved {
    DelegatedObserved {
        status: outcome.status(),
        body: outcome.try_body_json().unwrap_or(Value::Null),
        forwarded: outcome.is_forwarded() && outcome.upstream_headers().is_some(),
        agent: outcome.upstream_header("x-bridle-agent"),
        saw: outcome.upstream_header(SEEN_HEADER),
        event: event_of(plugin, outcome),
    }
}

#[test]
fn a_delegated_credential_makes_its_current_actor_the_caller() {
    let scenario = DelegatedCredentials::new().unwrap();
    let mut plugin = start(scenario.config().unwrap());
    let mut failures = Vec::new();
    for case in scenario.cases().unwrap() {
        let outcome = plugin.request(&request(&case)).unwrap();
        if let Err(mismatch) = case.check(&observed(&plugin, &outcome)) {
            failures.push(mismatch);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(!plugin.is_failed(), "the VM trapped");
}

/// The forwarded request and the audit event carry the agent's inventory record, found by the
/// actor's SPIFFE ID, and never the credential.
#[test]
fn the_actor_is_the_agent_of_the_inventory_upstream_and_in_the_audit_trail() {
    let scenario = DelegatedCredentials::new().unwrap();
    let mut plugin = start(scenario.config().unwrap());
    let token = scenario.delegated(json!({"sub": RESEARCH}), &[]).unwrap();
    let outcome = plugin
        .request(
            &HttpRequest::get("/api/reports").header("authorization", format!("Bearer {token}")),
        )
        .unwrap();
    assert!(outcome.is_forwarded(), "{}", outcome.body_text());
    assert_eq!(
        outcome.upstream_header("x-bridle-agent-owner").as_deref(),
        Some(RESEARCH_OWNER)
    );
    assert_eq!(outcome.upstream_header("authorization"), None);
    let event = event_of(&plugin, &outcome).unwrap();
    assert_eq!(event["outcome"], "allow", "{event}");
    assert_eq!(event["agent"]["spiffe_id"], RESEARCH, "{event}");
    assert_eq!(event["agent"]["owner"], RESEARCH_OWNER, "{event}");
    assert_eq!(event["agent"]["issuer"], scenario.sts.iss, "{event}");
    assert_eq!(event["agent"]["principal"], ALICE, "{event}");
}

#[test]
fn a_delegated_credential_is_accepted_only_from_its_actor() {
    let scenario = PeerBinding::new().unwrap();
    let mut plugin = start(scenario.config().unwrap());
    let mut failures = Vec::new();
    for bound in scenario.cases().unwrap() {
        let request = match bound.peer {
            Some(san) => request(&bound.case).property(&PEER_SAN, san),
            None => request(&bound.case),
        };
        let outcome = plugin.request(&request).unwrap();
        if let Err(mismatch) = bound.case.check(&observed(&plugin, &outcome)) {
            failures.push(mismatch);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(!plugin.is_failed(), "the VM trapped");
}

/// The peer's refusal is a 401 like any bad credential's: a bearer challenge.
#[test]
fn a_refused_peer_gets_a_challenge() {
    let scenario = PeerBinding::new().unwrap();
    let mut plugin = start(scenario.config().unwrap());
    let bound = scenario
        .cases()
        .unwrap()
        .into_iter()
        .find(|c| matches!(c.case.expect, DelegatedExpect::Refused { .. }))
        .unwrap();
    let request = request(&bound.case).property(&PEER_SAN, bound.peer.unwrap());
    let outcome = plugin.request(&request).unwrap();
    assert_eq!(outcome.status(), 401, "{}", outcome.body_text());
    let challenge = outcome.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("invalid_token"),
        "{challenge}"
    );
}
