#!/usr/bin/env python3
"""Envoy side by side on loopback: the same route and load with and without authorization.

One upstream Envoy answering 200 itself, and one proxy Envoy (--concurrency 1) per configuration:
  bare         (a) no auth filter
  jwt-rbac     (b) Envoy's native jwt_authn (ES256, jwt_cache_config) + RBAC allowing the agent's
                   SPIFFE ID to GET /api/reports and /api/reports/*: the same check as (c)
  bridle-equiv (c) bridle.wasm with a Rego policy making that same check
  bridle-agents    bridle.wasm with the shipped agent policy on the same GET
  bridle-mcp   (d) bridle.wasm with the shipped agent policy on MCP tools/call POSTs
All use one cached ES256 token (demo issuer), audit log off. wrk runs against the proxies in
turn, alternating, several rounds each; the script prints requests/s and latency per round, Envoy
CPU per request (utime+stime over the run), RSS, and ratios (median, min, max) against (a) and (b).
Usage: .venv/bin/python scripts/bench-envoy.py [--rounds N] [--seconds S] [--connections C ...]
[--configs NAME ...] [--baseline-rego FILE] (adds `bridle-baseline`: the agent policy replaced by
FILE, e.g. an earlier agents.rego, on the same GET). Needs wrk (scripts/setup.sh --bench).
"""
import argparse, json, os, re, socket, statistics, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

import jwt  # PyJWT, installed with the MCP SDK

ROOT = Path(__file__).resolve().parent.parent
ENVOY = Path(subprocess.check_output([str(ROOT / ".venv/bin/python"), "-c",
    "import os, envoy; print(os.path.join(os.path.dirname(envoy.__file__), '_bin', 'envoy'))"], text=True).strip())
WASM = ROOT / "target/wasm32-wasip1/release/bridle.wasm"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


AGENT = "spiffe://demo.bridle.dev/agent/research-bot"

# (c): exactly what the RBAC filter of (b) checks, as Rego.
EQUIVALENT_REGO = f"""package bench
import rego.v1
default decision := {{"allow": false, "reasons": ["not allowed"]}}
decision := {{"allow": true, "reasons": []}} if {{
	input.identity.spiffe.id == "{AGENT}"
	input.request.method == "GET"
	segments := input.request.segments
	array.slice(segments, 0, 2) == ["api", "reports"]
	count(segments) <= 3
}}
"""

MCP_BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "read_report", "arguments": {"id": "q3"}}})


def public_jwk(jwk):
    return {k: jwk[k] for k in ("kty", "crv", "kid", "x", "y")}


def plugin_config(jwk, variant="agents"):
    policy = ROOT / "policies/agents"
    public = public_jwk(jwk)
    config = {
        "issuers": [{"issuer": "spiffe://demo.bridle.dev", "profile": "jwt-svid", "audiences": ["bridle-gateway"],
                     "algorithms": ["ES256"], "jwks": {"keys": [public]}}],
        "policy": {"entrypoint": "data.bridle.agents.decision",
                   "modules": [{"name": "agents.rego", "source": (policy / "agents.rego").read_text()}],
                   "data": json.loads((policy / "data.json").read_text())},
        "environment": {"name": "prod"},
        "audit": {"log": False},
    }
    if variant == "baseline":
        config["policy"]["modules"][0]["source"] = Path(BASELINE_REGO).read_text()
    if variant == "equiv":
        config["policy"] = {"entrypoint": "data.bench.decision", "modules": [{"name": "bench.rego", "source": EQUIVALENT_REGO}]}
    if variant == "mcp":
        config["routes"] = [{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp"}]
        config["mcp"] = {"tools": {"read_report": {"action": "read", "data_class": "internal"}}}
    return config


def native_filters(jwk):
    """(b): jwt_authn verifying the token (verified tokens cached) and RBAC on its payload."""
    jwt_authn = {"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"demo": {"issuer": "spiffe://demo.bridle.dev", "audiences": ["bridle-gateway"],
                               "local_jwks": {"inline_string": json.dumps({"keys": [public_jwk(jwk)]})},
                               "payload_in_metadata": "jwt_payload",
                               "jwt_cache_config": {"jwt_cache_size": 1024}}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "demo"}}]}}
    rbac = {"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {"action": "ALLOW", "policies": {"research-bot": {
            "permissions": [{"and_rules": {"rules": [
                {"header": {"name": ":method", "string_match": {"exact": "GET"}}},
                {"or_rules": {"rules": [{"url_path": {"path": {"exact": "/api/reports"}}},
                                        {"url_path": {"path": {"safe_regex": {"regex": "/api/reports/[^/]+"}}}}]}}]}}],
            "principals": [{"metadata": {"filter": "envoy.filters.http.jwt_authn",
                                         "path": [{"key": "jwt_payload"}, {"key": "sub"}],
                                         "value": {"string_match": {"exact": AGENT}}}}]}}}}}
    return "\n          ".join(f"- {json.dumps(f)}" for f in (jwt_authn, rbac))


def render(listen, admin, upstream, config, with_bridle, pre_filters=""):
    text = (ROOT / "envoy/bridle.yaml.tmpl").read_text()
    if not with_bridle:
        text = re.sub(r"\n {10}- name: envoy\.filters\.http\.wasm\n.*?(?=\n {10}- name: envoy\.filters\.http\.router)", "", text, flags=re.S)
    values = {"LISTEN_PORT": str(listen), "ADMIN_PORT": str(admin), "UPSTREAM_PORT": str(upstream),
              "CONTROL_PORT": str(upstream), "ACCESS_LOG": json.dumps("/dev/null"), "PRE_FILTERS": pre_filters,
              "WASM_PATH": json.dumps(str(WASM)), "PLUGIN_CONFIG": json.dumps(json.dumps(config))}
    return re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


UPSTREAM = """admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}}}
static_resources:
  listeners:
  - address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: upstream
          route_config: {{virtual_hosts: [{{name: all, domains: ["*"], routes: [{{match: {{prefix: "/"}}, direct_response: {{status: 200, body: {{inline_string: "ok"}}}}}}]}}]}}
          http_filters: [{{name: envoy.filters.http.router, typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}}}]
"""


def start(config_text, workdir, name):
    path = workdir / f"{name}.yaml"
    path.write_text(config_text)
    proc = subprocess.Popen([str(ENVOY), "-c", str(path), "--concurrency", "1", "-l", "error", "--base-id-path",
                             str(workdir / f"{name}.base-id"), "--use-dynamic-base-id"],
                            stdout=subprocess.DEVNULL, stderr=open(workdir / f"{name}.log", "w"))
    return proc


def wait_ready(admin, proc, name):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name}: envoy exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1) as reply:
                if b"LIVE" in reply.read():
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{name}: not ready")


def cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wrk(port, seconds, connections, token, mcp_script=None):
    target = ["-s", str(mcp_script), f"http://127.0.0.1:{port}/mcp"] if mcp_script else [f"http://127.0.0.1:{port}/api/reports/q3"]
    out = subprocess.check_output(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                                   "-H", f"authorization: Bearer {token}", *target], text=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    lat = {p: re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out) for p in ("50", "99")}
    scale = {"us": 1, "ms": 1000, "s": 1_000_000}
    return rps, total, int(non2xx.group(1)) if non2xx else 0, {p: float(m.group(1)) * scale[m.group(2)] for p, m in lat.items()}


BASELINE_REGO = None

# name -> (Bridle configuration variant or None, native filters?)
CONFIGS = {"bare": (None, False), "jwt-rbac": (None, True), "bridle-equiv": ("equiv", False),
           "bridle-agents": ("agents", False), "bridle-mcp": ("mcp", False)}


def spread(rows, base, i):
    """Median ratio of column i, and the extreme ratios over the rounds."""
    a, b = [r[i] for r in rows], [r[i] for r in base]
    return statistics.median(a) / statistics.median(b), min(a) / max(b), max(a) / min(b)


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--rounds", type=int, default=3)
    args.add_argument("--seconds", type=int, default=10)
    args.add_argument("--connections", type=int, nargs="+", default=[1, 16])
    args.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args.add_argument("--baseline-rego")
    opts = args.parse_args()
    if opts.baseline_rego:
        global BASELINE_REGO
        BASELINE_REGO = opts.baseline_rego
        CONFIGS["bridle-baseline"] = ("baseline", False)
        opts.configs.append("bridle-baseline")
    jwk = json.loads((ROOT / "envoy/demo/demo-issuer.jwk.json").read_text())
    key = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps({k: jwk[k] for k in ("kty", "crv", "x", "y", "d")}))
    now = int(time.time())
    token = jwt.encode({"iss": "spiffe://demo.bridle.dev", "sub": "spiffe://demo.bridle.dev/agent/research-bot",
                        "aud": "bridle-gateway", "iat": now, "exp": now + 3600}, key, algorithm="ES256",
                       headers={"kid": jwk["kid"], "typ": "JWT"})
    workdir = Path(tempfile.mkdtemp(prefix="bridle-bench-"))
    mcp_script = workdir / "mcp.lua"
    mcp_script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(MCP_BODY)}\n'
                          'wrk.headers["content-type"] = "application/json"\n')
    up_port, up_admin = free_port(), free_port()
    procs = {"upstream": (start(UPSTREAM.format(port=up_port, admin=up_admin), workdir, "upstream"), up_admin, up_port)}
    names = [n for n in CONFIGS if n in opts.configs]
    for name in names:
        variant, native = CONFIGS[name]
        port, admin = free_port(), free_port()
        text = render(port, admin, up_port, plugin_config(jwk, variant or "agents"), variant is not None,
                      native_filters(jwk) if native else "")
        procs[name] = (start(text, workdir, name), admin, port)
    try:
        for name, (proc, admin, _) in procs.items():
            started = time.time()
            wait_ready(admin, proc, name)
            if name != "upstream":
                print(f"{name}: ready after {time.time() - started:.2f} s (checked in turn)", flush=True)
        results = {}
        for connections in opts.connections:
            for rnd in range(opts.rounds):
                for name in names:
                    proc, _, port = procs[name]
                    before = cpu_ticks(proc.pid)
                    script = mcp_script if name == "bridle-mcp" else None
                    rps, total, non2xx, lat = wrk(port, opts.seconds, connections, token, script)
                    ticks = cpu_ticks(proc.pid) - before
                    cpu_us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / max(total, 1)
                    if non2xx:
                        sys.exit(f"{name}: {non2xx} non-2xx responses: the check is not equivalent")
                    results.setdefault((name, connections), []).append((rps, lat["50"], lat["99"], cpu_us))
                    print(f"c={connections:<3} round {rnd + 1} {name:<13} {rps:>9.0f} req/s  p50 {lat['50']:>7.0f} us  p99 {lat['99']:>7.0f} us  cpu {cpu_us:>6.1f} us/req", flush=True)
        print()
        for connections in opts.connections:
            print(f"c={connections}   (ratio = median; [min, max] over rounds)")
            for name in names:
                rows = results[(name, connections)]
                med = lambda i: statistics.median(r[i] for r in rows)
                line = f"  {name:<13} {med(0):>8.0f} req/s  p50 {med(1):>6.0f} us  p99 {med(2):>6.0f} us  cpu {med(3):>6.1f} us/req"
                if "bare" in names and name != "bare":
                    base = results[("bare", connections)]
                    r, lo, hi = spread(rows, base, 0)
                    line += f"  req/s vs bare {r:.2f} [{lo:.2f}, {hi:.2f}]  added p50 {med(1) - statistics.median(b[1] for b in base):.0f} us"
                if "jwt-rbac" in names and name.startswith("bridle"):
                    r, lo, hi = spread(rows, results[("jwt-rbac", connections)], 3)
                    line += f"  cpu vs jwt-rbac x{r:.2f} [{lo:.2f}, {hi:.2f}]"
                print(line)
        print("RSS: " + ", ".join(f"{name} {rss_mb(procs[name][0].pid):.0f} MB" for name in names))
    finally:
        for proc, _, _ in procs.values():
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
