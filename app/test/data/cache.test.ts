import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Redis } from "ioredis";
import { RedisResponseCache } from "../../src/data/cache.ts";
import { connectRedis, createRedis } from "../../src/data/redis.ts";
import { deleteRedisPrefix, REDIS_URL, redisPrefix, silentLogger } from "./support.ts";

const prefix = redisPrefix();
after(() => deleteRedisPrefix(prefix));

const key = (version: string, inputHash = "a".repeat(64)) => ({ model: "iris-classifier", version, inputHash });

test("miss, then hit after set, under prefix:cache:model:version:inputHash with the TTL asked for", async () => {
  const redis = createRedis(REDIS_URL, { logger: silentLogger(), commandTimeoutMs: 250 });
  await connectRedis(redis);
  const inspect = new Redis(REDIS_URL);
  try {
    const cache = new RedisResponseCache(redis, prefix);
    assert.equal(await cache.get(key("1")), undefined);
    const answer = { predictions: [[0.1, 0.7, 0.2]], model_version: "1" };
    await cache.set(key("1"), answer, 30);
    assert.deepEqual(await cache.get(key("1")), answer);
    const redisKey = `${prefix}cache:iris-classifier:1:${"a".repeat(64)}`;
    assert.equal(cache.key(key("1")), redisKey);
    const ttl = await inspect.ttl(redisKey);
    assert.ok(ttl > 0 && ttl <= 30, `ttl ${ttl}`);
  } finally {
    redis.disconnect();
    inspect.disconnect();
  }
});

test("a new version never gets an old version's answer; other inputs miss", async () => {
  const redis = createRedis(REDIS_URL, { logger: silentLogger(), commandTimeoutMs: 250 });
  await connectRedis(redis);
  try {
    const cache = new RedisResponseCache(redis, prefix);
    await cache.set(key("1"), { predictions: ["v1"] }, 60);
    assert.equal(await cache.get(key("2")), undefined);
    await cache.set(key("2"), { predictions: ["v2"] }, 60);
    assert.deepEqual(await cache.get(key("1")), { predictions: ["v1"] });
    assert.deepEqual(await cache.get(key("2")), { predictions: ["v2"] });
    assert.equal(await cache.get(key("1", "b".repeat(64))), undefined);
    // Names with ':' cannot collide with another model's keys.
    assert.notEqual(
      cache.key({ model: "a:1", version: "2", inputHash: "h" }),
      cache.key({ model: "a", version: "1:2", inputHash: "h" }),
    );
  } finally {
    redis.disconnect();
  }
});

test("a zero or negative TTL stores nothing", async () => {
  const redis = createRedis(REDIS_URL, { logger: silentLogger(), commandTimeoutMs: 250 });
  await connectRedis(redis);
  try {
    const cache = new RedisResponseCache(redis, prefix);
    await cache.set(key("3"), { predictions: [1] }, 0);
    assert.equal(await cache.get(key("3")), undefined);
  } finally {
    redis.disconnect();
  }
});

test("Redis down: get and set reject at once (no offline queue), so the API goes straight to the model", async () => {
  // A port nothing listens on.
  const redis = createRedis("redis://127.0.0.1:1", { logger: silentLogger(), commandTimeoutMs: 250 });
  await connectRedis(redis, 300);
  try {
    const cache = new RedisResponseCache(redis, prefix);
    await assert.rejects(cache.get(key("1")));
    await assert.rejects(cache.set(key("1"), { x: 1 }, 10));
  } finally {
    redis.disconnect();
  }
});

test("64-bit integers beyond ±2^53 come back from Redis as the exact digits they were stored with", async () => {
  const redis = createRedis(REDIS_URL, { logger: silentLogger(), commandTimeoutMs: 250 });
  await connectRedis(redis);
  try {
    const cache = new RedisResponseCache(redis, prefix);
    const exact = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON("18446744073709551615");
    await cache.set(key("4"), { outputs: [{ datatype: "UINT64", data: [exact, 3, 0.5] }] }, 30);
    assert.equal(
      JSON.stringify(await cache.get(key("4"))),
      '{"outputs":[{"datatype":"UINT64","data":[18446744073709551615,3,0.5]}]}',
    );
  } finally {
    redis.disconnect();
  }
});
