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
targets=(token config mcp decision key_set)

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
# Key set seeds: a JWKS with an EC and an RSA key, and a SPIFFE bundle document.
mkdir -p corpus/key_set
printf '%s' '{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},{"kty":"RSA","kid":"r","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}]}' \
  >corpus/key_set/seed-jwks
printf '%s' '{"spiffe_sequence":1,"spiffe_refresh_hint":300,"keys":[{"use":"jwt-svid","kty":"EC","crv":"P-256","kid":"s","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},{"use":"x509-svid","kty":"EC","crv":"P-256","x5c":["MIIB"],"x":"AA","y":"AA"}]}' \
  >corpus/key_set/seed-spiffe
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
