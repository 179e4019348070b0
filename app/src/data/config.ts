import { z } from "zod";

/** A plan's limit: requests per window, or null for unlimited. */
export interface PlanLimit {
  limit: number | null;
  windowSeconds: number;
}

export const DEFAULT_PLANS: Record<string, PlanLimit> = {
  free: { limit: 100, windowSeconds: 3600 },
  basic: { limit: 1000, windowSeconds: 3600 },
  pro: { limit: 10000, windowSeconds: 3600 },
  enterprise: { limit: null, windowSeconds: 3600 },
};

const planName = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, "plan names are lower-case [a-z0-9_-], at most 32 chars");
const planLimit = z.union([
  z.number().int().positive(),
  z.null(),
  z.object({
    limit: z.number().int().positive().nullable(),
    windowSeconds: z.number().int().positive().max(86400 * 31).default(3600),
  }).strict(),
]);

const positiveInt = (fallback: number) =>
  z.coerce.number().int().positive().default(fallback);
const nonNegativeInt = (fallback: number) =>
  z.coerce.number().int().nonnegative().default(fallback);
const onOff = (fallback: boolean) =>
  z.enum(["on", "off", "true", "false", "1", "0"]).optional()
    .transform((v) => (v === undefined ? fallback : ["on", "true", "1"].includes(v)));
const emptyToUndefined = (v: unknown) => (v === "" ? undefined : v);

const envSchema = z.object({
  DATABASE_URL: z.preprocess(emptyToUndefined, z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL").optional()),
  REDIS_URL: z.preprocess(emptyToUndefined, z.string().regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL").optional()),
  AUTH_MODE: z.preprocess(emptyToUndefined, z.enum(["required", "off"]).optional()),
  AUTH_CACHE_TTL_SECONDS: nonNegativeInt(30),
  AUTH_STALE_GRACE_SECONDS: nonNegativeInt(3600),
  RATE_LIMIT_PLANS: z.preprocess(emptyToUndefined, z.string().optional()),
  RATE_LIMIT_ANON_PLAN: z.preprocess(emptyToUndefined, planName.optional()),
  RATE_LIMIT: onOff(true),
  RATE_LIMIT_LEASE_MS: nonNegativeInt(100),
  RESPONSE_CACHE: onOff(true),
  REDIS_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9:_.-]*$/).default("inferstack:"),
  REDIS_COMMAND_TIMEOUT_MS: positiveInt(250),
  PG_POOL_MAX: positiveInt(10),
  PG_CONNECT_TIMEOUT_MS: positiveInt(2000),
  PG_QUERY_TIMEOUT_MS: positiveInt(5000),
  MIGRATE_ON_START: onOff(true),
  PREDICTION_LOG: onOff(true),
  PREDICTION_LOG_SPILL_PATH: z.string().min(1).default("var/spill/predictions.jsonl"),
  PREDICTION_LOG_QUEUE_MAX: positiveInt(10000),
  // 2000 rows per COPY: at 10k rows/s, a quarter of the commits of 500 and ~15 % less Postgres CPU per row.
  PREDICTION_LOG_BATCH_SIZE: z.coerce.number().int().positive().max(5000).default(2000),
  PREDICTION_LOG_FLUSH_MS: positiveInt(250),
  PREDICTION_LOG_CLOSE_TIMEOUT_MS: positiveInt(5000),
  PREDICTION_RETENTION_DAYS: nonNegativeInt(30),
  PREDICTION_RETENTION_INTERVAL_MINUTES: positiveInt(60),
});

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

export class ConfigError extends Error {
  override name = "ConfigError";
}

function describe(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
}

/** Parses `RATE_LIMIT_PLANS` (JSON: `{"free": 100, "team": {"limit": 5000, "windowSeconds": 3600}, "enterprise": null}`) over the defaults. */
export function parsePlans(json: string | undefined): Record<string, PlanLimit> {
  const plans: Record<string, PlanLimit> = { ...DEFAULT_PLANS };
  if (json === undefined) return plans;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new ConfigError(`RATE_LIMIT_PLANS: not valid JSON (${(err as Error).message})`);
  }
  const parsed = z.record(planName, planLimit).safeParse(raw);
  if (!parsed.success) throw new ConfigError(`RATE_LIMIT_PLANS: ${describe(parsed.error)}`);
  for (const [name, value] of Object.entries(parsed.data)) {
    plans[name] = value === null || typeof value === "number"
      ? { limit: value, windowSeconds: 3600 }
      : { limit: value.limit, windowSeconds: value.windowSeconds };
  }
  return plans;
}

export function loadConfig(env: NodeJS.ProcessEnv): DataPlaneConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`data plane environment: ${describe(parsed.error)}`);
  const e = parsed.data;
  const plans = parsePlans(e.RATE_LIMIT_PLANS);
  const authMode = e.AUTH_MODE ?? (e.DATABASE_URL ? "required" : "off");
  if (authMode === "required" && !e.DATABASE_URL) {
    throw new ConfigError("AUTH_MODE: 'required' needs DATABASE_URL (API keys live in Postgres)");
  }
  // Anonymous callers of a deployed stack (Redis or Postgres configured) get the free plan per IP;
  // `npm run dev` with no services stays unlimited unless asked.
  const anonPlan = e.RATE_LIMIT_ANON_PLAN ?? (e.REDIS_URL || e.DATABASE_URL ? "free" : null);
  if (anonPlan !== null && !(anonPlan in plans)) {
    throw new ConfigError(`RATE_LIMIT_ANON_PLAN: unknown plan '${anonPlan}' (plans: ${Object.keys(plans).join(", ")})`);
  }
  return {
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    authMode,
    authCacheTtlSeconds: e.AUTH_CACHE_TTL_SECONDS,
    authStaleGraceSeconds: e.AUTH_STALE_GRACE_SECONDS,
    plans,
    anonPlan,
    rateLimitEnabled: e.RATE_LIMIT,
    rateLimitLeaseMs: e.RATE_LIMIT_LEASE_MS,
    responseCacheEnabled: e.RESPONSE_CACHE,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    pgPoolMax: e.PG_POOL_MAX,
    pgConnectTimeoutMs: e.PG_CONNECT_TIMEOUT_MS,
    pgQueryTimeoutMs: e.PG_QUERY_TIMEOUT_MS,
    migrateOnStart: e.MIGRATE_ON_START,
    predictionLogEnabled: e.PREDICTION_LOG,
    spillPath: e.PREDICTION_LOG_SPILL_PATH,
    queueMax: e.PREDICTION_LOG_QUEUE_MAX,
    batchSize: e.PREDICTION_LOG_BATCH_SIZE,
    flushMs: e.PREDICTION_LOG_FLUSH_MS,
    closeTimeoutMs: e.PREDICTION_LOG_CLOSE_TIMEOUT_MS,
    retentionDays: e.PREDICTION_RETENTION_DAYS,
    retentionIntervalMinutes: e.PREDICTION_RETENTION_INTERVAL_MINUTES,
  };
}
