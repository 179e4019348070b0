/** Faults under concurrent load: Redis or Postgres cut by a TCP proxy while predictions flow. */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type pg from "pg";
import { createKey, generateKey } from "../../src/data/keys.ts";
import { migrate } from "../../src/data/migrations.ts";
import { createPool } from "../../src/data/postgres.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import {
  deleteRedisPrefix,
  freshDatabase,
  REDIS_URL,
  redisPrefix,
  served,
  silentLogger,
  sleep,
  TcpProxy,
  type TestDatabase,
  waitFor,
} from "./support.ts";

const MODELS = new URL("../../../models/", import.meta.url).pathname;
const OUTAGE_SECONDS = Number(process.env.TEST_PG_OUTAGE_SECONDS ?? 30);
const prefix = redisPrefix();
let db: TestDatabase;
let pool: pg.Pool;
let dir: string;

before(async () => {
  db = await freshDatabase();
  await migrate(db.url);
  pool = createPool(db.url, { logger: silentLogger(), max: 2, connectTimeoutMs: 1000, queryTimeoutMs: 5000 });
  dir = await mkdtemp(join(tmpdir(), "inferstack-faults-"));
});
after(async () => {
  await pool.end();
  await db.drop();
  await deleteRedisPrefix(prefix);
  await rm(dir, { recursive: true, force: true });
});

/** Workers sending predictions back to back (a little paced: the CI machine is shared) until stopped. */
function load(url: string, key: string, workers = 6) {
  const requestIds: string[] = [];
  const failures: string[] = [];
  let stopped = false;
  const worker = async () => {
    while (!stopped) {
      const requestId = `load-${randomUUID()}`;
      try {
        const res = await fetch(`${url}/v1/models/iris-classifier:predict`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${key}`, "x-request-id": requestId },
          // A few distinct inputs so that both cache hits and misses happen.
          body: JSON.stringify({ instances: [[5 + (requestIds.length % 7) / 10, 3.1, 1.4, 0.2]] }),
        });
        const body = await res.text();
        if (res.status === 200) requestIds.push(requestId);
        else failures.push(`${res.status} ${body}`);
      } catch (err) {
        failures.push(`fetch: ${(err as Error).message}`);
      }
      await sleep(10);
    }
  };
  const running = Promise.all(Array.from({ length: workers }, worker));
  return {
    requestIds,
    failures,
    async stop() {
      stopped = true;
      await running;
    },
  };
}

async function readiness(url: string) {
  return (await (await fetch(`${url}/health/ready`)).json()) as {
    status: string;
    dependencies: Array<{ name: string; ok: boolean }>;
  };
}

test("Redis unreachable under load: zero failed predictions, readiness says degraded, limits and cache recover", async () => {
  const proxy = await new TcpProxy("127.0.0.1", Number(new URL(REDIS_URL).port || 6379)).start();
  const server: RunningServer = await startServer({
    port: 0,
    host: "127.0.0.1",
    modelsDir: MODELS,
    logger: silentLogger(),
    env: {
      DATABASE_URL: db.url,
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      REDIS_KEY_PREFIX: prefix,
      MODEL_WATCH: "false",
      RATE_LIMIT_PLANS: '{"load": 1000000}',
      PREDICTION_LOG_SPILL_PATH: join(dir, "redis.jsonl"),
    },
  });
  try {
    const { key } = await createKey(pool, "redis-fault", "load");
    const traffic = load(server.url, key);
    await served(traffic, 30, "before the outage");
    proxy.cut();
    const duringOutage = served(traffic, 30, "during the outage");
    const during = await waitFor(
      "readiness to report Redis down",
      async () => {
        const r = await readiness(server.url);
        return r.dependencies.find((d) => d.name === "redis")?.ok === false && r;
      },
      15_000,
      100,
    );
    await duringOutage;
    assert.equal(during.status, "degraded");
    assert.equal(during.dependencies.find((d) => d.name === "redis")?.ok, false);
    const metricsDuring = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metricsDuring, /^inferstack_rate_limiter_fallback 1$/m);
    proxy.restore();
    await waitFor("redis back", async () => (await readiness(server.url)).status === "ok", 15_000, 200);
    await served(traffic, 30, "after Redis came back");
    await traffic.stop();
    assert.deepEqual(traffic.failures, []);
    assert.ok(traffic.requestIds.length > 50, `only ${traffic.requestIds.length} requests went through`);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^inferstack_rate_limiter_fallback 0$/m);
    assert.match(metrics, /inferstack_cache_requests_total\{model="iris-classifier",result="error"\} [1-9]/);
    assert.match(metrics, /inferstack_cache_requests_total\{model="iris-classifier",result="hit"\} [1-9]/);
  } finally {
    await server.close();
    await proxy.close();
  }
});

test(`Postgres unreachable for ${OUTAGE_SECONDS} s under load: zero failed predictions, then every prediction in the table exactly once`, async () => {
  const proxy = await new TcpProxy("127.0.0.1", Number(new URL(db.url).port)).start();
  const server: RunningServer = await startServer({
    port: 0,
    host: "127.0.0.1",
    modelsDir: MODELS,
    logger: silentLogger(),
    env: {
      DATABASE_URL: db.urlVia(proxy.port),
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      MODEL_WATCH: "false",
      RATE_LIMIT_PLANS: '{"load": 1000000}',
      PG_CONNECT_TIMEOUT_MS: "500",
      // A small queue so that the outage spills to disk and the replay is exercised.
      PREDICTION_LOG_QUEUE_MAX: "500",
      PREDICTION_LOG_SPILL_PATH: join(dir, "postgres.jsonl"),
    },
  });
  try {
    const { key } = await createKey(pool, "postgres-fault", "load");
    const traffic = load(server.url, key);
    await served(traffic, 30, "before the outage");
    proxy.cut();
    const outageEnds = Date.now() + OUTAGE_SECONDS * 1000;
    const during = await waitFor(
      "readiness to report Postgres down",
      async () => {
        const r = await readiness(server.url);
        return r.dependencies.find((d) => d.name === "postgres")?.ok === false && r;
      },
      15_000,
      100,
    );
    assert.equal(during.status, "degraded");
    assert.equal(during.dependencies.find((d) => d.name === "postgres")?.ok, false);
    // The outage's length is the scenario; it also lasts until the queue has spilled, so the replay is exercised.
    await waitFor(
      "the outage to last its length and the queue to spill",
      async () =>
        Date.now() >= outageEnds &&
        /^inferstack_prediction_log_spilled_total [1-9]/m.test(await (await fetch(`${server.url}/metrics`)).text()),
      OUTAGE_SECONDS * 1000 + 30_000,
      250,
    );
    const servedDuringOutage = traffic.requestIds.length;
    proxy.restore();
    await served(traffic, 30, "after Postgres came back");
    await traffic.stop();
    assert.deepEqual(traffic.failures, []);
    assert.ok(servedDuringOutage > 100, `only ${servedDuringOutage} predictions served`);

    const ids = traffic.requestIds;
    await waitFor(
      "every prediction logged",
      async () => {
        const { rows } = await pool.query<{ n: number }>(
          "SELECT count(DISTINCT request_id)::int AS n FROM predictions WHERE request_id = ANY($1)",
          [ids],
        );
        return rows[0]!.n === ids.length;
      },
      60_000,
      250,
    );
    const { rows } = await pool.query<{ total: number; distinct: number }>(
      "SELECT count(*)::int AS total, count(DISTINCT request_id)::int AS distinct FROM predictions WHERE request_id = ANY($1)",
      [ids],
    );
    assert.equal(rows[0]!.total, ids.length, "exactly once: no duplicates");
    assert.equal(rows[0]!.distinct, ids.length);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^inferstack_prediction_log_spilled_total [1-9]/m);
    assert.match(metrics, /^inferstack_prediction_log_replayed_total [1-9]/m);
    await waitFor("spill file emptied", async () =>
      /^inferstack_prediction_log_spill_bytes 0$/m.test(await (await fetch(`${server.url}/metrics`)).text()),
    );
  } finally {
    await server.close();
    await proxy.close();
  }
});

test("starting while Postgres is down: the API serves, migrates once it is back, and logs what it served meanwhile", async () => {
  const fresh = await freshDatabase();
  const proxy = await new TcpProxy("127.0.0.1", Number(new URL(fresh.url).port)).start();
  proxy.cut();
  const server: RunningServer = await startServer({
    port: 0,
    host: "127.0.0.1",
    modelsDir: MODELS,
    logger: silentLogger(),
    env: {
      DATABASE_URL: fresh.urlVia(proxy.port),
      AUTH_MODE: "off",
      RATE_LIMIT: "off",
      REDIS_URL: "",
      MODEL_WATCH: "false",
      PG_CONNECT_TIMEOUT_MS: "300",
      PREDICTION_LOG_SPILL_PATH: join(dir, "cold-start.jsonl"),
    },
  });
  const freshPool = createPool(fresh.url, {
    logger: silentLogger(),
    max: 1,
    connectTimeoutMs: 1000,
    queryTimeoutMs: 3000,
  });
  try {
    assert.equal((await fetch(`${server.url}/health/live`)).status, 200);
    const ready = await readiness(server.url);
    assert.equal(ready.status, "degraded");
    const ids = Array.from({ length: 20 }, () => `cold-${randomUUID()}`);
    for (const id of ids) {
      const res = await fetch(`${server.url}/v1/models/iris-classifier:predict`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": id },
        body: JSON.stringify({ instances: [[5.1, 3.5, 1.4, 0.2]] }),
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    proxy.restore();
    await waitFor(
      "migrated and logged",
      async () => {
        const { rows } = await freshPool
          .query<{ n: number }>("SELECT count(*)::int AS n FROM predictions WHERE request_id = ANY($1)", [ids])
          .catch(() => ({ rows: [{ n: -1 }] }));
        return rows[0]!.n === ids.length;
      },
      30_000,
      250,
    );
    await waitFor("ready again", async () => (await readiness(server.url)).status === "ok", 20_000, 250);
  } finally {
    await server.close();
    await freshPool.end();
    await proxy.close();
    await fresh.drop();
  }
});

test("Postgres unreachable: a key the API has not seen gets 503 with Retry-After over HTTP, not 401", async () => {
  const fresh = await freshDatabase();
  await migrate(fresh.url);
  const proxy = await new TcpProxy("127.0.0.1", Number(new URL(fresh.url).port)).start();
  const server: RunningServer = await startServer({
    port: 0,
    host: "127.0.0.1",
    modelsDir: MODELS,
    logger: silentLogger(),
    env: {
      DATABASE_URL: fresh.urlVia(proxy.port),
      AUTH_MODE: "required",
      RATE_LIMIT: "off",
      REDIS_URL: "",
      MODEL_WATCH: "false",
      PG_CONNECT_TIMEOUT_MS: "300",
      PREDICTION_LOG_SPILL_PATH: join(dir, "auth-outage.jsonl"),
    },
  });
  try {
    proxy.cut();
    const res = await fetch(`${server.url}/v1/models/iris-classifier:predict`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${generateKey().key}` },
      body: JSON.stringify({ instances: [[5.1, 3.5, 1.4, 0.2]] }),
    });
    const body = (await res.json()) as { error: string };
    assert.equal(res.status, 503, JSON.stringify(body));
    assert.match(res.headers.get("retry-after") ?? "", /^\d+$/);
    assert.equal(typeof body.error, "string");
  } finally {
    await server.close();
    await proxy.close();
    await fresh.drop();
  }
});
