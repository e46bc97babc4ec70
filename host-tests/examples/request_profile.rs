//! One kind of request, N times, through the compiled `.wasm` in the harness: for `perf record`
//! with `BRIDLE_HARNESS_PERFMAP=1` (guest functions named from a module built with
//! `strip = false`, given as `BRIDLE_WASM`). Figures come from the `decisions` bench, not this.
//!
//! `cargo run --release -p host-tests --example request_profile -- [floor|equivalent|agents|mcp] [N]`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../benches/common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;
use host_tests::{Alg, TestIssuer};
use wasmtime_harness::{Harness, HttpRequest};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args.get(1).map_or("equivalent", String::as_str);
    let n: usize = args.get(2).map_or(200_000, |n| n.parse().expect("N"));
    let harness = Harness::load(host_tests::paths::wasm().unwrap()).unwrap();
    let es256 = TestIssuer::new("spiffe://demo.bridle.dev", Alg::Es256).unwrap();
    let token = es256.token_for(AGENT).unwrap();
    let rego = (case == "equivalent").then_some(EQUIVALENT_REGO);
    let mut plugin = plugin_with(&harness, &[&es256], rego);
    let (request, forwarded) = match case {
        "floor" => (
            HttpRequest::get("/api/reports/q3").authority("api.internal"),
            false,
        ),
        "equivalent" | "agents" => (get(&token), true),
        "mcp" => (mcp_call(&token, 0), true),
        other => panic!("unknown case `{other}`: floor, equivalent, agents or mcp"),
    };
    assert_eq!(plugin.request(&request).unwrap().is_forwarded(), forwarded);
    let started = Instant::now();
    for _ in 0..n {
        plugin.request(&request).unwrap();
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{case}: {n} requests, {per:.2} us each (rough; use the bench for figures)");
}
