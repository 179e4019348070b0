/**
 * `npm run migrate`: applies app/migrations/*.sql to DATABASE_URL under an advisory lock (safe to
 * run while replicas start). `--status` lists applied and pending migrations without applying.
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { loadMigrations, migrate } from "../app/src/data/migrations.ts";

const { values } = parseArgs({
  options: { status: { type: "boolean", default: false }, help: { type: "boolean", short: "h" } },
});
if (values.help) {
  console.log("usage: npm run migrate [-- --status]\n  DATABASE_URL=postgres://user@host:5432/db (required)");
  process.exit(0);
}
const url = process.env.DATABASE_URL;
if (!url) {
  console.error("DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/inferstack)");
  process.exit(2);
}

try {
  if (values.status) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const applied = await client
      .query<{ version: number }>("SELECT version FROM schema_migrations")
      .catch(() => ({ rows: [] }));
    await client.end();
    const done = new Set(applied.rows.map((r) => r.version));
    for (const m of await loadMigrations())
      console.log(`${done.has(m.version) ? "applied" : "pending"}  ${String(m.version).padStart(4, "0")}_${m.name}`);
  } else {
    const result = await migrate(url);
    for (const name of result.applied) console.log(`applied ${name}`);
    console.log(`${result.applied.length} applied, ${result.alreadyApplied} already applied`);
    if (result.newerInDatabase.length)
      console.warn(`warning: database has newer migrations: ${result.newerInDatabase.join(", ")}`);
  }
} catch (err) {
  console.error(`migrate: ${(err as Error).message}`);
  process.exit(1);
}
