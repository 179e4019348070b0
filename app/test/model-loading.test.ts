/**
 * A model on disk whose versions are still loading answers 503 with Retry-After and says it is
 * loading (V1 and V2, prediction and metadata); a name that is not on disk stays 404. Observed on a
 * real server polled from the moment its port opens, with the polled model loading last.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, test } from "node:test";
import { pino } from "pino";
import { ModelRepository } from "../src/inference/repository.ts";
import type { RunningServer } from "../src/server.ts";
import { fixtureRepo, type JsonResponse, request, testServer } from "./helpers.ts";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

test("during the first load a known model answers 503 loading with Retry-After, an unknown one 404", async () => {
  // Models load one after another in name order: "versioned" comes last, after every other fixture.
  const repo = await fixtureRepo();
  cleanups.push(repo.cleanup);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const starting = testServer(repo.dir, {}, port);
  let started: RunningServer | undefined;
  void starting.then((s) => (started = s));
  cleanups.push(async () => (await starting).close());

  const v1 = { instances: [[5]] };
  const v2 = { inputs: [{ name: "x", shape: [1, 1], datatype: "FP32", data: [5] }] };
  const seen: Array<{ route: string; r: JsonResponse }> = [];
  const unknown: JsonResponse[] = [];
  // Poll from before the port opens until the model serves.
  const deadline = Date.now() + 30_000;
  for (;;) {
    assert.ok(Date.now() < deadline, "the model never came to serve");
    try {
      const [p1, p2, meta, missing] = await Promise.all([
        request(`${base}/v1/models/versioned:predict`, { json: v1 }),
        request(`${base}/v2/models/versioned/infer`, { json: v2 }),
        request(`${base}/v2/models/versioned`),
        request(`${base}/v1/models/no-such-model:predict`, { json: v1 }),
      ]);
      seen.push({ route: "v1 predict", r: p1 }, { route: "v2 infer", r: p2 }, { route: "v2 metadata", r: meta });
      unknown.push(missing);
      if (p1.status === 200 && p2.status === 200 && meta.status === 200) break;
    } catch {
      // connection refused: the port is not open yet
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  await starting;
  assert.ok(started);

  const statuses = seen.map(({ route, r }) => `${route} ${r.status}`);
  for (const { route, r } of seen) {
    assert.ok(r.status === 200 || r.status === 503, `${route} answered ${r.status} during start: ${r.text}`);
    if (r.status !== 503) continue;
    assert.equal(r.headers.get("retry-after"), "1", `${route}: Retry-After`);
    assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
    assert.match(r.body?.error, /^model "versioned" is loading; retry in 1 s$/, `${route}: ${r.text}`);
  }
  for (const route of ["v1 predict", "v2 infer", "v2 metadata"]) {
    assert.ok(
      seen.some((s) => s.route === route && s.r.status === 503),
      `${route} never saw the loading window (statuses: ${statuses.join(", ")})`,
    );
  }
  for (const r of unknown) {
    assert.equal(r.status, 404, r.text);
    assert.equal(r.body.error, 'model "no-such-model" not found');
    assert.equal(r.headers.get("retry-after"), null);
  }
});

test("the repository reports a discovered model as LOADING until it is loaded, then READY", async () => {
  const fixture = await fixtureRepo(["linear", "broken-manifest"]);
  cleanups.push(fixture.cleanup);
  const repo = new ModelRepository({
    dir: fixture.dir,
    logger: pino({ level: "silent" }),
    session: { intraOpThreads: 1 },
    pollIntervalMs: 0,
    watch: false,
    hooks: { onBatch() {}, onLoaded() {}, onUnloaded() {}, onLoadFailure() {} },
  });
  cleanups.push(() => repo.close());
  assert.deepEqual(repo.resolve("linear"), { ok: false, status: 404, error: 'model "linear" not found' });
  await repo.discover();
  assert.deepEqual(repo.names(), ["broken-manifest", "linear"]);
  const loading = repo.resolve("linear");
  assert.deepEqual(loading, {
    ok: false,
    status: 503,
    error: 'model "linear" is loading; retry in 1 s',
    retryAfterSeconds: 1,
  });
  assert.equal(repo.notReadyReason("linear"), "loading");
  assert.deepEqual(
    repo.index().filter((row) => row.name === "linear"),
    [{ name: "linear", version: "1", state: "LOADING", reason: "loading" }],
  );
  assert.equal(repo.resolve("nope").ok, false);
  assert.equal((repo.resolve("nope") as { status: number }).status, 404);

  await repo.start();
  assert.equal(repo.resolve("linear").ok, true);
  assert.deepEqual(
    repo.index().filter((row) => row.name === "linear"),
    [{ name: "linear", version: "1", state: "READY", reason: "" }],
  );
  // A model that cannot load stops saying "loading" once its load has been tried.
  const broken = repo.resolve("broken-manifest");
  assert.equal(broken.ok, false);
  assert.notEqual((broken as { status: number }).status, 503);
  assert.doesNotMatch(repo.notReadyReason("broken-manifest"), /loading/);
});
