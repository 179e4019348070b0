/** Helpers for the monitoring tests: real tools, a real app on real Postgres and Redis. */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const monitoringDir = join(repoRoot, "monitoring");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a binary; never throws on a non-zero exit (the tests assert on it). */
export function run(cmd: string, args: string[], cwd?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `inferstack-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes `files` (relative path → text) under `dir`. */
export async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), text);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const pgAdminUrl = process.env.TEST_PG_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** A fresh Postgres database with a random name; drop() removes it. */
export async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `inferstack_mon_${randomBytes(6).toString("hex")}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: pgAdminUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(pgAdminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

// One cleanup for every suite that shares the Redis server.
export { deleteRedisPrefix } from "../../app/test/data/support.ts";

/** The bundled models plus one that cannot load, so the load-failure counter has a series. */
export async function modelsWithABrokenOne(): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const t = await tempDir("models");
  await cp(join(repoRoot, "models", "iris-classifier"), join(t.dir, "iris-classifier"), { recursive: true });
  await mkdir(join(t.dir, "broken-model", "1"), { recursive: true });
  await writeFile(join(t.dir, "broken-model", "1", "model.onnx"), "this is not an ONNX file");
  return t;
}

const irisRow = [5.1, 3.5, 1.4, 0.2];

/** Sends the kinds of traffic that make every labelled app series appear. */
export async function driveTraffic(
  baseUrl: string,
  opts: { expectRateLimit: boolean },
): Promise<Record<string, number>> {
  const statuses: Record<string, number> = {};
  const hit = async (path: string, init?: RequestInit) => {
    const res = await fetch(`${baseUrl}${path}`, init);
    await res.arrayBuffer();
    statuses[`${init?.method ?? "GET"} ${path} ${res.status}`] =
      (statuses[`${init?.method ?? "GET"} ${path} ${res.status}`] ?? 0) + 1;
    return res.status;
  };
  const post = (path: string, body: unknown) =>
    hit(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  for (const p of [
    "/health/live",
    "/health/ready",
    "/health/startup",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2",
    "/v1/models/iris-classifier",
    "/metrics",
    "/no-such-route",
  ]) {
    await hit(p);
  }
  // The same instance twice: a cache miss then a hit.
  await post("/v1/models/iris-classifier:predict", { instances: [irisRow] });
  await post("/v1/models/iris-classifier:predict", { instances: [irisRow] });
  await post("/v2/models/iris-classifier/infer", {
    inputs: [{ name: "input", shape: [1, 4], datatype: "FP32", data: [6.2, 2.9, 4.3, 1.3] }],
  });
  await post("/v1/models/iris-classifier:predict", { instances: "not a list" });
  // Concurrent distinct rows so the batcher forms a real batch.
  await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      post("/v1/models/iris-classifier:predict", { instances: [[5 + i / 10, 3, 1.5, 0.2]] }),
    ),
  );
  if (opts.expectRateLimit) {
    for (let i = 0; i < 30 && !Object.keys(statuses).some((k) => k.endsWith(" 429")); i++) {
      await post("/v1/models/iris-classifier:predict", { instances: [irisRow] });
    }
  }
  return statuses;
}

/** Sample names in Prometheus text exposition (histograms give _bucket/_sum/_count). */
export function sampleNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^[A-Za-z_:][\w:]*/.exec(line);
    if (m) names.add(m[0]);
  }
  return names;
}

/** Polls `check` until it returns a value, or fails with the last reason after `timeoutMs`. */
export async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}
