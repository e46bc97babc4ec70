//! One scenario for two hosts: a human approval binds the whole action of an HTTP route — the
//! decoded query always, and the exact body bytes where the route says so
//! (`routes[].approval.bind_body`). Each step sends a request, some with an approval for the
//! digest an earlier step was asked for; changing any bound part turns the approved request
//! back into `approval_required`, an unchanged one (even sent in other chunks) is forwarded
//! once, and a second use is refused.
//!
//! Run through the compiled `.wasm` in the harness (`harness_approval_binding.rs`) and in
//! real Envoy (`envoy_approval_binding.rs`).

use serde_json::{json, Value};

use crate::config::{inline_policy, issuer_entry};
use crate::tokens::{Alg, Claims, TestIssuer};
use crate::{demo, ConfigBuilder, Error};

pub const AGENT: &str = "spiffe://demo.bridle.dev/agent/payments-bot";

/// Writes need a human; reads do not.
const POLICY: &str = r#"package t
import rego.v1

default decision := {"allow": true, "reasons": []}

decision := {"allow": false, "approval_required": true, "reasons": ["writes need a human approval"]} if input.request.method != "GET"
"#;

/// What a step's request should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// 403 `approval_required`, with the action and its digest (kept for later steps).
    AskedFor,
    /// Forwarded (200) with the body as sent.
    Forwarded,
    /// 403 `approval_required`: the approval is for another action.
    OtherAction,
    /// 403 `forbidden`: the approval was used already.
    Replayed,
}

/// One request of the scenario.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: &'static str,
    pub method: &'static str,
    /// Path and query.
    pub target: &'static str,
    /// The body as the client sends it: one chunk, or several.
    pub chunks: Vec<&'static str>,
    /// An approval (its `jti`) for the digest step `of` was asked for.
    pub approve: Option<(usize, &'static str)>,
    pub expect: Expect,
}

impl Step {
    pub fn body(&self) -> Vec<u8> {
        self.chunks.concat().into_bytes()
    }
}

/// What a host did with a step's request.
#[derive(Debug, Clone)]
pub struct Observed {
    pub status: u16,
    pub body: Value,
    /// What the upstream received of the body, when it received the request.
    pub forwarded: Option<Vec<u8>>,
}

impl Step {
    /// Whether `observed` is what the step expects; `Err` says what differs.
    pub fn check(&self, observed: &Observed) -> Result<(), String> {
        let failed = |what: &str| Err(format!("{}: {what}: {observed:?}", self.name));
        let error = observed.body.get("error").and_then(Value::as_str);
        let field = |name: &str| observed.body.get(name).cloned().unwrap_or(Value::Null);
        let reasons = field("reasons").to_string();
        let refused = observed.forwarded.is_none();
        match self.expect {
            Expect::Forwarded => {
                if observed.status != 200 || observed.forwarded.as_deref() != Some(&self.body()) {
                    return failed("expected the request forwarded with its body");
                }
            }
            Expect::AskedFor => {
                let action = field("action");
                if observed.status != 403
                    || error != Some("approval_required")
                    || !refused
                    || !field("action_digest").is_string()
                    || !action.get("query").is_some_and(Value::is_object)
                {
                    return failed("expected 403 approval_required with the action");
                }
            }
            Expect::OtherAction => {
                if observed.status != 403
                    || error != Some("approval_required")
                    || !refused
                    || !reasons.contains("approves another action")
                {
                    return failed("expected the approval refused as one for another action");
                }
            }
            Expect::Replayed => {
                if observed.status != 403
                    || error != Some("forbidden")
                    || !refused
                    || !reasons.contains("already used")
                {
                    return failed("expected the approval refused as used already");
                }
            }
        }
        Ok(())
    }
}

pub struct ApprovalBinding {
    pub workload: TestIssuer,
    pub approvals: TestIssuer,
}

impl ApprovalBinding {
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            workload: TestIssuer::new(demo::ISSUER, Alg::Es256)?,
            approvals: TestIssuer::new("https://approvals.demo.bridle.dev", Alg::Es256)?
                .with_profile("approval"),
        })
    }

    /// Payments bind their body; records only their query.
    pub fn config(&self) -> Result<Value, Error> {
        Ok(ConfigBuilder::with_policy(inline_policy(
            "data.t.decision",
            &[("t.rego", POLICY)],
            json!({}),
        ))
        .issuer(&self.workload)?
        .set(
            "approval",
            json!({"issuers": [issuer_entry(&self.approvals)?]}),
        )
        .set(
            "routes",
            json!([
                {"name": "payments", "path": "/api/payments", "methods": ["POST"],
                 "approval": {"bind_body": true}},
                {"name": "records", "path": "/api/records", "methods": ["DELETE"]}
            ]),
        )
        .build())
    }

    pub fn identity(&self) -> Result<String, Error> {
        self.workload.token_for(AGENT)
    }

    /// An approval credential for `digest`.
    pub fn approval(&self, digest: &str, jti: &str) -> Result<String, Error> {
        self.approvals.mint(
            &Claims::new("approver:bob")
                .claim("action_digest", json!(digest))
                .jti(jti),
        )
    }

    /// Every step, in the order to run them.
    pub fn steps() -> Vec<Step> {
        let pay = |name, target, chunks: Vec<&'static str>, approve, expect| Step {
            name,
            method: "POST",
            target,
            chunks,
            approve,
            expect,
        };
        const TEN: &str = r#"{"amount": 10, "to": "alice"}"#;
        vec![
            pay(
                "asked for",
                "/api/payments?currency=EUR",
                vec![TEN],
                None,
                Expect::AskedFor,
            ),
            pay(
                "a larger amount",
                "/api/payments?currency=EUR",
                vec![r#"{"amount": 1000000, "to": "alice"}"#],
                Some((0, "p-1")),
                Expect::OtherAction,
            ),
            pay(
                "one body byte changed",
                "/api/payments?currency=EUR",
                vec![r#"{"amount": 19, "to": "alice"}"#],
                Some((0, "p-2")),
                Expect::OtherAction,
            ),
            pay(
                "the same body with a space more",
                "/api/payments?currency=EUR",
                vec![r#"{"amount": 10,  "to": "alice"}"#],
                Some((0, "p-3")),
                Expect::OtherAction,
            ),
            pay(
                "another query value",
                "/api/payments?currency=USD",
                vec![TEN],
                Some((0, "p-4")),
                Expect::OtherAction,
            ),
            pay(
                "a query key added",
                "/api/payments?currency=EUR&fee=0",
                vec![TEN],
                Some((0, "p-5")),
                Expect::OtherAction,
            ),
            pay(
                "no query",
                "/api/payments",
                vec![TEN],
                Some((0, "p-6")),
                Expect::OtherAction,
            ),
            pay(
                "the approved action, in three chunks",
                "/api/payments?currency=EUR",
                vec![r#"{"amount": "#, r#"10, "to": "#, r#""alice"}"#],
                Some((0, "p-7")),
                Expect::Forwarded,
            ),
            pay(
                "the same approval again",
                "/api/payments?currency=EUR",
                vec![TEN],
                Some((0, "p-7")),
                Expect::Replayed,
            ),
            Step {
                name: "a record deletion asked for",
                method: "DELETE",
                target: "/api/records?id=1",
                chunks: Vec::new(),
                approve: None,
                expect: Expect::AskedFor,
            },
            Step {
                name: "every record instead",
                method: "DELETE",
                target: "/api/records?id=*",
                chunks: Vec::new(),
                approve: Some((9, "r-1")),
                expect: Expect::OtherAction,
            },
            Step {
                name: "the approved deletion",
                method: "DELETE",
                target: "/api/records?id=1",
                chunks: Vec::new(),
                approve: Some((9, "r-2")),
                expect: Expect::Forwarded,
            },
        ]
    }
}

/// Runs `steps` with `send` (a step and its approval header, if any → what the host did) and
/// returns the failures.
pub fn run(
    scenario: &ApprovalBinding,
    mut send: impl FnMut(&Step, Option<&str>) -> Observed,
) -> Result<Vec<String>, Error> {
    let steps = ApprovalBinding::steps();
    let mut digests: Vec<Option<String>> = vec![None; steps.len()];
    let mut failures = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let approval = match step.approve {
            Some((of, jti)) => match digests.get(of).cloned().flatten() {
                Some(digest) => Some(scenario.approval(&digest, jti)?),
                None => {
                    failures.push(format!("{}: step {of} left no digest", step.name));
                    continue;
                }
            },
            None => None,
        };
        let observed = send(step, approval.as_deref());
        if let Err(failure) = step.check(&observed) {
            failures.push(failure);
        }
        if let (Some(slot), Some(digest)) = (
            digests.get_mut(index),
            observed.body.get("action_digest").and_then(Value::as_str),
        ) {
            *slot = Some(digest.to_owned());
        }
    }
    Ok(failures)
}
