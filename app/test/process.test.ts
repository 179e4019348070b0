/**
 * The process entry (`node app/src/main.ts`) as a child: SIGTERM drains in-flight requests and
 * exits 0, SIGHUP reloads the model repository, and bad configuration fails fast naming the variable.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { request as httpRequest } from "node:http";
import { cp } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fixtureRepo, FIXTURES, request } from "./helpers.ts";

const MAIN = new URL("../src/main.ts", import.meta.url).pathname;

interface Child {
  proc: ChildProcess;
  url: Promise<string>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

function startMain(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [MAIN], {
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "info", DATABASE_URL: "", REDIS_URL: "", AUTH_MODE: "", MODEL_WATCH: "false", MODEL_POLL_INTERVAL_MS: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let resolveUrl!: (u: string) => void;
  const url = new Promise<string>((r) => (resolveUrl = r));
  proc.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    for (const line of out.split("\n")) {
      if (line.includes('"msg":"model repository loaded"')) {
        const listening = out.split("\n").find((l) => l.includes('"msg":"listening; loading models"'));
        if (listening) resolveUrl(JSON.parse(listening).url);
      }
    }
  });
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  return { proc, url, exit, output: () => out };
}

/** A POST whose body arrives in two parts: in flight on the server until `finish()` is called. */
function slowPost(url: string, body: string): { finish(): void; response: Promise<{ status: number; body: string; connection: string | undefined }> } {
  const bytes = Buffer.from(body);
  const req = httpRequest(url, { method: "POST", headers: { "content-type": "application/json", "content-length": bytes.length } });
  const response = new Promise<{ status: number; body: string; connection: string | undefined }>((resolve, reject) => {
    req.on("response", (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text, connection: res.headers.connection }));
    });
    req.on("error", reject);
  });
  req.write(bytes.subarray(0, 10));
  return { finish: () => req.end(bytes.subarray(10)), response };
}

test("SIGTERM: in-flight requests finish, new connections are refused, exit 0", async () => {
  const repo = await fixtureRepo(["linear"]);
  const child = startMain({ MODELS_DIR: repo.dir, SHUTDOWN_TIMEOUT_MS: "20000", LOG_LEVEL: "debug" });
  try {
    const url = await child.url;
    const inflight = [1, 2, 3].map((a) => slowPost(`${url}/v1/models/linear:predict`, JSON.stringify({ instances: [[a, 0, 0]] })));
    // Signal only once the server has all three requests in hand (debug logs each start).
    await until(() => (child.output().match(/"path":"\/v1\/models\/linear:predict","msg":"request started"/g) ?? []).length === 3);
    child.proc.kill("SIGTERM");
    await until(() => /"msg":"shutting down: draining in-flight requests"/.test(child.output()));
    await assert.rejects(fetch(`${url}/health/live`), "the listener is closed during the drain");
    for (const r of inflight) r.finish();
    const results = await Promise.all(inflight.map((r) => r.response));
    assert.deepEqual(
      results.map((r) => [r.status, JSON.parse(r.body).predictions?.[0]]),
      [
        [200, 1.5],
        [200, 2.5],
        [200, 3.5],
      ],
    );
    assert.equal(results[0]!.connection, "close");
    const { code } = await child.exit;
    assert.equal(code, 0, child.output());
    assert.match(child.output(), /"msg":"shutdown complete"/);
  } finally {
    child.proc.kill("SIGKILL");
    await repo.cleanup();
  }
});

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("SIGHUP reloads the model repository", async () => {
  const repo = await fixtureRepo(["versioned"]);
  const child = startMain({ MODELS_DIR: repo.dir });
  try {
    const url = await child.url;
    const version = async () => (await request(`${url}/v2/models/versioned`)).body.versions[0];
    assert.equal(await version(), "3");
    await cp(join(FIXTURES, "versioned", "1"), join(repo.dir, "versioned", "5"), { recursive: true });
    assert.equal(await version(), "3", "no polling, no watch: nothing changes by itself");
    child.proc.kill("SIGHUP");
    const deadline = Date.now() + 10_000;
    while ((await version()) !== "5" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await version(), "5");
    child.proc.kill("SIGTERM");
    assert.equal((await child.exit).code, 0);
  } finally {
    child.proc.kill("SIGKILL");
    await repo.cleanup();
  }
});

test("invalid configuration fails at start with the variable named", async () => {
  const child = startMain({ MODELS_DIR: FIXTURES, PORT: "eighty", CORS_ORIGINS: "ftp://x" });
  const { code } = await child.exit;
  assert.equal(code, 78);
  assert.match(child.output(), /PORT=\\"eighty\\"/);
  assert.match(child.output(), /CORS_ORIGINS/);
});

test("WEB_CONCURRENCY=2 serves from two processes and stops them all on SIGTERM", async () => {
  const repo = await fixtureRepo(["linear"]);
  const child = startMain({ MODELS_DIR: repo.dir, WEB_CONCURRENCY: "2" });
  try {
    const url = await child.url;
    const r = await request(`${url}/v1/models/linear:predict`, { json: { instances: [[1, 1, 1]] } });
    assert.deepEqual(r.body.predictions, [6.5]);
    await until(() => (child.output().match(/"msg":"model repository loaded"/g) ?? []).length === 2);
    const pids = new Set([...child.output().matchAll(/"pid":(\d+),[^\n]*"msg":"model repository loaded"/g)].map((m) => m[1]));
    assert.equal(pids.size, 2, "two worker processes");
    child.proc.kill("SIGTERM");
    assert.equal((await child.exit).code, 0);
    assert.equal((child.output().match(/"msg":"shutdown complete"/g) ?? []).length, 2);
  } finally {
    child.proc.kill("SIGKILL");
    await repo.cleanup();
  }
});
