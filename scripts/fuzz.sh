#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a while (nightly; `cargo fuzz` is installed by
# scripts/setup.sh). The token target starts from a fresh hostile-token corpus.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [--asan]
#   CI runs `scripts/fuzz.sh 20`: no sanitizer (the Rust code has no `unsafe`; a panic, an
#   abort or memory over the limit is what a run looks for), which keeps the build short.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
sanitizer=(--sanitizer none)
if [ "${2:-}" = "--asan" ]; then
  sanitizer=()
fi
targets=(token config mcp decision)

cd fuzz
cargo +nightly fuzz build -O "${sanitizer[@]}"
mkdir -p corpus/token
../.venv/bin/python ../host-tests/corpus/gen.py corpus/token-seed.json
../.venv/bin/python - corpus/token-seed.json corpus/token <<'PY'
import hashlib, json, pathlib, sys
out = pathlib.Path(sys.argv[2])
for case in json.load(open(sys.argv[1]))["cases"]:
    token = case["token"].encode()
    (out / hashlib.sha1(token).hexdigest()).write_bytes(token)
PY
# Decision seeds: first byte 1 adds a valid workload token, 2 a valid task token.
mkdir -p corpus/decision
printf '\x01GET\n/api/reports\nfuzz.internal\n\n' >corpus/decision/seed-get
printf '\x03GET\n/tasks/a\nfuzz.internal\n\n' >corpus/decision/seed-task
printf '\x01PUT\n/approve\nfuzz.internal\nbridle-approval: x.y.z\n\n' >corpus/decision/seed-approval
printf '\x03POST\n/mcp\nfuzz.internal\ncontent-type: application/json\n\n%s' \
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy","arguments":{}}}' \
  >corpus/decision/seed-mcp
# The shapes of the fail-open review: a charset the upstream would honour, a content coding,
# `;` path parameters, caller copies of reserved headers.
printf '\x03POST\n/mcp\nfuzz.internal\ncontent-type: application/json; charset=utf-7\n\n%s' \
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy","arguments":{}}}' \
  >corpus/decision/seed-charset
printf '\x03POST\n/mcp\nfuzz.internal\ncontent-type: application/json\ncontent-encoding: gzip\n\n{}' \
  >corpus/decision/seed-encoding
printf '\x01GET\n/api/..;/mcp\nfuzz.internal\n\n' >corpus/decision/seed-semicolon
printf '\x01GET\n/api/reports\nfuzz.internal\nx-bridle-agent: spiffe://fuzz.test/agent/admin\n\n' \
  >corpus/decision/seed-reserved
mkdir -p corpus/mcp
printf 'application/json; charset="utf-8"\n{"jsonrpc":"2.0","id":1,"method":"tools/list"}' \
  >corpus/mcp/seed-content-type
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo "== fuzz $target (${seconds}s)"
  # -rss_limit_mb / -malloc_limit_mb: unbounded memory is a failure; -timeout: so is a stall.
  log="artifacts/$target.log"
  mkdir -p artifacts
  status=0
  cargo +nightly fuzz run -O "${sanitizer[@]}" "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
    -max_len=16384 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^Done|stat::number_of_executed_units|stat::peak_rss_mb|cov: .*DONE" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log"
    echo "fuzz target $target failed (reproducer under fuzz/artifacts/$target/)" >&2
    exit "$status"
  fi
done
