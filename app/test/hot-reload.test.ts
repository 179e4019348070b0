/**
 * Hot reload under concurrent load: new versions, a changed policy, a replaced file and a broken
 * manifest are picked up without restart and without one failed request; replaced versions are
 * drained before their session is freed.
 */
import assert from "node:assert/strict";
import { copyFile, cp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { pino } from "pino";
import { ModelRepository } from "../src/inference/repository.ts";
import type { RunningServer } from "../src/server.ts";
import { FIXTURES, fixtureRepo, metricValue, request, testServer } from "./helpers.ts";

let server: RunningServer;
let dir: string;
let cleanup: () => Promise<void>;
before(async () => {
  const repo = await fixtureRepo(["versioned", "linear"]);
  dir = repo.dir;
  cleanup = repo.cleanup;
  server = await testServer(dir, { MODEL_POLL_INTERVAL_MS: "100", MODEL_WATCH: "true" });
});
after(async () => {
  await server.close();
  await cleanup();
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

const body = { inputs: [{ name: "x", shape: [1, 1], datatype: "FP32", data: [5] }] };
/** (version, y) for x = 5 from the default version. */
async function current(): Promise<{ version: string; y: number }> {
  const r = await request(`${server.url}/v2/models/versioned/infer`, { json: body });
  return { version: r.body.model_version, y: r.body.outputs[0].data[0] };
}

test("reloads under load with zero failed requests", async () => {
  const failures: string[] = [];
  const seen = new Set<string>();
  let stop = false;
  const worker = async () => {
    let i = 0;
    while (!stop) {
      const useV1 = i++ % 2 === 0;
      const r = useV1
        ? await request(`${server.url}/v1/models/versioned:predict`, { json: { instances: [[5]] } })
        : await request(`${server.url}/v2/models/versioned/infer`, { json: body });
      if (r.status !== 200) failures.push(`${r.status} ${r.text}`);
      else seen.add(useV1 ? `v1:${r.body.predictions[0]}` : `v2:${r.body.model_version}=${r.body.outputs[0].data[0]}`);
    }
  };
  const workers = Array.from({ length: 6 }, worker);
  try {
    assert.deepEqual(await current(), { version: "3", y: 15 });

    // 1. A new version (y = 4x) appears: served once loaded; policy latest-2 retires version 2.
    await cp(join(dir, "versioned", "3"), join(dir, "versioned", "4-tmp"), { recursive: true });
    await copyFile(join(FIXTURES, "versioned", "2", "model.onnx"), join(dir, "versioned", "4-tmp", "model.onnx"));
    await rm(join(dir, "versioned", "4-tmp"), { recursive: true }); // directories that are not versions are ignored
    await cp(join(FIXTURES, "versioned", "2"), join(dir, "versioned", "4"), { recursive: true });
    await until("version 4 serves", async () => (await current()).version === "4");
    assert.equal((await current()).y, 10); // version 4 holds the y = 2x graph
    await until("version 2 unloaded", async () => {
      const m = (await request(`${server.url}/metrics`)).text;
      return metricValue(m, "inferstack_models_loaded", { model: "versioned", version: "2" }) === undefined;
    });

    // 2. A changed manifest: only version 3.
    await writeFile(
      join(dir, "versioned", "model.json"),
      JSON.stringify({ versionPolicy: { specific: { versions: [3] } } }),
    );
    await until("policy pins version 3", async () => (await current()).version === "3");
    const v4 = await request(`${server.url}/v2/models/versioned/versions/4/ready`);
    assert.equal(v4.status, 400);

    // 3. The file of a served version is replaced (y = 1x): reloaded in place.
    await copyFile(join(FIXTURES, "versioned", "1", "model.onnx"), join(dir, "versioned", "3", "model.onnx.new"));
    await rm(join(dir, "versioned", "3", "model.onnx"));
    await copyFile(join(dir, "versioned", "3", "model.onnx.new"), join(dir, "versioned", "3", "model.onnx"));
    await until("replaced file serves", async () => (await current()).y === 5);

    // 4. A broken manifest: reported, but the loaded version keeps serving.
    await writeFile(join(dir, "versioned", "model.json"), '{"versionPolicy": {"latest": {"numVersions": 0}}}');
    await until("broken manifest reported", async () => {
      const r = await request(`${server.url}/health/ready`);
      const m = r.body.models.find((x: { name: string }) => x.name === "versioned");
      return typeof m.reason === "string" && /numVersions/.test(m.reason);
    });
    assert.deepEqual(await current(), { version: "3", y: 5 });
  } finally {
    stop = true;
    await Promise.all(workers);
  }
  assert.deepEqual(failures, [], "no request may fail during reloads");
  for (const v of ["v2:3=15", "v2:4=10", "v2:3=5", "v1:15", "v1:10", "v1:5"])
    assert.ok(seen.has(v), `load saw ${v}: ${[...seen]}`);
});

test("a replaced version finishes its in-flight requests before its session is freed", async () => {
  const local = await fixtureRepo(["versioned"]);
  const repo = new ModelRepository({
    dir: local.dir,
    logger: pino({ level: "silent" }),
    session: { intraOpThreads: 1 },
    pollIntervalMs: 0,
    watch: false,
    hooks: { onBatch() {}, onLoaded() {}, onUnloaded() {}, onLoadFailure() {} },
  });
  try {
    await repo.start();
    const old = repo.servingVersions("versioned").find((m) => m.version === 2)!;
    assert.ok(old.acquire(), "an in-flight request holds version 2");
    await writeFile(
      join(local.dir, "versioned", "model.json"),
      JSON.stringify({ versionPolicy: { specific: { versions: [3] } } }),
    );
    await repo.reload();
    assert.deepEqual(
      repo.servingVersions("versioned").map((m) => m.version),
      [3],
    );
    assert.equal(old.released, false, "still in use: not freed");
    assert.equal(old.acquire(), false, "no new request may start on a retired version");
    const x = { x: { datatype: "FP32" as const, shape: [1, 1], data: Float32Array.of(5) } };
    const out = await old.infer(x, 1);
    assert.deepEqual(Array.from(out.y!.data as Float32Array), [10]);
    old.release();
    await until("the old session is freed", async () => old.released);
  } finally {
    await repo.close();
    await local.cleanup();
  }
});

test("repository extension: unload stops serving, load brings a model back or says why not", async () => {
  const local = await fixtureRepo(["linear", "broken-onnx"]);
  const locked = await testServer(local.dir);
  try {
    const refused = await request(`${locked.url}/v2/repository/models/linear/unload`, { method: "POST" });
    assert.equal(refused.status, 403, "off by default");
    assert.match(refused.body.error, /MODEL_CONTROL/);
  } finally {
    await locked.close();
  }
  const s = await testServer(local.dir, { MODEL_CONTROL: "true" });
  try {
    const body = { instances: [[1, 1, 1]] };
    assert.equal((await request(`${s.url}/v1/models/linear:predict`, { json: body })).status, 200);
    assert.equal((await request(`${s.url}/v2/repository/models/linear/unload`, { method: "POST" })).status, 200);
    const ready = await request(`${s.url}/v2/models/linear/ready`);
    assert.equal(ready.status, 400);
    assert.match(ready.body.reason, /unloaded on request/);
    assert.equal((await request(`${s.url}/v1/models/linear:predict`, { json: body })).status, 400);
    const index = await request(`${s.url}/v2/repository/index`, { method: "POST" });
    assert.equal(index.body.find((e: { name: string }) => e.name === "linear").state, "UNAVAILABLE");

    assert.equal((await request(`${s.url}/v2/repository/models/linear/load`, { method: "POST" })).status, 200);
    assert.deepEqual((await request(`${s.url}/v1/models/linear:predict`, { json: body })).body.predictions, [6.5]);

    const broken = await request(`${s.url}/v2/repository/models/broken-onnx/load`, { method: "POST" });
    assert.equal(broken.status, 400);
    assert.match(broken.body.error, /protobuf/i);
    assert.equal((await request(`${s.url}/v2/repository/models/ghost/load`, { method: "POST" })).status, 404);
    assert.equal((await request(`${s.url}/v2/repository/models/ghost/unload`, { method: "POST" })).status, 404);

    // A model copied in is loaded on request even with polling and watching off.
    await cp(join(FIXTURES, "int64"), join(local.dir, "int64"), { recursive: true });
    assert.equal((await request(`${s.url}/v2/repository/models/int64/load`, { method: "POST" })).status, 200);
    const r = await request(`${s.url}/v2/models/int64/infer`, {
      json: { inputs: [{ name: "x", shape: [1], datatype: "INT64", data: [41] }] },
    });
    assert.deepEqual(r.body.outputs[0].data, [42]);
  } finally {
    await s.close();
    await local.cleanup();
  }
});
