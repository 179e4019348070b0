/**
 * The API's configuration, read from the environment and validated once at start. A bad value
 * fails the start with a message naming the variable.
 */
import proxyAddr from "proxy-addr";
import { z } from "zod";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const ConfigSchema = z.object({
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
  CORS_ORIGINS: z
    .string()
    .default("")
    .transform((s) => s.split(",").map((o) => o.trim()).filter(Boolean))
    .pipe(z.array(z.union([z.literal("*"), z.url({ protocol: /^https?$/ })]))),
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
  /** Processes to run (node:cluster); 1 = this process serves. 0 = one per CPU. */
  WEB_CONCURRENCY: int(0, 256).default(1),
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
  TRUST_PROXY_CIDRS: z
    .string()
    .default("")
    .transform((s) => s.split(",").map((o) => o.trim()).filter(Boolean))
    .superRefine((list, ctx) => {
      try {
        proxyAddr.compile(list);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
      }
    }),
  /** Enables POST /v2/repository/models/<m>/load|unload (API key required when keys are on). */
  MODEL_CONTROL: bool.default(false),
  APP_VERSION: z.string().default(process.env.npm_package_version ?? "0.1.0"),
});
export type AppConfig = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined>): AppConfig {
  // Empty strings mean "unset", as in docker-compose files that pass `VAR=`.
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(ConfigSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== "") cleaned[key] = v;
  }
  const parsed = ConfigSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}=${JSON.stringify(cleaned[String(i.path[0])] ?? "")}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  return parsed.data;
}
