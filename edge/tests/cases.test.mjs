// The shipped policy's decision cases through the edge build: the same requests the harness
// and Envoy tests send (written by `cargo run -p host-tests --bin bridle-cases`), the same
// expected decisions, case by case.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Authorizer, initBridle } from "../bridle.mjs";
import { root, wasmBytes } from "./support.mjs";

initBridle(wasmBytes());
const file = process.env.BRIDLE_CASES ?? join(root, "target", "bridle-cases.json");
const set = JSON.parse(readFileSync(file, "utf8"));
const authorizers = Object.fromEntries(Object.entries(set.configs).map(([name, config]) => [name, new Authorizer(config)]));

test("there are cases to replay", () => assert.ok(set.cases.length >= 18, `${set.cases.length} cases`));

for (const c of set.cases) {
  test(`${c.name}: ${c.description}`, async () => {
    const request = new Request(`https://api.internal${c.path}`, { method: c.method, headers: c.headers, body: c.body ?? undefined });
    const answer = await authorizers[c.config].decide(request);
    assert.ok(answer.decision, JSON.stringify(answer));
    const d = answer;
    if (c.expect.allow) {
      assert.equal(d.forward, true, JSON.stringify(d.reasons));
      assert.ok(d.headers.remove.includes("authorization"));
    } else {
      assert.equal(d.forward, false);
      assert.equal(d.status, 403);
      const body = JSON.parse(d.body);
      assert.equal(body.error, c.expect.approval_required ? "approval_required" : "forbidden");
      assert.deepEqual(body.reasons, c.expect.reasons);
    }
  });
}
