#!/usr/bin/env bash
# Builds Kong's wasm runtime — nginx 1.22.1 with ngx_wasm_module 0.6.0 on the Wasmtime 26.0.0
# C API — into .tools/kong-host/, from Debian's nginx source, crates.io and the module archive
# in ../shared/vendor/ (unchanged). Idempotent: keyed by the versions and this script, so it
# rebuilds only when one of them changes. Prints what it built.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

NGINX_VERSION=1.22.1
MODULE=ngx_wasm_module-0.6.0
VENDOR=../shared/vendor/$MODULE.tar.gz
out=.tools/kong-host
key="nginx $NGINX_VERSION, $MODULE, wasmtime-c-api-impl 26.0.0, $(sha256sum "$0" scripts/kong-wasmtime/Cargo.toml scripts/kong-wasmtime/Cargo.lock | sha256sum | cut -c1-16)"
if [ -x "$out/sbin/nginx" ] && [ "$(cat "$out/built" 2>/dev/null || true)" = "$key" ]; then
  echo "kong host: present ($key)"
  exit 0
fi
started=$(date +%s)

# Build dependencies from Debian: the Wasmtime C API's build script runs cmake.
missing=()
for pkg in cmake libpcre3-dev zlib1g-dev libssl-dev dpkg-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=.tools/kong-build
mkdir -p "$work"
# nginx source: Debian's orig tarball, through a deb-src entry for the configured suite.
if [ ! -f "$work/nginx_$NGINX_VERSION.orig.tar.gz" ]; then
  if [ ! -f /etc/apt/sources.list.d/bridle-src.sources ]; then
    sed -e 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
      >/etc/apt/sources.list.d/bridle-src.sources
    apt-get update -qq >/dev/null || true
  fi
  # The security pool's files may 404; the orig tarball is all that is needed.
  (cd "$work" && apt-get source --download-only -qq nginx >/dev/null 2>&1 || true)
  [ -f "$work/nginx_$NGINX_VERSION.orig.tar.gz" ] || {
    echo "error: apt-get source did not bring nginx_$NGINX_VERSION.orig.tar.gz" >&2
    exit 1
  }
fi

# The Wasmtime C API as a static library, and its headers with conf.h filled in.
export CARGO_TARGET_DIR=$root/.tools/kong-wasmtime
(cd scripts/kong-wasmtime && cargo build --release --locked --quiet)
lib=$CARGO_TARGET_DIR/release
capi=$(cd scripts/kong-wasmtime && cargo metadata --format-version 1 --locked 2>/dev/null |
  python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "wasmtime-c-api-impl").rsplit("/", 1)[0])')
include=$root/$work/include
rm -rf "$include"
cp -r "$capi/include" "$include"
python3 - "$include/wasmtime/conf.h.in" "$include/wasmtime/conf.h" <<'PY'
import re, sys
on = {"WASMTIME_FEATURE_" + f for f in ["CRANELIFT", "WAT", "ASYNC", "ADDR2LINE", "DEMANGLE",
      "CACHE", "PARALLEL_COMPILATION", "GC", "WASI", "THREADS"]}
text = open(sys.argv[1]).read()
def define(m):
    name = m.group(1)
    return f"#define {name}" if name in on else f"#undef {name}"
open(sys.argv[2], "w").write(re.sub(r"#cmakedefine (\w+)", define, text))
PY

rm -rf "$work/nginx-$NGINX_VERSION" "$work/$MODULE"
tar -xzf "$work/nginx_$NGINX_VERSION.orig.tar.gz" -C "$work"
tar -xzf "$VENDOR" -C "$work"
module=$(find "$root/$work" -maxdepth 1 -type d -name 'ngx_wasm_module*' | head -1)
(
  cd "$work/nginx-$NGINX_VERSION"
  NGX_WASM_RUNTIME=wasmtime NGX_WASM_RUNTIME_INC="$include" NGX_WASM_RUNTIME_LIB="$lib" \
    ./configure --prefix="$root/$out" --add-module="$module" \
    --with-cc-opt="-I$include -O2" --with-ld-opt="$lib/libwasmtime.a -ldl -lm -lpthread" \
    >"$root/$work/configure.log" 2>&1 || { tail -30 "$root/$work/configure.log"; exit 1; }
  make -j2 >"$root/$work/make.log" 2>&1 || { tail -30 "$root/$work/make.log"; exit 1; }
  make install >/dev/null
)
echo "$key" >"$out/built"
echo "kong host: built $out/sbin/nginx ($key) in $(($(date +%s) - started)) s"
