// (Named without `_test` so that `node --test edge/tests/` does not run it in Node.)
// The Deno handler example under `Deno.serve`, in front of a Deno origin: allowed requests reach
// the origin without the credential, denied and bad-token ones never do; then the shared
// decision cases through the edge build in Deno. Run by edge/tests/deno.test.mjs.
import { assert, assertEquals, assertMatch } from "./assert.mjs";
import { agentsConfig, es256Issuer, root } from "../support.mjs";
import { replayCases } from "../case-runner.mjs";
import { Authorizer } from "../../bridle.mjs";
import example from "../../examples/deno/handler.mjs";

const RESEARCH = "spiffe://demo.bridle.dev/agent/research-bot";
const issuer = await es256Issuer("spiffe://demo.bridle.dev");
const bearer = async (sub, claims = {}) => `Bearer ${await issuer.mint({ sub, aud: "bridle-gateway", ...claims })}`;

async function withServers(body) {
  const seen = [];
  const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    seen.push({ url: request.url, headers: Object.fromEntries(request.headers) });
    return Response.json({ origin: "reached" });
  });
  const configFile = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(configFile, JSON.stringify(agentsConfig(issuer)));
  Deno.env.set("BRIDLE_CONFIG", configFile);
  Deno.env.set("ORIGIN", `http://127.0.0.1:${origin.addr.port}`);
  const guard = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, example.fetch);
  try {
    await body(`http://127.0.0.1:${guard.addr.port}`, seen);
  } finally {
    await guard.shutdown();
    await origin.shutdown();
    await Deno.remove(configFile);
  }
}

Deno.test("deno: allowed is forwarded without the credential; denied and bad tokens never reach the origin", async () => {
  await withServers(async (guard, seen) => {
    const allowed = await fetch(`${guard}/api/reports/q3`, { headers: { authorization: await bearer(RESEARCH) } });
    assertEquals(allowed.status, 200);
    assertEquals(await allowed.json(), { origin: "reached" });
    assertEquals(seen.length, 1);
    assertEquals(seen[0].headers.authorization, undefined);
    assertEquals(seen[0].headers["x-bridle-agent"], RESEARCH);
    assertEquals(seen[0].headers["x-bridle-decision-id"], allowed.headers.get("x-bridle-decision-id"));

    const denied = await fetch(`${guard}/api/reports`, { method: "POST", headers: { authorization: await bearer(RESEARCH) } });
    assertEquals(denied.status, 403);
    assertEquals((await denied.json()).error, "forbidden");

    const forged = `Bearer ${await (await es256Issuer("spiffe://demo.bridle.dev")).mint({ sub: RESEARCH, aud: "bridle-gateway" })}`;
    const expired = await bearer(RESEARCH, { exp: Math.floor(Date.now() / 1000) - 3600 });
    for (const [authorization, reason] of [
      [null, "no credential in header `authorization`"],
      [expired, "token has expired"],
      [forged, "token signature does not verify"],
    ]) {
      const response = await fetch(`${guard}/api/reports`, { headers: authorization ? { authorization } : {} });
      assertEquals(response.status, 401);
      assertEquals((await response.json()).reasons, [reason]);
      assertMatch(response.headers.get("www-authenticate"), /^Bearer realm="bridle"/);
    }
    assertEquals(seen.length, 1);
  });
});

Deno.test("deno: the shared decision cases agree with the proxy-wasm build", async () => {
  const file = Deno.env.get("BRIDLE_CASES") ?? `${root}/target/bridle-cases.json`;
  const result = await replayCases(JSON.parse(await Deno.readTextFile(file)), Authorizer);
  assert(result.count >= 18, `${result.count} cases`);
  assertEquals(result.mismatches, []);
});
