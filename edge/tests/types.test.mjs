// The TypeScript declarations (bridle.d.ts) compile and describe the API the examples use.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { root } from "./support.mjs";

test("tsc checks bridle.d.ts against typed usage", () => {
  const tsc = join(root, "edge", "node_modules", "typescript", "bin", "tsc");
  try {
    execFileSync(process.execPath, [tsc, "-p", join(root, "edge", "tests", "types", "tsconfig.json")], { encoding: "utf8" });
  } catch (err) {
    assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`);
  }
});
