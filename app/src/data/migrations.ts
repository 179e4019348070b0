import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import pg from "pg";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));

// Any constant shared by every replica; "inferstack" as two int4s keeps it readable in pg_locks.
const LOCK_KEY = [0x696e6665, 0x72737461] as const;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
  /** Applied in the database but unknown to this build (a rollback to older code). */
  newerInDatabase: string[];
}

/** Reads `NNNN_name.sql` files in version order; a gap or a duplicate version is an error. */
export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = /^(\d+)_([a-z0-9_]+)\.sql$/.exec(file);
    if (!match) throw new Error(`migration file '${file}' must be named NNNN_snake_name.sql`);
    const sql = await readFile(`${dir}/${file}`, "utf8");
    migrations.push({
      version: Number(match[1]),
      name: match[2]!,
      sql,
      checksum: createHash("sha256").update(sql).digest("hex"),
    });
  }
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new Error(`migration versions must be 1..n without gaps; found ${m.version} at position ${i + 1}`);
  });
  return migrations;
}

/**
 * Applies pending migrations, each in its own transaction, under a session advisory lock so that
 * replicas starting together apply each one exactly once. An applied file whose text has changed
 * is refused: ship a new migration instead.
 */
export async function migrate(
  connectionString: string,
  opts: { dir?: string; connectTimeoutMs?: number } = {},
): Promise<MigrationResult> {
  const migrations = await loadMigrations(opts.dir);
  const client = new pg.Client({
    connectionString,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    application_name: "inferstack-migrate",
  });
  client.on("error", () => {}); // surfaced by the failing query instead
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1, $2)", [...LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number; name: string; checksum: string }>(
      "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
    );
    const applied = new Map(rows.map((r) => [r.version, r]));
    const result: MigrationResult = { applied: [], alreadyApplied: 0, newerInDatabase: [] };
    for (const m of migrations) {
      const done = applied.get(m.version);
      if (done) {
        if (done.checksum !== m.checksum) {
          throw new Error(
            `migration ${m.version}_${m.name} was changed after it was applied (checksum differs); add a new migration instead`,
          );
        }
        result.alreadyApplied++;
        continue;
      }
      await client.query("BEGIN");
      try {
        await client.query(m.sql);
        await client.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [
          m.version,
          m.name,
          m.checksum,
        ]);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        throw new Error(`migration ${m.version}_${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      result.applied.push(`${m.version}_${m.name}`);
    }
    // A rolled-back build meets a newer schema: keep serving (migrations are additive), but say so.
    const known = new Set(migrations.map((m) => m.version));
    result.newerInDatabase = rows.filter((r) => !known.has(r.version)).map((r) => `${r.version}_${r.name}`);
    return result;
  } finally {
    await client.query("SELECT pg_advisory_unlock($1, $2)", [...LOCK_KEY]).catch(() => {});
    await client.end().catch(() => {});
  }
}
