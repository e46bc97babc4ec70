#!/usr/bin/env python3
"""Envoy side by side on loopback: the same route and load with and without Bridle.

Three Envoys (--concurrency 1): an upstream answering 200 itself, a baseline proxy without any
auth filter, and the same proxy with bridle.wasm (shipped agent policy, demo issuer, audit log
off). wrk runs against the two proxies alternately, several rounds each; the script prints
requests/s and latency per round, Envoy CPU per request (utime+stime over the run), RSS, and the
ratios. Usage: .venv/bin/python scripts/bench-envoy.py [--rounds N] [--seconds S] [--connections C]
Needs wrk (scripts/setup.sh --bench).
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


def plugin_config(jwk):
    policy = ROOT / "policies/agents"
    public = {k: jwk[k] for k in ("kty", "crv", "kid", "x", "y")}
    return {
        "issuers": [{"issuer": "spiffe://demo.bridle.dev", "profile": "jwt-svid", "audiences": ["bridle-gateway"],
                     "algorithms": ["ES256"], "jwks": {"keys": [public]}}],
        "policy": {"entrypoint": "data.bridle.agents.decision",
                   "modules": [{"name": "agents.rego", "source": (policy / "agents.rego").read_text()}],
                   "data": json.loads((policy / "data.json").read_text())},
        "environment": {"name": "prod"},
        "audit": {"log": False},
    }


def render(listen, admin, upstream, config, with_bridle):
    text = (ROOT / "envoy/bridle.yaml.tmpl").read_text()
    if not with_bridle:
        text = re.sub(r"\n {10}- name: envoy\.filters\.http\.wasm\n.*?(?=\n {10}- name: envoy\.filters\.http\.router)", "", text, flags=re.S)
    values = {"LISTEN_PORT": str(listen), "ADMIN_PORT": str(admin), "UPSTREAM_PORT": str(upstream),
              "CONTROL_PORT": str(upstream), "ACCESS_LOG": json.dumps("/dev/null"), "PRE_FILTERS": "",
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


def wrk(port, seconds, connections, token):
    out = subprocess.check_output(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                                   "-H", f"authorization: Bearer {token}", f"http://127.0.0.1:{port}/api/reports"], text=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    lat = {p: re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out) for p in ("50", "99")}
    scale = {"us": 1, "ms": 1000, "s": 1_000_000}
    return rps, total, int(non2xx.group(1)) if non2xx else 0, {p: float(m.group(1)) * scale[m.group(2)] for p, m in lat.items()}


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--rounds", type=int, default=3)
    args.add_argument("--seconds", type=int, default=10)
    args.add_argument("--connections", type=int, nargs="+", default=[1, 16])
    opts = args.parse_args()
    jwk = json.loads((ROOT / "envoy/demo/demo-issuer.jwk.json").read_text())
    key = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps({k: jwk[k] for k in ("kty", "crv", "x", "y", "d")}))
    now = int(time.time())
    token = jwt.encode({"iss": "spiffe://demo.bridle.dev", "sub": "spiffe://demo.bridle.dev/agent/research-bot",
                        "aud": "bridle-gateway", "iat": now, "exp": now + 3600}, key, algorithm="ES256",
                       headers={"kid": jwk["kid"], "typ": "JWT"})
    workdir = Path(tempfile.mkdtemp(prefix="bridle-bench-"))
    up_port, up_admin = free_port(), free_port()
    procs = {"upstream": (start(UPSTREAM.format(port=up_port, admin=up_admin), workdir, "upstream"), up_admin, up_port)}
    config = plugin_config(jwk)
    for name, with_bridle in (("bare", False), ("bridle", True)):
        port, admin = free_port(), free_port()
        procs[name] = (start(render(port, admin, up_port, config, with_bridle), workdir, name), admin, port)
    try:
        for name, (proc, admin, _) in procs.items():
            wait_ready(admin, proc, name)
        results = {}
        for connections in opts.connections:
            for rnd in range(opts.rounds):
                for name in ("bare", "bridle"):
                    proc, _, port = procs[name]
                    before = cpu_ticks(proc.pid)
                    rps, total, non2xx, lat = wrk(port, opts.seconds, connections, token)
                    ticks = cpu_ticks(proc.pid) - before
                    cpu_us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / max(total, 1)
                    if non2xx:
                        sys.exit(f"{name}: {non2xx} non-2xx responses: the check is not equivalent")
                    results.setdefault((name, connections), []).append((rps, lat["50"], lat["99"], cpu_us))
                    print(f"c={connections:<3} round {rnd + 1} {name:<7} {rps:>9.0f} req/s  p50 {lat['50']:>7.0f} us  p99 {lat['99']:>7.0f} us  cpu {cpu_us:>5.1f} us/req", flush=True)
        print()
        for connections in opts.connections:
            bare, bridle = results[("bare", connections)], results[("bridle", connections)]
            med = lambda rows, i: statistics.median(r[i] for r in rows)
            print(f"c={connections}: bridle/bare req/s ratio {med(bridle, 0) / med(bare, 0):.2f} "
                  f"(min {min(b[0] for b in bridle) / max(a[0] for a in bare):.2f}, max {max(b[0] for b in bridle) / min(a[0] for a in bare):.2f}); "
                  f"added p50 {med(bridle, 1) - med(bare, 1):.0f} us; CPU/req bare {med(bare, 3):.1f} us, bridle {med(bridle, 3):.1f} us "
                  f"(x{med(bridle, 3) / med(bare, 3):.2f})")
        print(f"RSS: bare {rss_mb(procs['bare'][0].pid):.0f} MB, bridle {rss_mb(procs['bridle'][0].pid):.0f} MB")
    finally:
        for proc, _, _ in procs.values():
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
