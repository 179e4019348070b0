/** Shared test helpers: a private copy of the fixture repository and a server on it. */
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningServer, startServer } from "../src/server.ts";

export const FIXTURES = new URL("./fixtures/models/", import.meta.url).pathname;

/** Copies the fixture models (or only `names`) to a fresh directory the test may change. */
export async function fixtureRepo(names?: string[]): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "inferstack-models-"));
  if (names) for (const n of names) await cp(join(FIXTURES, n), join(dir, n), { recursive: true });
  else await cp(FIXTURES, dir, { recursive: true });
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A server on 127.0.0.1 with no external service and quiet logs; `port` 0 takes a free one (a test
 * that polls the server before it resolves passes its own).
 */
export function testServer(modelsDir: string, env: Record<string, string> = {}, port = 0): Promise<RunningServer> {
  return startServer({
    port,
    host: "127.0.0.1",
    modelsDir,
    env: {
      DATABASE_URL: "",
      REDIS_URL: "",
      AUTH_MODE: "",
      LOG_LEVEL: "silent",
      MODEL_POLL_INTERVAL_MS: "0",
      MODEL_WATCH: "false",
      ...env,
    },
  });
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: any JSON the server answers; each test reads the fields it asserts on
  body: any;
  text: string;
}

export async function request(url: string, init: RequestInit & { json?: unknown } = {}): Promise<JsonResponse> {
  const { json, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (json !== undefined && !headers.has("content-type")) headers.set("content-type", "application/json");
  const res = await fetch(url, {
    ...rest,
    headers,
    ...(json !== undefined ? { method: rest.method ?? "POST", body: JSON.stringify(json) } : {}),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** Value of one sample in Prometheus text output, or undefined. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (.+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return undefined;
}
