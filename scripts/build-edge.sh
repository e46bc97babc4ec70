#!/usr/bin/env bash
# Builds the edge/browser package: bridle-web for wasm32-unknown-unknown, then wasm-bindgen's
# `web` glue into edge/pkg (loaded by edge/bridle.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked -p bridle-web --target wasm32-unknown-unknown --profile edge
wasm-bindgen --target web --remove-name-section --remove-producers-section \
  --out-dir edge/pkg --out-name bridle_web \
  target/wasm32-unknown-unknown/edge/bridle_web.wasm
# Node reads `web` output as CommonJS unless its folder says it is ES modules.
printf '{"type": "module"}\n' > edge/pkg/package.json
echo "edge/pkg/bridle_web_bg.wasm: $(stat -c %s edge/pkg/bridle_web_bg.wasm) bytes ($(gzip -c edge/pkg/bridle_web_bg.wasm | wc -c) gzipped)"
