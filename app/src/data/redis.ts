import { Redis } from "ioredis";
import type { Logger } from "pino";

/**
 * A Redis client tuned to fail fast: no offline queue (commands while disconnected reject at once),
 * short connect and command timeouts, and endless background reconnects. Callers treat a rejection
 * as "Redis is down" and degrade.
 */
export function createRedis(url: string, opts: { logger: Logger; commandTimeoutMs: number }): Redis {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    connectTimeout: 1000,
    commandTimeout: opts.commandTimeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000),
    connectionName: "inferstack-api",
  });
  let down = false;
  redis.on("error", (err: Error) => {
    if (!down) opts.logger.warn({ err: err.message }, "redis unreachable; serving without it");
    down = true;
  });
  redis.on("ready", () => {
    if (down) opts.logger.info("redis reachable again");
    down = false;
  });
  return redis;
}

/** Connects, waiting at most `timeoutMs`; a Redis that is down at start must not block the API. */
export async function connectRedis(redis: Redis, timeoutMs = 1500): Promise<boolean> {
  const connected = redis.connect().then(() => true, () => false);
  const timeout = new Promise<boolean>((resolve) => setTimeout(resolve, timeoutMs, false).unref());
  return Promise.race([connected, timeout]);
}
