/**
 * The API's whole configuration (HTTP, inference and data plane), read from the environment and
 * validated once at start by one schema. A bad value fails the start with a ConfigError naming the
 * variable; main.ts turns it into exit code 78 (EX_CONFIG).
 */
import proxyAddr from "proxy-addr";
import { z } from "zod";

/** Every boolean variable takes the same words, in any case. */
const BOOLEAN_WORDS: Record<string, boolean> = {
  true: true,
  false: false,
  "1": true,
  "0": false,
  yes: true,
  no: false,
  on: true,
  off: false,
};
const bool = z
  .string()
  .transform((v) => v.toLowerCase())
  .pipe(
    z.enum(Object.keys(BOOLEAN_WORDS) as [string, ...string[]], {
      error: "expected true/false, 1/0, yes/no or on/off",
    }),
  )
  .transform((v) => BOOLEAN_WORDS[v]!);
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const list = z
  .string()
  .default("")
  .transform((s) =>
    s
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean),
  );

/** A plan's limit: requests per window, or null for unlimited. */
export interface PlanLimit {
  limit: number | null;
  windowSeconds: number;
}

export const DEFAULT_PLANS: Readonly<Record<string, PlanLimit>> = {
  free: { limit: 100, windowSeconds: 3600 },
  basic: { limit: 1000, windowSeconds: 3600 },
  pro: { limit: 10000, windowSeconds: 3600 },
  enterprise: { limit: null, windowSeconds: 3600 },
};

const planName = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, "plan names are lower-case [a-z0-9_-], at most 32 chars");
const planLimit = z.union([
  z.number().int().positive(),
  z.null(),
  z
    .object({
      limit: z.number().int().positive().nullable(),
      windowSeconds: z
        .number()
        .int()
        .positive()
        .max(86400 * 31)
        .default(3600),
    })
    .strict(),
]);

export class ConfigError extends Error {
  override name = "ConfigError";
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
  if (!parsed.success) {
    throw new ConfigError(
      `RATE_LIMIT_PLANS: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`,
    );
  }
  for (const [name, value] of Object.entries(parsed.data)) {
    plans[name] =
      value === null || typeof value === "number"
        ? { limit: value, windowSeconds: 3600 }
        : { limit: value.limit, windowSeconds: value.windowSeconds };
  }
  return plans;
}

const EnvSchema = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default("0.0.0.0"),
  MODELS_DIR: z.string().min(1).default("models"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Whole-request budget; a request over it answers 503. */
  REQUEST_TIMEOUT_MS: int(100, 600_000).default(30_000),
  /** Graceful shutdown bound: in-flight requests get this long to finish after SIGTERM. */
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(25_000),
  BODY_LIMIT_BYTES: int(1024, 256 * 1024 * 1024).default(1024 * 1024),
  MAX_JSON_DEPTH: int(2, 1000).default(32),
  /** Comma-separated allowed origins; empty = no cross-origin access; `*` = any. */
  CORS_ORIGINS: list.pipe(z.array(z.union([z.literal("*"), z.url({ protocol: /^https?$/ })]))),
  CACHE_TTL_SECONDS: int(0, 86_400 * 30).default(60),
  MODEL_POLL_INTERVAL_MS: int(0, 3_600_000).default(5_000),
  MODEL_WATCH: bool.default(true),
  /** ONNX Runtime intra-op threads per session; 1 suits small models and one process per core. */
  ORT_INTRA_OP_THREADS: int(1, 64).default(1),
  /**
   * Server readiness (/health/ready, /v2/health/ready) when some models failed to load. relaxed:
   * ready while at least one model serves, so one broken model does not take a fleet out of its
   * load balancer; strict: ready only when every model serves every version its policy selects
   * (Triton's --strict-readiness=true).
   */
  READINESS: z.enum(["relaxed", "strict"]).default("relaxed"),
  /** Timeout of each dependency check on /health/ready. */
  READY_CHECK_TIMEOUT_MS: int(50, 30_000).default(1_000),
  /** Processes to run (node:cluster); 1 = this process serves. 0 = one per CPU the container may use (cpu.ts). */
  WEB_CONCURRENCY: int(0, 256).default(0),
  /**
   * Behind a reverse proxy: the client IP (per-IP rate limits, logs) is the address the outermost
   * trusted proxy saw, read from X-Forwarded-For counting from the right; entries further left are
   * whatever the client wrote and are never used.
   */
  TRUST_PROXY: bool.default(false),
  /**
   * Connections one process holds at once; more are closed on arrival. 0 = a quarter of the
   * process's share of the container memory limit at ~40 KiB each (10,000 without a limit).
   */
  MAX_CONNECTIONS: int(0, 1_000_000).default(0),
  /** Share of the container memory limit V8's heaps may take, split across WEB_CONCURRENCY workers. */
  HEAP_PERCENT_OF_MEMORY: int(10, 90).default(50),
  /** With TRUST_PROXY: how many proxies append to X-Forwarded-For in front of the API (Caddy, an ALB: 1). */
  TRUST_PROXY_HOPS: int(1, 16).default(1),
  /**
   * With TRUST_PROXY, instead of a hop count: the proxies' addresses or CIDRs, comma-separated
   * (also `loopback`, `linklocal`, `uniquelocal`); every trusted address is skipped from the right.
   */
  TRUST_PROXY_CIDRS: list.superRefine((entries, ctx) => {
    try {
      proxyAddr.compile(entries);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
    }
  }),
  /** Enables POST /v2/repository/models/<m>/load|unload (API key required when keys are on). */
  MODEL_CONTROL: bool.default(false),
  APP_VERSION: z.string().default(process.env.npm_package_version ?? "0.1.0"),

  // Data plane (docs/data-plane.md).
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: "must be a postgres:// or postgresql:// URL" }).optional(),
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: "must be a redis:// or rediss:// URL" }).optional(),
  /** Default: required when DATABASE_URL is set (API keys live in Postgres), else off. */
  AUTH_MODE: z.enum(["required", "off"]).optional(),
  AUTH_CACHE_TTL_SECONDS: int(0).default(30),
  AUTH_STALE_GRACE_SECONDS: int(0).default(3600),
  RATE_LIMIT_PLANS: z
    .string()
    .optional()
    .transform((json, ctx) => {
      try {
        return parsePlans(json);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message.replace(/^RATE_LIMIT_PLANS: /, "") });
        return z.NEVER;
      }
    }),
  /** Plan applied per client IP when auth is off. Default: free where Redis or Postgres is configured, else none. */
  RATE_LIMIT_ANON_PLAN: planName.optional(),
  RATE_LIMIT: bool.default(true),
  /** Traffic a busy subject's lease covers (data/rate-limit.ts); 0 counts every request in Redis. */
  RATE_LIMIT_LEASE_MS: int(0).default(100),
  RESPONSE_CACHE: bool.default(true),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_.-]*$/)
    .default("inferstack:"),
  REDIS_COMMAND_TIMEOUT_MS: int(1).default(250),
  PG_POOL_MAX: int(1).default(10),
  PG_CONNECT_TIMEOUT_MS: int(1).default(2000),
  PG_QUERY_TIMEOUT_MS: int(1).default(5000),
  MIGRATE_ON_START: bool.default(true),
  PREDICTION_LOG: bool.default(true),
  PREDICTION_LOG_SPILL_PATH: z.string().min(1).default("var/spill/predictions.jsonl"),
  PREDICTION_LOG_QUEUE_MAX: int(1).default(10000),
  // 2000 rows per COPY: at 10k rows/s, a quarter of the commits of 500 and ~15 % less Postgres CPU per row.
  PREDICTION_LOG_BATCH_SIZE: int(1, 5000).default(2000),
  PREDICTION_LOG_FLUSH_MS: int(1).default(250),
  PREDICTION_LOG_CLOSE_TIMEOUT_MS: int(1).default(5000),
  PREDICTION_RETENTION_DAYS: int(0).default(30),
  PREDICTION_RETENTION_INTERVAL_MINUTES: int(1).default(60),
});

/** Every variable the API reads (docs/api.md and docs/data-plane.md document each). */
export const ENVIRONMENT_VARIABLES: readonly string[] = Object.keys(EnvSchema.shape);

/** Issues about a combination of variables: their message names the values involved. */
const COMBINATION = "combination";

export const ConfigSchema = EnvSchema.transform((e, ctx) => {
  const AUTH_MODE = e.AUTH_MODE ?? (e.DATABASE_URL ? "required" : "off");
  if (AUTH_MODE === "required" && !e.DATABASE_URL) {
    ctx.addIssue({
      code: "custom",
      path: ["AUTH_MODE"],
      params: { [COMBINATION]: true },
      message: "'required' needs DATABASE_URL (API keys live in Postgres)",
    });
  }
  // Anonymous callers of a deployed stack (Redis or Postgres configured) get the free plan per IP;
  // `npm run dev` with no services stays unlimited unless asked.
  const RATE_LIMIT_ANON_PLAN = e.RATE_LIMIT_ANON_PLAN ?? (e.REDIS_URL || e.DATABASE_URL ? "free" : null);
  if (RATE_LIMIT_ANON_PLAN !== null && !(RATE_LIMIT_ANON_PLAN in e.RATE_LIMIT_PLANS)) {
    ctx.addIssue({
      code: "custom",
      path: ["RATE_LIMIT_ANON_PLAN"],
      params: { [COMBINATION]: true },
      message: `unknown plan '${RATE_LIMIT_ANON_PLAN}' (plans: ${Object.keys(e.RATE_LIMIT_PLANS).join(", ")})`,
    });
  }
  return { ...e, AUTH_MODE, RATE_LIMIT_ANON_PLAN };
});
export type AppConfig = z.output<typeof ConfigSchema>;

/** Values never echoed in an error: they may carry credentials. */
const SECRET_VALUES = new Set(["DATABASE_URL", "REDIS_URL"]);

export function loadConfig(env: Record<string, string | undefined>): AppConfig {
  // Empty strings mean "unset", as in docker-compose files that pass `VAR=`.
  const cleaned: Record<string, string> = {};
  for (const key of ENVIRONMENT_VARIABLES) {
    const v = env[key];
    if (v !== undefined && v !== "") cleaned[key] = v;
  }
  const parsed = ConfigSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const key = String(i.path[0] ?? "(environment)");
      const shown =
        (i.code === "custom" && i.params?.[COMBINATION]) || SECRET_VALUES.has(key) || cleaned[key] === undefined
          ? key
          : `${key}=${JSON.stringify(cleaned[key])}`;
      return `  ${shown}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  return parsed.data;
}
