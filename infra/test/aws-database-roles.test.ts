// The AWS stacks' Postgres roles, against the real local Postgres: the setup task's own program
// (setupScript) run with node from the repository root, as the image runs it from /app, by a
// master user shaped like RDS's (CREATEROLE, CREATEDB, owner of the database, pg_monitor with
// admin option, not a superuser). Then the API's real data plane logs in as the app role.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import pino from "pino";
import { Registry } from "prom-client";
import { loadConfig } from "../../app/src/config.ts";
import { createDataPlane } from "../../app/src/data/index.ts";
import { createKey } from "../../app/src/data/keys.ts";
import { migrate } from "../../app/src/data/migrations.ts";
import { deleteExpiredPredictions } from "../../app/src/data/retention.ts";
import {
  appGrants,
  type DatabaseRoleNames,
  scramVerifier,
  setupPlan,
  setupScript,
} from "../components/aws-database-roles.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const tag = `rt${process.pid}_${Date.now().toString(36)}`;
const roles: DatabaseRoleNames = {
  owner: `${tag}_owner`,
  app: `${tag}_app`,
  monitor: `${tag}_monitor`,
  grafana: `${tag}_grafana`,
};
const master = `${tag}_master`;
const database = `${tag}_db`;
const grafanaDatabase = `${tag}_grafana`;
const passwords = {
  owner: "Owner0password0letters0digits000",
  app: "App0password0letters0digits00000",
  monitor: "Monitor0password0letters00000000",
  grafana: "Grafana0password0letters00000000",
};
const url = (user: string, db = database) => `postgres://${user}@127.0.0.1:5432/${db}`;
const plan = setupPlan(roles, database, grafanaDatabase);
const script = setupScript(plan);
const spillDir = mkdtempSync(join(tmpdir(), "roles-spill-"));

async function asUser<T>(user: string, fn: (c: pg.Client) => Promise<T>, db = database): Promise<T> {
  const client = new pg.Client({ connectionString: url(user, db) });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
const admin = <T>(fn: (c: pg.Client) => Promise<T>, db = "postgres") => asUser("postgres", fn, db);

/** The setup task's command, `node -e <script>`, with the env ECS would give it. */
async function runSetup(): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ["-e", script], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH,
      SETUP_DATABASE_URL: `postgres://127.0.0.1:5432/${database}`,
      SETUP_MASTER_USER: master,
      // RDS generates master passwords with punctuation: the URL the script builds must carry them.
      SETUP_MASTER_PASSWORD: "rds%#?&:@/x!$^*()[]{}|~<>=+;, generated",
      SETUP_OWNER_PASSWORD: passwords.owner,
      SETUP_APP_PASSWORD: passwords.app,
      SETUP_MONITOR_PASSWORD: passwords.monitor,
      SETUP_GRAFANA_PASSWORD: passwords.grafana,
    },
  });
  return stdout;
}

/** The SQLSTATE a statement fails with as `user`, or "ok". */
async function outcome(user: string, sql: string, db = database): Promise<string> {
  try {
    await asUser(user, (c) => c.query(sql), db);
    return "ok";
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  }
}

before(async () => {
  await admin(async (c) => {
    await c.query(`CREATE ROLE "${master}" LOGIN CREATEROLE CREATEDB`);
    await c.query(`GRANT pg_monitor TO "${master}" WITH ADMIN OPTION`);
    await c.query(`CREATE DATABASE "${database}" OWNER "${master}"`);
  });
});

after(async () => {
  await admin(async (c) => {
    for (const db of [database, grafanaDatabase]) await c.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    for (const role of [...Object.values(roles), master]) await c.query(`DROP ROLE IF EXISTS "${role}"`);
  });
  rmSync(spillDir, { recursive: true, force: true });
});

test("a stack whose earlier program migrated as the master user: setup hands its tables to the owner role", async () => {
  // What the earlier program did: the app, as the master user, applied the migrations.
  const before = await migrate(url(master));
  assert.ok(before.applied.length > 0);
  await asUser(master, (c) =>
    c.query(
      "INSERT INTO predictions (id, time, model, version, request_id, input_hash, inputs, outputs, latency_ms, cache_hit) VALUES ($1, now() - interval '90 days', 'm', '1', 'r', 'h', '[]', '[]', 1, false)",
      [randomUUID()],
    ),
  );

  const out = await runSetup();
  assert.match(out, /"step":"roles"/);
  assert.match(out, /"step":"migrations","applied":\[\],"alreadyApplied":\d+/);
  assert.match(out, /"step":"grants"/);
  const owners = await admin(
    (c) =>
      c.query<{ relname: string; owner: string }>(
        "SELECT relname, pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') ORDER BY relname",
      ),
    database,
  );
  assert.deepEqual(
    owners.rows.map((r) => r.owner),
    owners.rows.map(() => roles.owner),
    JSON.stringify(owners.rows),
  );
  assert.deepEqual(
    owners.rows.map((r) => r.relname).sort(),
    Object.keys(appGrants).sort(),
    "appGrants names every table the migrations create",
  );
});

test("setup runs again without change (every update re-runs it) and passwords arrive as SCRAM verifiers", async () => {
  const out = await runSetup();
  assert.match(out, /"grafanaDatabase":"exists"/);
  const stored = await admin((c) =>
    c.query<{
      rolname: string;
      rolpassword: string;
      rolsuper: boolean;
      rolcreaterole: boolean;
      rolcreatedb: boolean;
      rolcanlogin: boolean;
    }>(
      "SELECT rolname, rolpassword, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_authid WHERE rolname = ANY($1)",
      [Object.values(roles)],
    ),
  );
  assert.equal(stored.rows.length, 4);
  for (const row of stored.rows) {
    const key = (Object.keys(roles) as (keyof DatabaseRoleNames)[]).find((k) => roles[k] === row.rolname)!;
    // Stored verbatim (Postgres recognised a verifier) and made from this role's secret.
    const [, salt] = /^SCRAM-SHA-256\$4096:([^$]+)\$/.exec(row.rolpassword) ?? [];
    assert.ok(salt, `${row.rolname}: ${row.rolpassword.slice(0, 20)}`);
    assert.equal(row.rolpassword, scramVerifier(passwords[key], Buffer.from(salt, "base64")));
    assert.deepEqual([row.rolcanlogin, row.rolsuper, row.rolcreaterole, row.rolcreatedb], [true, false, false, false]);
  }
});

test("the app role serves the API: key lookups, last_used_at, the prediction log (COPY and its duplicate path), retention", async () => {
  const key = await asUser(roles.owner, (c) => createKey(c, "roles-test", "pro"));
  const spillPath = join(spillDir, "predictions.jsonl");
  const dataPlane = await createDataPlane(
    loadConfig({
      DATABASE_URL: url(roles.app),
      MIGRATE_ON_START: "off",
      AUTH_MODE: "required",
      RATE_LIMIT: "off",
      PREDICTION_LOG_SPILL_PATH: spillPath,
      PREDICTION_LOG_FLUSH_MS: "20",
      PREDICTION_RETENTION_DAYS: "0",
    }),
    { registry: new Registry(), logger: pino({ level: "silent" }) },
  );
  const result = await dataPlane.auth!.authenticate(new Headers({ authorization: `Bearer ${key.key}` }));
  assert.equal((result as { ok: boolean }).ok, true, JSON.stringify(result));
  const id = randomUUID();
  const record = {
    id,
    time: new Date(),
    model: "roles",
    version: "1",
    requestId: "req-1",
    keyId: key.row.id,
    inputHash: "h",
    inputs: [[1]],
    outputs: [[2]],
    latencyMs: 1,
    cacheHit: false,
  };
  dataPlane.predictionLog!.record(record);
  const written = async () =>
    (await admin((c) => c.query("SELECT count(*)::int AS n FROM predictions WHERE id = $1", [id]), database)).rows[0]
      .n as number;
  for (let i = 0; i < 200 && (await written()) === 0; i++) await new Promise((r) => setTimeout(r, 25));
  // The same id again: COPY meets a unique violation and the batch goes through the staging table.
  dataPlane.predictionLog!.record({ ...record, requestId: "req-1-replayed" });
  dataPlane.predictionLog!.record({ ...record, id: randomUUID(), requestId: "req-2" });
  await dataPlane.close!();
  assert.equal(await written(), 1);
  const rows = await admin(
    (c) => c.query("SELECT request_id FROM predictions WHERE model = 'roles' ORDER BY request_id"),
    database,
  );
  assert.deepEqual(
    rows.rows.map((r) => r.request_id),
    ["req-1", "req-2"],
  );
  assert.ok(!existsSync(spillPath) || statSync(spillPath).size === 0, "nothing spilled: every write was allowed");
  const lastUsed = await admin(
    (c) => c.query("SELECT last_used_at FROM api_keys WHERE id = $1", [key.row.id]),
    database,
  );
  assert.ok(lastUsed.rows[0].last_used_at, "last_used_at written by the app role");
  // Retention, as the app role: the 90-day-old row goes.
  const pool = new pg.Pool({ connectionString: url(roles.app), max: 1 });
  try {
    assert.ok(((await deleteExpiredPredictions(pool, 30)) ?? 0) >= 1);
  } finally {
    await pool.end();
  }
  // LISTEN for revocations and advisory locks need no grant.
  assert.equal(await outcome(roles.app, "LISTEN inferstack_api_keys"), "ok");
});

test("the app role cannot create, alter, drop, truncate or write what it does not need", async () => {
  const denied = "42501";
  const cases: Record<string, string> = {
    "CREATE TABLE evil (i int)": denied,
    "CREATE SCHEMA evil": denied,
    "DROP TABLE predictions": denied,
    "DROP TABLE api_keys": denied,
    "ALTER TABLE predictions ADD COLUMN evil int": denied,
    "CREATE INDEX evil ON predictions (model)": denied,
    "TRUNCATE predictions": denied,
    "INSERT INTO api_keys (key_hash, prefix, name, plan) VALUES (sha256('x'), 'x', 'x', 'enterprise')": denied,
    "UPDATE api_keys SET plan = 'enterprise'": denied,
    "UPDATE api_keys SET revoked_at = NULL": denied,
    "DELETE FROM api_keys": denied,
    "SELECT * FROM schema_migrations": denied,
    "DELETE FROM schema_migrations": denied,
    [`CREATE DATABASE ${tag}_evil`]: denied,
    [`CREATE ROLE ${tag}_evil`]: denied,
    // Without grant option this only warns "no privileges were granted" (checked below).
    "GRANT ALL ON predictions TO PUBLIC": "ok",
    "CREATE TEMP TABLE scratch (i int)": "ok",
  };
  const got: Record<string, string> = {};
  for (const sql of Object.keys(cases)) got[sql] = await outcome(roles.app, sql);
  assert.deepEqual(got, cases);
  // Nor may it reach Grafana's database, nor may the other roles reach each other's data.
  assert.equal(await outcome(roles.app, "SELECT 1", grafanaDatabase), denied);
  assert.equal(await outcome(roles.grafana, "SELECT 1"), denied);
  assert.equal(await outcome(roles.monitor, "SELECT count(*) FROM api_keys"), denied);
  assert.equal(await outcome(roles.monitor, "SELECT count(*) FROM predictions"), denied);
});

test("the monitor role has pg_monitor; the grafana role owns its own database", async () => {
  const stats = await asUser(roles.monitor, (c) =>
    c
      .query(
        "SELECT pg_has_role(current_user, 'pg_monitor', 'USAGE') AS monitor, (SELECT count(*) FROM pg_stat_statements_info) IS NOT NULL AS ok",
      )
      .catch(() => c.query("SELECT pg_has_role(current_user, 'pg_monitor', 'USAGE') AS monitor")),
  );
  assert.equal(stats.rows[0].monitor, true);
  assert.equal(await outcome(roles.monitor, "CREATE TABLE evil (i int)"), "42501");
  assert.equal(await outcome(roles.grafana, "CREATE TABLE dashboard_probe (i int)", grafanaDatabase), "ok");
  const owner = await admin((c) =>
    c.query("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1", [grafanaDatabase]),
  );
  assert.equal(owner.rows[0].owner, roles.grafana);
});

test("a new migration applies as the owner and the grants are re-set exactly", async () => {
  // Something granted by hand is taken back by the next setup.
  await admin((c) => c.query(`GRANT TRUNCATE ON predictions TO "${roles.app}"`), database);
  assert.equal(await outcome(roles.app, "TRUNCATE predictions"), "ok");
  await runSetup();
  assert.equal(await outcome(roles.app, "TRUNCATE predictions"), "42501");
});
