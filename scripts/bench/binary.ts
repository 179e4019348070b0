/**
 * Binary tensor data vs JSON for an image-sized input: one FP32 tensor 1×3×224×224 (602,112 raw
 * bytes) through a tiny conv model (scripts/bench/fixtures), V2 infer on one InferStack process,
 * both encodings in the same run, alternating, at each concurrency. Bytes on the wire, req/s and
 * p99 for both, and their ratios.
 *
 * The JSON request is what a KServe/curl user sends (every value in its shortest decimal form, as
 * Python's json and JS's JSON.stringify write a float32 widened to double); the binary request is
 * byte for byte what tritonclient.http sends with its defaults (`set_data_from_numpy(binary_data=True)`,
 * no outputs named): its JSON header written by Python's json.dumps, `Inference-Header-Content-Length`,
 * then the raw little-endian floats; the answer comes back binary too (`binary_data_output`).
 *
 * Part of `npm run bench`; alone: `node scripts/bench/binary.ts` rewrites only its section of
 * docs/benchmarks.md.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, type LoadResult, ROOT, startTarget, wrk } from "./lib.ts";

export const IMAGE_SHAPE = [1, 3, 224, 224];
export const BINARY_CONCURRENCY = [1, 4];
const MODEL = "image-features";
const PATH = `/v2/models/${MODEL}/infer`;

export type Encoding = "json" | "binary";

export interface BinaryRow extends LoadResult {
  encoding: Encoding;
  concurrency: number;
  /** Server CPU time (user + system) per request during the run. */
  cpuMsPerRequest: number;
}

export interface EncodingProbe {
  encoding: Encoding;
  status: number;
  requestBytes: number;
  responseBytes: number;
  /** The model's 4 features as decoded from the response, or the error text. */
  features: number[] | string;
}

export interface BinaryResult {
  rows: BinaryRow[];
  probes: EncodingProbe[];
  seconds: number;
  date: string;
  loadBefore: number[];
  /** Median ms of a bare JSON.parse of the JSON request in the bench process: the floor of any JSON server. */
  jsonParseMs: number;
  markdown: string;
}

/** User + system CPU time of a process, in ms (clock ticks of /proc/<pid>/stat at USER_HZ 100). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A normalised image (ImageNet mean/std) from a fixed pseudo-random 8-bit picture. */
export function imageTensor(): Float32Array {
  const n = IMAGE_SHAPE.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const plane = n / 3;
  let seed = 12345;
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const c = Math.floor(i / plane);
    out[i] = ((seed >>> 24) / 255 - mean[c]!) / std[c]!;
  }
  return out;
}

export function jsonRequest(values: Float32Array): string {
  return JSON.stringify({
    inputs: [{ name: "image", shape: IMAGE_SHAPE, datatype: "FP32", data: Array.from(values) }],
  });
}

/** tritonclient.http's request: json.dumps (", " and ": " separators) of the header, then the raw tensor. */
export function binaryRequest(values: Float32Array): { body: Buffer; headerLength: number } {
  const header =
    `{"inputs": [{"name": "image", "shape": [${IMAGE_SHAPE.join(", ")}], "datatype": "FP32", ` +
    `"parameters": {"binary_data_size": ${values.byteLength}}}], "parameters": {"binary_data_output": true}}`;
  const head = Buffer.from(header, "utf8");
  const raw = Buffer.alloc(values.byteLength);
  for (let i = 0; i < values.length; i++) raw.writeFloatLE(values[i]!, i * 4);
  return { body: Buffer.concat([head, raw]), headerLength: head.byteLength };
}

/** The output tensor "features" from a JSON or binary (Inference-Header-Content-Length) response. */
async function decodeFeatures(res: Response): Promise<number[] | string> {
  const bytes = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) return `${res.status}: ${bytes.toString("utf8").slice(0, 200)}`;
  const headerLength = res.headers.get("inference-header-content-length");
  const jsonEnd = headerLength === null ? bytes.byteLength : Number(headerLength);
  const doc = JSON.parse(bytes.subarray(0, jsonEnd).toString("utf8")) as {
    outputs: { name: string; data?: number[]; parameters?: { binary_data_size?: number } }[];
  };
  let offset = jsonEnd;
  for (const o of doc.outputs) {
    const size = o.parameters?.binary_data_size;
    if (o.name === "features") {
      if (o.data) return o.data;
      if (size === undefined) return "no data and no binary_data_size";
      const view = bytes.subarray(offset, offset + size);
      return Array.from({ length: size / 4 }, (_, i) => view.readFloatLE(i * 4));
    }
    offset += size ?? 0;
  }
  return "no output named features";
}

const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–");
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "–");
const rate = (n: number) => (!Number.isFinite(n) ? "–" : n < 100 ? n.toFixed(1) : f0(n));
const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : "–");

export function renderBinary(r: Omit<BinaryResult, "markdown">): string {
  const probe = (e: Encoding) => r.probes.find((p) => p.encoding === e);
  const json = probe("json");
  const binary = probe("binary");
  const row = (e: Encoding, c: number) => r.rows.find((x) => x.encoding === e && x.concurrency === c);
  const lines = [
    "One FP32 tensor 1×3×224×224 (an ImageNet-sized image, 602,112 bytes raw) through a tiny conv",
    "model (`scripts/bench/fixtures/make_image_model.py`: Conv 3×3/2, 4 filters, ReLU, global average",
    "pool), `POST /v2/models/image-features/infer`, one InferStack process, `BODY_LIMIT_BYTES` 16 MiB.",
    "JSON: every value in its shortest decimal form, as `json.dumps` or `JSON.stringify` writes a",
    "float32; binary: byte for byte the request of `tritonclient.http` with its defaults (JSON header,",
    "`Inference-Header-Content-Length`, raw little-endian floats, `binary_data_output`). Both in the",
    `same run, alternating, \`wrk -t1\` for ${r.seconds} s per point. Run alone with \`node scripts/bench/binary.ts\`;`,
    `this run: ${r.date}, load average ${r.loadBefore.map((l) => l.toFixed(2)).join(" ")} before it (the ratios, taken in the same run, are`,
    "the figures to compare; server CPU per request is the least disturbed by other work on the machine).",
    "",
    "| encoding | request body bytes | response body bytes | status |",
    "|---|--:|--:|--:|",
    ...r.probes.map((p) => `| ${p.encoding} | ${f0(p.requestBytes)} | ${f0(p.responseBytes)} | ${p.status} |`),
  ];
  if (json && binary)
    lines.push(
      "",
      `The binary request is ${ratio(json.requestBytes, binary.requestBytes)} smaller on the wire than the JSON one.`,
    );
  if (binary && binary.status !== 200) {
    lines.push(
      "",
      `The binary request was refused (${binary.status}): ${typeof binary.features === "string" ? binary.features : ""}; JSON figures only.`,
    );
  }
  lines.push(
    "",
    "| c | encoding | req/s | MB/s sent | p50 ms | p99 ms | server CPU ms / request | errors |",
    "|--:|---|--:|--:|--:|--:|--:|--:|",
  );
  for (const c of BINARY_CONCURRENCY) {
    for (const e of ["json", "binary"] as const) {
      const x = row(e, c);
      const bytes = probe(e)?.requestBytes ?? NaN;
      if (x)
        lines.push(
          `| ${c} | ${e} | ${rate(x.rps)} | ${f2((x.rps * bytes) / 1e6)} | ${f2(x.p50Ms)} | ${f2(x.p99Ms)} | ${f2(x.cpuMsPerRequest)} | ${x.errors} |`,
        );
    }
  }
  const ratios = BINARY_CONCURRENCY.map((c) => ({ c, j: row("json", c), b: row("binary", c) })).filter(
    (x) => x.j && x.b,
  );
  if (ratios.length) {
    lines.push("", "| c | req/s binary ÷ JSON | p99 JSON ÷ binary | server CPU JSON ÷ binary |", "|--:|--:|--:|--:|");
    for (const { c, j, b } of ratios) {
      lines.push(
        `| ${c} | ${ratio(b!.rps, j!.rps)} | ${ratio(j!.p99Ms, b!.p99Ms)} | ${ratio(j!.cpuMsPerRequest, b!.cpuMsPerRequest)} |`,
      );
    }
  }
  lines.push(
    "",
    `For scale: a bare \`JSON.parse\` of the JSON request takes ${f2(r.jsonParseMs)} ms in the bench process; the server then`,
    "checks and converts 150,528 numbers one by one, where the binary request is copied into the tensor as it is.",
  );
  return lines.join("\n");
}

export async function run(opts: {
  seconds: number;
  warmupSeconds: number;
  log: (s: string) => void;
}): Promise<BinaryResult> {
  const date = new Date().toISOString();
  const loadBefore = loadavg();
  const values = imageTensor();
  const jsonBody = jsonRequest(values);
  const parseTimes = Array.from({ length: 7 }, () => {
    const t = performance.now();
    JSON.parse(jsonBody);
    return performance.now() - t;
  }).sort((a, b) => a - b);
  const jsonParseMs = parseTimes[3]!;
  const binary = binaryRequest(values);
  const dir = await mkdtemp(join(tmpdir(), "inferstack-bench-binary-"));
  const binaryFile = join(dir, "request.bin");
  await writeFile(binaryFile, binary.body);
  const jsonFile = join(dir, "request.json");
  await writeFile(jsonFile, jsonBody);

  const port = await freePort();
  const target = await startTarget(
    "inferstack-image",
    process.execPath,
    ["--max-semi-space-size=8", "app/src/main.ts"],
    {
      port,
      healthPath: "/health/ready",
      env: {
        PORT: String(port),
        MODELS_DIR: join(ROOT, "scripts/bench/fixtures/models"),
        BODY_LIMIT_BYTES: String(16 * 1024 * 1024),
        LOG_LEVEL: "warn",
        WEB_CONCURRENCY: "1",
        DATABASE_URL: "",
        REDIS_URL: "",
        AUTH_MODE: "",
        MODEL_WATCH: "false",
      },
    },
  );
  const url = target.url + PATH;
  const send = {
    json: { body: jsonBody, contentType: "application/json", headers: {} as Record<string, string>, file: jsonFile },
    binary: {
      body: binary.body,
      contentType: "application/octet-stream",
      headers: { "Inference-Header-Content-Length": String(binary.headerLength) },
      file: binaryFile,
    },
  };
  const rows: BinaryRow[] = [];
  const probes: EncodingProbe[] = [];
  try {
    for (const encoding of ["json", "binary"] as const) {
      const s = send[encoding];
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": s.contentType, ...s.headers },
        body: s.body,
      });
      const features = await decodeFeatures(res.clone());
      const responseBytes = (await res.arrayBuffer()).byteLength;
      probes.push({ encoding, status: res.status, requestBytes: Buffer.byteLength(s.body), responseBytes, features });
      opts.log(
        `  ${encoding}: ${res.status}, ${Buffer.byteLength(s.body)} bytes sent, ${responseBytes} received, features ${JSON.stringify(features)}`,
      );
    }
    const [j, b] = probes;
    if (j!.status !== 200) throw new Error(`the JSON request failed: ${String(j!.features)}`);
    const served = probes.filter((p) => p.status === 200).map((p) => p.encoding);
    if (b!.status === 200) {
      const same = (j!.features as number[]).every(
        (v, i) => Math.abs(v - (b!.features as number[])[i]!) <= 1e-6 * Math.max(1, Math.abs(v)),
      );
      if (!same)
        throw new Error(
          `binary and JSON answers differ: ${JSON.stringify(j!.features)} vs ${JSON.stringify(b!.features)}`,
        );
    }
    for (const e of served) {
      const s = send[e];
      await wrk(url, "", 2, opts.warmupSeconds, { contentType: s.contentType, headers: s.headers, bodyFile: s.file });
    }
    for (const c of BINARY_CONCURRENCY) {
      // Alternate which encoding goes first so that drift on a shared machine hits both alike.
      const order = c % 2 === 0 ? served : [...served].reverse();
      for (const e of order) {
        const s = send[e];
        const cpuBefore = cpuMs(target.proc.pid!);
        const r = await wrk(url, "", c, opts.seconds, {
          pid: target.proc.pid,
          contentType: s.contentType,
          headers: s.headers,
          bodyFile: s.file,
        });
        const cpuMsPerRequest = (cpuMs(target.proc.pid!) - cpuBefore) / Math.max(1, r.requests);
        rows.push({ encoding: e, concurrency: c, cpuMsPerRequest, ...r });
        opts.log(
          `  ${e}, c=${c}: ${r.rps.toFixed(1)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, CPU ${cpuMsPerRequest.toFixed(2)} ms/request, errors ${r.errors}`,
        );
      }
    }
  } finally {
    await target.stop();
  }
  const result = { rows, probes, seconds: opts.seconds, date, loadBefore, jsonParseMs };
  return { ...result, markdown: renderBinary(result) };
}

export const SECTION_TITLE = "## Binary vs JSON tensors (scripts/bench/binary.ts)";

/** docs/benchmarks.md with this section replaced (or appended), the rest untouched. */
export function spliceSection(doc: string, markdown: string): string {
  const section = `${SECTION_TITLE}\n\n${markdown}\n`;
  const start = doc.indexOf(SECTION_TITLE);
  if (start === -1) return `${doc.trimEnd()}\n\n${section}`;
  const next = doc.indexOf("\n## ", start + SECTION_TITLE.length);
  return doc.slice(0, start) + section + (next === -1 ? "" : doc.slice(next));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 1);
  log(`binary vs JSON tensors: ${seconds}s per point`);
  const result = await run({ seconds, warmupSeconds, log });
  const docPath = join(ROOT, "docs/benchmarks.md");
  await writeFile(docPath, spliceSection(await readFile(docPath, "utf8"), result.markdown));
  log(`wrote its section of docs/benchmarks.md`);
}
