/** Data-plane guarantees that need real server processes: shared limits, SIGTERM with a full queue. */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type pg from "pg";
import { createKey } from "../../src/data/keys.ts";
import { migrate } from "../../src/data/migrations.ts";
import { createPool } from "../../src/data/postgres.ts";
import {
  deleteRedisPrefix,
  freshDatabase,
  REDIS_URL,
  redisPrefix,
  type ServerProcess,
  silentLogger,
  spawnServer,
  TcpProxy,
  type TestDatabase,
  waitFor,
} from "./support.ts";

const prefix = redisPrefix();
let db: TestDatabase;
let pool: pg.Pool;
let dir: string;
const servers: ServerProcess[] = [];

before(async () => {
  db = await freshDatabase();
  await migrate(db.url);
  pool = createPool(db.url, { logger: silentLogger(), max: 2, connectTimeoutMs: 1000, queryTimeoutMs: 3000 });
  dir = await mkdtemp(join(tmpdir(), "inferstack-proc-"));
});
after(async () => {
  await Promise.all(servers.map((s) => s.stop("SIGKILL")));
  await pool.end();
  await db.drop();
  await deleteRedisPrefix(prefix);
  await rm(dir, { recursive: true, force: true });
});

async function start(env: Record<string, string>): Promise<ServerProcess> {
  const server = await spawnServer({ REDIS_URL, REDIS_KEY_PREFIX: prefix, ...env });
  servers.push(server);
  return server;
}

function predict(url: string, key: string, requestId: string = randomUUID()) {
  return fetch(`${url}/v1/models/iris-classifier:predict`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}`, "x-request-id": requestId },
    body: JSON.stringify({ instances: [[5.0 + Math.random(), 3.0, 1.5, 0.2]] }),
  }).then(async (res) => {
    await res.arrayBuffer();
    return res.status;
  });
}

async function countRequests(requestIds: string[]): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ request_id: string; n: number }>(
    "SELECT request_id, count(*)::int AS n FROM predictions WHERE request_id = ANY($1) GROUP BY request_id",
    [requestIds],
  );
  return new Map(rows.map((r) => [r.request_id, r.n]));
}

test("two API processes sharing Redis allow exactly the plan's limit between them", async () => {
  const env = {
    DATABASE_URL: db.url,
    RATE_LIMIT_PLANS: '{"shared": {"limit": 25, "windowSeconds": 600}}',
    PREDICTION_LOG_SPILL_PATH: join(dir, "a.jsonl"),
  };
  const [a, b] = await Promise.all([start(env), start({ ...env, PREDICTION_LOG_SPILL_PATH: join(dir, "b.jsonl") })]);
  const { key } = await createKey(pool, "shared-limit", "shared");
  const statuses = await Promise.all(Array.from({ length: 80 }, (_, i) => predict(i % 2 ? a.url : b.url, key)));
  assert.equal(statuses.filter((s) => s === 200).length, 25);
  assert.equal(statuses.filter((s) => s === 429).length, 55);
  await Promise.all([a.stop(), b.stop()]);
});

test("SIGTERM with a full in-memory queue: the process writes it to Postgres before it exits", async () => {
  const server = await start({
    DATABASE_URL: db.url,
    PREDICTION_LOG_SPILL_PATH: join(dir, "sigterm-up.jsonl"),
    PREDICTION_LOG_FLUSH_MS: "600000",
    PREDICTION_LOG_BATCH_SIZE: "5000",
  });
  const { key } = await createKey(pool, "sigterm-up", "pro");
  const ids = Array.from({ length: 60 }, () => `up-${randomUUID()}`);
  const statuses = await Promise.all(ids.map((id) => predict(server.url, key, id)));
  assert.ok(statuses.every((s) => s === 200));
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(
    metrics,
    /^inferstack_prediction_log_queue_depth 60$/m,
    `the records are still queued: ${/^inferstack_prediction_log_queue_depth.*$/m.exec(metrics)}`,
  );
  assert.equal((await countRequests(ids)).size, 0);
  const exit = await server.stop("SIGTERM");
  assert.equal(exit.code, 0, server.output());
  const counts = await countRequests(ids);
  assert.equal(counts.size, 60);
  assert.ok([...counts.values()].every((n) => n === 1));
});

test("SIGTERM while Postgres is unreachable: the queue goes to the spill file, the next start replays it exactly once", async () => {
  const proxy = await new TcpProxy("127.0.0.1", Number(new URL(db.url).port)).start();
  const spill = join(dir, "sigterm-down.jsonl");
  try {
    const server = await start({
      DATABASE_URL: db.urlVia(proxy.port),
      PREDICTION_LOG_SPILL_PATH: spill,
      PREDICTION_LOG_CLOSE_TIMEOUT_MS: "1000",
      PG_CONNECT_TIMEOUT_MS: "500",
    });
    const { key } = await createKey(pool, "sigterm-down", "pro");
    const warm = `warm-${randomUUID()}`;
    assert.equal(await predict(server.url, key, warm), 200); // the key is now in the auth cache
    await waitFor("warm-up row", async () => (await countRequests([warm])).size === 1);
    proxy.cut();
    const ids = Array.from({ length: 40 }, () => `down-${randomUUID()}`);
    const statuses = await Promise.all(ids.map((id) => predict(server.url, key, id)));
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      "predictions keep flowing with Postgres down",
    );
    const exit = await server.stop("SIGTERM");
    assert.equal(exit.code, 0, server.output());
    const spilled = (await readFile(spill, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).requestId as string);
    assert.deepEqual(new Set(spilled), new Set(ids));
    assert.equal((await countRequests(ids)).size, 0);

    proxy.restore();
    const next = await start({ DATABASE_URL: db.url, PREDICTION_LOG_SPILL_PATH: spill });
    await waitFor("replay", async () => (await countRequests(ids)).size === ids.length, 30_000);
    const counts = await countRequests([...ids, warm]);
    assert.ok(
      [...counts.values()].every((n) => n === 1),
      "no duplicates",
    );
    await waitFor("spill file emptied", async () => (await readFile(spill, "utf8")).length === 0);
    await next.stop();
  } finally {
    await proxy.close();
  }
});
