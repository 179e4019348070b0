/**
 * The prediction path against the real data plane (Postgres + Redis on 127.0.0.1): API keys,
 * rate-limit headers and 429, the response cache (hit on the same inputs however spelled,
 * no-cache bypass), the prediction log, and degraded readiness when Redis is down.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { createKey } from "../src/data/keys.ts";
import type { RunningServer } from "../src/server.ts";
import { deleteRedisPrefix, freshDatabase, REDIS_URL, type TestDatabase, waitFor } from "./data/support.ts";
import { fixtureRepo, type JsonResponse, metricValue, request, testServer } from "./helpers.ts";

const suffix = randomBytes(6).toString("hex");
const prefix = `test-api-${suffix}:`;
let db: TestDatabase;
let server: RunningServer;
let repo: Awaited<ReturnType<typeof fixtureRepo>>;
let spillDir: string;
let key: string;

before(async () => {
  db = await freshDatabase();
  repo = await fixtureRepo(["linear", "classifier"]);
  spillDir = await mkdtemp(join(tmpdir(), "inferstack-spill-"));
  server = await testServer(repo.dir, {
    DATABASE_URL: db.url,
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    AUTH_MODE: "required",
    RATE_LIMIT_PLANS: JSON.stringify({ free: { limit: 5, windowSeconds: 60 }, pro: 1000 }),
    PREDICTION_LOG_SPILL_PATH: join(spillDir, "spill.jsonl"),
    PREDICTION_LOG_FLUSH_MS: "50",
  });
  const pool = new pg.Pool({ connectionString: db.url });
  key = (await createKey(pool, "api-test", "pro")).key;
  await pool.end();
});

after(async () => {
  await server?.close();
  await db?.drop();
  await deleteRedisPrefix(prefix);
  await repo?.cleanup();
  await rm(spillDir, { recursive: true, force: true });
});

const predict = (body: unknown, headers: Record<string, string> = {}) =>
  request(`${server.url}/v1/models/linear:predict`, {
    json: body,
    headers: { authorization: `Bearer ${key}`, ...headers },
  });

describe("with Postgres and Redis", () => {
  test("prediction routes need an API key; probes, metrics and docs stay open", async () => {
    const none = await request(`${server.url}/v1/models/linear:predict`, { json: { instances: [[1, 1, 1]] } });
    assert.equal(none.status, 401);
    assert.equal(typeof none.body.error, "string");
    const wrong = await request(`${server.url}/v2/models/linear/infer`, {
      json: { inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", data: [1, 1, 1] }] },
      headers: { "x-api-key": "isk_not_a_real_key_000000000000000000000" },
    });
    assert.equal(wrong.status, 401);
    for (const path of [
      "/health/live",
      "/health/ready",
      "/metrics",
      "/openapi.json",
      "/v2/health/ready",
      "/v1/models",
    ]) {
      assert.equal((await request(server.url + path)).status, 200, path);
    }
    const ready = await request(`${server.url}/health/ready`);
    assert.equal(ready.body.status, "ok");
    assert.deepEqual(ready.body.dependencies.map((d: { name: string; ok: boolean }) => [d.name, d.ok]).sort(), [
      ["postgres", true],
      ["redis", true],
    ]);
  });

  test("the response cache: miss, then hit on the same inputs however spelled, bypass on no-cache", async () => {
    const first = await predict({ instances: [{ a: 3, b: 1, c: 0 }] });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-cache"), "miss");
    let hit: JsonResponse | undefined;
    for (let i = 0; i < 50; i++) {
      // cache.set is not awaited on the request path: wait until it landed.
      hit = await predict({ instances: [[3, 1, 0]] });
      if (hit.headers.get("x-cache") === "hit") break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(hit!.headers.get("x-cache"), "hit");
    assert.deepEqual(hit!.body, first.body);
    const bypass = await predict({ instances: [[3, 1, 0]] }, { "cache-control": "no-cache" });
    assert.deepEqual(bypass.body, first.body);
    const m = (await request(`${server.url}/metrics`)).text;
    assert.ok(metricValue(m, "inferstack_cache_requests_total", { model: "linear", result: "hit" })! >= 1);
    assert.ok(metricValue(m, "inferstack_cache_requests_total", { model: "linear", result: "miss" })! >= 1);
    assert.equal(metricValue(m, "inferstack_cache_requests_total", { model: "linear", result: "bypass" }), 1);
  });

  test("rate-limit headers on success, 429 with Retry-After over the plan", async () => {
    const anonymous = await createFreeKey();
    const call = () =>
      request(`${server.url}/v1/models/classifier:predict`, {
        json: { instances: [[0, 1]] },
        headers: { authorization: `Bearer ${anonymous}` },
      });
    const first = await call();
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("ratelimit-limit"), "5");
    assert.equal(first.headers.get("ratelimit-remaining"), "4");
    assert.ok(Number(first.headers.get("ratelimit-reset")) > 0);
    for (let i = 0; i < 4; i++) assert.equal((await call()).status, 200);
    const limited = await call();
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get("retry-after")) >= 1);
    assert.equal(limited.headers.get("ratelimit-remaining"), "0");
    assert.match(limited.body.error, /rate limit/);
  });

  test("served predictions reach the prediction log", async () => {
    await predict({ instances: [[9, 9, 1]] }, { "x-request-id": `log-${suffix}` });
    const pool = new pg.Pool({ connectionString: db.url });
    try {
      const rows = await waitFor(
        "the logged row",
        async () => {
          const { rows } = await pool.query("SELECT * FROM predictions WHERE request_id = $1", [`log-${suffix}`]);
          return rows.length > 0 && rows;
        },
        5000,
      );
      assert.equal(rows.length, 1);
    } finally {
      await pool.end();
    }
  });
});

async function createFreeKey(): Promise<string> {
  const pool = new pg.Pool({ connectionString: db.url });
  try {
    return (await createKey(pool, "free-test", "free")).key;
  } finally {
    await pool.end();
  }
}

describe("with Redis down", () => {
  test("readiness says degraded (200), metrics say which dependency, predictions still served", async () => {
    const local = await fixtureRepo(["linear"]);
    // Port 1 on loopback: nothing listens, connections are refused at once.
    const degraded = await testServer(local.dir, {
      REDIS_URL: "redis://127.0.0.1:1",
      REDIS_KEY_PREFIX: prefix,
      RATE_LIMIT_ANON_PLAN: "pro",
    });
    try {
      const ready = await request(`${degraded.url}/health/ready`);
      assert.equal(ready.status, 200);
      assert.equal(ready.body.status, "degraded");
      assert.deepEqual(
        ready.body.dependencies.map((d: { name: string; ok: boolean }) => [d.name, d.ok]),
        [["redis", false]],
      );
      const r = await request(`${degraded.url}/v1/models/linear:predict`, { json: { instances: [[1, 1, 1]] } });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.predictions, [6.5]);
      const m = (await request(`${degraded.url}/metrics`)).text;
      assert.equal(metricValue(m, "inferstack_dependency_up", { dependency: "redis" }), 0);
      assert.equal(metricValue(m, "inferstack_degraded"), 1);
      assert.equal(metricValue(m, "inferstack_ready"), 1);
    } finally {
      await degraded.close();
      await local.cleanup();
    }
  });
});
