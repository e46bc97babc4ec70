//! The input document through the compiled `.wasm`: a request builds only the parts of `input`
//! the policy's source can reach (`plugin/core/src/input_reads.rs`), so every way a policy can
//! reach a part must still find it there. Each policy below blocks a request on one header,
//! reached in a different way; a part left out would make the block undefined and the request
//! allowed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::SystemTime;

use host_tests::config::inline_policy;
use host_tests::{demo, ConfigBuilder};
use serde_json::json;
use wasmtime_harness::{Harness, HttpRequest, PluginOptions};

const BLOCKED_BY: [&str; 8] = [
    r#"input.request.headers["x-block"]"#,
    r#"input["request"]["headers"]["x-block"]"#,
    r#"r := input.request
	r.headers["x-block"]"#,
    r#"some name, _ in input.request.headers
	name == "x-block""#,
    r#"object.get(input, ["request", "headers", "x-block"], false)"#,
    r#"some part in ["request"]
	input[part].headers["x-block"]"#,
    r#"contains(json.marshal(input), "x-block")"#,
    r#"contains(json.marshal(input.request), "x-block")"#,
];

fn policy(blocked_by: &str) -> String {
    format!(
        "package t\nimport rego.v1\n\n\
         default decision := {{\"allow\": false, \"reasons\": [\"blocked\"]}}\n\n\
         decision := {{\"allow\": true, \"reasons\": []}} if {{\n\
         \tinput.identity.spiffe.id\n\
         \tnot blocked\n}}\n\n\
         blocked if {{\n\t{blocked_by}\n}}\n"
    )
}

#[test]
fn every_way_of_reading_a_part_finds_it_in_the_input() {
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let issuer = demo::issuer().unwrap();
    let bearer = format!(
        "Bearer {}",
        issuer.token_for(&demo::agent("research-bot")).unwrap()
    );
    for blocked_by in BLOCKED_BY {
        let source = policy(blocked_by);
        let config = ConfigBuilder::with_policy(inline_policy(
            "data.t.decision",
            &[("t.rego", &source)],
            json!({}),
        ))
        .issuer(&issuer)
        .unwrap()
        .build();
        let mut plugin = harness
            .start(PluginOptions::with_config(config.to_string()).at(SystemTime::now()))
            .unwrap();
        let plain = HttpRequest::get("/api/reports").header("authorization", &bearer);
        let outcome = plugin.request(&plain).unwrap();
        assert!(
            outcome.is_forwarded(),
            "{blocked_by}: {}",
            outcome.body_text()
        );
        let outcome = plugin
            .request(&plain.clone().header("x-block", "1"))
            .unwrap();
        assert_eq!(
            outcome.status(),
            403,
            "{blocked_by}: {}",
            outcome.body_text()
        );
        assert_eq!(
            outcome.body_json()["reasons"],
            json!(["blocked"]),
            "{blocked_by}"
        );
    }
}
