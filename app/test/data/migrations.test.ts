import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFile, cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import pg from "pg";
import { loadMigrations, MIGRATIONS_DIR, migrate } from "../../src/data/migrations.ts";
import { freshDatabase, type TestDatabase } from "./support.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

function runMigrateScript(databaseUrl: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["scripts/migrate.ts"], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: databaseUrl },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

let db: TestDatabase;
before(async () => {
  db = await freshDatabase();
});
after(async () => {
  await db.drop();
});

test("migrations are numbered 1..n and load in order", async () => {
  const migrations = await loadMigrations();
  assert.ok(migrations.length >= 1);
  for (const [i, m] of migrations.entries()) assert.equal(m.version, i + 1);
});

test("two processes migrating one fresh database at once both succeed and apply each migration once", async () => {
  const concurrent = await freshDatabase();
  try {
    const [a, b] = await Promise.all([runMigrateScript(concurrent.url), runMigrateScript(concurrent.url)]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const count = (await loadMigrations()).length;
    // Exactly one of them applied everything; the other found it done.
    const applied = [a.stdout, b.stdout].map((out) => Number(/(\d+) applied,/.exec(out)?.[1]));
    assert.deepEqual(applied.sort(), [0, count]);
    const client = new pg.Client({ connectionString: concurrent.url });
    await client.connect();
    const { rows } = await client.query("SELECT version FROM schema_migrations ORDER BY version");
    await client.end();
    assert.deepEqual(
      rows.map((r) => r.version),
      Array.from({ length: count }, (_, i) => i + 1),
    );
  } finally {
    await concurrent.drop();
  }
});

test("migrate is idempotent and creates the tables and indexes the runbook relies on", async () => {
  const first = await migrate(db.url);
  const second = await migrate(db.url);
  assert.ok(first.applied.length >= 1);
  assert.deepEqual(second.applied, []);
  assert.equal(second.alreadyApplied, first.applied.length);
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const { rows } = await client.query<{ indexname: string }>(
    "SELECT indexname FROM pg_indexes WHERE tablename = 'predictions'",
  );
  await client.end();
  const names = rows.map((r) => r.indexname);
  for (const index of ["predictions_time_brin", "predictions_key_time_idx", "predictions_request_id_idx"]) {
    assert.ok(names.includes(index), `missing index ${index}`);
  }
});

test("an applied migration whose file changed is refused, naming it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "inferstack-migrations-"));
  try {
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    await appendFile(join(dir, "0001_initial.sql"), "\n-- edited after release\n");
    await assert.rejects(migrate(db.url, { dir }), /0001|1_initial.*changed/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the migrate script explains a missing DATABASE_URL", async () => {
  const result = await runMigrateScript("");
  assert.equal(result.code, 2);
  assert.match(result.stderr, /DATABASE_URL/);
});
