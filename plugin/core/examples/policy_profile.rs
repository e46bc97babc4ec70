//! Evaluates the shipped agent policy in a loop on the inputs a cached request produces, for
//! `perf record` and a native per-evaluation time: `cargo run --release -p bridle-core
//! --example policy_profile [iterations]`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use bridle_core::config::{RawModule, RawPolicy};
use bridle_core::policy::Policy;
use regorus::Value;

const REGO: &str = include_str!("../../../policies/agents/agents.rego");
const DATA: &str = include_str!("../../../policies/agents/data.json");

fn input(json: &str) -> Value {
    Value::from(serde_json::from_str::<serde_json::Value>(json).unwrap())
}

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    // A second argument names another Rego file to compare against the shipped one.
    let source = std::env::args()
        .nth(2)
        .map(|path| std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|| REGO.to_owned());
    let mut policy = Policy::compile(&RawPolicy {
        entrypoint: "data.bridle.agents.decision".to_owned(),
        modules: vec![RawModule {
            name: "agents.rego".to_owned(),
            source,
        }],
        data: serde_json::from_str(DATA).unwrap(),
        max_instructions: 100_000,
    })
    .unwrap();
    let http = input(
        r#"{"identity": {"issuer": "spiffe://demo.bridle.dev", "profile": "jwt-svid", "spiffe": {"id": "spiffe://demo.bridle.dev/agent/research-bot", "trust_domain": "demo.bridle.dev", "path": "/agent/research-bot"}},
            "request": {"method": "GET", "path": "/api/reports/q3", "segments": ["api", "reports", "q3"], "headers": {"accept": "*/*"}, "query": {}},
            "environment": {"name": "prod"}, "connection": {},
            "intent": {"protocol": "http", "action": "read"},
            "delegation": {"depth": 0, "chain": []}}"#,
    );
    let mcp = input(
        r#"{"identity": {"issuer": "spiffe://demo.bridle.dev", "profile": "jwt-svid", "spiffe": {"id": "spiffe://demo.bridle.dev/agent/research-bot", "trust_domain": "demo.bridle.dev", "path": "/agent/research-bot"}},
            "request": {"method": "POST", "path": "/mcp", "segments": ["mcp"], "headers": {"content-type": "application/json"}, "query": {}},
            "environment": {"name": "prod"}, "connection": {},
            "intent": {"protocol": "mcp", "action": "read", "rpc_method": "tools/call", "tool": "read_report", "data_class": "internal", "arguments": {"id": "q3"}},
            "delegation": {"depth": 0, "chain": []}}"#,
    );
    for (name, input) in [("http_allow", http), ("mcp_tools_call_allow", mcp)] {
        assert!(policy.evaluate(input.clone()).unwrap().allow, "{name}");
        let start = Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(policy.evaluate(input.clone()).unwrap());
        }
        let per = start.elapsed() / iterations;
        println!("{name}: {per:?} per evaluation ({iterations} iterations)");
    }
}
