#!/usr/bin/env bash
# The benchmark suite (BENCHMARKS.md), one command:
#   1. the release bridle.wasm (size gate)
#   2. native policy evaluation of the shipped agent policy (bridle-core example, no wasm)
#   3. criterion through the release .wasm in the wasmtime harness: floor, cached token, MCP
#      tools/call (small and 48 KiB), a new token per request for ES256 / EdDSA / RS256
#   4. Envoy side by side (bare, jwt_authn+RBAC, Bridle equivalent policy, Bridle agent policy on
#      GET and on MCP tools/call), wrk at 1 and 16 connections, alternating, ratios
# Arguments go to scripts/bench-envoy.py (e.g. --rounds 5 --seconds 10 --baseline-rego old.rego).
# BENCH_SKIP_CRITERION=1 or BENCH_SKIP_ENVOY=1 leave a part out. Needs `scripts/setup.sh --bench`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-wasm.sh
echo "== native policy evaluation (shipped agent policy)"
cargo run --locked --release -q -p bridle-core --example policy_profile -- 20000
if [ -z "${BENCH_SKIP_CRITERION:-}" ]; then
  echo "== criterion through bridle.wasm (wasmtime harness)"
  cargo bench --locked -p host-tests --bench decisions -- --warm-up-time 1 --measurement-time 5
fi
if [ -z "${BENCH_SKIP_ENVOY:-}" ]; then
  echo "== Envoy side by side"
  .venv/bin/python scripts/bench-envoy.py "$@"
fi
