/**
 * `node scripts/smoke.ts <url> [--api-key K] [--timeout 300] [--insecure]`: the post-deploy check
 * the deploy workflow runs against a stack's `url`. Waits (up to --timeout seconds) for
 * /health/ready, then checks the three probes, /metrics, the model's metadata and one KServe V1
 * prediction of `diabetes-regressor`. Exit 0 when all pass, 1 when any fails (the workflow then
 * rolls the stack back), 2 on bad arguments. The API key may also come from INFERSTACK_API_KEY.
 */
import { parseCli, runCli, UsageError } from "./lib/cli.ts";

const usage = "node scripts/smoke.ts <url> [--api-key <key>] [--timeout <seconds>] [--insecure]";
const MODEL = "diabetes-regressor";
/** One patient's baseline measurements, inside every feature's documented range. */
export const SMOKE_INSTANCE = { age: 50, sex: 1, bmi: 26.4, bp: 94, s1: 190, s2: 115, s3: 48, s4: 4, s5: 4.6, s6: 91 };

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function request(base: URL, path: string, apiKey: string | undefined, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (apiKey) headers.set("authorization", `Bearer ${apiKey}`);
  return fetch(new URL(path, base), { ...init, headers, signal: AbortSignal.timeout(15_000), redirect: "follow" });
}

/** Runs the checks once the API answers ready; never throws for an unhealthy target. */
export async function smoke(
  url: string,
  opts: { apiKey?: string; timeoutSeconds: number; log?: (line: string) => void },
): Promise<Check[]> {
  const base = new URL(url.endsWith("/") ? url : `${url}/`);
  const log = opts.log ?? (() => undefined);
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  let lastReady = "";
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await request(base, "health/ready", opts.apiKey);
      lastReady = `HTTP ${res.status}`;
      await res.body?.cancel();
      if (res.ok) break;
    } catch (err) {
      lastReady = (err as Error).message;
    }
    if (Date.now() >= deadline) break;
    log(`waiting for ${base.href}health/ready (attempt ${attempt}: ${lastReady})`);
    await sleep(Math.min(10_000, 1000 * attempt));
  }

  const checks: Check[] = [];
  const check = async (name: string, fn: () => Promise<string>) => {
    try {
      checks.push({ name, ok: true, detail: await fn() });
    } catch (err) {
      checks.push({ name, ok: false, detail: (err as Error).message });
    }
  };
  const expectOk = async (res: Response) => {
    const body = await res.text();
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${body.slice(0, 300)}`);
    return body;
  };
  for (const probe of ["live", "ready", "startup"]) {
    await check(
      `GET /health/${probe}`,
      async () => `HTTP 200 ${(await expectOk(await request(base, `health/${probe}`, opts.apiKey))).slice(0, 120)}`,
    );
  }
  await check("GET /metrics", async () => {
    const body = await expectOk(await request(base, "metrics", opts.apiKey));
    if (!/^# (HELP|TYPE) /m.test(body)) throw new Error("not Prometheus text format");
    return `${body.split("\n").length} lines`;
  });
  await check(`GET /v1/models/${MODEL}`, async () => {
    const meta = JSON.parse(await expectOk(await request(base, `v1/models/${MODEL}`, opts.apiKey))) as Record<
      string,
      unknown
    >;
    return JSON.stringify(meta).slice(0, 160);
  });
  await check(`POST /v1/models/${MODEL}:predict`, async () => {
    const res = await request(base, `v1/models/${MODEL}:predict`, opts.apiKey, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ instances: [SMOKE_INSTANCE] }),
    });
    const body = JSON.parse(await expectOk(res)) as { predictions?: unknown[] };
    const [first] = body.predictions ?? [];
    const value = Array.isArray(first)
      ? first[0]
      : typeof first === "object" && first !== null
        ? Object.values(first)[0]
        : first;
    if (typeof value !== "number" || !Number.isFinite(value))
      throw new Error(`no numeric prediction in ${JSON.stringify(body).slice(0, 200)}`);
    // The model predicts disease progression, 25-346 in its training data.
    if (value < 0 || value > 500) throw new Error(`prediction ${value} is outside the model's plausible range`);
    return `prediction ${value.toFixed(1)}`;
  });
  return checks;
}

if (import.meta.main) {
  runCli(async () => {
    const { values, positionals } = parseCli(usage, {
      "api-key": { type: "string" },
      timeout: { type: "string", default: "300" },
      insecure: { type: "boolean", default: false },
    });
    const [url] = positionals;
    if (!url || positionals.length > 1) throw new UsageError(`give exactly one URL\n\n${usage}`);
    if (!/^https?:\/\//.test(url)) throw new UsageError(`"${url}" is not an http(s) URL`);
    const timeoutSeconds = Number(values.timeout);
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 0)
      throw new UsageError(`--timeout must be a number of seconds (got "${values.timeout}")`);
    // The local tier's proxy signs with its own CA.
    if (values.insecure) process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
    const apiKey = values["api-key"] ?? process.env.INFERSTACK_API_KEY;
    const checks = await smoke(url, { ...(apiKey ? { apiKey } : {}), timeoutSeconds, log: (l) => console.error(l) });
    for (const c of checks) console.log(`${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
    const failed = checks.filter((c) => !c.ok).length;
    console.log(
      failed
        ? `smoke test FAILED: ${failed} of ${checks.length} checks`
        : `smoke test passed: ${checks.length} checks against ${url}`,
    );
    return failed ? 1 : 0;
  });
}
