import type { Redis } from "ioredis";
import type pg from "pg";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { AppConfig } from "../config.ts";
import type { DataPlane, DependencyProbe } from "../ports.ts";
import { anonymousAuthenticator, PostgresAuthenticator, RevocationListener } from "./auth.ts";
import { RedisResponseCache } from "./cache.ts";
import { type DataPlaneConfig, dataPlaneConfig } from "./config.ts";
import { createDataPlaneMetrics } from "./metrics.ts";
import { migrate } from "./migrations.ts";
import { createPool, postgresProbe, withTimeout } from "./postgres.ts";
import { PostgresPredictionLog } from "./prediction-log/index.ts";
import { PlanRateLimiter } from "./rate-limit.ts";
import { connectRedis, createRedis } from "./redis.ts";
import { scheduleRetention } from "./retention.ts";
import { retryUntilStopped } from "./retry.ts";

export { ConfigError, loadConfig } from "./config.ts";

export interface DataPlaneDeps {
  /** The app instance's metrics registry: data-plane metrics register here. */
  registry: Registry;
  logger: Logger;
}

function redisProbe(redis: Redis): DependencyProbe {
  return {
    name: "redis",
    async check() {
      try {
        await withTimeout(redis.ping(), 1000, "PING");
        return { name: "redis", ok: true };
      } catch (err) {
        return { name: "redis", ok: false, detail: (err as Error).message };
      }
    },
  };
}

/** Applies migrations, retrying in the background while Postgres is unreachable. */
function migrateInBackground(
  config: DataPlaneConfig,
  logger: Logger,
  onDone: () => void,
): { stop: () => void; first: Promise<void> } {
  const stopped = new AbortController();
  let resolveFirst!: () => void;
  const first = new Promise<void>((resolve) => {
    resolveFirst = resolve;
  });
  void retryUntilStopped(
    async () => {
      try {
        const result = await migrate(config.databaseUrl!, { connectTimeoutMs: config.pgConnectTimeoutMs });
        if (result.applied.length) logger.info({ applied: result.applied }, "postgres: migrations applied");
        if (result.newerInDatabase.length)
          logger.warn({ newer: result.newerInDatabase }, "postgres: schema is newer than this build");
        onDone();
      } finally {
        resolveFirst();
      }
    },
    {
      minMs: 1000,
      maxMs: 30_000,
      signal: stopped.signal,
      unref: true,
      onFailedAttempt: (err, attempt) =>
        logger.warn({ err: err.message, attempt }, "postgres: migrations not applied yet; retrying"),
    },
  ).catch((err: Error) => {
    if (!stopped.signal.aborted) logger.error({ err: err.message }, "postgres: migrations failed; not retrying");
  });
  return { stop: () => stopped.abort(), first };
}

/**
 * Builds the data plane from the loaded configuration (docs/data-plane.md). Never fails because
 * Postgres or Redis is down: each part degrades and recovers on its own.
 */
export async function createDataPlane(
  appConfig: AppConfig,
  { registry, logger: parentLogger }: DataPlaneDeps,
): Promise<DataPlane> {
  const config = dataPlaneConfig(appConfig);
  const logger = parentLogger.child({ component: "data-plane" });
  const metrics = createDataPlaneMetrics(registry);
  const dataPlane: DataPlane = {};
  const closers: Array<() => Promise<void>> = [];
  const dependencies: DependencyProbe[] = [];

  let redis: Redis | undefined;
  if (config.redisUrl) {
    redis = createRedis(config.redisUrl, { logger, commandTimeoutMs: config.redisCommandTimeoutMs });
    const connected = await connectRedis(redis);
    if (!connected)
      logger.warn("redis unreachable at start; rate limits per process, no response cache, until it returns");
    dependencies.push(redisProbe(redis));
  }

  let pool: pg.Pool | undefined;
  let schemaReady = false;
  if (config.databaseUrl) {
    pool = createPool(config.databaseUrl, {
      logger,
      max: config.pgPoolMax,
      connectTimeoutMs: config.pgConnectTimeoutMs,
      queryTimeoutMs: config.pgQueryTimeoutMs,
    });
    const isSchemaReady = () => schemaReady;
    if (config.migrateOnStart) {
      const migrations = migrateInBackground(config, logger, () => {
        schemaReady = true;
      });
      await migrations.first; // one attempt before serving; later ones in the background
      closers.push(async () => migrations.stop());
    } else {
      schemaReady = true;
    }
    dependencies.push(postgresProbe(pool, { schemaReady: isSchemaReady }));

    if (config.predictionLogEnabled) {
      const log = new PostgresPredictionLog({
        pool,
        logger,
        metrics,
        spillPath: config.spillPath,
        queueMax: config.queueMax,
        batchSize: config.batchSize,
        flushMs: config.flushMs,
        closeTimeoutMs: config.closeTimeoutMs,
        writeTimeoutMs: config.pgQueryTimeoutMs,
        schemaReady: isSchemaReady,
      });
      await log.start();
      dataPlane.predictionLog = log;
      closers.push(() => log.close());
    }
    if (config.retentionDays > 0) {
      const stop = scheduleRetention(pool, {
        days: config.retentionDays,
        intervalMinutes: config.retentionIntervalMinutes,
        logger,
        schemaReady: isSchemaReady,
      });
      closers.push(async () => stop());
    }
  }

  if (config.authMode === "required") {
    const auth = new PostgresAuthenticator({
      pool: pool!,
      logger,
      metrics,
      cacheTtlMs: config.authCacheTtlSeconds * 1000,
      staleGraceMs: config.authStaleGraceSeconds * 1000,
    });
    dataPlane.auth = auth;
    const revocations = new RevocationListener(config.databaseUrl!, auth, logger);
    await revocations.start();
    closers.unshift(
      () => auth.close(),
      () => revocations.stop(),
    );
  } else if (config.anonPlan !== null) {
    dataPlane.auth = anonymousAuthenticator(config.anonPlan);
  }

  if (config.rateLimitEnabled && (config.authMode === "required" || config.anonPlan !== null)) {
    const limiter = new PlanRateLimiter({
      plans: config.plans,
      redis,
      keyPrefix: config.redisKeyPrefix,
      metrics,
      logger,
      leaseHorizonMs: config.rateLimitLeaseMs,
    });
    dataPlane.rateLimiter = limiter;
    closers.unshift(() => limiter.close());
  }
  if (redis && config.responseCacheEnabled) {
    dataPlane.cache = new RedisResponseCache(redis, config.redisKeyPrefix);
  }
  if (dependencies.length) dataPlane.dependencies = dependencies;

  logger.info(
    {
      auth: config.authMode,
      anonymousPlan: config.authMode === "off" ? config.anonPlan : undefined,
      rateLimits: dataPlane.rateLimiter ? (redis ? "redis" : "per-process") : "off",
      cache: dataPlane.cache ? "redis" : "off",
      predictionLog: dataPlane.predictionLog ? config.spillPath : "off",
    },
    "data plane ready",
  );

  let closing: Promise<void> | undefined;
  dataPlane.close = () => {
    closing ??= (async () => {
      for (const close of closers) {
        try {
          await close();
        } catch (err) {
          logger.error({ err: (err as Error).message }, "data plane: error while closing");
        }
      }
      if (pool) await withTimeout(pool.end(), 5000, "postgres pool end").catch(() => {});
      if (redis) redis.disconnect();
    })();
    return closing;
  };
  return dataPlane;
}
