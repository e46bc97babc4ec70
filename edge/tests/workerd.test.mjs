// The Cloudflare Worker example in workerd (through Miniflare), exactly as wrangler bundles it
// for deployment: allowed requests reach the origin without the credential, denied and
// bad-token ones never do. The bundle's size comes from `wrangler deploy --dry-run`. The shared
// decision cases run in workerd too.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { agentsConfig, badCredentials, bearerFrom, es256Issuer, root } from "./support.mjs";

const edge = join(root, "edge");
const RESEARCH = "spiffe://demo.bridle.dev/agent/research-bot";
const issuer = await es256Issuer("spiffe://demo.bridle.dev");
const bearer = (sub, claims) => bearerFrom(issuer, sub, claims);
const outdir = mkdtempSync(join(tmpdir(), "bridle-worker-"));
const seen = [];
let dryRun;
let worker;

before(async () => {
  dryRun = execFileSync(process.execPath, [join(edge, "node_modules", "wrangler", "bin", "wrangler.js"), "deploy", "--dry-run", "--outdir", outdir], {
    cwd: join(edge, "examples", "cloudflare-worker"),
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_LOG_PATH: outdir, NO_COLOR: "1" },
  });
  worker = new Miniflare({
    modules: true,
    scriptPath: join(outdir, "worker.js"),
    modulesRoot: outdir,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-04-01",
    bindings: { BRIDLE_CONFIG: JSON.stringify(agentsConfig(issuer)), ORIGIN: "https://origin.internal", GUARDED_PREFIX: "/api/" },
    outboundService: async (request) => {
      seen.push({ url: request.url, headers: Object.fromEntries(request.headers) });
      return Response.json({ origin: "reached" }, { headers: { "x-origin": "1" } });
    },
  });
  await worker.ready;
});

after(async () => {
  await worker?.dispose();
  rmSync(outdir, { recursive: true, force: true });
});

test("wrangler deploy --dry-run: the worker bundle is under 1 MiB gzipped", () => {
  const match = dryRun.match(/Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/);
  assert.ok(match, dryRun);
  const gzipKiB = Number(match[2]);
  console.log(`worker bundle: ${match[1]} KiB, ${gzipKiB} KiB gzipped`);
  assert.ok(gzipKiB < 1024, `${gzipKiB} KiB gzipped`);
  assert.ok(readdirSync(outdir).some((name) => name.endsWith("bridle_web_bg.wasm")), "the bundle carries the module");
});

test("workerd: an allowed request is forwarded to the origin without its credential", async () => {
  seen.length = 0;
  const response = await worker.dispatchFetch("https://guard.example/api/reports/q3?x=1", { headers: { authorization: await bearer(RESEARCH) } });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { origin: "reached" });
  assert.equal(response.headers.get("x-origin"), "1");
  assert.equal(seen.length, 1);
  assert.equal(seen[0].url, "https://origin.internal/api/reports/q3?x=1");
  assert.equal(seen[0].headers.authorization, undefined);
  assert.equal(seen[0].headers["x-bridle-agent"], RESEARCH);
  assert.match(seen[0].headers["x-bridle-decision-id"], /^[0-9a-f]{16}/);
});

test("workerd: a policy deny is a 403 and never reaches the origin", async () => {
  seen.length = 0;
  const response = await worker.dispatchFetch("https://guard.example/api/reports", { method: "POST", headers: { authorization: await bearer(RESEARCH) } });
  assert.equal(response.status, 403);
  const body = await response.json();
  assert.equal(body.error, "forbidden");
  assert.equal(response.headers.get("x-bridle-decision-id"), body.decision_id);
  assert.equal(seen.length, 0);
});

test("workerd: bad tokens are 401 with a challenge and never reach the origin", async () => {
  seen.length = 0;
  for (const [authorization, reason] of await badCredentials(issuer, RESEARCH)) {
    const response = await worker.dispatchFetch("https://guard.example/api/reports", { headers: authorization ? { authorization } : {} });
    assert.equal(response.status, 401);
    assert.deepEqual((await response.json()).reasons, [reason]);
    assert.match(response.headers.get("www-authenticate"), /^Bearer realm="bridle"/);
  }
  assert.equal(seen.length, 0);
});

test("workerd: routes outside the guarded prefix are not served", async () => {
  const response = await worker.dispatchFetch("https://guard.example/admin");
  assert.equal(response.status, 404);
  await response.text();
});

test("workerd: a configuration the core refuses fails closed (503 naming the field)", async () => {
  const broken = new Miniflare({
    modules: true,
    scriptPath: join(outdir, "worker.js"),
    modulesRoot: outdir,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-04-01",
    bindings: { BRIDLE_CONFIG: JSON.stringify({ ...agentsConfig(issuer), issuerz: [] }), ORIGIN: "https://origin.internal" },
    outboundService: () => assert.fail("must not reach the origin"),
  });
  try {
    const response = await broken.dispatchFetch("https://guard.example/api/reports", { headers: { authorization: await bearer(RESEARCH) } });
    assert.equal(response.status, 503);
    assert.match((await response.json()).reasons[0], /configuration refused: .*issuerz/);
  } finally {
    await broken.dispose();
  }
});

test("workerd: the shared decision cases agree with the proxy-wasm build", async () => {
  const cases = new Miniflare({
    modules: true,
    scriptPath: join(edge, "tests", "workerd", "cases-worker.mjs"),
    modulesRoot: edge,
    modulesRules: [
      { type: "ESModule", include: ["**/*.mjs", "**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: "2026-04-01",
  });
  try {
    const set = readFileSync(process.env.BRIDLE_CASES ?? join(root, "target", "bridle-cases.json"), "utf8");
    const response = await cases.dispatchFetch("https://cases.internal/", { method: "POST", body: set });
    const result = await response.json();
    assert.ok(result.count >= 18, `${result.count} cases`);
    assert.deepEqual(result.mismatches, []);
  } finally {
    await cases.dispose();
  }
});
