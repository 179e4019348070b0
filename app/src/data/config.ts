/**
 * The data plane's view of the one configuration (../config.ts): the same schema and ConfigError,
 * mapped to the names the data-plane modules use.
 */
import { type AppConfig, loadConfig as loadAppConfig, type PlanLimit } from "../config.ts";

export { ConfigError, DEFAULT_PLANS, type PlanLimit, parsePlans } from "../config.ts";

export interface DataPlaneConfig {
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  authMode: "required" | "off";
  authCacheTtlSeconds: number;
  authStaleGraceSeconds: number;
  plans: Record<string, PlanLimit>;
  /** Plan applied per client IP when auth is off; null means no limit at all. */
  anonPlan: string | null;
  rateLimitEnabled: boolean;
  /** Traffic a busy subject's lease covers (rate-limit.ts); 0 counts every request in Redis. */
  rateLimitLeaseMs: number;
  responseCacheEnabled: boolean;
  redisKeyPrefix: string;
  redisCommandTimeoutMs: number;
  pgPoolMax: number;
  pgConnectTimeoutMs: number;
  pgQueryTimeoutMs: number;
  migrateOnStart: boolean;
  predictionLogEnabled: boolean;
  spillPath: string;
  queueMax: number;
  batchSize: number;
  flushMs: number;
  closeTimeoutMs: number;
  retentionDays: number;
  retentionIntervalMinutes: number;
}

export function dataPlaneConfig(c: AppConfig): DataPlaneConfig {
  return {
    databaseUrl: c.DATABASE_URL,
    redisUrl: c.REDIS_URL,
    authMode: c.AUTH_MODE,
    authCacheTtlSeconds: c.AUTH_CACHE_TTL_SECONDS,
    authStaleGraceSeconds: c.AUTH_STALE_GRACE_SECONDS,
    plans: c.RATE_LIMIT_PLANS,
    anonPlan: c.RATE_LIMIT_ANON_PLAN,
    rateLimitEnabled: c.RATE_LIMIT,
    rateLimitLeaseMs: c.RATE_LIMIT_LEASE_MS,
    responseCacheEnabled: c.RESPONSE_CACHE,
    redisKeyPrefix: c.REDIS_KEY_PREFIX,
    redisCommandTimeoutMs: c.REDIS_COMMAND_TIMEOUT_MS,
    pgPoolMax: c.PG_POOL_MAX,
    pgConnectTimeoutMs: c.PG_CONNECT_TIMEOUT_MS,
    pgQueryTimeoutMs: c.PG_QUERY_TIMEOUT_MS,
    migrateOnStart: c.MIGRATE_ON_START,
    predictionLogEnabled: c.PREDICTION_LOG,
    spillPath: c.PREDICTION_LOG_SPILL_PATH,
    queueMax: c.PREDICTION_LOG_QUEUE_MAX,
    batchSize: c.PREDICTION_LOG_BATCH_SIZE,
    flushMs: c.PREDICTION_LOG_FLUSH_MS,
    closeTimeoutMs: c.PREDICTION_LOG_CLOSE_TIMEOUT_MS,
    retentionDays: c.PREDICTION_RETENTION_DAYS,
    retentionIntervalMinutes: c.PREDICTION_RETENTION_INTERVAL_MINUTES,
  };
}

/** Validates the whole environment (one schema, one error) and returns the data plane's part. */
export function loadConfig(env: Record<string, string | undefined>): DataPlaneConfig {
  return dataPlaneConfig(loadAppConfig(env));
}
