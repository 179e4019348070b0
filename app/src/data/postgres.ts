import pg from "pg";
import type { Logger } from "pino";
import type { DependencyProbe } from "../ports.ts";

export function createPool(
  connectionString: string,
  opts: {
    logger: Logger;
    max: number;
    connectTimeoutMs: number;
    queryTimeoutMs: number;
  },
): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: opts.max,
    connectionTimeoutMillis: opts.connectTimeoutMs,
    // Client-side: a query on a connection that silently died must not hang forever.
    query_timeout: opts.queryTimeoutMs,
    // Server-side too: a statement stuck on a lock ends there instead of holding a connection.
    statement_timeout: opts.queryTimeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: "inferstack-api",
    keepAlive: true,
  });
  // An idle client losing its server emits here; unhandled, it would crash the process.
  pool.on("error", (err) => opts.logger.warn({ err: err.message }, "postgres: idle connection lost"));
  return pool;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function postgresProbe(
  pool: pg.Pool,
  opts: { timeoutMs?: number; schemaReady?: () => boolean } = {},
): DependencyProbe {
  return {
    name: "postgres",
    async check() {
      try {
        await withTimeout(pool.query("SELECT 1"), opts.timeoutMs ?? 1000, "SELECT 1");
        if (opts.schemaReady && !opts.schemaReady())
          return { name: "postgres", ok: false, detail: "reachable; migrations not applied yet" };
        return { name: "postgres", ok: true };
      } catch (err) {
        return { name: "postgres", ok: false, detail: (err as Error).message };
      }
    },
  };
}

export { withTimeout };
