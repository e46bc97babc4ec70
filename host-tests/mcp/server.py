"""Recording MCP upstream for Bridle host tests (official MCP Python SDK, mcp==2.3.0).

    python server.py --port PORT --record FILE

Serves MCP over streamable HTTP at http://127.0.0.1:PORT/mcp in stateless,
JSON-response mode (no Mcp-Session-Id, no SSE, no GET stream), so every MCP
message is one plain POST -> one JSON (or 202) response. Every HTTP request
that reaches this process is appended to FILE as one JSON line, written and
flushed *before* the request is handled:

    {"method": "POST", "path": "/mcp", "headers": {"lower-case-name": "value"}, "body": <JSON or null>}

Repeated headers are joined with ", ". Prints `ready` on stdout once listening;
SIGTERM/SIGINT shut it down gracefully with exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
import threading
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

REPORTS = {
    "r-2024-q4": "Q4 2024 revenue summary: revenue up 4%, churn flat.",
    "r-2025-q1": "Q1 2025 revenue summary: revenue up 6%, churn down 1%.",
    "r-incident-17": "Incident 17 postmortem: expired certificate on the edge proxy.",
}

CUSTOMERS = {
    "acme": "customer acme: contact=jane@acme.example, tier=gold, card=****4242",
    "globex": "customer globex: contact=hank@globex.example, tier=silver, card=****1881",
}

app = MCPServer("bridle-test-upstream", version="1.0.0", log_level="WARNING")


@app.tool()
def list_reports() -> list[str]:
    """List the ids of the available reports."""
    return sorted(REPORTS)


@app.tool()
def read_report(id: str) -> str:  # noqa: A002 - the tool's argument is called `id`
    """Read one report by id."""
    return REPORTS.get(id, f"report {id}: no such report")


@app.tool()
def deploy_service(service: str, env: str) -> str:
    """Deploy a service to an environment."""
    return f"deployed {service} to {env}"


@app.tool()
def read_customer_record(customer: str) -> str:
    """Read a customer's record."""
    return CUSTOMERS.get(customer, f"customer {customer}: no such customer")


class RecordRequests:
    """ASGI middleware: append each HTTP request as one JSON line, then replay its body."""

    def __init__(self, inner: Any, path: str) -> None:
        self.inner = inner
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        self.lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            val = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {val}" if key in headers else val
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        line = json.dumps({"method": scope["method"], "path": scope["path"], "headers": headers, "body": body})
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()

        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.inner(scope, replay, send)


class QuietServer(uvicorn.Server):
    """uvicorn re-raises a captured SIGTERM after shutdown (exit by signal); stop cleanly instead."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, _sig: int, _frame: Any) -> None:
        self.should_exit = True


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True, help="file to append one JSON line per HTTP request to")
    args = parser.parse_args()

    starlette_app = app.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        # The Host header arrives via Envoy; don't reject it as DNS rebinding.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    config = uvicorn.Config(
        RecordRequests(starlette_app, args.record),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", args.port))
    except OSError as exc:
        sys.exit(f"server.py: cannot listen on 127.0.0.1:{args.port}: {exc}")
    server = QuietServer(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving
            sys.exit("server.py: startup failed")
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await serving


if __name__ == "__main__":
    asyncio.run(main())
