/**
 * Dependencies that hang rather than refuse: Postgres and Redis behind a proxy that, when
 * partitioned, stops forwarding without closing anything (packets dropped, as in a network
 * partition), then delivers again. Predictions must keep flowing and every one must be logged once.
 */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type pg from "pg";
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
  type TestDatabase,
  waitFor,
} from "./support.ts";

const MODELS = new URL("../../../models/", import.meta.url).pathname;
const PARTITION_SECONDS = Number(process.env.TEST_PARTITION_SECONDS ?? 8);
const prefix = redisPrefix();
let db: TestDatabase;
let pool: pg.Pool;
let dir: string;

before(async () => {
  db = await freshDatabase();
  await migrate(db.url);
  pool = createPool(db.url, { logger: silentLogger(), max: 2, connectTimeoutMs: 1000, queryTimeoutMs: 5000 });
  dir = await mkdtemp(join(tmpdir(), "inferstack-partition-"));
});
after(async () => {
  await pool.end();
  await db.drop();
  await deleteRedisPrefix(prefix);
  await rm(dir, { recursive: true, force: true });
});

/**
 * A TCP proxy that can black-hole: while partitioned, bytes in either direction are held (nothing
 * is closed, nothing answered; new connections are accepted and left waiting), as when a network
 * drops packets. heal() delivers what was held, as TCP's retransmissions would.
 */
class BlackHoleProxy {
  readonly #server: net.Server;
  readonly #pairs = new Set<{ client: net.Socket; upstream?: net.Socket }>();
  #partitioned = false;
  readonly targetPort: number;
  port = 0;

  constructor(targetPort: number) {
    this.targetPort = targetPort;
    this.#server = net.createServer((client) => {
      const pair: { client: net.Socket; upstream?: net.Socket } = { client };
      this.#pairs.add(pair);
      const drop = () => {
        client.destroy();
        pair.upstream?.destroy();
        this.#pairs.delete(pair);
      };
      client.on("error", drop).on("close", drop);
      if (this.#partitioned) client.pause();
      else this.#connect(pair, drop);
    });
  }

  #connect(pair: { client: net.Socket; upstream?: net.Socket }, drop: () => void) {
    const upstream = net.connect(this.targetPort, "127.0.0.1");
    pair.upstream = upstream;
    upstream.on("error", drop).on("close", drop);
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this;
  }

  partition(): void {
    this.#partitioned = true;
    for (const { client, upstream } of this.#pairs) {
      if (!upstream) continue;
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  heal(): void {
    this.#partitioned = false;
    for (const pair of this.#pairs) {
      const drop = () => {
        pair.client.destroy();
        pair.upstream?.destroy();
        this.#pairs.delete(pair);
      };
      if (!pair.upstream) this.#connect(pair, drop);
      else {
        pair.client.pipe(pair.upstream);
        pair.upstream.pipe(pair.client);
      }
    }
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream?.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function load(url: string, workers = 6) {
  const requestIds: string[] = [];
  const failures: string[] = [];
  const latencies: number[] = [];
  let stopped = false;
  const worker = async () => {
    while (!stopped) {
      const requestId = `partition-${randomUUID()}`;
      const started = performance.now();
      try {
        const res = await fetch(`${url}/v1/models/iris-classifier:predict`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-request-id": requestId },
          body: JSON.stringify({ instances: [[5 + (requestIds.length % 7) / 10, 3.1, 1.4, 0.2]] }),
          signal: AbortSignal.timeout(10_000),
        });
        const body = await res.text();
        if (res.status === 200) requestIds.push(requestId);
        else failures.push(`${res.status} ${body}`);
      } catch (err) {
        failures.push(`fetch: ${(err as Error).message}`);
      }
      latencies.push(performance.now() - started);
      await sleep(10);
    }
  };
  const running = Promise.all(Array.from({ length: workers }, worker));
  return {
    requestIds,
    failures,
    latencies,
    async stop() {
      stopped = true;
      await running;
    },
  };
}

const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)] ?? 0;

test(`Postgres and Redis black-holed for ${PARTITION_SECONDS} s under load: 0 failed predictions, 0 lost log rows`, async () => {
  const pgProxy = await new BlackHoleProxy(Number(new URL(db.url).port || 5432)).start();
  const redisProxy = await new BlackHoleProxy(Number(new URL(REDIS_URL).port || 6379)).start();
  const server: RunningServer = await startServer({
    port: 0,
    host: "127.0.0.1",
    modelsDir: MODELS,
    logger: silentLogger(),
    env: {
      DATABASE_URL: db.urlVia(pgProxy.port),
      REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
      REDIS_KEY_PREFIX: prefix,
      AUTH_MODE: "off",
      RATE_LIMIT_PLANS: '{"load": 100000000}',
      RATE_LIMIT_ANON_PLAN: "load",
      MODEL_WATCH: "false",
      PREDICTION_LOG_QUEUE_MAX: "300",
      PREDICTION_LOG_SPILL_PATH: join(dir, "partition.jsonl"),
    },
  });
  try {
    const traffic = load(server.url);
    await served(traffic, 30, "before the partition");
    const before = traffic.latencies.length;
    pgProxy.partition();
    redisProxy.partition();
    await sleep(PARTITION_SECONDS * 1000);
    const during = traffic.latencies.slice(before);
    const servedDuring = traffic.requestIds.length;
    const metricsDuring = await (await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    pgProxy.heal();
    redisProxy.heal();
    await served(traffic, 30, "after the partition healed");
    await traffic.stop();
    const spilled = Number(/^inferstack_prediction_log_spilled_total (\d+)/m.exec(metricsDuring)?.[1] ?? 0);
    console.log(
      `# partition: ${traffic.requestIds.length} ok, ${traffic.failures.length} failed; ${during.length} requests during the partition, p99 ${p99(during).toFixed(0)} ms, max ${Math.max(...during).toFixed(0)} ms; ${spilled} log rows spilled by then`,
    );
    assert.deepEqual(traffic.failures.slice(0, 5), []);
    assert.ok(
      during.length > 100,
      `only ${during.length} requests during the partition (served by then: ${servedDuring})`,
    );
    assert.ok(spilled > 0, "the prediction log spilled during the partition");

    const ids = traffic.requestIds;
    let logged = 0;
    await waitFor(
      "every prediction logged",
      async () => {
        const { rows } = await pool.query<{ n: number }>(
          "SELECT count(DISTINCT request_id)::int AS n FROM predictions WHERE request_id = ANY($1)",
          [ids],
        );
        logged = rows[0]!.n;
        return logged === ids.length;
      },
      60_000,
      250,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${logged} of ${ids.length}`);
    });
    const { rows } = await pool.query<{ total: number }>(
      "SELECT count(*)::int AS total FROM predictions WHERE request_id = ANY($1)",
      [ids],
    );
    console.log(`# partition: ${ids.length} predictions, ${rows[0]!.total} rows, ${ids.length - logged} lost`);
    assert.equal(rows[0]!.total, ids.length, "exactly once");
  } finally {
    await server.close();
    await pgProxy.close();
    await redisProxy.close();
  }
});
