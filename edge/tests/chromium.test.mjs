// The browser example in headless Chromium (Debian's, driven by playwright-core): its service
// worker guards the page's /api/ requests; allowed ones reach the origin without the
// credential, denied and bad-token ones never leave the browser. The shared decision cases run
// in the page too.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";
import { agentsConfig, badCredentials, bearerFrom, es256Issuer, root } from "./support.mjs";

const edge = join(root, "edge");
const RESEARCH = "spiffe://demo.bridle.dev/agent/research-bot";
const issuer = await es256Issuer("spiffe://demo.bridle.dev");
const bearer = (sub, claims) => bearerFrom(issuer, sub, claims);
const types = { ".html": "text/html", ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
const seen = [];
let server;
let base;
let browser;
let page;

// Serves edge/ (the package and the example), the example's bridle.json, and an origin at /api/.
async function serve(request, response) {
  const path = new URL(request.url, "http://x").pathname;
  if (path.startsWith("/api/")) {
    seen.push({ method: request.method, path, headers: request.headers });
    response.writeHead(200, { "content-type": "application/json" });
    return response.end(JSON.stringify({ origin: "reached" }));
  }
  if (path === "/examples/browser/bridle.json") {
    response.writeHead(200, { "content-type": "application/json" });
    return response.end(JSON.stringify(agentsConfig(issuer)));
  }
  const file = normalize(join(edge, path));
  if (!file.startsWith(edge) || file.includes("node_modules")) {
    response.writeHead(404);
    return response.end();
  }
  try {
    const body = await readFile(file);
    const headers = { "content-type": types[extname(file)] ?? "application/octet-stream" };
    if (path.endsWith("/sw.js")) headers["service-worker-allowed"] = "/";
    response.writeHead(200, headers);
    response.end(body);
  } catch {
    response.writeHead(404);
    response.end();
  }
}

before(async () => {
  server = createServer((request, response) => void serve(request, response));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  page = await browser.newPage();
  page.on("pageerror", (err) => console.log(`page error: ${err.message}`));
  await page.goto(`${base}/examples/browser/index.html`);
  await page.evaluate(() => window.bridleReady);
  await page.waitForFunction(() => document.getElementById("state").textContent === "guarding /api/");
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
});

const send = (method, path, authorization) =>
  page.evaluate(async ([method, path, authorization]) => {
    const response = await fetch(path, { method, headers: authorization ? { authorization } : {} });
    return { status: response.status, body: await response.json(), decisionId: response.headers.get("x-bridle-decision-id"), challenge: response.headers.get("www-authenticate") };
  }, [method, path, authorization]);

test("chromium: the service worker forwards an allowed request without its credential", async () => {
  seen.length = 0;
  const answer = await send("GET", "/api/reports/q3", await bearer(RESEARCH));
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.deepEqual(answer.body, { origin: "reached" });
  assert.equal(seen.length, 1);
  assert.equal(seen[0].headers.authorization, undefined);
  assert.equal(seen[0].headers["x-bridle-agent"], RESEARCH);
  assert.equal(seen[0].headers["x-bridle-decision-id"], answer.decisionId);
});

test("chromium: a policy deny is refused in the browser and never reaches the origin", async () => {
  seen.length = 0;
  const answer = await send("POST", "/api/reports", await bearer(RESEARCH));
  assert.equal(answer.status, 403);
  assert.equal(answer.body.error, "forbidden");
  assert.equal(answer.body.decision_id, answer.decisionId);
  assert.equal(seen.length, 0);
});

test("chromium: bad tokens are 401 with a challenge and never reach the origin", async () => {
  seen.length = 0;
  for (const [authorization, reason] of await badCredentials(issuer, RESEARCH)) {
    const answer = await send("GET", "/api/reports", authorization);
    assert.equal(answer.status, 401);
    assert.deepEqual(answer.body.reasons, [reason]);
    assert.match(answer.challenge, /^Bearer realm="bridle"/);
  }
  assert.equal(seen.length, 0);
});

test("chromium: the example page's form sends through the guard", async () => {
  await page.fill("#token", await bearer(RESEARCH));
  await page.click("#send");
  await page.waitForFunction(() => document.getElementById("out").textContent.startsWith("200"));
  assert.match(await page.textContent("#out"), /"origin":"reached"/);
});

test("chromium: the shared decision cases agree with the proxy-wasm build", async () => {
  const set = JSON.parse(readFileSync(process.env.BRIDLE_CASES ?? join(root, "target", "bridle-cases.json"), "utf8"));
  const result = await page.evaluate(async (set) => {
    const { Authorizer, loadBridle } = await import("/bridle.mjs");
    const { replayCases } = await import("/tests/case-runner.mjs");
    await loadBridle();
    return replayCases(set, Authorizer);
  }, set);
  assert.ok(result.count >= 18, `${result.count} cases`);
  assert.deepEqual(result.mismatches, []);
});
