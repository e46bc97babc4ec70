"""Plan-driven MCP client for Bridle host tests (official MCP Python SDK, mcp==2.3.0).

    python client.py --url URL [--header 'Name: value']... --plan PLAN.json [--mode legacy|modern]

Runs a JSON plan through the SDK's streamable-HTTP transport
(`mcp.client.streamable_http.streamable_http_client`) and `mcp.client.session.ClientSession`
and prints one JSON object per step on stdout. See README.md for the formats.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

OPS = ("initialize", "list_tools", "call")


class Wire:
    """httpx2 event hooks: per-step header overrides on POSTs, and capture of every POST's status."""

    def __init__(self) -> None:
        self.step_headers: dict[str, str | None] = {}
        self.posts: list[dict[str, Any]] = []  # POSTs of the current step, in send order
        self.in_flight = 0

    async def on_request(self, request: httpx2.Request) -> None:
        if request.method != "POST":
            return
        for name, value in self.step_headers.items():
            if value is None:
                request.headers.pop(name, None)
            else:
                request.headers[name] = value
        try:
            rpc = json.loads(request.content).get("method")
        except (ValueError, AttributeError):
            rpc = None
        post: dict[str, Any] = {"rpc": rpc, "status": None}
        request.extensions["bridle_post"] = post
        self.posts.append(post)
        self.in_flight += 1

    async def on_response(self, response: httpx2.Response) -> None:
        post = response.request.extensions.get("bridle_post")
        if post is None:
            return
        post["status"] = response.status_code
        if response.status_code >= 400:
            # The proxy's refusal is plain HTTP with a JSON body; the SDK turns it into a
            # generic JSON-RPC error, so keep the real status and body here. The transport
            # reads the (now cached) body again afterwards.
            raw = await response.aread()
            try:
                post["body"] = json.loads(raw)
            except ValueError:
                post["body"] = raw.decode("utf-8", "replace")
        self.in_flight -= 1

    async def settle(self) -> None:
        """Let fire-and-forget POSTs of the step (notifications/initialized) finish."""
        await anyio.sleep(0.05)
        with anyio.move_on_after(5):
            while self.in_flight > 0:
                await anyio.sleep(0.01)


def dump(model: Any) -> Any:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


async def run_op(session: ClientSession, step: dict[str, Any], mode: str) -> tuple[Any, dict[str, Any]]:
    op = step["op"]
    if op == "initialize":
        result = await (session.discover() if mode == "modern" else session.initialize())
        return dump(result), {}
    if op == "list_tools":
        listed = await session.list_tools()
        return [tool.name for tool in listed.tools], {}
    if op == "call":
        # send_request, not session.call_tool(): call_tool() re-validates structured output and, for a
        # tool not yet listed in this session, first sends an extra tools/list POST of its own.
        result = await session.send_request(
            types.CallToolRequest(
                params=types.CallToolRequestParams(name=step["tool"], arguments=step.get("arguments") or {})
            ),
            types.CallToolResult,
        )
        extra: dict[str, Any] = {"is_error": bool(result.is_error)}
        if result.structured_content is not None:
            extra["structured"] = result.structured_content
        return [dump(block) for block in result.content], extra
    raise ValueError(f"unknown op {op!r}; expected one of {OPS}")


def step_report(i: int, op: str, wire: Wire, result: Any, extra: dict[str, Any], error: BaseException | None) -> dict[str, Any]:
    out: dict[str, Any] = {"step": i, "op": op}
    refused = next((p for p in wire.posts if (p["status"] or 0) >= 400), None)
    if refused is None and error is None:
        out.update(ok=True, result=result, **extra)
    else:
        out["ok"] = False
        if refused is not None:
            out.update(status=refused["status"], body=refused.get("body"))
        else:
            out["status"] = next((p["status"] for p in reversed(wire.posts) if p["status"] is not None), None)
        if error is not None:
            if isinstance(error, MCPError):
                out["error"] = {"code": error.code, "message": error.message}
            else:
                out["error"] = {"type": type(error).__name__, "message": str(error)}
    out["http"] = [{"rpc": p["rpc"], "status": p["status"]} for p in wire.posts]
    return out


async def run_plan(url: str, headers: dict[str, str], plan: list[dict[str, Any]], mode: str, timeout: float) -> None:
    wire = Wire()
    handshake: types.InitializeResult | types.DiscoverResult | None = None
    i = 0
    while i < len(plan):
        # One connection (transport + session) serves steps until a step kills the transport (the SDK
        # then cancels everything and raises out of `streamable_http_client`); a fresh one is opened
        # for the next step and the last handshake result is re-adopted (local only, no wire traffic).
        wire.in_flight = 0
        try:
            async with AsyncExitStack() as stack:
                http = await stack.enter_async_context(
                    create_mcp_http_client(headers=headers, timeout=httpx2.Timeout(timeout))
                )
                http.event_hooks = {"request": [wire.on_request], "response": [wire.on_response]}
                read, write = await stack.enter_async_context(streamable_http_client(url, http_client=http))
                session = await stack.enter_async_context(ClientSession(read, write, read_timeout_seconds=timeout))
                if handshake is not None:
                    session.adopt(handshake)
                while i < len(plan):
                    step = plan[i]
                    op = step.get("op", "?")
                    wire.posts = []
                    wire.step_headers = dict(step.get("headers") or {})
                    result: Any = None
                    extra: dict[str, Any] = {}
                    error: BaseException | None = None
                    try:
                        result, extra = await run_op(session, step, mode)
                        if op == "initialize":
                            handshake = session.initialize_result or session.discover_result
                    except MCPError as exc:
                        error = exc
                    await wire.settle()
                    wire.step_headers = {}
                    print(json.dumps(step_report(i, op, wire, result, extra, error)), flush=True)
                    i += 1
        except Exception as exc:  # noqa: BLE001 - transport died during step i
            if i >= len(plan):
                break
            while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]
            wire.step_headers = {}
            print(json.dumps(step_report(i, plan[i].get("op", "?"), wire, None, {}, exc)), flush=True)
            i += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="MCP endpoint, e.g. http://127.0.0.1:10000/mcp")
    parser.add_argument("--header", action="append", default=[], help="'Name: value' sent on every request")
    parser.add_argument("--plan", required=True, help="JSON file with the list of steps")
    parser.add_argument(
        "--mode",
        choices=("legacy", "modern"),
        default="legacy",
        help="legacy: `initialize` handshake (2025-11-25); modern: `server/discover` (2026-07-28, "
        "SDK stamps Mcp-Method/Mcp-Name headers)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds")
    args = parser.parse_args()

    headers: dict[str, str] = {}
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            parser.error(f"--header must be 'Name: value', got {h!r}")
        headers[name.strip()] = value.strip()
    with open(args.plan, encoding="utf-8") as f:
        plan = json.load(f)
    if not isinstance(plan, list):
        parser.error("plan must be a JSON list of steps")
    for n, step in enumerate(plan):
        if not isinstance(step, dict) or step.get("op") not in OPS:
            parser.error(f"plan step {n}: need an object with op in {OPS}")
        if step["op"] == "call" and not isinstance(step.get("tool"), str):
            parser.error(f"plan step {n}: op 'call' needs a string 'tool'")
        if not isinstance(step.get("headers", {}), dict):
            parser.error(f"plan step {n}: 'headers' must be an object")

    anyio.run(run_plan, args.url, headers, plan, args.mode, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
