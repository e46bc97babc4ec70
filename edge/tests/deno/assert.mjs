// Minimal assertions for the Deno tests (node:assert works in Deno too, but its diffs are Node's).
import nodeAssert from "node:assert/strict";

export const assert = (value, message) => nodeAssert.ok(value, message);
export const assertEquals = (actual, expected) => nodeAssert.deepEqual(actual, expected);
export const assertMatch = (actual, pattern) => nodeAssert.match(actual, pattern);
