// Runs the Deno tests (edge/tests/deno/) in Deno, installed from npm by scripts/setup.sh.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { root } from "./support.mjs";

test("deno test edge/tests/deno/handler.mjs: the Deno handler example and the shared cases", () => {
  const edge = join(root, "edge");
  const run = spawnSync(join(edge, "node_modules", ".bin", "deno"), ["test", "--no-config", "--no-lock", "--allow-read", "--allow-write", "--allow-env", "--allow-net=127.0.0.1", "tests/deno/handler.mjs"], {
    cwd: edge,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  });
  console.log(run.stdout.trim().split("\n").slice(-4).join("\n"));
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /ok \| 2 passed \| 0 failed/);
});
