#!/usr/bin/env python3
"""Soak: Envoy with Bridle under sustained mixed load on loopback, for minutes.

Two Envoys (--concurrency 1): an upstream answering 200 itself, and the shipped template with
bridle.wasm (ES256 issuer minted here with PyJWT, an MCP route, a policy that allows reads and
one MCP tool). Client threads send a mix of valid requests (a pool of tokens plus a fresh token
every few requests, so the verified-token cache keeps churning), valid MCP calls, MCP calls the
policy refuses, and invalid credentials (expired, forged signature, alg none, garbage, none) and
oversized bodies. Every response is checked against what that request must get. Envoy's RSS is
sampled; growth is measured from the end of the warm-up to the end.

Prints the figures; exits 1 if any valid request failed, any invalid one was not refused, Envoy
died, or RSS grew by 5% or more after warm-up.

Usage: .venv/bin/python scripts/soak.py [--seconds 600] [--warmup 120] [--threads 4]
"""
import argparse, http.client, json, os, random, re, socket, statistics, subprocess, sys, tempfile, threading, time
import urllib.request
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from envoy_proc import UPSTREAM, envoy_binary, free_port, rss_kb, start, wait_ready

ROOT = Path(__file__).resolve().parent.parent
WASM = ROOT / "target/wasm32-wasip1/release/bridle.wasm"
ISS = "spiffe://soak.bridle.test"
AUD = "bridle-gateway"
AGENT = "spiffe://soak.bridle.test/agent/soak-bot"
POLICY = """package soak
import rego.v1
default decision := {"allow": false, "reasons": ["not allowed"]}
decision := {"allow": true} if input.request.method == "GET"
decision := {"allow": true} if input.intent.tool == "search"
"""


def b64(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Tokens:
    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.foreign = ec.generate_private_key(ec.SECP256R1())
        self.jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        self.jwk.update({"kid": "soak-1", "alg": "ES256"})
        self.counter = 0
        self.lock = threading.Lock()

    def mint(self, key=None, exp=300, iat=0):
        with self.lock:
            self.counter += 1
            n = self.counter
        now = int(time.time())
        claims = {"iss": ISS, "sub": AGENT, "aud": AUD, "iat": now + iat, "exp": now + exp, "jti": f"soak-{n}"}
        return jwt.encode(claims, key or self.key, algorithm="ES256", headers={"kid": "soak-1", "typ": "JWT"})


def plugin_config(tokens):
    return {
        "issuers": [{"issuer": ISS, "profile": "jwt-svid", "trust_domain": "soak.bridle.test", "audiences": [AUD], "algorithms": ["ES256"],
                     "jwks": {"keys": [tokens.jwk]}}],
        "routes": [{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp"}],
        "mcp": {"max_body_bytes": 8192, "tools": {"search": {"action": "read", "data_class": "public"},
                                                    "deploy": {"action": "execute", "data_class": "infrastructure"}}},
        "policy": {"entrypoint": "data.soak.decision", "modules": [{"name": "soak.rego", "source": POLICY}]},
        "audit": {"log": False},
    }


def render(listen, admin, upstream, config):
    text = (ROOT / "envoy/bridle.yaml.tmpl").read_text()
    values = {"LISTEN_PORT": str(listen), "ADMIN_PORT": str(admin), "UPSTREAM_PORT": str(upstream),
              "CONTROL_PORT": str(upstream), "ACCESS_LOG": json.dumps("/dev/null"), "PRE_FILTERS": "",
              "WASM_PATH": json.dumps(str(WASM)), "PLUGIN_CONFIG": json.dumps(json.dumps(config))}
    return re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def mcp_body(tool, pad=0):
    args = {"q": "x" * pad} if pad else {"q": "status"}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args}})


class Mix:
    """Request kinds with their weights and the status each must get."""

    def __init__(self, tokens):
        self.tokens = tokens
        self.pool = [tokens.mint(exp=3600) for _ in range(32)]
        self.pool_lock = threading.Lock()
        valid = lambda: random.choice(self.pool)
        expired = tokens.mint(exp=-600, iat=-1200)
        forged = tokens.mint(key=tokens.foreign, exp=3600)
        h, p, _ = valid().split(".")
        none_header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        none = f"{none_header}.{p}."
        json_headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        self.kinds = [
            # name, weight, valid?, factory -> (method, path, headers, body), expected status
            ("valid-get", 40, True, lambda: ("GET", "/api/reports", {"authorization": f"Bearer {valid()}"}, None), 200),
            ("valid-get-fresh-token", 10, True, lambda: ("GET", "/api/items", {"authorization": f"Bearer {tokens.mint()}"}, None), 200),
            ("mcp-allowed", 15, True, lambda: ("POST", "/mcp", dict(json_headers, authorization=f"Bearer {valid()}"), mcp_body("search")), 200),
            ("mcp-denied", 5, False, lambda: ("POST", "/mcp", dict(json_headers, authorization=f"Bearer {valid()}"), mcp_body("deploy")), 403),
            ("mcp-oversized", 3, False, lambda: ("POST", "/mcp", dict(json_headers, authorization=f"Bearer {valid()}"), mcp_body("search", 9000)), 413),
            ("expired", 5, False, lambda: ("GET", "/api/reports", {"authorization": f"Bearer {expired}"}, None), 401),
            ("forged", 5, False, lambda: ("GET", "/api/reports", {"authorization": f"Bearer {forged}"}, None), 401),
            ("alg-none", 5, False, lambda: ("GET", "/api/reports", {"authorization": f"Bearer {none}"}, None), 401),
            ("garbage", 5, False, lambda: ("GET", "/api/reports", {"authorization": "Bearer " + b64(os.urandom(48))}, None), 401),
            ("no-credential", 4, False, lambda: ("GET", "/api/reports", {}, None), 401),
            ("tampered", 3, False, lambda: ("GET", "/api/reports", {"authorization": f"Bearer {h}.{b64(os.urandom(40))}.{valid().split('.')[2]}"}, None), 401),
        ]
        self.weights = [k[1] for k in self.kinds]

    def refresh(self):
        fresh = [self.tokens.mint(exp=3600) for _ in range(32)]
        with self.pool_lock:
            self.pool = fresh

    def pick(self):
        return random.choices(self.kinds, self.weights)[0]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind = {}
        self.failures = []
        self.total = 0

    def record(self, kind, ok, detail):
        with self.lock:
            self.total += 1
            counts = self.by_kind.setdefault(kind, [0, 0])
            counts[0 if ok else 1] += 1
            if not ok and len(self.failures) < 20:
                self.failures.append(f"{kind}: {detail}")


def worker(port, mix, stats, stop):
    conn = None
    while not stop.is_set():
        name, _, _, factory, expected = mix.pick()
        method, path, headers, body = factory()
        headers = dict(headers, host="soak.internal")
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request(method, path, body=body, headers=headers)
            reply = conn.getresponse()
            reply.read()
            ok = reply.status == expected
            stats.record(name, ok, f"got {reply.status}, expected {expected}")
            if reply.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as err:
            stats.record(name, False, f"connection error: {err!r}")
            if conn is not None:
                conn.close()
            conn = None


def wasm_stats(admin):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats?filter=wasm|bridle", timeout=5) as reply:
            return reply.read().decode()
    except OSError as err:
        return f"(stats unavailable: {err})"


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--seconds", type=int, default=600)
    args.add_argument("--warmup", type=int, default=120)
    args.add_argument("--threads", type=int, default=4)
    args.add_argument("--sample", type=int, default=10, help="RSS sampling period, seconds")
    opts = args.parse_args()
    if not WASM.is_file():
        sys.exit(f"{WASM} is missing: run scripts/build-wasm.sh")
    envoy = envoy_binary()
    tokens = Tokens()
    mix = Mix(tokens)
    workdir = Path(tempfile.mkdtemp(prefix="bridle-soak-"))
    up_port, up_admin, port, admin = free_port(), free_port(), free_port(), free_port()
    upstream = start(envoy, UPSTREAM.format(port=up_port, admin=up_admin), workdir, "upstream")
    bridle = start(envoy, render(port, admin, up_port, plugin_config(tokens)), workdir, "bridle")
    stop = threading.Event()
    stats = Stats()
    samples = []  # (seconds since start, rss kB, requests so far)
    try:
        wait_ready(up_admin, upstream, "upstream")
        wait_ready(admin, bridle, "bridle")
        threads = [threading.Thread(target=worker, args=(port, mix, stats, stop), daemon=True) for _ in range(opts.threads)]
        began = time.time()
        for t in threads:
            t.start()
        next_refresh = began + 60
        while (elapsed := time.time() - began) < opts.seconds:
            time.sleep(opts.sample)
            if bridle.poll() is not None:
                stats.failures.append(f"envoy exited with {bridle.returncode}")
                break
            samples.append((time.time() - began, rss_kb(bridle.pid), stats.total))
            s = samples[-1]
            print(f"t={s[0]:>5.0f}s rss={s[1] / 1024:>6.1f} MB requests={s[2]:>8} failures={len(stats.failures)}", flush=True)
            if time.time() >= next_refresh:
                mix.refresh()
                next_refresh += 60
        stop.set()
        for t in threads:
            t.join(timeout=35)
        duration = time.time() - began
        alive = bridle.poll() is None
        after = [s for s in samples if s[0] >= opts.warmup]
        base = after[0][1] if after else 0
        end = statistics.median([s[1] for s in after[-3:]]) if after else 0
        peak = max((s[1] for s in after), default=0)
        growth = (end - base) / base * 100 if base else float("nan")
        peak_growth = (peak - base) / base * 100 if base else float("nan")
        print("\n== soak figures")
        print(f"duration {duration:.0f} s, {stats.total} requests ({stats.total / duration:.0f} req/s), threads {opts.threads}, envoy --concurrency 1")
        for name, (ok, bad) in sorted(stats.by_kind.items()):
            print(f"  {name:<22} {ok:>8} as expected, {bad:>4} not")
        print(f"RSS: start {samples[0][1] / 1024 if samples else 0:.1f} MB, after {opts.warmup} s warm-up {base / 1024:.1f} MB, "
              f"end {end / 1024:.1f} MB (median of last 3), peak {peak / 1024:.1f} MB; "
              f"growth after warm-up {growth:+.2f}% (peak {peak_growth:+.2f}%)")
        print("wasm stats:\n" + "\n".join("  " + l for l in wasm_stats(admin).splitlines() if l.strip()))
        failed = bool(stats.failures) or not alive or not after or growth >= 5.0
        if stats.failures:
            print("failures (first 20):\n  " + "\n  ".join(stats.failures))
        print("SOAK " + ("FAILED" if failed else "PASSED"))
        sys.exit(1 if failed else 0)
    finally:
        stop.set()
        for proc in (bridle, upstream):
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
