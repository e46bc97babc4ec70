#!/usr/bin/env python3
"""Envoy side by side on loopback: the same route and load with and without authorization.

One upstream Envoy answering 200 itself, and one proxy Envoy (--concurrency 1) per configuration:
  bare         (a) no auth filter
  jwt-rbac     (b) Envoy's native jwt_authn (ES256, jwt_cache_config) + RBAC allowing the agent's
                   SPIFFE ID to GET /api/reports and /api/reports/*: the same check as (c)
  bridle-equiv (c) bridle.wasm with a Rego policy making that same check
  bridle-agents    bridle.wasm with the shipped agent policy on the same GET
  bridle-mcp   (d) bridle.wasm with the shipped agent policy on MCP tools/call POSTs
All of these use one cached ES256 token (demo issuer), audit log off. New credentials, every
request a token neither cache has seen (wrk cycles through --fresh-tokens distinct pre-minted
tokens, valid for the whole run, continuing each configuration's cycle from round to round; more
tokens than Bridle's `identity.cache_entries`):
  jwt-rbac-fresh             (e) jwt_authn without jwt_cache_config + the RBAC of (b)
  bridle-fresh               (f) bridle.wasm verifying ES256 itself (pure wasm), the policy of (c)
  bridle-hostverified-fresh  (g) jwt_authn verifying (forward, forward_payload_header,
                                 payload_in_metadata) + bridle.wasm with identity.host_verification
                                 and the policy of (c)
Not Bridle, to split Bridle's cost in Envoy (plugin/proxy-wasm/examples/baseline_filter.rs, built
by the script): a Rust proxy-wasm filter that decides nothing, the same cached token:
  wasm-null        every callback continues; no host calls
  wasm-host-calls  the host calls Bridle's allow makes (headers, clock x2, counters x2, remove and
                   set a request header, set a response header), no decision
wrk runs against the proxies in turn, alternating, several rounds each; the script prints
requests/s and latency per round, Envoy CPU per request (utime+stime over the run), RSS, and ratios
(median, min, max) against (a), (b) and, for new credentials, (e). Before that, --startup-runs
times each of --startup-configs started alone (nothing else starting): seconds to /ready and to
the first forwarded request, and the CPU seconds used until /ready; --rounds 0 stops there.
Usage: .venv/bin/python scripts/bench-envoy.py [--rounds N] [--seconds S] [--connections C ...]
[--configs NAME ...] [--fresh-tokens N] [--startup-runs N] [--startup-configs NAME ...]
[--wasm FILE] [--baseline-wasm FILE] [--baseline-rego FILE] (--wasm: another build of the module,
e.g. rustc's output before wasm-opt; --baseline-wasm adds `bridle-equiv-basewasm`, (c) on another
build, to compare two builds in one run; --baseline-rego adds `bridle-baseline`: the agent policy replaced by FILE, e.g. an earlier
agents.rego, on the same GET). Needs wrk (scripts/setup.sh --bench).
"""
import argparse, json, os, re, socket, statistics, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

import jwt  # PyJWT, installed with the MCP SDK

import envoy_proc
from envoy_proc import UPSTREAM, cpu_ticks, free_port

ROOT = Path(__file__).resolve().parent.parent
ENVOY = envoy_proc.envoy_binary()
WASM = ROOT / "target/wasm32-wasip1/release/bridle.wasm"


AGENT = "spiffe://demo.bridle.dev/agent/research-bot"
ISSUER = "spiffe://demo.bridle.dev"
# (g): jwt_authn forwards the verified payload segment in this header and records its metadata
# under its filter name, the proof Bridle reads.
PAYLOAD_HEADER = "x-bridle-jwt-payload"
PROOF_PROPERTY = ["metadata", "filter_metadata", "envoy.filters.http.jwt_authn"]

# (c): exactly what the RBAC filter of (b) checks, as Rego (shared with the harness benches).
EQUIVALENT_REGO = (ROOT / "policies/bench/equivalent.rego").read_text()
assert f'"{AGENT}"' in EQUIVALENT_REGO, "policies/bench/equivalent.rego names another agent"

MCP_BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "read_report", "arguments": {"id": "q3"}}})


def public_jwk(jwk):
    return {k: jwk[k] for k in ("kty", "crv", "kid", "x", "y")}


def plugin_config(jwk, variant="agents"):
    policy = ROOT / "policies/agents"
    public = public_jwk(jwk)
    config = {
        "issuers": [{"issuer": "spiffe://demo.bridle.dev", "profile": "jwt-svid", "trust_domain": "demo.bridle.dev", "audiences": ["bridle-gateway"],
                     "algorithms": ["ES256"], "jwks": {"keys": [public]}}],
        "policy": {"entrypoint": "data.bridle.agents.decision",
                   "modules": [{"name": "agents.rego", "source": (policy / "agents.rego").read_text()}],
                   "data": json.loads((policy / "data.json").read_text())},
        "environment": {"name": "prod"},
        "audit": {"log": False},
    }
    if variant == "baseline":
        config["policy"]["modules"][0]["source"] = Path(BASELINE_REGO).read_text()
    if variant in ("equiv", "equiv-host"):
        config["policy"] = {"entrypoint": "data.bench.decision", "modules": [{"name": "bench.rego", "source": EQUIVALENT_REGO}]}
    if variant == "equiv-host":
        config["identity"] = {"host_verification": {"payload_header": PAYLOAD_HEADER, "proof_property": PROOF_PROPERTY}}
    if variant == "mcp":
        config["routes"] = [{"name": "mcp", "path": "/mcp", "methods": ["POST"], "protocol": "mcp"}]
        config["mcp"] = {"tools": {"read_report": {"action": "read", "data_class": "internal"}}}
    return config


def jwt_authn_filter(jwk, cache, for_bridle=False):
    provider = {"issuer": ISSUER, "audiences": ["bridle-gateway"],
                "local_jwks": {"inline_string": json.dumps({"keys": [public_jwk(jwk)]})},
                "payload_in_metadata": "jwt_payload"}
    if cache:
        provider["jwt_cache_config"] = {"jwt_cache_size": 1024}
    if for_bridle:
        provider.update({"forward": True, "forward_payload_header": PAYLOAD_HEADER})
    return {"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"demo": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "demo"}}]}}


def host_verification_filters(jwk):
    """(g): jwt_authn verifying every token (no cache) for Bridle."""
    return f"- {json.dumps(jwt_authn_filter(jwk, cache=False, for_bridle=True))}"


def native_filters(jwk, cache=True):
    """(b), and (e) without cache: jwt_authn verifying the token and RBAC on its payload."""
    jwt_authn = jwt_authn_filter(jwk, cache)
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


def render(listen, admin, upstream, config, with_bridle, pre_filters="", wasm=None):
    text = (ROOT / "envoy/bridle.yaml.tmpl").read_text()
    if not with_bridle:
        text = re.sub(r"\n {10}- name: envoy\.filters\.http\.wasm\n.*?(?=\n {10}- name: envoy\.filters\.http\.router)", "", text, flags=re.S)
    values = {"LISTEN_PORT": str(listen), "ADMIN_PORT": str(admin), "UPSTREAM_PORT": str(upstream),
              "CONTROL_PORT": str(upstream), "ACCESS_LOG": json.dumps("/dev/null"), "PRE_FILTERS": pre_filters,
              "WASM_PATH": json.dumps(str(wasm or WASM)),
              "PLUGIN_CONFIG": json.dumps(config if isinstance(config, str) else json.dumps(config))}
    return re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), text)




def start(config_text, workdir, name):
    return envoy_proc.start(ENVOY, config_text, workdir, name)


def wait_ready(admin, proc, name, poll=0.2):
    envoy_proc.wait_ready(admin, proc, name, timeout=60, poll=poll)


def rss_mb(pid):
    return envoy_proc.rss_kb(pid) / 1024


def wrk(port, seconds, connections, token, mcp_script=None, fresh=None):
    """fresh: (Lua script cycling through the new tokens, index of the first one)."""
    if fresh:
        target = ["-s", str(fresh[0]), f"http://127.0.0.1:{port}/api/reports/q3", "--", str(fresh[1])]
    else:
        target = ["-H", f"authorization: Bearer {token}"]
        target += ["-s", str(mcp_script), f"http://127.0.0.1:{port}/mcp"] if mcp_script else [f"http://127.0.0.1:{port}/api/reports/q3"]
    out = subprocess.check_output(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *target], text=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    lat = {p: re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out) for p in ("50", "99")}
    scale = {"us": 1, "ms": 1000, "s": 1_000_000}
    return rps, total, int(non2xx.group(1)) if non2xx else 0, {p: float(m.group(1)) * scale[m.group(2)] for p, m in lat.items()}


BASELINE_REGO = None
# --baseline-wasm: `bridle-equiv-basewasm` is (c) with this other build of the module.
BASELINE_WASM = None

# name -> (Bridle configuration variant or None, filters before Bridle, new token per request?)
CONFIGS = {"bare": (None, None, False), "jwt-rbac": (None, "jwt-rbac", False),
           "bridle-equiv": ("equiv", None, False), "bridle-agents": ("agents", None, False),
           "bridle-mcp": ("mcp", None, False),
           "jwt-rbac-fresh": (None, "jwt-rbac-nocache", True), "bridle-fresh": ("equiv", None, True),
           "bridle-hostverified-fresh": ("equiv-host", "jwt-authn-host", True),
           # Not Bridle: a Rust proxy-wasm filter deciding nothing (plugin/proxy-wasm/examples/
           # baseline_filter.rs), without host calls and with the host calls Bridle's allow makes.
           "wasm-null": ("baseline:null", None, False),
           "wasm-host-calls": ("baseline:host-calls", None, False)}
BASELINE_FILTER = ROOT / "target/wasm32-wasip1/release/examples/baseline_filter.wasm"


def proxy_config(name, jwk, port, admin, up_port):
    variant, pre, _ = CONFIGS[name]
    filters = {None: "", "jwt-rbac": native_filters(jwk), "jwt-rbac-nocache": native_filters(jwk, cache=False),
               "jwt-authn-host": host_verification_filters(jwk)}[pre]
    if variant and variant.startswith("baseline:"):
        return render(port, admin, up_port, variant.split(":", 1)[1], True, filters, BASELINE_FILTER)
    wasm = BASELINE_WASM if name == "bridle-equiv-basewasm" else WASM
    return render(port, admin, up_port, plugin_config(jwk, variant or "agents"), variant is not None, filters, wasm)


def mint(key, kid, exp, jti=None):
    claims = {"iss": ISSUER, "sub": AGENT, "aud": "bridle-gateway", "iat": int(time.time()), "exp": exp}
    if jti:
        claims["jti"] = jti
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid, "typ": "JWT"})


def fresh_script(path, tokens):
    """wrk script: request i carries token (first + i) mod N; requests are formatted once in init."""
    table = ",\n".join(json.dumps(t) for t in tokens)
    path.write_text(f"""local tokens = {{
{table}
}}
local requests = {{}}
local i = 0
function init(args)
  for k, token in ipairs(tokens) do
    local headers = {{}}
    for name, value in pairs(wrk.headers) do headers[name] = value end
    headers["authorization"] = "Bearer " .. token
    requests[k] = wrk.format("GET", "/api/reports/q3", headers)
  end
  i = (tonumber(args[1]) or 0) % #requests
end
function request()
  i = i % #requests + 1
  return requests[i]
end
""")


def startup(name, jwk, token, up_port, workdir, run):
    """Seconds from starting this Envoy, alone, to /ready and to its first forwarded request, and
    the CPU seconds it used until /ready (all threads: V8 compiles on background threads too, so
    wall time depends on free cores, CPU time much less)."""
    port, admin = free_port(), free_port()
    text = proxy_config(name, jwk, port, admin, up_port)
    started = time.time()
    proc = start(text, workdir, f"startup-{name}-{run}")
    try:
        wait_ready(admin, proc, name, poll=0.02)
        ready = time.time() - started
        cpu = cpu_ticks(proc.pid) / os.sysconf("SC_CLK_TCK")
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/reports/q3",
                                         headers={"authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            if reply.status != 200:
                sys.exit(f"{name}: first request answered {reply.status}")
        return ready, time.time() - started, cpu
    finally:
        proc.terminate()
        proc.wait()


def envoy_stats(admin, pattern):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats?filter={pattern}", timeout=5) as reply:
        return dict(line.split(": ", 1) for line in reply.read().decode().splitlines() if ": " in line)


def spread(rows, base, i):
    """Median ratio of column i, and the extreme ratios over the rounds."""
    a, b = [r[i] for r in rows], [r[i] for r in base]
    return statistics.median(a) / statistics.median(b), min(a) / max(b), max(a) / min(b)


def main():
    global WASM
    args = argparse.ArgumentParser()
    args.add_argument("--rounds", type=int, default=3)
    args.add_argument("--seconds", type=int, default=10)
    args.add_argument("--connections", type=int, nargs="+", default=[1, 16])
    args.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args.add_argument("--fresh-tokens", type=int, default=4000,
                      help="distinct new tokens cycled through (more than identity.cache_entries, 1024)")
    args.add_argument("--startup-runs", type=int, default=3)
    args.add_argument("--startup-configs", nargs="*", default=["bare", "bridle-equiv", "bridle-agents"],
                      choices=list(CONFIGS))
    args.add_argument("--baseline-rego")
    args.add_argument("--wasm", type=Path, default=WASM, help="the module every Bridle configuration loads")
    args.add_argument("--baseline-wasm", type=Path,
                      help="adds bridle-equiv-basewasm: (c) loading this module instead (e.g. main's build)")
    opts = args.parse_args()
    WASM = opts.wasm.resolve()
    if opts.baseline_wasm:
        global BASELINE_WASM
        BASELINE_WASM = opts.baseline_wasm.resolve()
        CONFIGS["bridle-equiv-basewasm"] = ("equiv", None, False)
        opts.configs.append("bridle-equiv-basewasm")
    if opts.baseline_rego:
        global BASELINE_REGO
        BASELINE_REGO = opts.baseline_rego
        CONFIGS["bridle-baseline"] = ("baseline", None, False)
        opts.configs.append("bridle-baseline")
    jwk = json.loads((ROOT / "envoy/demo/demo-issuer.jwk.json").read_text())
    key = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps({k: jwk[k] for k in ("kty", "crv", "x", "y", "d")}))
    names = [n for n in CONFIGS if n in opts.configs]
    if any(n.startswith("wasm-") for n in names):
        subprocess.run(["cargo", "build", "--locked", "--quiet", "--release", "-p", "bridle-proxy-wasm",
                        "--target", "wasm32-wasip1", "--example", "baseline_filter"], cwd=ROOT, check=True)
    # Valid for the whole run, with an hour to spare.
    runtime = opts.rounds * len(opts.connections) * len(names) * (opts.seconds + 2) + 120 * opts.startup_runs
    exp = int(time.time()) + runtime + 3600
    token = mint(key, jwk["kid"], exp)
    workdir = Path(tempfile.mkdtemp(prefix="bridle-bench-"))
    fresh_lua = workdir / "fresh.lua"
    if any(CONFIGS[n][2] for n in names):
        fresh_script(fresh_lua, [mint(key, jwk["kid"], exp, jti=f"bench-{i}") for i in range(opts.fresh_tokens)])
    mcp_script = workdir / "mcp.lua"
    mcp_script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(MCP_BODY)}\n'
                          'wrk.headers["content-type"] = "application/json"\n')
    up_port, up_admin = free_port(), free_port()
    procs = {"upstream": (start(UPSTREAM.format(port=up_port, admin=up_admin), workdir, "upstream"), up_admin, up_port)}
    try:
        wait_ready(up_admin, procs["upstream"][0], "upstream")
        for name in opts.startup_configs:
            times = [startup(name, jwk, token, up_port, workdir, run) for run in range(opts.startup_runs)]
            if times:
                print(f"{name} started alone, {len(times)} times: /ready after "
                      + ", ".join(f"{r:.2f}" for r, _, _ in times) + " s; first forwarded request after "
                      + ", ".join(f"{f:.2f}" for _, f, _ in times) + " s; CPU until /ready "
                      + ", ".join(f"{c:.2f}" for _, _, c in times) + " s", flush=True)
        if opts.rounds == 0:
            return
        for name in names:
            port, admin = free_port(), free_port()
            procs[name] = (start(proxy_config(name, jwk, port, admin, up_port), workdir, name), admin, port)
        for name, (proc, admin, _) in procs.items():
            started = time.time()
            wait_ready(admin, proc, name)
            if name != "upstream":
                print(f"{name}: ready after {time.time() - started:.2f} s (checked in turn)", flush=True)
        results = {}
        width = max(len(n) for n in names)
        next_token = {name: 0 for name in names}
        for connections in opts.connections:
            for rnd in range(opts.rounds):
                for name in names:
                    proc, _, port = procs[name]
                    before = cpu_ticks(proc.pid)
                    script = mcp_script if name == "bridle-mcp" else None
                    fresh = (fresh_lua, next_token[name]) if CONFIGS[name][2] else None
                    rps, total, non2xx, lat = wrk(port, opts.seconds, connections, token, script, fresh)
                    # Continue the cycle in the next round, past any request still in flight.
                    next_token[name] = (next_token[name] + total + 4 * connections) % opts.fresh_tokens
                    ticks = cpu_ticks(proc.pid) - before
                    cpu_us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / max(total, 1)
                    if non2xx:
                        sys.exit(f"{name}: {non2xx} non-2xx responses: the check is not equivalent")
                    results.setdefault((name, connections), []).append((rps, lat["50"], lat["99"], cpu_us))
                    print(f"c={connections:<3} round {rnd + 1} {name:<{width}} {rps:>9.0f} req/s  p50 {lat['50']:>7.0f} us  p99 {lat['99']:>7.0f} us  cpu {cpu_us:>6.1f} us/req", flush=True)
        print()
        for connections in opts.connections:
            print(f"c={connections}   (ratio = median; [min, max] over rounds)")
            for name in names:
                rows = results[(name, connections)]
                med = lambda i: statistics.median(r[i] for r in rows)
                line = f"  {name:<{width}} {med(0):>8.0f} req/s  p50 {med(1):>6.0f} us  p99 {med(2):>6.0f} us  cpu {med(3):>6.1f} us/req"
                if "bare" in names and name != "bare":
                    base = results[("bare", connections)]
                    r, lo, hi = spread(rows, base, 0)
                    line += f"  req/s vs bare {r:.2f} [{lo:.2f}, {hi:.2f}]  added p50 {med(1) - statistics.median(b[1] for b in base):.0f} us"
                fresh = CONFIGS[name][2]
                if "jwt-rbac" in names and name.startswith(("bridle", "wasm-")) and not fresh:
                    r, lo, hi = spread(rows, results[("jwt-rbac", connections)], 3)
                    line += f"  cpu vs jwt-rbac x{r:.2f} [{lo:.2f}, {hi:.2f}]"
                if fresh:
                    line += f"  {1e6 / med(3):.0f} new tokens per worker CPU-second"
                if fresh and "jwt-rbac-fresh" in names and name != "jwt-rbac-fresh":
                    base = results[("jwt-rbac-fresh", connections)]
                    r, lo, hi = spread(rows, base, 0)
                    line += f"  req/s vs jwt-rbac-fresh {r:.2f} [{lo:.2f}, {hi:.2f}]"
                    r, lo, hi = spread(rows, base, 3)
                    line += f"  cpu vs jwt-rbac-fresh x{r:.2f} [{lo:.2f}, {hi:.2f}]"
                print(line)
        print("RSS: " + ", ".join(f"{name} {rss_mb(procs[name][0].pid):.0f} MB" for name in names))
        for name in names:
            if CONFIGS[name][0] is not None and CONFIGS[name][2]:
                # New tokens must have missed Bridle's cache, or this measured the wrong thing.
                stats = envoy_stats(procs[name][1], "token_cache")
                print(f"{name} token cache: " + ", ".join(f"{k.rsplit('.', 1)[-1]} {v}" for k, v in sorted(stats.items())))
    finally:
        for proc, _, _ in procs.values():
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
