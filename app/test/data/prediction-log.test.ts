import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type pg from "pg";
import { Registry } from "prom-client";
import { createDataPlaneMetrics } from "../../src/data/metrics.ts";
import { migrate } from "../../src/data/migrations.ts";
import { createPool } from "../../src/data/postgres.ts";
import {
  claimSpillPath,
  PostgresPredictionLog,
  type PredictionLogOptions,
  spillSlotPath,
} from "../../src/data/prediction-log/index.ts";
import { deleteExpiredPredictions } from "../../src/data/retention.ts";
import { uuidv7 } from "../../src/ids.ts";
import type { PredictionRecord } from "../../src/ports.ts";
import { freshDatabase, makeRecord, silentLogger, TcpProxy, type TestDatabase, waitFor } from "./support.ts";

let db: TestDatabase;
let pool: pg.Pool;
let dir: string;
before(async () => {
  db = await freshDatabase();
  await migrate(db.url);
  pool = createPool(db.url, { logger: silentLogger(), max: 4, connectTimeoutMs: 1000, queryTimeoutMs: 3000 });
  dir = await mkdtemp(join(tmpdir(), "inferstack-spill-"));
});
after(async () => {
  await pool.end();
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

function newLog(p: pg.Pool, overrides: Partial<PredictionLogOptions> = {}) {
  const registry = new Registry();
  const log = new PostgresPredictionLog({
    pool: p,
    logger: silentLogger(),
    metrics: createDataPlaneMetrics(registry),
    spillPath: join(dir, `${randomUUID()}.jsonl`),
    queueMax: 10_000,
    batchSize: 200,
    flushMs: 20,
    closeTimeoutMs: 3000,
    ...overrides,
  });
  return {
    log,
    registry,
    metric: async (name: string) =>
      Number(new RegExp(`^${name} (\\S+)$`, "m").exec(await registry.getSingleMetricAsString(name))?.[1]),
  };
}

async function countIds(ids: string[]): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ id: string; n: number }>(
    "SELECT id, count(*)::int AS n FROM predictions WHERE id = ANY($1::uuid[]) GROUP BY id",
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r.n]));
}

test("records are written in batches off the caller's path, with every field", async () => {
  const { log, metric } = newLog(pool);
  await log.start();
  const keyId = randomUUID();
  const records = Array.from({ length: 1234 }, (_, i) =>
    makeRecord({ keyId: i === 0 ? keyId : null, cacheHit: i % 2 === 0, latencyMs: i / 10 }),
  );
  const started = performance.now();
  for (const r of records) log.record(r);
  const recordMs = performance.now() - started;
  assert.ok(log.queueDepth > 0, `record() must only enqueue (took ${recordMs.toFixed(1)} ms)`);
  await waitFor("all rows", async () => (await countIds(records.map((r) => r.id))).size === records.length);
  const { rows } = await pool.query("SELECT * FROM predictions WHERE id = $1", [records[0]!.id]);
  const row = rows[0];
  assert.equal(row.key_id, keyId);
  assert.equal(row.model, "iris-classifier");
  assert.equal(row.version, "1");
  assert.equal(row.request_id, records[0]!.requestId);
  assert.equal(row.input_hash, records[0]!.inputHash);
  assert.deepEqual(row.inputs, records[0]!.inputs);
  assert.deepEqual(row.outputs, records[0]!.outputs);
  assert.equal(row.cache_hit, true);
  assert.equal(row.time.getTime(), records[0]!.time.getTime());
  assert.equal(await metric("inferstack_prediction_log_written_total"), 1234);
  await log.close();
  assert.equal(await metric("inferstack_prediction_log_queue_depth"), 0);
});

test("Postgres down: the queue fills to its bound, spills to disk, and replays in order exactly once when it returns", async () => {
  const proxy = await new TcpProxy("127.0.0.1", Number(new URL(db.url).port)).start();
  const viaProxy = createPool(db.urlVia(proxy.port), {
    logger: silentLogger(),
    max: 2,
    connectTimeoutMs: 500,
    queryTimeoutMs: 1000,
  });
  const { log, metric } = newLog(viaProxy, { queueMax: 100, batchSize: 50 });
  await log.start();
  try {
    const base = Date.now();
    const records = Array.from({ length: 750 }, (_, i) => makeRecord({ time: new Date(base + i) }));
    for (const r of records.slice(0, 100)) log.record(r);
    await waitFor("first rows", async () => (await countIds(records.slice(0, 100).map((r) => r.id))).size === 100);
    proxy.cut();
    for (const r of records.slice(100, 700)) {
      log.record(r);
      if (Math.random() < 0.05) await new Promise((res) => setImmediate(res));
    }
    assert.ok(log.queueDepth <= 100, `queue bounded, got ${log.queueDepth}`);
    await waitFor("500 records spilled", async () => (await metric("inferstack_prediction_log_spilled_total")) >= 500);
    assert.ok(log.spillBytes > 0);
    proxy.restore();
    for (const r of records.slice(700)) log.record(r);
    await waitFor(
      "every record",
      async () => (await countIds(records.map((r) => r.id))).size === records.length,
      30_000,
    );
    const counts = await countIds(records.map((r) => r.id));
    assert.ok(
      [...counts.values()].every((n) => n === 1),
      "no duplicates",
    );
    // Physical insertion order follows record order: the spill was replayed before newer records.
    const { rows } = await pool.query<{ id: string }>(
      "SELECT id FROM predictions WHERE id = ANY($1::uuid[]) ORDER BY ctid",
      [records.map((r) => r.id)],
    );
    assert.deepEqual(
      rows.map((r) => r.id),
      records.map((r) => r.id),
    );
    await waitFor("spill file emptied", () => log.spillBytes === 0);
    assert.ok((await metric("inferstack_prediction_log_replayed_total")) > 0);
    assert.equal(await metric("inferstack_prediction_log_spill_bytes"), 0);
  } finally {
    await log.close();
    await viaProxy.end();
    await proxy.close();
  }
});

test("close() with Postgres down spills everything; the next process replays it without duplicates", async () => {
  const proxy = await new TcpProxy("127.0.0.1", Number(new URL(db.url).port)).start();
  const viaProxy = createPool(db.urlVia(proxy.port), {
    logger: silentLogger(),
    max: 2,
    connectTimeoutMs: 300,
    queryTimeoutMs: 500,
  });
  const spillPath = join(dir, "shutdown.jsonl");
  const first = newLog(viaProxy, { spillPath, closeTimeoutMs: 1000 });
  await first.log.start();
  proxy.cut();
  const records = Array.from({ length: 300 }, () => makeRecord());
  for (const r of records) first.log.record(r);
  await first.log.close();
  await viaProxy.end();
  await proxy.close();
  const lines = (await readFile(spillPath, "utf8")).trim().split("\n");
  assert.equal(lines.length, 300);
  assert.deepEqual(
    lines.map((l) => JSON.parse(l).id),
    records.map((r) => r.id),
  );
  // A record already in Postgres (e.g. its insert landed just before the cut) is not written twice.
  await pool.query("INSERT INTO predictions SELECT * FROM predictions WHERE false"); // keep the pool warm
  const second = newLog(pool, { spillPath });
  await second.log.start();
  await waitFor("replayed", async () => (await countIds(records.map((r) => r.id))).size === 300);
  await waitFor("spill file emptied", async () => (await stat(spillPath)).size === 0);
  await second.log.close();
  assert.ok([...(await countIds(records.map((r) => r.id))).values()].every((n) => n === 1));
  assert.equal(await second.metric("inferstack_prediction_log_replayed_total"), 300);
});

test("close() with Postgres up writes the queue before returning", async () => {
  const { log } = newLog(pool, { flushMs: 60_000, batchSize: 5000 });
  await log.start();
  const records = Array.from({ length: 321 }, () => makeRecord());
  for (const r of records) log.record(r);
  assert.equal(log.queueDepth, 321);
  await log.close();
  assert.equal((await countIds(records.map((r) => r.id))).size, 321);
  assert.equal(log.spillBytes, 0);
});

test("a record Postgres refuses is dropped and counted; the rest of its batch is written", async () => {
  const { log, metric } = newLog(pool);
  await log.start();
  const good = Array.from({ length: 20 }, () => makeRecord({ inputs: { text: "nul \u0000 inside" } }));
  const bad = makeRecord({ keyId: "not-a-uuid" });
  for (const r of [...good.slice(0, 10), bad, ...good.slice(10)]) log.record(r);
  await log.close();
  assert.equal((await countIds(good.map((r) => r.id))).size, 20);
  assert.equal(await metric("inferstack_prediction_log_rejected_total"), 1);
});

test("a batch holding ids already written skips them: every row once, nothing rejected", async () => {
  const { log, metric } = newLog(pool);
  await log.start();
  const earlier = Array.from({ length: 30 }, () => makeRecord());
  for (const r of earlier) log.record(r);
  await waitFor("earlier rows", async () => (await countIds(earlier.map((r) => r.id))).size === 30);
  // A retry of a batch whose COPY committed unseen (a timeout), mixed with new records.
  const fresh = Array.from({ length: 30 }, () => makeRecord());
  for (const r of [...earlier.slice(10, 20), ...fresh, earlier[0]!]) log.record(r);
  await log.close();
  const counts = await countIds([...earlier, ...fresh].map((r) => r.id));
  assert.equal(counts.size, 60);
  assert.ok(
    [...counts.values()].every((n) => n === 1),
    "no duplicates",
  );
  assert.equal(await metric("inferstack_prediction_log_written_total"), 60);
  assert.equal(await metric("inferstack_prediction_log_rejected_total"), 0);
});

test("awkward text survives COPY and the spill file unchanged (NUL becomes U+FFFD)", async () => {
  const awkward = 'tab\t newline\n cr\r backslash\\ \\N quote" é 🙂 \u2028 nul\u0000';
  const expected = awkward.replace("\u0000", "\ufffd");
  const make = () =>
    makeRecord({
      model: "m\tx",
      requestId: `r\\${randomUUID()}`,
      inputs: { [awkward]: [awkward, 1.5, null] },
      outputs: { predictions: [awkward] },
      latencyMs: Number.NaN,
    });
  const check = async (records: PredictionRecord[]) => {
    const { rows } = await pool.query("SELECT * FROM predictions WHERE id = ANY($1::uuid[])", [
      records.map((r) => r.id),
    ]);
    assert.equal(rows.length, records.length);
    for (const row of rows) {
      const rec = records.find((r) => r.id === row.id)!;
      assert.equal(row.model, "m\tx");
      assert.equal(row.request_id, rec.requestId);
      assert.deepEqual(row.inputs, { [expected]: [expected, 1.5, null] });
      assert.deepEqual(row.outputs, { predictions: [expected] });
      assert.ok(Number.isNaN(row.latency_ms));
      assert.equal(row.time.getTime(), rec.time.getTime());
    }
  };
  // Straight to Postgres.
  const direct = Array.from({ length: 5 }, make);
  const first = newLog(pool);
  await first.log.start();
  for (const r of direct) first.log.record(r);
  await first.log.close();
  await check(direct);
  // Through the spill file (Postgres down at close), then replayed by the next process.
  const proxy = await new TcpProxy("127.0.0.1", Number(new URL(db.url).port)).start();
  const viaProxy = createPool(db.urlVia(proxy.port), {
    logger: silentLogger(),
    max: 1,
    connectTimeoutMs: 300,
    queryTimeoutMs: 500,
  });
  const spillPath = join(dir, "awkward.jsonl");
  const spilled = Array.from({ length: 5 }, make);
  const down = newLog(viaProxy, { spillPath, closeTimeoutMs: 500 });
  await down.log.start();
  proxy.cut();
  for (const r of spilled) down.log.record(r);
  await down.log.close();
  await viaProxy.end();
  await proxy.close();
  const lines = (await readFile(spillPath, "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => l.id),
    spilled.map((r) => r.id),
  ); // still JSONL: older versions replay it
  const next = newLog(pool, { spillPath });
  await next.log.start();
  await waitFor("replayed", async () => (await countIds(spilled.map((r) => r.id))).size === 5);
  await next.log.close();
  await check(spilled);
});

test("uuidv7 ids are valid version-7 UUIDs in time order", () => {
  const ids = Array.from({ length: 10_000 }, () => uuidv7());
  assert.ok(ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)));
  assert.equal(new Set(ids).size, ids.length);
  const ms = (id: string) => parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
  assert.ok(ids.every((id, i) => i === 0 || ms(id) >= ms(ids[i - 1]!)));
  assert.ok(Math.abs(ms(ids.at(-1)!) - Date.now()) < 5000);
});

test("a torn last line in the spill file (crash mid-write) is skipped, the others replayed", async () => {
  const spillPath = join(dir, "torn.jsonl");
  const records = Array.from({ length: 5 }, () => makeRecord());
  await writeFile(spillPath, records.map((r) => `${JSON.stringify(r)}\n`).join(""));
  await appendFile(spillPath, '{"id":"0f0e');
  const { log } = newLog(pool, { spillPath });
  await log.start();
  await waitFor("replayed", async () => (await countIds(records.map((r) => r.id))).size === 5);
  await log.close();
});

test("retention deletes only rows older than the configured days, in batches", async () => {
  const old = Array.from({ length: 25 }, () => makeRecord({ time: new Date(Date.now() - 40 * 86_400_000) }));
  const recent = Array.from({ length: 5 }, () => makeRecord({ time: new Date(Date.now() - 5 * 86_400_000) }));
  const { log } = newLog(pool);
  await log.start();
  for (const r of [...old, ...recent]) log.record(r);
  await log.close();
  const deleted = await deleteExpiredPredictions(pool, 30, { batchSize: 10 });
  assert.ok(deleted !== null && deleted >= 25);
  assert.equal((await countIds(old.map((r) => r.id))).size, 0);
  assert.equal((await countIds(recent.map((r) => r.id))).size, 5);
});

test("processes sharing one configured spill path get their own files; a dead holder's file is taken over", async () => {
  const path = join(dir, "shared", "predictions.jsonl");
  // A live process holds slot 0 ...
  const holder = spawn(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `
    const { claimSpillPath } = await import(${JSON.stringify(new URL("../../src/data/prediction-log/index.ts", import.meta.url).href)});
    await claimSpillPath(${JSON.stringify(path)});
    process.stdout.write("held\\n");
    setInterval(() => {}, 1000);`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  try {
    await waitFor(
      "holder",
      () => new Promise<boolean>((resolve) => holder.stdout!.once("data", () => resolve(true))),
      20_000,
    );
    const mine = await claimSpillPath(path);
    assert.equal(mine.path, spillSlotPath(path, 1));
    assert.equal(mine.path, join(dir, "shared", "predictions.1.jsonl"));
    await mine.release();
  } finally {
    holder.kill("SIGKILL");
    await new Promise((resolve) => holder.once("exit", resolve));
  }
  // ... and once it is dead, its slot (and the spill file in it) is claimed by the next process.
  const dead = spawnSync(process.execPath, ["-e", "process.exit(0)"]).pid!;
  await writeFile(`${path}.lock`, JSON.stringify({ pid: dead, host: hostname() }));
  const next = await claimSpillPath(path);
  assert.equal(next.path, path);
  await next.release();
});
