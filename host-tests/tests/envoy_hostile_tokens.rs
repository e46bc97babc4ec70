//! The hostile-token corpus through real Envoy (V8) with the compiled filter: the workload and
//! task cases of the corpus (a fresh one per run), and the header-size limits in front of it.
//! Nothing refused reaches the upstream.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod hostile;

use host_tests::{Envoy, Request, Upstream};
use serde_json::Value;

fn request(corpus: &hostile::Corpus, case: &hostile::Case) -> Option<Request> {
    let base = |path: &str| Request::get(path).header("host", corpus.host());
    match case.slot.as_str() {
        "workload" => Some(base("/api/reports").bearer(&case.token)),
        "task" => Some(
            base("/tasks")
                .bearer(corpus.workload_token())
                .header("txn-token", &case.token),
        ),
        // Approvals are single-use across the harness run; the harness test covers them.
        _ => None,
    }
}

#[test]
fn envoy_refuses_every_attack_of_the_corpus_and_forwards_every_valid_token() {
    let corpus = hostile::generate();
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::start(&corpus.config(), &upstream).unwrap();
    let mut failures = Vec::new();
    let mut forwarded = 0;
    let mut sent = 0;
    for case in &corpus.cases {
        let Some(request) = request(&corpus, case) else {
            continue;
        };
        sent += 1;
        let response = envoy.send(&request).unwrap();
        let what = format!(
            "{} ({}): {} {}",
            case.name,
            case.slot,
            response.status,
            response.text()
        );
        if case.accept {
            forwarded += 1;
            if response.status != 200 {
                failures.push(format!("valid token refused: {what}"));
            }
            continue;
        }
        let body: Value = response.json().unwrap_or(Value::Null);
        if response.status != 401 || body["error"] != "unauthenticated" {
            failures.push(format!("expected 401: {what}"));
        } else if !hostile::names_reason(&body["reasons"], case.reason.as_deref().unwrap_or("")) {
            failures.push(format!("reason not of class {:?}: {what}", case.reason));
        }
        if upstream.ever_saw(&case.token) {
            failures.push(format!("ATTACK TOKEN REACHED THE UPSTREAM: {}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(sent >= 120, "only {sent} cases sent");
    assert_eq!(
        upstream.count(),
        forwarded,
        "the upstream saw exactly the valid requests"
    );
}

#[test]
fn envoy_refuses_oversized_headers_before_the_filter_and_forwards_nothing() {
    let corpus = hostile::generate();
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::start(&corpus.config(), &upstream).unwrap();
    let valid = corpus.workload_token().to_owned();

    // One header over Envoy's 60 KiB request-header limit: 431, nothing forwarded.
    let huge = Request::get("/api/reports")
        .bearer(&valid)
        .header("x-pad", &"a".repeat(70 * 1024));
    let response = envoy.send(&huge).unwrap();
    assert_eq!(response.status, 431, "{}", response.text());

    // Many small headers over the count limit (100 by default): refused too.
    let mut many = Request::get("/api/reports").bearer(&valid);
    for i in 0..150 {
        many = many.header(&format!("x-h{i}"), "v");
    }
    let response = envoy.send(&many).unwrap();
    assert!(
        response.status == 431 || response.status == 400,
        "{} {}",
        response.status,
        response.text()
    );

    // A credential within Envoy's limits but over Bridle's `identity.max_token_bytes`: 401.
    let big_token = format!("{valid}{}", "A".repeat(9000));
    let response = envoy
        .send(&Request::get("/api/reports").bearer(&big_token))
        .unwrap();
    assert_eq!(response.status, 401, "{}", response.text());
    assert!(
        response.text().contains("larger than"),
        "{}",
        response.text()
    );
    assert_eq!(upstream.count(), 0, "nothing reached the upstream");

    // The same worker still serves a valid request.
    let response = envoy
        .send(&Request::get("/api/reports").bearer(&valid))
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(upstream.count(), 1);
}
