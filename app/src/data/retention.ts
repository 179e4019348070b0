import type pg from "pg";
import type { Logger } from "pino";

// Distinct from the migration lock: only one replica runs retention at a time.
const RETENTION_LOCK = [0x696e6665, 0x72657465] as const;

/**
 * Deletes predictions older than `days`, `batchSize` rows per statement so that no long
 * transaction holds locks or bloats WAL. Returns the number of rows deleted, or null when another
 * replica holds the retention lock.
 */
export async function deleteExpiredPredictions(
  pool: pg.Pool,
  days: number,
  opts: { batchSize?: number; pauseMs?: number } = {},
): Promise<number | null> {
  const batchSize = opts.batchSize ?? 5000;
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1, $2) AS locked", [
      ...RETENTION_LOCK,
    ]);
    if (!rows[0]?.locked) return null;
    try {
      let total = 0;
      for (;;) {
        const result = await client.query(
          `DELETE FROM predictions WHERE id IN (
             SELECT id FROM predictions WHERE time < now() - make_interval(days => $1) LIMIT $2)`,
          [days, batchSize],
        );
        total += result.rowCount ?? 0;
        if ((result.rowCount ?? 0) < batchSize) return total;
        if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
      }
    } finally {
      await client.query("SELECT pg_advisory_unlock($1, $2)", [...RETENTION_LOCK]).catch((err: Error) => {
        broken = err;
      });
    }
  } catch (err) {
    broken = err as Error;
    throw err;
  } finally {
    client.release(broken); // a connection that failed is discarded, not pooled
  }
}

/** Runs retention every `intervalMinutes` (first run a minute after start); returns a stop function. */
export function scheduleRetention(
  pool: pg.Pool,
  opts: { days: number; intervalMinutes: number; logger: Logger; schemaReady: () => boolean },
): () => void {
  let running = false;
  const tick = async () => {
    if (running || !opts.schemaReady()) return;
    running = true;
    try {
      const deleted = await deleteExpiredPredictions(pool, opts.days, { pauseMs: 100 });
      if (deleted) opts.logger.info({ deleted, days: opts.days }, "retention: old predictions deleted");
    } catch (err) {
      opts.logger.warn({ err: (err as Error).message }, "retention run failed; will retry next interval");
    } finally {
      running = false;
    }
  };
  const first = setTimeout(tick, 60_000);
  const every = setInterval(tick, opts.intervalMinutes * 60_000);
  first.unref();
  every.unref();
  return () => {
    clearTimeout(first);
    clearInterval(every);
  };
}
