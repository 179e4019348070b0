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
  // A partition drops packets without closing the socket: every command would wait out its
  // timeout on a connection that looks ready. A PING that times out drops the connection, so
  // commands fail at once (no offline queue) while ioredis reconnects in the background.
  const watchdog = setInterval(() => {
    if (redis.status !== "ready") return;
    redis.ping().catch((err: Error) => {
      if (redis.status !== "ready" || !/timed out/i.test(err.message)) return;
      opts.logger.warn({ err: err.message }, "redis not answering; reconnecting");
      down = true;
      redis.disconnect(true);
    });
  }, REDIS_WATCHDOG_MS);
  watchdog.unref();
  redis.once("end", () => clearInterval(watchdog));
  return redis;
}

const REDIS_WATCHDOG_MS = 500;

/** Connects, waiting at most `timeoutMs`; a Redis that is down at start must not block the API. */
export async function connectRedis(redis: Redis, timeoutMs = 1500): Promise<boolean> {
  const connected = redis.connect().then(
    () => true,
    () => false,
  );
  const timeout = new Promise<boolean>((resolve) => setTimeout(resolve, timeoutMs, false).unref());
  return Promise.race([connected, timeout]);
}
