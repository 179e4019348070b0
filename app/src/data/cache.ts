import type { Redis } from "ioredis";
import type { CacheKey, ResponseCache } from "../ports.ts";

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
    return raw === null ? undefined : JSON.parse(raw);
  }

  async set(key: CacheKey, value: unknown, ttlSeconds: number): Promise<void> {
    const ttl = Math.floor(ttlSeconds);
    if (!(ttl > 0) || value === undefined) return;
    await this.#redis.set(this.key(key), JSON.stringify(value), "EX", ttl);
  }
}
