/** The data plane behind the real HTTP API (in-process server, real Postgres, Redis and ONNX Runtime). */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type pg from "pg";
import { createKey, revokeKey } from "../../src/data/keys.ts";
import { migrate } from "../../src/data/migrations.ts";
import { createPool } from "../../src/data/postgres.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import {
  deleteRedisPrefix,
  freshDatabase,
  REDIS_URL,
  redisPrefix,
  silentLogger,
  type TestDatabase,
  waitFor,
} from "./support.ts";

const MODELS = new URL("../../../models/", import.meta.url).pathname;
const prefix = redisPrefix();
let db: TestDatabase;
let pool: pg.Pool;
let dir: string;
let server: RunningServer;
let proKey: string;
let proKeyId: string;
let tinyKey: string;

before(async () => {
  db = await freshDatabase();
  await migrate(db.url);
  pool = createPool(db.url, { logger: silentLogger(), max: 2, connectTimeoutMs: 1000, queryTimeoutMs: 3000 });
  dir = await mkdtemp(join(tmpdir(), "inferstack-http-"));
  await cp(join(MODELS, "iris-classifier"), join(dir, "models", "iris-classifier"), { recursive: true });
  const pro = await createKey(pool, "pro-caller", "pro");
  proKey = pro.key;
  proKeyId = pro.row.id;
  tinyKey = (await createKey(pool, "tiny-caller", "tiny")).key;
  server = await startServer({
    port: 0,
    host: "127.0.0.1",
    modelsDir: join(dir, "models"),
    logger: silentLogger(),
    env: {
      DATABASE_URL: db.url,
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      AUTH_CACHE_TTL_SECONDS: "0",
      RATE_LIMIT_PLANS: '{"tiny": {"limit": 3, "windowSeconds": 600}}',
      PREDICTION_LOG_SPILL_PATH: join(dir, "spill.jsonl"),
      PREDICTION_LOG_FLUSH_MS: "50",
      MODEL_WATCH: "false",
    },
  });
});
after(async () => {
  await server?.close();
  await pool.end();
  await db.drop();
  await deleteRedisPrefix(prefix);
  await rm(dir, { recursive: true, force: true });
});

type Body = { error: string; predictions: unknown[] };
const json = async (res: Response) => (await res.json()) as Body;

const IRIS = { instances: [[5.1, 3.5, 1.4, 0.2]] };
function predict(headers: Record<string, string>, body: unknown = IRIS) {
  return fetch(`${server.url}/v1/models/iris-classifier:predict`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

test("probes, metrics and the API description stay open without a key", async () => {
  for (const path of ["/health/live", "/health/ready", "/metrics", "/openapi.json"]) {
    const res = await fetch(`${server.url}${path}`);
    assert.equal(res.status, 200, path);
    await res.arrayBuffer();
  }
});

test("predictions need a valid key: missing and unknown get 401 JSON, Bearer and X-API-Key work", async () => {
  const missing = await predict({});
  assert.equal(missing.status, 401);
  assert.match((await json(missing)).error, /missing API key/);
  const unknown = await predict({ authorization: "Bearer isk_0000000000000000000000000000000000000000000000" });
  assert.equal(unknown.status, 401);
  await unknown.arrayBuffer();
  const viaBearer = await predict({ authorization: `Bearer ${proKey}` });
  assert.equal(viaBearer.status, 200);
  assert.ok(Array.isArray((await json(viaBearer)).predictions));
  const viaHeader = await predict({ "x-api-key": proKey });
  assert.equal(viaHeader.status, 200);
  assert.equal(viaHeader.headers.get("ratelimit-limit"), "10000");
  await viaHeader.arrayBuffer();
});

test("a plan's limit answers 429 with Retry-After and RateLimit headers", async () => {
  const statuses: number[] = [];
  let last: Response | undefined;
  for (let i = 0; i < 5; i++) {
    last = await predict({ authorization: `Bearer ${tinyKey}` });
    statuses.push(last.status);
    if (i < 4) await last.arrayBuffer();
  }
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  assert.equal(last!.headers.get("ratelimit-limit"), "3");
  assert.equal(last!.headers.get("ratelimit-remaining"), "0");
  const retryAfter = Number(last!.headers.get("retry-after"));
  assert.ok(retryAfter > 0 && retryAfter <= 600, `retry-after ${retryAfter}`);
  assert.match((await json(last!)).error, /rate limit/);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /inferstack_rate_limited_total\{plan="tiny"\} 2/);
});

test("cache: miss then hit, no-cache bypasses, and a new version never gets the old version's answer", async () => {
  const body = { instances: [[6.3, 2.9, 5.6, 1.8]] };
  const auth = { authorization: `Bearer ${proKey}` };
  const first = await predict(auth, body);
  assert.equal(first.headers.get("x-cache"), "miss");
  const firstBody = await first.json();
  const second = await waitFor("cached answer", async () => {
    const res = await predict(auth, body);
    return res.headers.get("x-cache") === "hit" ? res : void (await res.arrayBuffer());
  });
  assert.deepEqual(await second.json(), firstBody);
  const bypass = await predict({ ...auth, "cache-control": "no-cache" }, body);
  assert.equal(bypass.headers.get("x-cache"), "miss");
  await bypass.arrayBuffer();

  await cp(join(dir, "models", "iris-classifier", "1"), join(dir, "models", "iris-classifier", "2"), {
    recursive: true,
  });
  await server.reload();
  const afterUpgrade = await predict(auth, body);
  assert.equal(afterUpgrade.status, 200);
  assert.equal(afterUpgrade.headers.get("x-cache"), "miss", "version 2 must not be served version 1's cached answer");
  await afterUpgrade.arrayBuffer();
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /inferstack_cache_requests_total\{model="iris-classifier",result="hit"\} [1-9]/);
  assert.match(metrics, /inferstack_cache_requests_total\{model="iris-classifier",result="bypass"\} 1/);
});

test("every served prediction lands in Postgres with its request id and key id", async () => {
  const requestId = `req-${randomUUID()}`;
  const res = await predict({ authorization: `Bearer ${proKey}`, "x-request-id": requestId });
  assert.equal(res.status, 200);
  const served = await res.json();
  const row = await waitFor(
    "logged row",
    async () => (await pool.query("SELECT * FROM predictions WHERE request_id = $1", [requestId])).rows[0],
  );
  assert.equal(row.key_id, proKeyId);
  assert.equal(row.model, "iris-classifier");
  assert.deepEqual(row.outputs, served);
  assert.equal(typeof row.input_hash, "string");
  assert.ok(row.latency_ms >= 0);
  assert.notEqual(row.id, requestId, "a client's request id is not an idempotency key");
  assert.deepEqual(row.inputs, IRIS.instances, "the inputs as the client sent them");
  // Without X-Request-Id the API makes a fresh UUIDv7, which the row reuses as its id.
  const own = await predict({ authorization: `Bearer ${proKey}` });
  assert.equal(own.status, 200);
  const ownId = own.headers.get("x-request-id")!;
  await own.arrayBuffer();
  const ownRow = await waitFor(
    "logged row",
    async () => (await pool.query("SELECT id, request_id FROM predictions WHERE request_id = $1", [ownId])).rows[0],
  );
  assert.equal(ownRow.id, ownId);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  for (const name of [
    "inferstack_prediction_log_queue_depth",
    "inferstack_prediction_log_written_total",
    "inferstack_prediction_log_spilled_total",
    "inferstack_prediction_log_replayed_total",
    "inferstack_prediction_log_spill_bytes",
    "inferstack_auth_failures_total",
    "inferstack_rate_limiter_fallback",
  ]) {
    assert.match(metrics, new RegExp(`^${name}`, "m"), name);
  }
});

test("the log keeps the client's own text of the inputs: pretty-printed bodies, extra members", async () => {
  const pretty = await fetch(`${server.url}/v1/models/iris-classifier:predict`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${proKey}` },
    body: '{\r\n\t"instances" :\n\t[ [ 5.1 , 3.5, 1.40, 0.2 ] ]\n}\n',
  });
  assert.equal(pretty.status, 200);
  const prettyId = pretty.headers.get("x-request-id")!;
  await pretty.arrayBuffer();
  const row = await waitFor(
    "logged row",
    async () =>
      (await pool.query("SELECT inputs::text AS text FROM predictions WHERE request_id = $1", [prettyId])).rows[0],
  );
  assert.equal(row.text, "[[5.1, 3.5, 1.40, 0.2]]", "jsonb keeps the numbers as sent");
  // Another member besides the inputs: the parsed inputs are logged instead.
  const withExtra = await predict({ authorization: `Bearer ${proKey}` }, { ...IRIS, parameters: {} });
  assert.equal(withExtra.status, 200);
  const extraId = withExtra.headers.get("x-request-id")!;
  await withExtra.arrayBuffer();
  const extra = await waitFor(
    "logged row",
    async () => (await pool.query("SELECT inputs FROM predictions WHERE request_id = $1", [extraId])).rows[0],
  );
  assert.deepEqual(extra.inputs, IRIS.instances);
});

test("a revoked key is refused on the next request; keys never appear unmasked in the metrics", async () => {
  const { key, row } = await createKey(pool, "short-lived", "basic");
  const ok = await predict({ authorization: `Bearer ${key}` });
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
  await revokeKey(pool, row.id);
  const refused = await predict({ authorization: `Bearer ${key}` });
  assert.equal(refused.status, 401);
  assert.match((await json(refused)).error, /revoked/);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.ok(!metrics.includes(key.slice(12)));
});
