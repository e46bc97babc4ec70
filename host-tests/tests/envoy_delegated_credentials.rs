//! A delegated credential (RFC 8693) as a request's only credential, in a real Envoy (V8)
//! under the shipped agent policy: the token-exchange service's token for `user:alice` whose
//! `act.sub` is an agent makes that agent the caller — for the policy, for the upstream
//! (`x-bridle-agent`) and in the audit event. The scenario and its cases:
//! `host_tests::fixtures::DelegatedCredentials`, shared with `harness_delegated_credentials.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use host_tests::fixtures::{
    DelegatedCase, DelegatedCredentials, DelegatedObserved, DECISION_HEADER, RESEARCH_OWNER,
    SEEN_HEADER,
};
use host_tests::peer_binding::{PeerBinding, PeerCase};
use host_tests::tls::Pki;
use host_tests::{Envoy, EnvoyOptions, Error, Request, Response, Upstream};
use serde_json::Value;

/// Sends `case`'s request with `send` and reports what Envoy, the upstream and the audit trail
/// saw.
fn observe_with(
    envoy: &Envoy,
    upstream: &Upstream,
    case: &DelegatedCase,
    send: impl FnOnce(&Request) -> Result<Response, Error>,
) -> DelegatedObserved {
    let before = upstream.count();
    let request = case.headers.iter().fold(
        Request::get(case.path).header("host", "api.internal"),
        |request, (name, value)| request.header(name, value),
    );
    let response = send(&request).unwrap_or_else(|err| panic!("{}: {err}", case.name));
    // What this request forwarded, if anything: the upstream's requests after `before`.
    let seen = upstream.requests().into_iter().nth(before);
    let header = |name: &str| seen.as_ref()?.header(name).map(str::to_owned);
    let id = response.header(DECISION_HEADER).map(str::to_owned);
    DelegatedObserved {
        status: response.status,
        body: response.json().unwrap_or(Value::Null),
        forwarded: seen.is_some(),
        agent: header("x-bridle-agent"),
        saw: header(SEEN_HEADER),
        event: envoy
            .audit_events()
            .into_iter()
            .find(|e| id.is_some() && e["decision_id"].as_str() == id.as_deref()),
    }
}

fn observe(envoy: &Envoy, upstream: &Upstream, case: &DelegatedCase) -> DelegatedObserved {
    observe_with(envoy, upstream, case, |request| envoy.send(request))
}

#[test]
fn envoy_forwards_a_delegated_credential_as_its_current_actor() {
    let scenario = DelegatedCredentials::new().unwrap();
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::start(&scenario.config().unwrap(), &upstream).unwrap();
    let mut failures = Vec::new();
    let cases = scenario.cases().unwrap();
    for case in &cases {
        if let Err(mismatch) = case.check(&observe(&envoy, &upstream, case)) {
            failures.push(mismatch);
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        envoy.log_tail(30)
    );

    // What went upstream: the agent's inventory record, never a credential.
    let received = upstream.requests();
    assert!(!received.is_empty());
    let research = received
        .iter()
        .find(|r| r.header("x-bridle-agent-owner") == Some(RESEARCH_OWNER));
    assert!(research.is_some(), "{received:?}");
    for request in &received {
        for credential in ["authorization", "txn-token"] {
            assert_eq!(request.header(credential), None, "{credential} forwarded");
        }
    }
}

/// Runs every case with `send`, then fails naming each case that went wrong.
fn run_peer_cases<'a>(
    envoy: &Envoy,
    upstream: &Upstream,
    cases: impl IntoIterator<Item = &'a PeerCase>,
    send: impl Fn(&PeerCase, &Request) -> Result<Response, Error>,
) {
    let failures: Vec<String> = cases
        .into_iter()
        .filter_map(|bound| {
            let observed = observe_with(envoy, upstream, &bound.case, |r| send(bound, r));
            bound.case.check(&observed).err()
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        envoy.log_tail(30)
    );
}

/// The listener requires client certificates from a test CA, each client presents one with
/// its SPIFFE ID as URI SAN, and Envoy reports that SAN to Bridle
/// (`connection.uri_san_peer_certificate`). Certificates from Python's `cryptography`, the
/// client Python's `ssl` (see `host_tests::tls`).
#[test]
fn envoy_reports_the_client_certificate_and_bridle_binds_the_actor_to_it() {
    let scenario = PeerBinding::new().unwrap();
    let cases = scenario.cases().unwrap();
    let mut peers: Vec<Option<&str>> = cases.iter().map(|c| c.peer).collect();
    peers.sort();
    peers.dedup();
    let pki = Pki::generate(&peers).unwrap();
    let upstream = Upstream::start().unwrap();
    let mut options = EnvoyOptions::new(scenario.config().unwrap(), upstream.port());
    options.downstream_tls = Some(pki.downstream_tls());
    let envoy = Envoy::start_with(&options).unwrap();

    // The listener really requires a client certificate. The client sees the refusal as a
    // `certificate required` alert or, when Envoy has closed first, an early EOF; Envoy
    // counts it either way.
    let anonymous = pki
        .anonymous_client()
        .send(envoy.port(), &Request::get("/api/reports"));
    assert!(anonymous.is_err(), "no client certificate: {anonymous:?}");
    let no_cert = envoy.stats("ssl.fail_verify_no_cert").unwrap();
    assert!(
        no_cert
            .iter()
            .any(|(name, n)| name.starts_with("listener.") && *n == 1),
        "{no_cert:?}"
    );
    assert_eq!(upstream.count(), 0);

    // The same credential passes from one certificate and fails from another: Envoy reported
    // each certificate's URI SAN.
    run_peer_cases(&envoy, &upstream, &cases, |bound, request| {
        pki.client(bound.peer)?.send(envoy.port(), request)
    });
}

/// Plain TCP: Envoy has no peer certificate to report, so nothing is bound.
#[test]
fn without_tls_there_is_no_peer_to_bind_to() {
    let scenario = PeerBinding::new().unwrap();
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::start(&scenario.config().unwrap(), &upstream).unwrap();
    let cases = scenario.cases().unwrap();
    let unbound = cases.iter().filter(|c| c.peer.is_none());
    run_peer_cases(&envoy, &upstream, unbound, |_, request| envoy.send(request));
}
