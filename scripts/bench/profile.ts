/**
 * Where a request's time goes: InferStack (one process) and the ceiling run under wrk with
 * `--cpu-prof` at each HTTP point, and every sample is charged to the stage it belongs to (the
 * innermost frame that names one: JSON.parse runs inside the body reader, JSON.stringify inside
 * the pipeline). Reported as CPU µs per answered request; the profiler's own overhead inflates
 * every stage alike, so the split is the figure, not the sum.
 */
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONCURRENCY, PAYLOADS, TARGETS } from "./http.ts";
import { freePort, predictBody, wrk } from "./lib.ts";

export interface ProfilePoint {
  target: string;
  concurrency: number;
  instances: number;
  requests: number;
  /** CPU µs per answered request, by stage (idle excluded). */
  stages: Record<string, number>;
  /** µs per answered request the main thread spent idle, in the event loop's poll (waiting, or not scheduled). */
  idle?: number;
}

export interface ProfileResult {
  points: ProfilePoint[];
  secondsPerPoint: number;
}

/** Key of stageTotals' idle time: not a stage, and not in any sum of them. */
export const IDLE = "(idle)";

/** Stages in the order a request meets them; a sample goes to the first rule matching its innermost frames. */
export const STAGES = [
  "node:http parsing and socket reads",
  "Hono routing and middleware (request id, access metrics, timeout, compression)",
  "body read and JSON.parse",
  "validation and tensor building",
  "pipeline (auth, rate limit, model lookup, JSON.stringify, counters)",
  "batching",
  "ONNX Runtime (session.run and its tensors)",
  "rendering predictions",
  "response headers and socket write",
  "metrics (prom-client)",
  "garbage collection",
  "other",
] as const;

interface Frame {
  functionName: string;
  url: string;
}

function stageOf(frame: Frame): string | undefined {
  const { functionName: fn, url } = frame;
  if (fn === "(garbage collector)") return "garbage collection";
  if (url.includes("onnxruntime")) return "ONNX Runtime (session.run and its tensors)";
  if (url.includes("prom-client")) return "metrics (prom-client)";
  if (/app\/src\/http\/body\.ts/.test(url)) return "body read and JSON.parse";
  if (/app\/src\/http\/(v1-decode|v2-decode|json-tensor)\.ts/.test(url)) return "validation and tensor building";
  if (/app\/src\/http\/render\.ts/.test(url)) return "rendering predictions";
  if (/app\/src\/inference\/(batcher|model-version)\.ts/.test(url)) return "batching";
  if (/app\/src\/http\/(pipeline|v1|v2|node-adapter)\.ts/.test(url))
    return "pipeline (auth, rate limit, model lookup, JSON.stringify, counters)";
  if (
    /^(writeUtf8String|writev|writeBuffer|writeLatin1String)$/.test(fn) ||
    /_http_outgoing|stream_base_commons/.test(url)
  ) {
    return "response headers and socket write";
  }
  if (/responseViaCache|responseViaResponseObject|buildOutgoingHttpHeaders|writeHead/.test(fn))
    return "response headers and socket write";
  if (
    /\/hono\/dist\/|@hono\/node-server|app\/src\/http\/(app|compression|client-ip)\.ts|app\/src\/(ids|server)\.ts/.test(
      url,
    )
  ) {
    return "Hono routing and middleware (request id, access metrics, timeout, compression)";
  }
  // The ceiling's own handler: parse and fill in one function, charged as our two stages are.
  if (url.includes("ceiling-server")) return "body read and JSON.parse";
  if (/_http_common|_http_server|_http_incoming|node:net|internal\/streams/.test(url))
    return "node:http parsing and socket reads";
  return undefined;
}

interface CpuProfile {
  nodes: { id: number; callFrame: Frame; children?: number[] }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * µs per stage over the profile's samples taken from `fromMicros` (CLOCK_MONOTONIC, as
 * process.hrtime and V8's profiler read it) on: start-up is left out, as are idle time and the
 * profiler's own "(program)".
 */
export function stageTotals(profile: CpuProfile, fromMicros = 0): Record<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stageOfNode = new Map<number, string | null>();
  const resolve = (id: number): string | null => {
    const known = stageOfNode.get(id);
    if (known !== undefined) return known;
    const n = byId.get(id)!;
    const stage = stageOf(n.callFrame) ?? (parent.has(id) ? resolve(parent.get(id)!) : null);
    stageOfNode.set(id, stage);
    return stage;
  };
  const totals: Record<string, number> = {};
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (at < fromMicros) continue;
    const n = byId.get(profile.samples[i]!)!;
    const fn = n.callFrame.functionName;
    if (fn === "(program)") continue;
    if (fn === "(idle)") {
      totals[IDLE] = (totals[IDLE] ?? 0) + (profile.timeDeltas[i] ?? 0);
      continue;
    }
    const stage = resolve(n.id) ?? "other";
    totals[stage] = (totals[stage] ?? 0) + (profile.timeDeltas[i] ?? 0);
  }
  return totals;
}

/** The profile with the most samples in `dir` (a supervisor writes its own, nearly empty one). */
function largestProfile(dir: string): CpuProfile {
  let best: CpuProfile | undefined;
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".cpuprofile"))) {
    const p = JSON.parse(readFileSync(join(dir, f), "utf8")) as CpuProfile;
    if (!best || p.samples.length > best.samples.length) best = p;
  }
  if (!best) throw new Error(`no .cpuprofile written in ${dir}`);
  return best;
}

export async function run(opts: {
  seconds: number;
  warmupSeconds: number;
  log: (s: string) => void;
}): Promise<ProfileResult> {
  const points: ProfilePoint[] = [];
  for (const id of ["inferstack", "ceiling"]) {
    const spec = TARGETS.find((t) => t.id === id)!;
    for (const instances of PAYLOADS) {
      const body = predictBody(instances);
      for (const c of CONCURRENCY) {
        const dir = await mkdtemp(join(tmpdir(), "inferstack-prof-"));
        const target = await spec.start(await freePort(), { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` });
        let requests = 0;
        const loadStarted = Number(process.hrtime.bigint() / 1000n);
        try {
          const warm = await wrk(target.url + spec.path, body, c, opts.warmupSeconds);
          const r = await wrk(target.url + spec.path, body, c, opts.seconds);
          if (r.errors + warm.errors) throw new Error(`${id}: ${r.errors + warm.errors} errors under profiling`);
          requests = warm.requests + r.requests;
        } finally {
          await target.stop();
        }
        // Samples from the warm-up on, over the requests of both runs; drained shutdown adds little.
        const totals = stageTotals(largestProfile(dir), loadStarted);
        await rm(dir, { recursive: true, force: true });
        const answered = requests;
        const stages: Record<string, number> = {};
        for (const s of STAGES) stages[s] = (totals[s] ?? 0) / answered;
        points.push({ target: id, concurrency: c, instances, requests, stages, idle: (totals[IDLE] ?? 0) / answered });
        const total = Object.values(stages).reduce((a, b) => a + b, 0);
        opts.log(`  ${id}, ${instances} inst, c=${c}: ${total.toFixed(0)} CPU µs per request under the profiler`);
      }
    }
  }
  return { points, secondsPerPoint: opts.seconds };
}
