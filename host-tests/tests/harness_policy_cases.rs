//! Every YAML decision case of the shipped policy, as a real request through the compiled
//! `.wasm` in the wasmtime harness: tokens, task credentials and delegation chains minted,
//! MCP bodies sent, and the decision compared with what the case expects.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use host_tests::cases;
use wasmtime_harness::{Harness, HttpRequest, PluginOptions};

#[test]
fn policy_cases_through_the_wasm() {
    let set = cases::agents().unwrap();
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let mut plugins = BTreeMap::new();
    for (name, config) in &set.configs {
        let options =
            PluginOptions::with_config(config.to_string()).at(std::time::SystemTime::now());
        plugins.insert(name.clone(), harness.start(options).unwrap());
    }
    assert!(set.cases.len() >= 18, "only {} cases", set.cases.len());
    let mut failures = Vec::new();
    for case in &set.cases {
        let mut request =
            HttpRequest::new(case.method.as_str(), case.path.as_str()).authority("api.internal");
        for (name, value) in &case.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &case.body {
            request = request.body(body.as_bytes().to_vec());
        }
        let plugin = plugins.get_mut(&case.config).unwrap();
        let outcome = plugin.request(&request).unwrap();
        let expect = &case.expect;
        let problem = if expect.allow {
            if !outcome.is_forwarded() {
                Some(format!(
                    "expected forwarded, got {} {}",
                    outcome.status(),
                    outcome.body_text()
                ))
            } else if outcome.upstream_header("authorization").is_some()
                || outcome.upstream_header("txn-token").is_some()
            {
                Some("a credential reached the upstream".to_owned())
            } else {
                None
            }
        } else {
            let body = outcome.try_body_json().unwrap_or_default();
            let reasons: Vec<String> = body["reasons"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if outcome.is_forwarded()
                || outcome.status() != expect.status()
                || body["error"].as_str() != expect.error()
                || reasons != expect.reasons
            {
                Some(format!(
                    "expected {} {:?} {:?}, got {} {}",
                    expect.status(),
                    expect.error(),
                    expect.reasons,
                    outcome.status(),
                    outcome.body_text()
                ))
            } else {
                None
            }
        };
        if let Some(problem) = problem {
            failures.push(format!("{} ({}): {problem}", case.name, case.description));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        set.cases.len(),
        failures.join("\n")
    );
}
