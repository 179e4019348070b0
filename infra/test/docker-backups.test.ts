// Runs the backup job the backups container runs, for real: pg_dump against the machine's
// Postgres into a temp dir, restore, retention. Only the container around it is not exercised.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import pg from "pg";
import { renderBackupEntrypoint, renderBackupScript } from "../components/docker-backups.ts";

const admin = { host: "127.0.0.1", port: 5432, user: "postgres", database: "test" };
const db = `backup_${randomBytes(5).toString("hex")}`;
const restored = `${db}_restored`;
let dir: string;

async function sql(database: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ ...admin, database });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

function runJob(database: string, retentionDays = 7) {
  const script = renderBackupScript({
    postgresHost: "127.0.0.1",
    database,
    user: "postgres",
    retentionDays,
    backupDir: dir,
  });
  return spawnSync("sh", ["-c", script], { encoding: "utf8", env: { ...process.env, PGCONNECT_TIMEOUT: "5" } });
}

const dumps = () =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".dump"))
    .sort();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "inferstack-backups-"));
  await sql("test", `CREATE DATABASE ${db}`);
  await sql("test", `CREATE DATABASE ${restored}`);
  await sql(db, "CREATE TABLE predictions (id serial PRIMARY KEY, model text NOT NULL, output jsonb NOT NULL)");
  await sql(
    db,
    "INSERT INTO predictions (model, output) SELECT 'iris', jsonb_build_object('label', g % 3) FROM generate_series(1, 250) g",
  );
});

after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await sql("test", `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await sql("test", `DROP DATABASE IF EXISTS ${restored} WITH (FORCE)`);
});

test("a run writes a verified custom-format dump that restores every row", async () => {
  const run = runJob(db);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /backup ok: .*\.dump/);
  const files = dumps();
  assert.equal(files.length, 1);
  assert.match(files[0]!, new RegExp(`^${db}-\\d{8}T\\d{6}Z(-\\d+)?\\.dump$`));
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith(".partial")),
    [],
  );
  execFileSync("pg_restore", ["-h", "127.0.0.1", "-U", "postgres", "-d", restored, "--no-owner", join(dir, files[0]!)]);
  const count = await sql(
    restored,
    "SELECT count(*)::int AS n, count(DISTINCT output->>'label')::int AS labels FROM predictions",
  );
  assert.deepEqual(count.rows[0], { n: 250, labels: 3 });
});

test("dumps older than the retention are deleted, younger ones and other files kept", () => {
  const old = join(dir, `${db}-20200101T030000Z.dump`);
  const recent = join(dir, `${db}-20200102T030000Z.dump`);
  const unrelated = join(dir, "notes.txt");
  for (const f of [old, recent, unrelated]) writeFileSync(f, "x");
  const day = 86_400;
  const now = Date.now() / 1000;
  utimesSync(old, now - 8 * day, now - 8 * day);
  utimesSync(recent, now - 3 * day, now - 3 * day);
  utimesSync(unrelated, now - 30 * day, now - 30 * day);
  const run = runJob(db, 7);
  assert.equal(run.status, 0, run.stderr);
  const left = readdirSync(dir);
  assert.ok(!left.includes(`${db}-20200101T030000Z.dump`), "8-day-old dump pruned");
  assert.ok(left.includes(`${db}-20200102T030000Z.dump`), "3-day-old dump kept");
  assert.ok(left.includes("notes.txt"), "files that are not dumps are never touched");
  assert.equal(dumps().length, 3);
});

test("two runs in the same second keep both dumps", () => {
  const before = dumps().length;
  const first = runJob(db);
  const second = runJob(db);
  assert.equal(first.status, 0, first.stderr);
  assert.equal(second.status, 0, second.stderr);
  assert.equal(dumps().length, before + 2);
});

test("a failing dump exits non-zero and leaves no dump behind", () => {
  const before = dumps();
  const run = runJob(`${db}_missing`);
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /does not exist/);
  assert.deepEqual(dumps(), before);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith(".partial")),
    [],
  );
});

test("the container entrypoint installs the schedule and keeps the password out of the crontab", () => {
  const entry = renderBackupEntrypoint({
    postgresHost: "postgres",
    database: "inferstack",
    user: "inferstack",
    schedule: "15 2 * * 0",
  });
  execFileSync("sh", ["-n", "-c", entry]);
  assert.match(
    entry,
    /echo '15 2 \* \* 0 \/usr\/local\/bin\/inferstack-backup >> \/proc\/1\/fd\/1 2>&1' > \/etc\/crontabs\/root/,
  );
  assert.match(entry, /"\$PGPASSWORD" > \/run\/backup\/pgpass/);
  assert.match(entry, /umask 077/);
  assert.match(entry, /unset PGPASSWORD/);
});
