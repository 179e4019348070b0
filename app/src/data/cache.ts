import type { Redis } from "ioredis";
import type { CacheKey, ResponseCache } from "../ports.ts";

const LONG_INTEGER = /[0-9]{16}/;
const rawJSON = (JSON as unknown as { rawJSON?: (text: string) => unknown }).rawJSON;

function exactLongIntegers(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (
    typeof value === "number" &&
    !Number.isSafeInteger(value) &&
    rawJSON &&
    context?.source &&
    /^-?[0-9]+$/.test(context.source)
  )
    return rawJSON(context.source);
  return value;
}

/**
 * Prediction responses in Redis under `<prefix>cache:<model>:<version>:<inputHash>`: the version is
 * part of the key, so a new version never answers with an old version's result. Every failure
 * rejects quickly (the client has no offline queue); the API counts it and runs the model.
 */
export class RedisResponseCache implements ResponseCache {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, keyPrefix: string) {
    this.#redis = redis;
    this.#prefix = `${keyPrefix}cache:`;
  }

  key({ model, version, inputHash }: CacheKey): string {
    return `${this.#prefix}${encodeURIComponent(model)}:${encodeURIComponent(version)}:${inputHash}`;
  }

  async get(key: CacheKey): Promise<unknown | undefined> {
    const raw = await this.#redis.get(this.key(key));
    if (raw === null) return undefined;
    // 64-bit integer outputs beyond ±2^53 are stored as exact digits: keep them exact (a reviver
    // only when such a digit run is there, so ordinary bodies parse at full speed).
    return LONG_INTEGER.test(raw)
      ? JSON.parse(raw, exactLongIntegers as (k: string, v: unknown) => unknown)
      : JSON.parse(raw);
  }

  async set(key: CacheKey, value: unknown, ttlSeconds: number): Promise<void> {
    const ttl = Math.floor(ttlSeconds);
    if (!(ttl > 0) || value === undefined) return;
    await this.#redis.set(this.key(key), JSON.stringify(value), "EX", ttl);
  }
}
