//! A human approval binds the whole action of an HTTP route — query always, exact body where
//! the route says so — in a real Envoy; the approved request is sent once in one piece and
//! once chunked (the scenario: `host_tests::approval_binding`, shared with
//! `harness_approval_binding.rs`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use host_tests::approval_binding::{run, ApprovalBinding, Observed};
use host_tests::{Envoy, Request, Upstream};
use serde_json::Value;

#[test]
fn envoy_forwards_an_approved_action_once_and_nothing_else() {
    let scenario = ApprovalBinding::new().unwrap();
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::start(&scenario.config().unwrap(), &upstream).unwrap();
    let identity = scenario.identity().unwrap();
    let failures = run(&scenario, |step, approval| {
        let before = upstream.count();
        let mut request = Request::new(step.method, step.target)
            .header("host", "api.internal")
            .header("content-type", "application/json")
            .bearer(&identity);
        if let Some(approval) = approval {
            request = request.header("bridle-approval", approval);
        }
        let response = match step.chunks.as_slice() {
            [_, _, ..] => {
                let chunks: Vec<&[u8]> = step.chunks.iter().map(|c| c.as_bytes()).collect();
                envoy.send_chunked(&request, &chunks, Duration::from_millis(20))
            }
            _ => envoy.send(&request.body(step.body())),
        }
        .unwrap_or_else(|err| panic!("{}: {err}", step.name));
        let seen = upstream.requests().into_iter().nth(before);
        Observed {
            status: response.status,
            body: response.json().unwrap_or(Value::Null),
            forwarded: seen.map(|r| r.body.clone()),
        }
    })
    .unwrap();
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        envoy.log_tail(30)
    );
}
