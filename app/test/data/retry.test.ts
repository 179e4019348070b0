import assert from "node:assert/strict";
import { test } from "node:test";
import { retryUntilStopped } from "../../src/data/retry.ts";

test("retries until the attempt succeeds, reporting each failure with its number", async () => {
  const failures: Array<[string, number]> = [];
  let calls = 0;
  const value = await retryUntilStopped(
    async () => {
      if (++calls < 4) throw new Error(`down ${calls}`);
      return "up";
    },
    {
      minMs: 1,
      maxMs: 4,
      signal: new AbortController().signal,
      onFailedAttempt: (err, attempt) => failures.push([err.message, attempt]),
    },
  );
  assert.equal(value, "up");
  assert.deepEqual(failures, [
    ["down 1", 1],
    ["down 2", 2],
    ["down 3", 3],
  ]);
});

test("aborting ends the retries during a wait, without another attempt", { timeout: 10_000 }, async () => {
  const stop = new AbortController();
  let calls = 0;
  const retrying = retryUntilStopped(
    async () => {
      calls++;
      throw new Error("down");
    },
    {
      minMs: 600_000,
      maxMs: 600_000,
      signal: stop.signal,
      unref: true,
      onFailedAttempt: () => setImmediate(() => stop.abort()),
    },
  );
  await assert.rejects(retrying, (err: Error) => err.name === "AbortError");
  assert.equal(calls, 1);
});

test("a TypeError is a bug, not an outage: no retry", async () => {
  let calls = 0;
  await assert.rejects(
    retryUntilStopped(
      async () => {
        calls++;
        throw new TypeError("x is not a function");
      },
      { minMs: 1, maxMs: 1, signal: new AbortController().signal },
    ),
    TypeError,
  );
  assert.equal(calls, 1);
});
