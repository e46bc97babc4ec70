// The edge build in Node: the same configuration and decisions as the proxy-wasm filter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Authorizer, initBridle } from "../bridle.mjs";
import { agentsConfig, badCredentials, bearerFrom, es256Issuer, wasmBytes } from "./support.mjs";

initBridle(wasmBytes());
const RESEARCH = "spiffe://demo.bridle.dev/agent/research-bot";
const issuer = await es256Issuer("spiffe://demo.bridle.dev");
const authorizer = new Authorizer(agentsConfig(issuer));
const bearer = (sub, claims) => bearerFrom(issuer, sub, claims);

test("an allowed request is forwarded without its credential", async () => {
  const request = new Request("https://api.internal/api/reports/q3", { headers: { authorization: await bearer(RESEARCH), "x-trace": "t1" } });
  const answer = await authorizer.decide(request);
  assert.equal(answer.decision, "allow");
  assert.equal(answer.status, 200);
  assert.equal(answer.forward, true);
  assert.deepEqual(answer.headers.remove, ["authorization"]);
  const upstream = Authorizer.upstreamRequest(request, answer, "http://origin.internal");
  assert.equal(upstream.url, "http://origin.internal/api/reports/q3");
  assert.equal(upstream.headers.get("authorization"), null);
  assert.equal(upstream.headers.get("x-bridle-agent"), RESEARCH);
  assert.equal(upstream.headers.get("x-bridle-decision-id"), answer.decision_id);
  assert.equal(answer.audit.agent.spiffe_id, RESEARCH);
  assert.equal(answer.audit.decision_id, answer.decision_id);
  const token = request.headers.get("authorization").slice("Bearer ".length);
  assert.ok(!JSON.stringify(answer).includes(token.split(".")[2]), "the answer never carries the token");
});

test("a policy deny is a 403 JSON refusal with reasons", async () => {
  const request = new Request("https://api.internal/api/reports", { method: "POST", headers: { authorization: await bearer(RESEARCH) } });
  const response = await authorizer.guard(request, () => assert.fail("must not reach the upstream"));
  assert.equal(response.status, 403);
  const body = await response.json();
  assert.equal(body.error, "forbidden");
  assert.deepEqual(body.reasons, [`agent ${RESEARCH} holds no write grant`, `agent ${RESEARCH} may not POST /api/reports`]);
  assert.equal(response.headers.get("x-bridle-decision-id"), body.decision_id);
});

test("bad tokens are 401 with a challenge and never forwarded", async () => {
  for (const [authorization, reason] of await badCredentials(issuer, RESEARCH)) {
    const headers = authorization ? { authorization } : {};
    const response = await authorizer.guard(new Request("https://api.internal/api/reports", { headers }), () => assert.fail("forwarded"));
    assert.equal(response.status, 401);
    assert.deepEqual((await response.json()).reasons, [reason]);
    assert.match(response.headers.get("www-authenticate"), /^Bearer realm="bridle"/);
  }
});

test("a request that cannot be read is an {error} answer, refused 503", async () => {
  const answer = await authorizer.decide({ method: "GET", url: "not a url", headers: new Headers() });
  assert.match(answer.error.message, /URL/i);
  assert.equal(answer.decision, undefined);
  const response = Authorizer.refusal(answer);
  assert.equal(response.status, 503);
  assert.throws(() => Authorizer.upstreamRequest(new Request("https://a.internal/"), answer), /does not forward/);
});

test("a bad configuration throws an Error naming the field", () => {
  const config = agentsConfig(issuer);
  config.issuers[0].audiance = ["x"];
  assert.throws(() => new Authorizer(config), (err) => err instanceof Error && /audiance/.test(err.message));
  assert.throws(() => new Authorizer("{"), Error);
  const hostVerified = agentsConfig(issuer);
  hostVerified.identity = { host_verification: { payload_header: "x-jwt-payload", proof_property: ["metadata", "filter_metadata", "envoy.filters.http.jwt_authn"] } };
  assert.throws(() => new Authorizer(hostVerified), (err) => /field `identity\.host_verification` needs .*this host \(edge runtimes and browsers\)/.test(err.message));
});

test("configuration this build has no code for is refused at load, naming the field and the host", () => {
  // Nothing runs between requests in a worker or a page: a bundle would never arrive (503
  // forever), a feed would go stale (503 after max_staleness_seconds), events would never leave.
  const bundleKey = { kty: "EC", crv: "P-256", kid: "b1", x: issuer.jwk.x, y: issuer.jwk.y };
  const cases = [
    ["bundle", { bundle: { cluster: "control", path: "/bundle.tar.gz", keys: { keys: [bundleKey] } } }],
    ["revocation.feed", { revocation: { feed: { cluster: "control", path: "/revocations" } } }],
    ["audit.collector", { audit: { collector: { cluster: "audit", path: "/events" } } }],
    ["audit.filter_state", { audit: { filter_state: true } }],
  ];
  // Keys fetched from the issuer would never be fetched: every token refused (503).
  const fetchedKeys = agentsConfig(issuer);
  fetchedKeys.issuers = fetchedKeys.issuers.map(({ jwks, ...entry }) => ({ ...entry, jwks_source: { cluster: "spire", path: "/keys" } }));
  cases.push(["issuers[0].jwks_source", { issuers: fetchedKeys.issuers }]);
  for (const [field, block] of cases) {
    const config = { ...agentsConfig(issuer), ...block };
    assert.throws(
      () => new Authorizer(config),
      (err) => err instanceof Error && err.message.includes(`field \`${field}\` needs`) && err.message.includes("edge runtimes and browsers"),
      field,
    );
  }
});

test("MCP bodies are read and judged; oversized ones are 413", async () => {
  const mcp = new Authorizer(agentsConfig(issuer, "prod", {
    routes: [{ name: "mcp", path: "/mcp", protocol: "mcp" }],
    mcp: { max_body_bytes: 512, tools: { read_report: { action: "read", data_class: "internal" } } },
  }));
  const call = (tool, args, extra = {}) => ({ method: "POST", headers: { "content-type": "application/json", ...extra }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: tool, arguments: args } }) });
  const auth = { authorization: await bearer(RESEARCH) };
  const ok = await mcp.decide(new Request("https://mcp.internal/mcp", call("read_report", { id: "q3" }, auth)));
  assert.equal(ok.decision, "allow", JSON.stringify(ok.reasons));
  const denied = await mcp.decide(new Request("https://mcp.internal/mcp", call("deploy_service", { env: "prod" }, auth)));
  assert.equal(denied.status, 403);
  const mismatch = await mcp.decide(new Request("https://mcp.internal/mcp", call("read_report", {}, { ...auth, "mcp-name": "deploy_service" })));
  assert.equal(mismatch.status, 400);
  const big = await mcp.decide(new Request("https://mcp.internal/mcp", call("read_report", { pad: "x".repeat(1000) }, auth)));
  assert.equal(big.status, 413);
  const plain = await mcp.decide({ url: "https://mcp.internal/mcp", ...call("read_report", { id: "q3" }, auth) });
  assert.equal(plain.decision, "allow", JSON.stringify(plain));
  const plainDenied = await mcp.decide({ url: "https://mcp.internal/mcp", ...call("deploy_service", { env: "prod" }, auth), body: new TextEncoder().encode(call("deploy_service", { env: "prod" }).body) });
  assert.equal(plainDenied.status, 403);

  // An allowed call reaches the origin with its body intact.
  const request = new Request("https://mcp.internal/mcp", call("read_report", { id: "q3" }, auth));
  const response = await mcp.guard(request, async (upstream) => {
    assert.equal(upstream.url, "http://origin.internal/mcp");
    assert.equal(upstream.headers.get("authorization"), null);
    return new Response(await upstream.text());
  }, { origin: "http://origin.internal" });
  assert.equal(response.status, 200);
  assert.equal(JSON.parse(await response.text()).params.name, "read_report");
});

test("a policy that reads only some parts of the input still finds every header it reads", async () => {
  // The input is built for the parts the policy can reach (plugin/core/src/input_reads.rs); a
  // header left out would make its block undefined and the request allowed.
  const source = `package t
import rego.v1

default decision := {"allow": false, "reasons": ["no SPIFFE ID"]}

decision := {"allow": true, "reasons": []} if {
\tinput.identity.spiffe.id
\tcount(blocked) == 0
}

decision := {"allow": false, "reasons": sort(blocked)} if count(blocked) > 0

blocked contains "dot form" if input.request.headers["x-block-1"]

blocked contains "alias" if {
\tr := input.request
\tr.headers["x-block-2"]
}
`;
  const narrow = new Authorizer(agentsConfig(issuer, "prod", { policy: { entrypoint: "data.t.decision", modules: [{ name: "t.rego", source }] } }));
  const authorization = await bearer(RESEARCH);
  const plain = await narrow.decide(new Request("https://api.internal/api/reports", { headers: { authorization } }));
  assert.equal(plain.decision, "allow");
  for (const [header, reason] of [["x-block-1", "dot form"], ["x-block-2", "alias"]]) {
    const answer = await narrow.decide(new Request("https://api.internal/api/reports", { headers: { authorization, [header]: "1" } }));
    assert.equal(answer.status, 403, header);
    assert.deepEqual(answer.reasons, [reason], header);
  }
});

test("the review's fail-open shapes are refused or cleaned in the edge build too", async () => {
  const mcp = new Authorizer(agentsConfig(issuer, "prod", {
    routes: [{ name: "mcp", path: "/mcp", protocol: "mcp" }],
    mcp: { tools: { read_report: { action: "read", data_class: "internal" } } },
  }));
  const auth = { authorization: await bearer(RESEARCH) };
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "read_report", arguments: { id: "q3" } } });
  const mcpRequest = (headers) => new Request("https://mcp.internal/mcp", { method: "POST", headers: { ...auth, ...headers }, body });
  // One reading of an MCP body: JSON as UTF-8, unencoded.
  for (const headers of [
    { "content-type": "application/json; charset=utf-7" },
    { "content-type": "application/json", "content-encoding": "gzip" },
    { "content-type": "text/plain" },
    {},
  ]) {
    const response = await mcp.guard(mcpRequest(headers), () => assert.fail(`forwarded: ${JSON.stringify(headers)}`));
    assert.equal(response.status, 415, JSON.stringify(headers));
    assert.equal((await response.json()).error, "unsupported_media_type");
  }
  assert.equal((await mcp.decide(mcpRequest({ "content-type": "Application/JSON; charset=\"UTF-8\"" }))).decision, "allow");

  // Path parameters would let a servlet upstream serve another path than the policy judged.
  const semicolon = await authorizer.guard(
    new Request("https://api.internal/api/reports/q3;jsessionid=1", { headers: auth }),
    () => assert.fail("forwarded a `;` path"),
  );
  assert.equal(semicolon.status, 400);

  // Caller copies of Bridle's headers never reach the origin; Bridle sets its own.
  const spoofed = new Request("https://api.internal/api/reports/q3", {
    headers: { ...auth, "x-bridle-agent": "spiffe://demo.bridle.dev/agent/deploy-bot", "X-Bridle-Agent-Owner": "mallory", "x-bridle-extra": "1" },
  });
  const response = await authorizer.guard(spoofed, async (upstream) => {
    assert.equal(upstream.headers.get("x-bridle-agent"), RESEARCH);
    assert.equal(upstream.headers.get("x-bridle-agent-owner"), "research-team@demo.bridle.dev");
    assert.equal(upstream.headers.get("x-bridle-extra"), null);
    return new Response("ok");
  }, { origin: "http://origin.internal" });
  assert.equal(response.status, 200);
});

test("an approval binds the query and, where the route says so, the exact body", async () => {
  const approvals = await es256Issuer("https://approvals.edge.test");
  const policy = `package t
import rego.v1

default decision := {"allow": true, "reasons": []}

decision := {"allow": false, "approval_required": true, "reasons": ["writes need a human approval"]} if input.request.method == "POST"
`;
  const config = agentsConfig(issuer, "prod", {
    approval: { issuers: [{ issuer: approvals.iss, profile: "approval", audiences: ["bridle-gateway"], algorithms: ["ES256"], jwks: { keys: [approvals.jwk] } }] },
    routes: [{ name: "payments", path: "/api/payments", methods: ["POST"], approval: { bind_body: true } }],
  });
  config.policy = { entrypoint: "data.t.decision", modules: [{ name: "t.rego", source: policy }] };
  const payments = new Authorizer(config);
  const identity = await bearer(RESEARCH);
  const pay = (query, body, approval) => payments.decide(new Request(`https://api.internal/api/payments${query}`, {
    method: "POST",
    headers: { authorization: identity, "content-type": "application/json", ...(approval ? { "bridle-approval": approval } : {}) },
    body,
  }));
  const approve = (digest, jti) => approvals.mint({ sub: "approver:bob", aud: "bridle-gateway", action_digest: digest, jti });

  const asked = await pay("?currency=EUR", '{"amount": 10}');
  assert.equal(asked.decision, "approval_required");
  const refusal = JSON.parse(asked.body);
  assert.deepEqual(refusal.action.query, { currency: ["EUR"] });
  assert.equal(refusal.action.body.text, '{"amount": 10}');
  assert.match(refusal.action.body.sha256, /^[0-9a-f]{64}$/);
  const digest = refusal.action_digest;

  for (const [query, body, jti] of [["?currency=EUR", '{"amount": 11}', "a-1"], ["?currency=USD", '{"amount": 10}', "a-2"], ["?currency=EUR&fee=0", '{"amount": 10}', "a-3"]]) {
    const other = await pay(query, body, await approve(digest, jti));
    assert.equal(other.decision, "approval_required", `${query} ${body}`);
    assert.match(JSON.parse(other.body).reasons.join(" "), /approves another action/);
  }
  const approval = await approve(digest, "a-4");
  const approved = await pay("?currency=EUR", '{"amount": 10}', approval);
  assert.equal(approved.decision, "allow");
  const again = await pay("?currency=EUR", '{"amount": 10}', approval);
  assert.equal(again.decision, "deny");
  assert.match(JSON.parse(again.body).reasons.join(" "), /already used/);
});
