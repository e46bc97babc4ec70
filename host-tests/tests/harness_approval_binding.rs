//! A human approval binds the whole action of an HTTP route — query always, exact body where
//! the route says so — through the compiled `.wasm` in the harness (the scenario:
//! `host_tests::approval_binding`; the same steps in real Envoy: `envoy_approval_binding.rs`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::SystemTime;

use host_tests::approval_binding::{run, ApprovalBinding, Observed};
use serde_json::Value;
use wasmtime_harness::{Harness, HttpRequest, PluginOptions};

#[test]
fn an_approval_binds_query_and_body_and_is_used_once() {
    let scenario = ApprovalBinding::new().unwrap();
    let config = scenario.config().unwrap();
    let mut plugin = Harness::load(host_tests::paths::wasm().unwrap())
        .unwrap()
        .start(PluginOptions::with_config(config.to_string()).at(SystemTime::now()))
        .unwrap();
    let identity = format!("Bearer {}", scenario.identity().unwrap());
    let failures = run(&scenario, |step, approval| {
        let mut request = HttpRequest::new(step.method, step.target)
            .authority("api.internal")
            .header("authorization", &identity)
            .header("content-type", "application/json");
        if let Some(approval) = approval {
            request = request.header("bridle-approval", approval);
        }
        request = match step.chunks.as_slice() {
            [] => request,
            [one] => request.body(*one),
            many => request.body_chunks(many.iter().copied()),
        };
        let outcome = plugin.request(&request).unwrap();
        Observed {
            status: outcome.status(),
            body: outcome.try_body_json().unwrap_or(Value::Null),
            forwarded: outcome
                .upstream_headers()
                .is_some()
                .then(|| outcome.upstream_body().unwrap_or_default().to_vec()),
        }
    })
    .unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(!plugin.is_failed(), "the VM trapped");
}
