#!/usr/bin/env bash
# Builds the release proxy-wasm filter and fails when it outgrows the size gate.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_BYTES=$((2560 * 1024)) # 2.5 MiB: the module's size drives Envoy start-up and memory
cargo build --locked -p bridle-proxy-wasm --target wasm32-wasip1 --release
wasm=target/wasm32-wasip1/release/bridle.wasm
size=$(stat -c %s "$wasm")
echo "bridle.wasm: $size bytes (gate $MAX_BYTES)"
if [ "$size" -gt "$MAX_BYTES" ]; then
  echo "error: $wasm is $size bytes, over the $MAX_BYTES-byte gate" >&2
  exit 1
fi
