import { test } from "node:test";
import assert from "node:assert/strict";
test("toolchain runs TypeScript tests on Node 22+", () => {
  assert.ok(Number(process.versions.node.split(".")[0]) >= 22);
});
