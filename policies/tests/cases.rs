//! Runs every YAML decision case of the shipped policies under regorus, through the same
//! compile-and-evaluate path the filter uses.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use bridle_core::config::RawPolicy;
use bridle_core::policy::Policy;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    input: serde_json::Value,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    allow: bool,
    #[serde(default)]
    approval_required: bool,
    reasons: Vec<String>,
    #[serde(default)]
    headers: Option<std::collections::BTreeMap<String, String>>,
}

fn run(policy: &bridle_policies::ShippedPolicy, minimum_cases: usize) {
    let raw: RawPolicy = serde_json::from_value(policy.config_block().unwrap()).unwrap();
    let mut compiled = Policy::compile(&raw).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(policy.cases_dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= minimum_cases,
        "expected at least {minimum_cases} cases in {dir:?}"
    );
    let mut failures = Vec::new();
    for file in &files {
        let case: Case = serde_yaml::from_str(&std::fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let input = regorus::Value::from(case.input);
        match compiled.evaluate(input) {
            Ok(decision) => {
                let headers: std::collections::BTreeMap<_, _> =
                    decision.headers.into_iter().collect();
                let headers_ok = case.expect.headers.as_ref().is_none_or(|h| *h == headers);
                if decision.allow != case.expect.allow
                    || decision.approval_required != case.expect.approval_required
                    || decision.reasons != case.expect.reasons
                    || !headers_ok
                {
                    failures.push(format!(
                        "{} ({}): got allow={} approval_required={} reasons={:?} headers={headers:?}",
                        file.display(),
                        case.description,
                        decision.allow,
                        decision.approval_required,
                        decision.reasons
                    ));
                }
            }
            Err(err) => failures.push(format!("{} ({}): {err}", file.display(), case.description)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn agents_policy_cases() {
    run(&bridle_policies::AGENTS, 18);
}
