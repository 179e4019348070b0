import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, test } from "node:test";
import type { Redis } from "ioredis";
import { Registry } from "prom-client";
import { ConfigError, loadConfig, parsePlans } from "../../src/data/config.ts";
import { createDataPlaneMetrics } from "../../src/data/metrics.ts";
import { PlanRateLimiter } from "../../src/data/rate-limit.ts";
import { connectRedis, createRedis } from "../../src/data/redis.ts";
import { deleteRedisPrefix, REDIS_URL, redisPrefix, silentLogger, TcpProxy, waitFor } from "./support.ts";

const prefix = redisPrefix();
after(() => deleteRedisPrefix(prefix));

async function limiterOn(
  url: string,
  plans = parsePlans('{"free": 7, "team": {"limit": 3, "windowSeconds": 60}}'),
  registry = new Registry(),
  leaseIdleMs?: number,
) {
  const redis = createRedis(url, { logger: silentLogger(), commandTimeoutMs: 250 });
  await connectRedis(redis);
  const limiter = new PlanRateLimiter({
    plans,
    redis,
    keyPrefix: prefix,
    metrics: createDataPlaneMetrics(registry),
    logger: silentLogger(),
    leaseIdleMs,
  });
  return { redis, limiter, registry };
}

/**
 * Redis commands that touch `subject`'s counter, seen through MONITOR (every replica's, on the real
 * server). A plain socket: ioredis's monitor() takes monitor lines that arrive together with
 * MONITOR's own +OK for replies while other clients are busy (as the other test files running in
 * parallel are), fails with "Command queue state error", and left this test's connections open.
 */
async function watchCounter(subject: string) {
  const url = new URL(REDIS_URL);
  const socket = connect(Number(url.port || 6379), url.hostname);
  const resp = (...args: string[]) =>
    `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
  const password = decodeURIComponent(url.password);
  if (password)
    socket.write(url.username ? resp("AUTH", decodeURIComponent(url.username), password) : resp("AUTH", password));
  socket.write(resp("MONITOR"));
  let okToGo = password ? 2 : 1; // AUTH's +OK, then MONITOR's
  let commands = 0;
  let buffered = "";
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf("\r\n"); end !== -1; end = buffered.indexOf("\r\n")) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (okToGo > 0) {
          if (line !== "+OK") reject(new Error(`MONITOR refused: ${line}`));
          else if (--okToGo === 0) resolve();
        } else if (line.includes(`:${subject}"`)) {
          commands++;
        }
      }
    });
  });
  return { commands: () => commands, stop: () => socket.destroy() };
}

const counted = async (redis: Redis, plan: string, subject: string) =>
  Number(await redis.get(`${prefix}rl:${plan}:${subject}`));

test("two instances sharing Redis allow exactly the plan's limit between them, then 429 data", async () => {
  const a = await limiterOn(REDIS_URL);
  const b = await limiterOn(REDIS_URL);
  try {
    const subject = `key-${Math.random()}`;
    const decisions = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).limiter.consume(subject, "free")),
    );
    assert.equal(decisions.filter((d) => d.allowed).length, 7);
    const denied = decisions.find((d) => !d.allowed)!;
    assert.equal(denied.limit, 7);
    assert.equal(denied.remaining, 0);
    assert.ok(denied.resetSeconds > 0 && denied.resetSeconds <= 3600);
    const counted =
      (await a.registry.getSingleMetricAsString("inferstack_rate_limited_total")) +
      (await b.registry.getSingleMetricAsString("inferstack_rate_limited_total"));
    const total = [...counted.matchAll(/plan="free"\} (\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
    assert.equal(total, 33);
    // Other subjects and plans have their own counters.
    assert.ok((await a.limiter.consume(`${subject}-other`, "free")).allowed);
    const team = await Promise.all(Array.from({ length: 5 }, () => b.limiter.consume(subject, "team")));
    assert.deepEqual(
      team.map((d) => d.allowed),
      [true, true, true, false, false],
    );
    assert.deepEqual(
      team
        .map((d) => d.remaining)
        .sort()
        .reverse(),
      [2, 1, 0, 0, 0],
    );
  } finally {
    a.redis.disconnect();
    b.redis.disconnect();
  }
});

test("a busy subject is served from leases: a fraction of the Redis round trips, never more than the limit", async () => {
  const plans = parsePlans('{"bulk": {"limit": 3000, "windowSeconds": 600}}');
  const subject = `busy-${Math.random()}`;
  const watch = await watchCounter(subject); // first: if it fails, nothing is left open
  const a = await limiterOn(REDIS_URL, plans);
  const b = await limiterOn(REDIS_URL, plans);
  try {
    let allowed = 0;
    let requests = 0;
    // One request at a time (no two in the same event-loop turn), 50 per replica in turn, until both
    // have asked for far more than the limit.
    for (let run = 0; run < 100; run++) {
      for (let i = 0; i < 50; i++) {
        const d = await (run % 2 ? a : b).limiter.consume(subject, "bulk");
        requests++;
        if (d.allowed) allowed++;
        assert.ok(d.remaining !== null && d.remaining >= 0 && d.remaining <= 3000);
      }
    }
    assert.equal(requests, 5000);
    assert.equal(allowed, 3000, "the replicas split the window's points exactly");
    assert.ok(watch.commands() > 0, "MONITOR saw the replicas' counter commands");
    assert.ok(watch.commands() < requests / 5, `${watch.commands()} Redis commands for ${requests} requests`);
  } finally {
    watch.stop();
    a.redis.disconnect();
    b.redis.disconnect();
  }
});

test("unused lease points go back to the shared count when idle and at close", async () => {
  const plans = parsePlans('{"bulk": {"limit": 100000, "windowSeconds": 600}}');
  const a = await limiterOn(REDIS_URL, plans, new Registry(), 100);
  const subject = `lease-${Math.random()}`;
  try {
    let allowed = 0;
    for (let burst = 0; burst < 20; burst++) {
      allowed += (await Promise.all(Array.from({ length: 50 }, () => a.limiter.consume(subject, "bulk")))).filter(
        (d) => d.allowed,
      ).length;
    }
    assert.equal(allowed, 1000);
    assert.ok((await counted(a.redis, "bulk", subject)) > allowed, "a lease is held beyond what was served");
    await waitFor("the idle lease to be returned", async () => (await counted(a.redis, "bulk", subject)) === allowed);

    for (let burst = 0; burst < 20; burst++)
      await Promise.all(Array.from({ length: 50 }, () => a.limiter.consume(subject, "bulk")));
    assert.ok((await counted(a.redis, "bulk", subject)) > 2000);
    await a.limiter.close();
    assert.equal(
      await counted(a.redis, "bulk", subject),
      2000,
      "close() hands the rest back, after the reservation in flight",
    );
  } finally {
    a.redis.disconnect();
  }
});

test("unlimited plans never touch the counters", async () => {
  const { redis, limiter } = await limiterOn(REDIS_URL);
  try {
    const decision = await limiter.consume("anyone", "enterprise");
    assert.deepEqual(decision, { allowed: true, limit: null, remaining: null, resetSeconds: 3600 });
  } finally {
    redis.disconnect();
  }
});

test("a key whose plan is not configured is limited as free", async () => {
  const { redis, limiter } = await limiterOn(REDIS_URL);
  try {
    const decision = await limiter.consume(`legacy-${Math.random()}`, "platinum");
    assert.equal(decision.limit, 7);
  } finally {
    redis.disconnect();
  }
});

test("Redis unreachable: limits fall back to per-process counting, the gauge says so, and it recovers", async () => {
  const proxy = await new TcpProxy("127.0.0.1", Number(new URL(REDIS_URL).port || 6379)).start();
  const { redis, limiter, registry } = await limiterOn(`redis://127.0.0.1:${proxy.port}`);
  try {
    const subject = `fallback-${Math.random()}`;
    assert.ok((await limiter.consume(subject, "free")).allowed);
    assert.match(await registry.getSingleMetricAsString("inferstack_rate_limiter_fallback"), / 0$/m);
    proxy.cut();
    await waitFor("the client to see Redis gone", () => redis.status !== "ready");
    const during = await Promise.all(Array.from({ length: 10 }, () => limiter.consume(subject, "free")));
    // The in-process limiter starts its own window: 7 allowed, then refused; nothing throws.
    assert.equal(during.filter((d) => d.allowed).length, 7);
    assert.match(await registry.getSingleMetricAsString("inferstack_rate_limiter_fallback"), / 1$/m);
    proxy.restore();
    await new Promise<void>((resolve) => redis.once("ready", () => resolve()));
    assert.match(await registry.getSingleMetricAsString("inferstack_rate_limiter_fallback"), / 0$/m);
    const back = await limiter.consume(subject, "free");
    assert.equal(back.remaining, 5, "Redis kept counting from before the outage");
  } finally {
    redis.disconnect();
    await proxy.close();
  }
});

test("plan configuration is validated and names what is wrong", () => {
  assert.deepEqual(parsePlans('{"free": 5}').free, { limit: 5, windowSeconds: 3600 });
  assert.equal(parsePlans('{"pro": null}').pro?.limit, null);
  assert.throws(
    () => parsePlans("{free: 5}"),
    (e: Error) => e instanceof ConfigError && /RATE_LIMIT_PLANS: not valid JSON/.test(e.message),
  );
  assert.throws(() => parsePlans('{"free": -1}'), /RATE_LIMIT_PLANS: free/);
  assert.throws(() => parsePlans('{"Free!": 1}'), /RATE_LIMIT_PLANS/);
  assert.throws(() => loadConfig({ AUTH_MODE: "required" }), /AUTH_MODE: 'required' needs DATABASE_URL/);
  assert.throws(() => loadConfig({ AUTH_MODE: "maybe" }), /AUTH_MODE/);
  assert.throws(() => loadConfig({ REDIS_URL: "http://x" }), /REDIS_URL/);
  assert.throws(
    () => loadConfig({ REDIS_URL: "redis://x", RATE_LIMIT_ANON_PLAN: "gold" }),
    /RATE_LIMIT_ANON_PLAN: unknown plan 'gold'/,
  );
  assert.throws(() => loadConfig({ PREDICTION_LOG_BATCH_SIZE: "lots" }), /PREDICTION_LOG_BATCH_SIZE/);
});

test("defaults: auth required iff DATABASE_URL; anonymous callers on free per IP once a service is configured", () => {
  const dev = loadConfig({});
  assert.equal(dev.authMode, "off");
  assert.equal(dev.anonPlan, null);
  const deployed = loadConfig({ DATABASE_URL: "postgres://u@h/db", REDIS_URL: "redis://h:6379" });
  assert.equal(deployed.authMode, "required");
  assert.equal(loadConfig({ REDIS_URL: "redis://h:6379" }).anonPlan, "free");
  assert.equal(loadConfig({ DATABASE_URL: "postgres://u@h/db", AUTH_MODE: "off" }).authMode, "off");
  assert.deepEqual(deployed.plans.free, { limit: 100, windowSeconds: 3600 });
  assert.deepEqual(deployed.plans.basic, { limit: 1000, windowSeconds: 3600 });
  assert.deepEqual(deployed.plans.pro, { limit: 10000, windowSeconds: 3600 });
  assert.equal(deployed.plans.enterprise?.limit, null);
});
