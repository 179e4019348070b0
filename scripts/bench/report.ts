/** Renders docs/benchmarks.md from one bench run. */
import { SECTION_TITLE as BINARY_SECTION_TITLE } from "./binary.ts";
import type { HttpResult, HttpRow } from "./http.ts";
import { CONCURRENCY, PAYLOADS, TARGETS } from "./http.ts";
import { type ProfileResult, STAGES } from "./profile.ts";
import type { SessionResult } from "./session.ts";

export interface BenchReport {
  date: string;
  durationSeconds: number;
  secondsPerPoint: number;
  machine: { cpu: string; cores: number; memoryGb: number; loadBefore: number[]; loadAfter: number[] };
  versions: Record<string, string>;
  session: SessionResult;
  http: HttpResult;
  dataplane: unknown;
  /** scripts/bench/binary.ts: binary tensor data vs JSON for an image-sized input. */
  binary?: unknown;
  /** scripts/bench/profile.ts: CPU per request by stage, under --cpu-prof. */
  profile?: ProfileResult;
}

/** The single-process targets, point by point against the ceiling measured in the same run. */
export const TARGET_RATIO = 0.85;
export const TARGET_P99_FACTOR = 1.2;
export const TARGET_RSS_MB = 200;
export const TARGET_READY_MS = 1000;

const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–");
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "–");
const pct = (n: number) => `${(n * 100).toFixed(0)} %`;

function find(rows: HttpRow[], target: string, c: number, instances: number): HttpRow | undefined {
  return rows.find((r) => r.target === target && r.concurrency === c && r.instances === instances);
}

function table(rows: HttpRow[], instances: number): string {
  const lines = [
    `| server | c | req/s | rows/s | p50 ms | p90 ms | p99 ms | errors | max RSS MB | server CPU µs/req |`,
    `|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|`,
  ];
  for (const t of TARGETS) {
    for (const c of CONCURRENCY) {
      const r = find(rows, t.id, c, instances);
      if (!r) continue;
      lines.push(
        `| ${t.label} | ${c} | ${f0(r.rps)} | ${f0(r.rps * instances)} | ${f2(r.p50Ms)} | ${f2(r.p90Ms)} | ${f2(r.p99Ms)} | ${r.errors} | ${f0(r.maxRssMb)} | ${f0(r.cpuUsPerRequest ?? NaN)} |`,
      );
    }
  }
  return lines.join("\n");
}

/** The next multiple of half a power of ten at or above `v` (30,735 → 35,000). */
export function axisMax(v: number): number {
  if (!(v > 0)) return 1;
  const half = 10 ** Math.floor(Math.log10(v)) / 2;
  return Math.ceil(v / half) * half;
}

function chart(rows: HttpRow[], instances: number): string {
  const targets = TARGETS.filter((t) => find(rows, t.id, 64, instances));
  const values = targets.map((t) => Math.round(find(rows, t.id, 64, instances)!.rps * instances));
  const short: Record<string, string> = {
    inferstack: "InferStack 1p",
    "inferstack-2p": "InferStack 2p",
    ceiling: "node:http ceiling",
    fastapi: "FastAPI",
  };
  return [
    "```mermaid",
    "xychart-beta",
    `  title "V1 predict at c=64, ${instances} instance${instances > 1 ? "s" : ""} per request: rows/s"`,
    `  x-axis [${targets.map((t) => `"${short[t.id] ?? t.id}"`).join(", ")}]`,
    `  y-axis "rows per second" 0 --> ${axisMax(Math.max(...values))}`, // from zero: bars compare by length
    `  bar [${values.join(", ")}]`,
    "```",
  ].join("\n");
}

/** InferStack (one process) against the ceiling at every point of the HTTP scenario. */
function pointsTable(rows: HttpRow[]): { markdown: string; met: number; total: number } {
  const lines = [
    "| instances | c | InferStack req/s | ceiling req/s | ratio | ≥ 85 % | InferStack p99 ms | ceiling p99 ms | server CPU µs/req InferStack / ceiling |",
    "|--:|--:|--:|--:|--:|---|--:|--:|--:|",
  ];
  let met = 0;
  let total = 0;
  for (const instances of PAYLOADS) {
    for (const c of CONCURRENCY) {
      const ours = find(rows, "inferstack", c, instances);
      const ceiling = find(rows, "ceiling", c, instances);
      if (!ours || !ceiling) continue;
      const ratio = ours.rps / ceiling.rps;
      total++;
      if (ratio >= TARGET_RATIO) met++;
      lines.push(
        `| ${instances} | ${c} | ${f0(ours.rps)} | ${f0(ceiling.rps)} | ${pct(ratio)} | ${ratio >= TARGET_RATIO ? "met" : "**not met**"} | ${f2(ours.p99Ms)} | ${f2(ceiling.p99Ms)} | ${f0(ours.cpuUsPerRequest ?? NaN)} / ${f0(ceiling.cpuUsPerRequest ?? NaN)} |`,
      );
    }
  }
  return { markdown: lines.join("\n"), met, total };
}

/** Stages only InferStack has: what it adds to a request beyond parsing, inference and writing. */
const OWN_LAYERS: (typeof STAGES)[number][] = [
  "Hono routing and middleware (request id, access metrics, timeout, compression)",
  "validation and tensor building",
  "pipeline (auth, rate limit, model lookup, JSON.stringify, counters)",
  "batching",
  "rendering predictions",
  "metrics (prom-client)",
];

const STAGE_NOTES: Record<(typeof STAGES)[number], string> = {
  "node:http parsing and socket reads": "Node's HTTP parser and socket reads, the same code in both servers",
  "Hono routing and middleware (request id, access metrics, timeout, compression)":
    "what the ceiling does not have: the router, request id, access metrics and log decision, request timeout, compression check, security headers, node-server's request/response adapter",
  "body read and JSON.parse":
    "reading the body and `JSON.parse` (the ceiling's parse and its tensor fill are charged here too)",
  "validation and tensor building": "the model's compiled rules checked while the Float32Array is filled",
  "pipeline (auth, rate limit, model lookup, JSON.stringify, counters)":
    "model lookup and in-use count, auth and rate-limit hooks (off here), `JSON.stringify` of the response, request counters",
  batching: "the dynamic batcher: queueing, one promise per request, joining and splitting batches",
  "ONNX Runtime (session.run and its tensors)": "`session.run`, its input/output tensors and the native call",
  "rendering predictions": "output tensor to V1 predictions",
  "response headers and socket write":
    "status line, headers and the socket write (a system call: its cost grows when other processes share the cores)",
  "metrics (prom-client)": "Prometheus counters and histograms",
  "garbage collection": "V8's garbage collector",
  other: "everything else (timers, promises outside the stages above)",
};

function profileSection(p: ProfileResult): string {
  const out: string[] = [];
  for (const instances of PAYLOADS) {
    const cols = CONCURRENCY.flatMap((c) =>
      ["inferstack", "ceiling"].map((target) =>
        p.points.find((x) => x.target === target && x.instances === instances && x.concurrency === c),
      ),
    );
    if (cols.every((x) => x === undefined)) continue;
    const header = CONCURRENCY.flatMap((c) => [`InferStack c=${c}`, `ceiling c=${c}`]);
    const lines = [
      `**${instances} instance${instances > 1 ? "s" : ""} per request**, CPU µs per request under the profiler:`,
      "",
      `| stage | ${header.join(" | ")} |`,
      `|---|${header.map(() => "--:").join("|")}|`,
    ];
    for (const s of STAGES) {
      if (cols.every((x) => !x || (x.stages[s] ?? 0) < 0.5)) continue;
      lines.push(`| ${s} | ${cols.map((x) => (x ? f0(x.stages[s] ?? 0) : "–")).join(" | ")} |`);
    }
    lines.push(
      `| **total** | ${cols.map((x) => (x ? `**${f0(Object.values(x.stages).reduce((a, b) => a + b, 0))}**` : "–")).join(" | ")} |`,
    );
    if (cols.some((x) => x?.idle !== undefined)) {
      lines.push(
        `| main thread idle (not in the total) | ${cols.map((x) => (x?.idle !== undefined ? f0(x.idle) : "–")).join(" | ")} |`,
      );
    }
    // What InferStack spends beyond the ceiling, stage by stage, summed over the concurrencies.
    const extra = STAGES.map((s) => ({
      s,
      us:
        CONCURRENCY.reduce((sum, c) => {
          const o = p.points.find((x) => x.target === "inferstack" && x.instances === instances && x.concurrency === c);
          const b = p.points.find((x) => x.target === "ceiling" && x.instances === instances && x.concurrency === c);
          return sum + (o && b ? (o.stages[s] ?? 0) - (b.stages[s] ?? 0) : 0);
        }, 0) / CONCURRENCY.length,
    }))
      .filter((x) => x.us > 1)
      .sort((a, b) => b.us - a.us);
    const avgTotal = (target: string) =>
      CONCURRENCY.reduce((sum, c) => {
        const x = p.points.find((y) => y.target === target && y.instances === instances && y.concurrency === c);
        return sum + (x ? Object.values(x.stages).reduce((a, v) => a + v, 0) : 0);
      }, 0) / CONCURRENCY.length;
    const ceilingUs = avgTotal("ceiling");
    const oursUs = avgTotal("inferstack");
    const ownUs = OWN_LAYERS.reduce((sum, s) => sum + Math.max(0, extra.find((x) => x.s === s)?.us ?? 0), 0);
    lines.push(
      "",
      `Beyond the ceiling, averaged over the three concurrencies: ${extra.map((x) => `${x.s} +${f0(x.us)} µs`).join(", ") || "nothing above 1 µs"}.`,
      ceilingUs > 0 && oursUs > 0
        ? `In all ${f0(oursUs)} µs per request against the ceiling's ${f0(ceilingUs)} (a server bound by its CPU would serve ${pct(Math.min(1, ceilingUs / oursUs))} of the ceiling's throughput); the layers the ceiling does not have (${OWN_LAYERS.map((s) => s.split(" (")[0]).join(", ")}) take ${f0(ownUs)} µs of InferStack's ${f0(oursUs)}.`
        : "",
    );
    out.push(lines.join("\n"));
  }
  out.push(
    [
      "Stages:",
      "",
      ...STAGES.map((s) => `- **${s}**: ${STAGE_NOTES[s]}.`),
      "- **main thread idle**: time the main thread spent in the event loop's poll with nothing to run, or waiting there for a core: with wrk, the GC's helper threads and other processes on the same 2 cores, a server whose requests span more loop turns and more threads waits more.",
    ].join("\n"),
  );
  return out.join("\n\n");
}

export function renderReport(r: BenchReport): string {
  const rows = r.http.rows;
  const s = r.session;
  const ours = find(rows, "inferstack", 64, 1);
  const ceiling = find(rows, "ceiling", 64, 1);
  const fastapi = find(rows, "fastapi", 64, 1);
  const ours2 = find(rows, "inferstack-2p", 64, 1);
  const maxRss = Math.max(...rows.filter((x) => x.target === "inferstack").map((x) => x.maxRssMb));
  const vsFastapi = ours && fastapi ? ours.rps / fastapi.rps : NaN;
  const ready = r.http.readyMs.inferstack ?? NaN;
  const check = (ok: boolean) => (ok ? "met" : "**not met**");

  const points = pointsTable(rows);
  const p99Rows = PAYLOADS.map((instances) => {
    const o = find(rows, "inferstack", 64, instances);
    const b = find(rows, "ceiling", 64, instances);
    const factor = o && b ? o.p99Ms / b.p99Ms : NaN;
    return `| c=64 p99, ${instances} instance${instances > 1 ? "s" : ""} | ≤ ${TARGET_P99_FACTOR}× the ceiling's | ${f2(o?.p99Ms ?? NaN)} ms = ${f2(factor)}× | ${check(factor <= TARGET_P99_FACTOR)} |`;
  });
  const targetRows = [
    `| throughput vs the node:http ceiling, each point below | ≥ ${pct(TARGET_RATIO)} | met at ${points.met} of ${points.total} | ${check(points.total > 0 && points.met === points.total)} |`,
    ...p99Rows,
    `| RSS under load | ≤ ${TARGET_RSS_MB} MB | ${f0(maxRss)} MB | ${check(maxRss <= TARGET_RSS_MB)} |`,
    `| ready after start | ≤ ${TARGET_READY_MS / 1000} s | ${f0(ready)} ms | ${check(ready <= TARGET_READY_MS)} |`,
    `| c=64 throughput vs FastAPI, 1 instance | ≥ 10× | ${f2(vsFastapi)}× | ${check(vsFastapi >= 10)} |`,
  ];

  const dataplane =
    r.dataplane === undefined
      ? ""
      : `\n## Data plane (scripts/bench/dataplane.ts)\n\n${
          typeof (r.dataplane as { markdown?: unknown }).markdown === "string"
            ? (r.dataplane as { markdown: string }).markdown
            : `\`\`\`json\n${JSON.stringify(r.dataplane, null, 2)}\n\`\`\``
        }\n`;

  const binary =
    r.binary === undefined
      ? ""
      : `\n${BINARY_SECTION_TITLE}\n\n${
          typeof (r.binary as { markdown?: unknown }).markdown === "string"
            ? (r.binary as { markdown: string }).markdown
            : `\`\`\`json\n${JSON.stringify(r.binary, null, 2)}\n\`\`\``
        }\n`;

  return `# Benchmarks

Generated by \`npm run bench\` (\`scripts/bench/\`) on ${r.date}; the run took ${f0(r.durationSeconds)} s.
Do not edit by hand: rerun the bench. Raw figures: \`bench-results/latest.json\` (not committed).

## Machine and versions

- CPU: ${r.machine.cpu}, ${r.machine.cores} cores; ${r.machine.memoryGb.toFixed(1)} GiB RAM
- Load average before / after: ${r.machine.loadBefore.map((l) => l.toFixed(2)).join(" ")} / ${r.machine.loadAfter.map((l) => l.toFixed(2)).join(" ")}
  (the machine is shared; other work running during the bench lowers every figure alike,
  which is why ratios are taken against baselines measured in the same run)
- ${Object.entries(r.versions)
    .map(([k, v]) => `${k}: ${v}`)
    .join("\n- ")}

## Method

- Model: the bundled \`diabetes-regressor\` (ridge regression, 10 named features), V1 predict,
  instances as JSON objects keyed by feature name, 1 instance per request and 32 per request.
- Load: \`wrk -t1 -cC -d${r.secondsPerPoint}s --latency\` on loopback, closed loop (C connections, one
  request outstanding each) at C = ${CONCURRENCY.join(", ")}; a ${"warm-up"} run precedes each payload.
  wrk shares the ${r.machine.cores} cores with the server under test, as every baseline does.
- InferStack runs as \`node app/src/main.ts\` with the bundled models, no Postgres/Redis (the
  in-process defaults), \`LOG_LEVEL=warn\` (no per-request access log line), dynamic batching as
  the model's manifest sets it, \`WEB_CONCURRENCY\` = 1 or 2 processes.
- Baselines, same run, same cores: a bare \`node:http\` server that parses the same JSON and calls
  the same ONNX session per request (\`scripts/bench/ceiling-server.ts\`: no framework, validation,
  batching or metrics: the ceiling); the raw in-process \`session.run\`; and the usual hand-made Python stack,
  FastAPI on uvicorn (one worker) serving the same model with scikit-learn, trained by the models'
  own \`train()\` (\`scripts/bench/fastapi_baseline.py\`).

## Targets (one InferStack process, same run as the ceiling)

| target | goal | measured | |
|---|---|---|---|
${targetRows.join("\n")}

${points.markdown}

Server CPU µs/req: user + system time of the server process per answered request, read from
/proc around each point; it moves less than req/s when other work shares the cores.
${ours2 ? `\nWith 2 processes (\`WEB_CONCURRENCY=2\`) InferStack serves ${f0(ours2.rps)} req/s at c=64 (${pct(ours2.rps / (ceiling?.rps ?? NaN))} of the single-process ceiling), p99 ${f2(ours2.p99Ms)} ms. ${ours && ours2.rps > ours.rps * 1.1 ? `The second process adds ${pct(ours2.rps / ours.rps - 1)} at c=64 even though wrk needs part of the same 2 cores` : "On this 2-core machine wrk itself needs about a core, so a second server process mostly competes with the load generator"}; the RSS doubles (each process holds its own sessions). On a host whose cores all serve, one process per core is the way to use them (see the measurement below).\n` : ""}
## Results: 1 instance per request

${table(rows, 1)}

${chart(rows, 1)}

## Results: 32 instances per request

${table(rows, 32)}

${chart(rows, 32)}

## Raw session.run (in-process, no HTTP)

| batch rows | µs per \`await session.run\` | rows/s |
|--:|--:|--:|
${PAYLOADS.map((b) => `| ${b} | ${f2(s.runMicros[b] ?? NaN)} | ${f0(s.runRowsPerSec[b] ?? NaN)} |`).join("\n")}

## Worker threads or one process per core: the measurement

onnxruntime-node's \`session.run\` defers with \`setImmediate\` and then runs the graph
**synchronously on the calling thread**: the event loop is blocked for the whole run. Measured
here: a concurrent \`setImmediate\` waits **${f2(s.blockMicros)} µs** per single-row run, the
same as the run itself (${f2(s.runMicros[1] ?? NaN)} µs). Handing the run to a worker thread costs
**${f2(s.workerRoundTripMicros)} µs** per request round trip (postMessage both ways), i.e.
${s.workerRoundTripMicros > (s.runMicros[1] ?? 0) ? "more than the run it offloads" : "less than the run it offloads"}. With 64 requests outstanding, one worker thread sustains ${f0(s.workerRps)} runs/s
against ${f0(s.inProcessRps)} in-process; but an HTTP request costs the main thread far more than the
run (the ceiling above serves one request per ${ceiling ? f2(1e6 / ceiling.rps) : "–"} µs at c=64, of
which the run is ${f2(s.runMicros[1] ?? NaN)} µs), so the bottleneck is HTTP and JSON, which
a worker thread for inference does not relieve, while dynamic batching amortises the run itself
(${f2(s.runMicros[32] ?? NaN)} µs for 32 rows).

**Decision:** inference stays on the event-loop thread, behind the dynamic batcher; both cores are
used by running **one process per core** (\`WEB_CONCURRENCY\`, node:cluster; or, in the deployed
tiers, one container per vCPU behind the load balancer), which scales the HTTP and JSON work as
well as the inference. Worker threads would pay off only for models whose run takes milliseconds;
the batcher's design (one batch at a time per model version) leaves room to move \`#run\` to a
worker pool for such models without changing the HTTP layer.
${r.profile ? `\n## Where the time goes (scripts/bench/profile.ts)\n\nEach server again at every point, under \`--cpu-prof\` (${r.profile.secondsPerPoint} s per point after a warm-up), every CPU sample charged to the stage of its innermost frame that names one (JSON.parse runs inside the body reader, JSON.stringify inside the pipeline). The profiler slows everything alike, so the split is the figure to read, not the sums.\n\n${profileSection(r.profile)}\n` : ""}${dataplane}${binary}`;
}
