/**
 * The process entry (`node app/src/main.ts`) as a child: SIGTERM drains in-flight requests and
 * exits 0, SIGHUP reloads the model repository, bad configuration fails fast naming the variable,
 * and the supervisor restarts crashed workers but exits non-zero when they cannot start.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { cp } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { FIXTURES, fixtureRepo, request } from "./helpers.ts";

const MAIN = new URL("../src/main.ts", import.meta.url).pathname;
const BUNDLED_MODELS = new URL("../../models", import.meta.url).pathname;

interface Child {
  proc: ChildProcess;
  url: Promise<string>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

function startMain(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      HOST: "127.0.0.1",
      PORT: "0",
      LOG_LEVEL: "info",
      DATABASE_URL: "",
      REDIS_URL: "",
      AUTH_MODE: "",
      MODEL_WATCH: "false",
      MODEL_POLL_INTERVAL_MS: "0",
      WEB_CONCURRENCY: "1",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let resolveUrl!: (u: string) => void;
  const url = new Promise<string>((r) => (resolveUrl = r));
  proc.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    for (const line of out.split("\n")) {
      if (line.includes('"msg":"model repository loaded"')) {
        const listening = out.split("\n").find((l) => /"msg":"listening(; loading models)?"/.test(l));
        if (listening) resolveUrl(JSON.parse(listening).url);
      }
    }
  });
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  // "close", not "exit": only then has everything the processes wrote to stdout been read.
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("close", (code, signal) => resolve({ code, signal })),
  );
  return { proc, url, exit, output: () => out };
}

/** A POST whose body arrives in two parts: in flight on the server until `finish()` is called. */
function slowPost(
  url: string,
  body: string,
): { finish(): void; response: Promise<{ status: number; body: string; connection: string | undefined }> } {
  const bytes = Buffer.from(body);
  const req = httpRequest(url, {
    method: "POST",
    headers: { "content-type": "application/json", "content-length": bytes.length },
  });
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
    const inflight = [1, 2, 3].map((a) =>
      slowPost(`${url}/v1/models/linear:predict`, JSON.stringify({ instances: [[a, 0, 0]] })),
    );
    // Signal only once the server has all three requests in hand (debug logs each start).
    await until(
      () => (child.output().match(/"path":"\/v1\/models\/linear:predict","msg":"request started"/g) ?? []).length === 3,
    );
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
    const pids = new Set(
      [...child.output().matchAll(/"pid":(\d+),[^\n]*"msg":"model repository loaded"/g)].map((m) => m[1]),
    );
    assert.equal(pids.size, 2, "two worker processes");
    child.proc.kill("SIGTERM");
    assert.equal((await child.exit).code, 0);
    assert.equal((child.output().match(/"msg":"shutdown complete"/g) ?? []).length, 2);
  } finally {
    child.proc.kill("SIGKILL");
    await repo.cleanup();
  }
});

test("several workers: from the first answer on, no request meets a worker still loading its models", async () => {
  // The bundled models take a moment to load: long enough to be seen if a worker took requests meanwhile.
  const child = startMain({ MODELS_DIR: BUNDLED_MODELS, WEB_CONCURRENCY: "2" });
  try {
    const statuses: number[] = [];
    let port: string | undefined;
    const count = (re: RegExp) => (child.output().match(re) ?? []).length;
    // Poll the port from the first worker's listen until both have loaded and listen, then a little more.
    let after = 20;
    while (
      count(/"msg":"model repository loaded"/g) < 2 ||
      count(/"msg":"listening(; loading models)?"/g) < 2 ||
      after-- > 0
    ) {
      port ??= /"url":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(child.output())?.[1];
      assert.equal(child.proc.exitCode, null, child.output());
      if (port === undefined) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const r = await fetch(`http://127.0.0.1:${port}/v2/health/ready`, { headers: { connection: "close" } });
      statuses.push(r.status);
    }
    assert.deepEqual([...new Set(statuses)], [200], `${statuses.length} requests`);
    child.proc.kill("SIGTERM");
    assert.equal((await exitWithin(child, 60_000)).code, 0);
  } finally {
    child.proc.kill("SIGKILL");
  }
});

/** The child's exit, or a failed test once `timeoutMs` has passed without one. */
async function exitWithin(
  child: Child,
  timeoutMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no exit within ${timeoutMs} ms:\n${child.output().slice(-3000)}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([child.exit, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

test("a bad data-plane variable fails at start like any other: exit 78, the variable named, no stack trace, no secret echoed", async () => {
  for (const env of [
    { REDIS_URL: "redis://cache:notaport" } as Record<string, string>,
    { DATABASE_URL: "mysql://app:s3cret-pw@db/app" },
    { RATE_LIMIT: "sometimes" },
  ]) {
    // The default process count: the check runs before any worker is forked.
    const child = startMain({ MODELS_DIR: FIXTURES, WEB_CONCURRENCY: "", ...env });
    const { code } = await exitWithin(child, 30_000);
    const name = Object.keys(env)[0]!;
    assert.equal(code, 78, child.output());
    assert.match(child.output(), new RegExp(`${name}(=\\\\"[^"]*\\\\")?: `), child.output());
    assert.doesNotMatch(child.output(), /(\n|\\n)\s+at /, "no stack trace");
    assert.doesNotMatch(child.output(), /s3cret-pw/);
    assert.doesNotMatch(child.output(), /"msg":"(listening|starting worker processes)/);
  }
});

test("workers that keep failing at start: the primary gives up and exits non-zero with their error", async () => {
  // The port is taken, so every worker's listen fails.
  const blocker = createNetServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  const port = (blocker.address() as AddressInfo).port;
  const child = startMain({ MODELS_DIR: FIXTURES, WEB_CONCURRENCY: "2", PORT: String(port) });
  try {
    const { code } = await exitWithin(child, 180_000);
    assert.equal(code, 1, child.output());
    assert.match(
      child.output(),
      /"level":"fatal"[^\n]*"msg":"workers keep failing at start; exiting: worker could not start: [^"]*EADDRINUSE/,
    );
    const failures = (child.output().match(/"msg":"worker could not start: [^"]*EADDRINUSE/g) ?? []).length;
    // Five starts in a row of one slot (the other slot's may be cut short), never a respawn loop.
    assert.ok(failures >= 5 && failures <= 10, `${failures} failed starts`);
    assert.match(child.output(), /"msg":"restarting the worker after a backoff"/);
  } finally {
    child.proc.kill("SIGKILL");
    blocker.close();
  }
});

test("a worker that crashes is replaced; the others keep serving", async () => {
  const child = startMain({ MODELS_DIR: BUNDLED_MODELS, WEB_CONCURRENCY: "2" });
  const loadedPids = () =>
    [...child.output().matchAll(/"pid":(\d+),[^\n]*"msg":"model repository loaded"/g)].map((m) => Number(m[1]));
  const ready = async (url: string) =>
    (await fetch(`${url}/v2/health/ready`, { headers: { connection: "close" } })).status;
  try {
    const url = await child.url;
    await until(() => loadedPids().length === 2, 60_000);
    const [victim, survivor] = loadedPids() as [number, number];
    process.kill(victim, "SIGKILL");
    await until(() => /"msg":"worker killed by SIGKILL; starting a replacement"/.test(child.output()), 30_000);
    // While the replacement loads, the survivor takes every connection (each request on its own,
    // so the primary's round-robin picks a worker for each): none meets the loading replacement.
    const statuses: number[] = [];
    while (loadedPids().length < 3) {
      assert.equal(child.proc.exitCode, null, child.output());
      statuses.push(await ready(url));
    }
    for (let i = 0; i < 20; i++) statuses.push(await ready(url));
    assert.deepEqual([...new Set(statuses)], [200], `${statuses.length} requests`);
    const replacement = loadedPids()[2]!;
    assert.ok(replacement !== victim && replacement !== survivor, "a new worker process");
    assert.equal(child.proc.exitCode, null, "the primary still runs");
    child.proc.kill("SIGTERM");
    assert.equal((await exitWithin(child, 60_000)).code, 0);
  } finally {
    child.proc.kill("SIGKILL");
  }
});
