/**
 * V1 predict on the bundled regressor over HTTP, at concurrency 1, 16 and 64, with one instance
 * per request and with batches of 32: InferStack (one process, and one per core) beside the bare
 * node:http ceiling and FastAPI + uvicorn + scikit-learn, all on the same cores, in one run.
 */
import { freePort, type LoadResult, predictBody, startTarget, type Target, wrk } from "./lib.ts";

export const CONCURRENCY = [1, 16, 64];
export const PAYLOADS = [1, 32];

export interface TargetSpec {
  id: string;
  label: string;
  /** `env`: added to the target's environment (the profile scenario's NODE_OPTIONS). */
  start(port: number, env?: Record<string, string>): Promise<Target>;
  path: string;
}

export interface HttpRow extends LoadResult {
  target: string;
  concurrency: number;
  instances: number;
}

export interface HttpResult {
  rows: HttpRow[];
  readyMs: Record<string, number>;
}

const node = process.execPath;
/** As app/Dockerfile runs it. */
const API_FLAGS = ["--max-semi-space-size=8"];
const apiEnv = (processes: number) => ({
  MODELS_DIR: "models",
  LOG_LEVEL: "warn",
  WEB_CONCURRENCY: String(processes),
  DATABASE_URL: "",
  REDIS_URL: "",
  AUTH_MODE: "",
  MODEL_WATCH: "false",
});

export const TARGETS: TargetSpec[] = [
  {
    id: "inferstack",
    label: "InferStack (1 process)",
    path: "/v1/models/diabetes-regressor:predict",
    start: (port, env) =>
      startTarget("inferstack", node, [...API_FLAGS, "app/src/main.ts"], {
        port,
        healthPath: "/health/ready",
        env: { ...apiEnv(1), PORT: String(port), ...env },
      }),
  },
  {
    id: "inferstack-2p",
    label: "InferStack (2 processes)",
    path: "/v1/models/diabetes-regressor:predict",
    start: (port) =>
      startTarget("inferstack-2p", node, [...API_FLAGS, "app/src/main.ts"], {
        port,
        healthPath: "/health/ready",
        env: { ...apiEnv(2), PORT: String(port) },
      }),
  },
  {
    id: "ceiling",
    label: "bare node:http + same session (ceiling)",
    path: "/v1/models/diabetes-regressor:predict",
    start: (port, env) =>
      startTarget("ceiling", node, ["scripts/bench/ceiling-server.ts", String(port)], {
        port,
        healthPath: "/",
        ...(env ? { env } : {}),
      }),
  },
  {
    id: "fastapi",
    label: "FastAPI + uvicorn + scikit-learn",
    path: "/v1/models/diabetes-regressor:predict",
    start: (port) =>
      startTarget("fastapi", "/usr/bin/python3", ["scripts/bench/fastapi_baseline.py", String(port)], {
        port,
        healthPath: "/health",
      }),
  },
];

export async function run(opts: {
  seconds: number;
  warmupSeconds: number;
  log: (s: string) => void;
}): Promise<HttpResult> {
  const rows: HttpRow[] = [];
  const readyMs: Record<string, number> = {};
  for (const spec of TARGETS) {
    const target = await spec.start(await freePort());
    readyMs[spec.id] = target.readyMs;
    opts.log(`${spec.label}: ready in ${target.readyMs.toFixed(0)} ms`);
    try {
      for (const instances of PAYLOADS) {
        const body = predictBody(instances);
        const check = await fetch(target.url + spec.path, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        if (check.status !== 200) throw new Error(`${spec.id} answered ${check.status}: ${await check.text()}`);
        await wrk(target.url + spec.path, body, 16, opts.warmupSeconds);
        for (const c of CONCURRENCY) {
          const r = await wrk(target.url + spec.path, body, c, opts.seconds, { pid: target.proc.pid });
          rows.push({ target: spec.id, concurrency: c, instances, ...r });
          opts.log(
            `  ${instances} inst, c=${c}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, errors ${r.errors}, RSS ${r.maxRssMb.toFixed(0)} MB`,
          );
        }
      }
    } finally {
      await target.stop();
    }
  }
  return { rows, readyMs };
}
