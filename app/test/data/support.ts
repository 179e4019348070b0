/** Shared helpers for the data-plane tests: real Postgres and Redis, a cuttable TCP proxy. */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import net from "node:net";
import pg from "pg";
import { pino } from "pino";
import type { PredictionRecord } from "../../src/ports.ts";

export const PG_ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export const silentLogger = () => pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

export interface TestDatabase {
  name: string;
  url: string;
  /** The same database reached through a different host:port (e.g. a proxy). */
  urlVia(port: number): string;
  drop(): Promise<void>;
}

/** A fresh database with a random name; drop() terminates its connections and removes it. */
export async function freshDatabase(): Promise<TestDatabase> {
  const name = `inferstack_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const base = new URL(PG_ADMIN_URL);
  const urlFor = (port: number) => {
    const u = new URL(base);
    u.pathname = `/${name}`;
    u.port = String(port);
    return u.toString();
  };
  return {
    name,
    url: urlFor(Number(base.port || 5432)),
    urlVia: (port) => {
      const u = new URL(urlFor(port));
      u.hostname = "127.0.0.1";
      return u.toString();
    },
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export const redisPrefix = () => `inferstack-test:${randomBytes(5).toString("hex")}:`;

/** Deletes every Redis key under `prefix` (never FLUSHDB: the server is shared). */
export async function deleteRedisPrefix(prefix: string): Promise<void> {
  const { Redis } = await import("ioredis");
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/**
 * A TCP proxy in front of a real server. cut() destroys every open connection and refuses new
 * ones (accept + immediate reset), restore() lets them through again: an outage as clients see it.
 */
export class TcpProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #cut = false;
  readonly targetHost: string;
  readonly targetPort: number;
  port = 0;

  constructor(targetHost: string, targetPort: number) {
    this.targetHost = targetHost;
    this.targetPort = targetPort;
    this.#server = net.createServer((client) => {
      if (this.#cut) {
        client.resetAndDestroy();
        return;
      }
      const upstream = net.connect(this.targetPort, this.targetHost);
      this.#sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.#sockets.delete(client);
        this.#sockets.delete(upstream);
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this;
  }

  cut(): void {
    this.#cut = true;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  restore(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

export function makeRecord(
  overrides: Partial<PredictionRecord> & { id?: string; inputHash?: string } = {},
): PredictionRecord & { id: string; inputHash: string } {
  return {
    id: randomUUID(),
    time: new Date(),
    model: "iris-classifier",
    version: "1",
    requestId: randomUUID(),
    keyId: null,
    inputHash: randomBytes(32).toString("hex"),
    inputs: { instances: [[5.1, 3.5, 1.4, 0.2]] },
    outputs: { predictions: ["setosa"] },
    latencyMs: 1.25,
    cacheHit: false,
    ...overrides,
  };
}

export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once a load generator has served `n` more predictions than when this was called. */
export function served(traffic: { requestIds: string[] }, n: number, what: string): Promise<true> {
  const from = traffic.requestIds.length;
  return waitFor(`${n} predictions served ${what}`, () => traffic.requestIds.length >= from + n, 30_000);
}

export const ROOT = new URL("../../../", import.meta.url).pathname;

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `node app/src/main.ts` (the real process entry) from the repository root: one process on a
 * free port, the bundled models, info logs, no file watching; `env` on top. With `cgroupProcs`, the
 * process enters that cgroup before node starts, so its limits apply from the first allocation.
 */
export function spawnMain(env: Record<string, string>, cgroupProcs?: string): ChildProcess {
  const [command, args] = cgroupProcs
    ? ["sh", ["-c", `echo $$ > ${cgroupProcs} && exec "$0" app/src/main.ts`, process.execPath]]
    : [process.execPath, ["app/src/main.ts"]];
  return spawn(command, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: "0",
      HOST: "127.0.0.1",
      MODELS_DIR: "models",
      LOG_LEVEL: "info",
      WEB_CONCURRENCY: "1",
      MODEL_WATCH: "false",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Starts `node app/src/main.ts` on a free port; resolves once it serves models. */
export async function spawnServer(env: Record<string, string>): Promise<ServerProcess> {
  const child = spawnMain(env);
  let out = "";
  child.stdout!.on("data", (d) => {
    out += d;
  });
  child.stderr!.on("data", (d) => {
    out += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  let dead = false;
  void exited.then(() => {
    dead = true;
  });
  const url = await waitFor(
    "server url",
    () => {
      if (dead) throw new Error(`server exited before listening:\n${out}`);
      return /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)?.[1];
    },
    30_000,
  );
  await waitFor(
    "models loaded",
    async () => {
      if (dead) throw new Error(`server exited while loading:\n${out}`);
      return (
        (await fetch(`${url}/health/startup`).then(
          (r) => r.status,
          () => 0,
        )) === 200
      );
    },
    60_000,
    100,
  );
  return {
    url,
    child,
    exited,
    output: () => out,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (!dead) child.kill(signal);
      return exited;
    },
  };
}
