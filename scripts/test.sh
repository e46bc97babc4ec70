#!/usr/bin/env bash
# Every check CI runs, in order: install what is missing, formatting, lints (native and both
# wasm targets), the release .wasm with its size gate, the edge package, then all tests: core,
# policies, the .wasm in the wasmtime harness, the .wasm in real Envoy (with the official MCP
# SDK), and the edge build in Node, workerd, Deno and Chromium on the same decision cases.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "== fmt"
cargo fmt --all -- --check
echo "== clippy (native)"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== clippy (wasm32-wasip1, wasm32-unknown-unknown)"
cargo clippy --locked -p bridle-core -p bridle-proxy-wasm --target wasm32-wasip1 -- -D warnings
cargo clippy --locked -p bridle-core -p bridle-web --target wasm32-unknown-unknown -- -D warnings
echo "== wasm (proxy-wasm filter and edge package)"
scripts/build-wasm.sh
scripts/build-edge.sh
echo "== rust tests (core, policies, harness, Envoy)"
cargo test --locked --workspace
echo "== edge tests (Node, workerd via Miniflare, Deno, headless Chromium; tsc; wrangler bundle size)"
cargo run --locked --quiet -p host-tests --bin bridle-cases -- target/bridle-cases.json
node --test edge/tests/
echo "== fuzz (cargo-fuzz on nightly, 20 s per target, no sanitizer; scripts/fuzz.sh)"
scripts/fuzz.sh 20
