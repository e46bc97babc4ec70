#!/usr/bin/env bash
# Every check CI runs, in order: install what is missing, formatting, lints (native and both
# wasm targets), the release .wasm with its size gate, then all tests (core, policies, the
# .wasm in the wasmtime harness, the .wasm in real Envoy).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "== fmt"
cargo fmt --all -- --check
echo "== clippy (native)"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== clippy (wasm32-wasip1, wasm32-unknown-unknown)"
cargo clippy --locked -p bridle-core -p bridle-proxy-wasm --target wasm32-wasip1 -- -D warnings
cargo clippy --locked -p bridle-core --target wasm32-unknown-unknown -- -D warnings
echo "== wasm"
scripts/build-wasm.sh
echo "== tests"
cargo test --locked --workspace
