import assert from "node:assert/strict";
import { test } from "node:test";
import { packViolations } from "./inventory.ts";
import { knownViolations } from "./known-violations.ts";

// One stack per file: Pulumi's mock state is process-global.
test("the staging stack's mocked inventory passes the policy pack", async () => {
  const { violations, resourceCount } = await packViolations("staging");
  assert.ok(resourceCount > 10, `${resourceCount} resources`);
  assert.deepEqual(
    violations,
    knownViolations.staging,
    "new violations must be fixed; fixed ones removed from policy/test/known-violations.ts",
  );
});
