import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, test } from "node:test";
import type pg from "pg";
import { Registry } from "prom-client";
import { extractKey, PostgresAuthenticator, RevocationListener } from "../../src/data/auth.ts";
import { createKey, generateKey, hashKey, isWellFormedKey, maskKey, revokeKey } from "../../src/data/keys.ts";
import { createDataPlaneMetrics } from "../../src/data/metrics.ts";
import { migrate } from "../../src/data/migrations.ts";
import { createPool } from "../../src/data/postgres.ts";
import { freshDatabase, silentLogger, TcpProxy, type TestDatabase, waitFor } from "./support.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

function keysCli(
  databaseUrl: string,
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["scripts/keys.ts", ...args], {
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

const bearer = (key: string) => new Headers({ authorization: `Bearer ${key}` });

let db: TestDatabase;
let pool: pg.Pool;
before(async () => {
  db = await freshDatabase();
  await migrate(db.url);
  pool = createPool(db.url, { logger: silentLogger(), max: 4, connectTimeoutMs: 1000, queryTimeoutMs: 2000 });
});
after(async () => {
  await pool.end();
  await db.drop();
});

function authenticator(p: pg.Pool, registry = new Registry(), cacheTtlMs = 0) {
  return new PostgresAuthenticator({
    pool: p,
    logger: silentLogger(),
    metrics: createDataPlaneMetrics(registry),
    cacheTtlMs,
    staleGraceMs: 60_000,
    lastUsedFlushMs: 3_600_000,
  });
}

test("generated keys are prefixed, high-entropy, unique and self-checking", () => {
  const keys = Array.from({ length: 1000 }, () => generateKey().key);
  assert.equal(new Set(keys).size, keys.length);
  for (const key of keys.slice(0, 50)) {
    assert.match(key, /^isk_[0-9A-Za-z]{47}$/);
    assert.ok(isWellFormedKey(key));
  }
  const key = keys[0]!;
  // One changed character fails the checksum: typos never reach Postgres.
  const typo = key.slice(0, 10) + (key[10] === "a" ? "b" : "a") + key.slice(11);
  assert.equal(isWellFormedKey(typo), false);
  assert.equal(isWellFormedKey("isk_short"), false);
  assert.equal(maskKey(key), `${key.slice(0, 12)}…`);
  assert.ok(!maskKey(key).includes(key.slice(12, 20)));
});

test("keys are read from Authorization: Bearer or X-API-Key", () => {
  assert.equal(extractKey(new Headers({ authorization: "Bearer abc" })), "abc");
  assert.equal(extractKey(new Headers({ authorization: "bearer  abc " })), "abc");
  assert.equal(extractKey(new Headers({ "x-api-key": "xyz" })), "xyz");
  assert.equal(extractKey(new Headers({ authorization: "Basic Zm9vOmJhcg==" })), null);
  assert.equal(extractKey(new Headers()), null);
});

test("CLI lifecycle: create prints the key once, only its hash is stored, list masks, revoke by prefix stops it", async () => {
  const created = await keysCli(db.url, "create", "--name", "ci-bot", "--plan", "basic");
  assert.equal(created.code, 0, created.stderr);
  const key = created.stdout.trim();
  assert.ok(isWellFormedKey(key), `not a key: ${key}`);
  assert.ok(!created.stderr.includes(key), "the key must be printed once, on stdout only");

  const stored = await pool.query("SELECT * FROM api_keys WHERE name = 'ci-bot'");
  assert.equal(stored.rowCount, 1);
  assert.ok(!JSON.stringify(stored.rows[0]).includes(key.slice(12)), "the secret part must not be stored");
  assert.deepEqual(stored.rows[0].key_hash, hashKey(key));

  const listed = await keysCli(db.url, "list");
  assert.equal(listed.code, 0);
  assert.match(listed.stdout, /ci-bot\s+basic/);
  assert.ok(listed.stdout.includes(`${key.slice(0, 12)}…`));
  assert.ok(!listed.stdout.includes(key.slice(12)), "list must show only the masked key");

  const registry = new Registry();
  const auth = authenticator(pool, registry);
  const ok = await auth.authenticate(bearer(key));
  assert.ok(ok.ok);
  assert.equal(ok.principal.plan, "basic");
  assert.equal(ok.principal.keyDisplay, `${key.slice(0, 12)}…`);
  assert.equal(ok.principal.keyId, stored.rows[0].id);
  assert.ok((await auth.authenticate(new Headers({ "x-api-key": key }))).ok);

  const revoked = await keysCli(db.url, "revoke", key.slice(0, 12));
  assert.equal(revoked.code, 0, revoked.stderr);
  const after = await auth.authenticate(bearer(key));
  assert.deepEqual(after, { ok: false, status: 401, error: `API key ${key.slice(0, 12)}… has been revoked` });
  assert.match(await registry.metrics(), /inferstack_auth_failures_total\{reason="revoked"\} 1/);

  const all = await keysCli(db.url, "list", "--all", "--json");
  const rows = JSON.parse(all.stdout) as Array<{ name: string; revokedAt: string | null }>;
  assert.ok(rows.find((r) => r.name === "ci-bot")?.revokedAt);
  await auth.close();
});

test("CLI refuses unknown plans, missing names and unknown keys with a clear message", async () => {
  const badPlan = await keysCli(db.url, "create", "--name", "x", "--plan", "gold");
  assert.equal(badPlan.code, 2);
  assert.match(badPlan.stderr, /unknown plan 'gold'.*free, basic, pro, enterprise/);
  const noName = await keysCli(db.url, "create", "--plan", "free");
  assert.equal(noName.code, 2);
  assert.match(noName.stderr, /--name/);
  const unknown = await keysCli(db.url, "revoke", "isk_nothere1");
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no API key with prefix 'isk_nothere1'/);
});

test("missing, malformed and unknown keys get 401 and are counted by reason; the key never appears unmasked", async () => {
  const registry = new Registry();
  const auth = authenticator(pool, registry);
  const missing = await auth.authenticate(new Headers());
  assert.equal(missing.ok, false);
  assert.equal(!missing.ok && missing.status, 401);
  const unknownKey = generateKey().key;
  const unknown = await auth.authenticate(bearer(unknownKey));
  assert.equal(!unknown.ok && unknown.status, 401);
  assert.ok(!unknown.ok && !unknown.error.includes(unknownKey.slice(12)));
  const garbage = await auth.authenticate(bearer("not-a-key"));
  assert.equal(!garbage.ok && garbage.status, 401);
  const text = await registry.metrics();
  assert.match(text, /inferstack_auth_failures_total\{reason="missing"\} 1/);
  assert.match(text, /inferstack_auth_failures_total\{reason="unknown"\} 2/);
  await auth.close();
});

test("last_used_at is written asynchronously and coalesced", async () => {
  const { key, row } = await createKey(pool, "coalesced", "pro");
  const auth = authenticator(pool, new Registry(), 60_000);
  for (let i = 0; i < 20; i++) assert.ok((await auth.authenticate(bearer(key))).ok);
  const before = await pool.query("SELECT last_used_at FROM api_keys WHERE id = $1", [row.id]);
  assert.equal(before.rows[0].last_used_at, null, "no write on the request path");
  await auth.flushLastUsed();
  const afterFlush = await pool.query("SELECT last_used_at FROM api_keys WHERE id = $1", [row.id]);
  assert.ok(afterFlush.rows[0].last_used_at instanceof Date);
  await auth.close();
});

test("Postgres unreachable: recently seen keys keep working, unseen keys get 503 with Retry-After, not 401", async () => {
  const proxy = await new TcpProxy("127.0.0.1", Number(new URL(db.url).port)).start();
  const viaProxy = createPool(db.urlVia(proxy.port), {
    logger: silentLogger(),
    max: 2,
    connectTimeoutMs: 500,
    queryTimeoutMs: 1000,
  });
  const { key: seen } = await createKey(pool, "seen", "pro");
  const { key: unseen } = await createKey(pool, "unseen", "pro");
  const { key: revoked } = await createKey(pool, "revoked-before-outage", "pro");
  await revokeKey(pool, (await pool.query("SELECT id FROM api_keys WHERE name = 'revoked-before-outage'")).rows[0].id);
  const auth = new PostgresAuthenticator({
    pool: viaProxy,
    logger: silentLogger(),
    metrics: createDataPlaneMetrics(new Registry()),
    cacheTtlMs: 0,
    staleGraceMs: 60_000,
    lastUsedFlushMs: 3_600_000,
  });
  try {
    assert.ok((await auth.authenticate(bearer(seen))).ok);
    assert.equal((await auth.authenticate(bearer(revoked))).ok, false);
    proxy.cut();
    const stale = await auth.authenticate(bearer(seen));
    assert.ok(stale.ok, "a key seen before the outage keeps working");
    const blind = await auth.authenticate(bearer(unseen));
    assert.equal(blind.ok, false);
    assert.equal(!blind.ok && blind.status, 503);
    assert.ok(!blind.ok && (blind.retryAfterSeconds ?? 0) > 0);
    const stillRevoked = await auth.authenticate(bearer(revoked));
    assert.equal(!stillRevoked.ok && stillRevoked.status, 401, "a revoked key stays refused during the outage");
    proxy.restore();
    assert.ok((await auth.authenticate(bearer(unseen))).ok, "recovers once Postgres is back");
  } finally {
    await auth.close();
    await viaProxy.end();
    await proxy.close();
  }
});

test("the revocation listener reconnects after losing Postgres and forgets every cached key, since it missed announcements", async () => {
  const { key, row } = await createKey(pool, "revoked-while-away", "pro");
  const auth = authenticator(pool, new Registry(), 3_600_000);
  const proxy = await new TcpProxy("127.0.0.1", Number(new URL(db.url).port || 5432)).start();
  const listener = new RevocationListener(db.urlVia(proxy.port), auth, silentLogger());
  await listener.start();
  try {
    assert.ok((await auth.authenticate(bearer(key))).ok);
    proxy.cut();
    await revokeKey(pool, row.id); // announced while the listener cannot hear it
    assert.ok((await auth.authenticate(bearer(key))).ok, "cached for an hour: only the listener can drop it");
    proxy.restore();
    const refused = await waitFor(
      "the listener back and the cache cleared",
      async () => {
        const result = await auth.authenticate(bearer(key));
        return result.ok ? undefined : result;
      },
      10_000,
    );
    assert.equal(refused.status, 401);
  } finally {
    await listener.stop();
    await auth.close();
    await proxy.close();
  }
});

test("a revocation reaches running authenticators at once (LISTEN/NOTIFY), not after the cache TTL", async () => {
  const { key, row } = await createKey(pool, "revoked-live", "pro");
  const auth = authenticator(pool, new Registry(), 3_600_000);
  const listener = new RevocationListener(db.url, auth, silentLogger());
  await listener.start();
  try {
    assert.ok((await auth.authenticate(bearer(key))).ok);
    await revokeKey(pool, row.id);
    const refused = await waitFor(
      "revocation applied",
      async () => {
        const result = await auth.authenticate(bearer(key));
        return result.ok ? undefined : result;
      },
      5000,
    );
    assert.equal(refused.status, 401);
  } finally {
    await listener.stop();
    await auth.close();
  }
});
