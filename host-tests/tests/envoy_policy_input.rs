//! The input document in a real Envoy (V8): a policy that reads only the identity and the
//! request headers gets a document without the parts it cannot reach
//! (`plugin/core/src/input_reads.rs`), and still finds every header it reads, in each of the
//! plain forms that keep that saving. A header missing from the document would make its
//! block undefined and the request forwarded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use host_tests::config::inline_policy;
use host_tests::tokens::{Alg, TestIssuer};
use host_tests::{demo, ConfigBuilder, Envoy, Request, Upstream};
use serde_json::json;

const POLICY: &str = r#"package t
import rego.v1

default decision := {"allow": false, "reasons": ["no SPIFFE ID"]}

decision := {"allow": true, "reasons": []} if {
	input.identity.spiffe.id
	count(blocked) == 0
}

decision := {"allow": false, "reasons": sort(blocked)} if {
	input.identity.spiffe.id
	count(blocked) > 0
}

blocked contains "dot form" if input.request.headers["x-block-1"]

blocked contains "bracket form" if input["request"]["headers"]["x-block-2"]

blocked contains "iteration" if {
	some name, _ in input.request.headers
	name == "x-block-3"
}
"#;

#[test]
fn envoy_policy_reading_only_headers_sees_every_header_it_reads() {
    let issuer = TestIssuer::new(demo::ISSUER, Alg::Es256).unwrap();
    let upstream = Upstream::start().unwrap();
    let config = ConfigBuilder::with_policy(inline_policy(
        "data.t.decision",
        &[("t.rego", POLICY)],
        json!({}),
    ))
    .issuer(&issuer)
    .unwrap()
    .build();
    let envoy = Envoy::start(&config, &upstream).unwrap();
    let token = issuer.token_for(&demo::agent("research-bot")).unwrap();

    let response = envoy
        .send(&Request::get("/api/reports").bearer(&token))
        .unwrap();
    assert_eq!(
        response.status,
        200,
        "no blocking header: {}",
        response.text()
    );
    assert_eq!(upstream.count(), 1);

    for (header, reason) in [
        ("x-block-1", "dot form"),
        ("x-block-2", "bracket form"),
        ("x-block-3", "iteration"),
    ] {
        let response = envoy
            .send(
                &Request::get("/api/reports")
                    .bearer(&token)
                    .header(header, "1"),
            )
            .unwrap();
        assert_eq!(response.status, 403, "{header}: {}", response.text());
        assert_eq!(
            response.json().unwrap()["reasons"],
            json!([reason]),
            "{header}"
        );
    }
    assert_eq!(
        upstream.count(),
        1,
        "a blocked request reached the upstream"
    );
}
