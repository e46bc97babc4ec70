#!/usr/bin/env bash
# Sets up everything a fresh machine needs, then runs Envoy with Bridle in front of a sample
# upstream and has sample agents send allowed and refused requests, printing each decision.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build-wasm.sh
cargo run --locked --quiet -p host-tests --bin bridle-demo
