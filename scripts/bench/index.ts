/**
 * `npm run bench`: the whole benchmark in one run (about 6-7 minutes), written to
 * docs/benchmarks.md and bench-results/latest.json. Scenarios are modules of this folder; a
 * `dataplane.ts` exporting `run()` is included when present.
 *
 * BENCH_SECONDS (default 5) and BENCH_WARMUP_SECONDS (default 1) size each measurement.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import * as binary from "./binary.ts";
import * as http from "./http.ts";
import { commandVersion, ROOT } from "./lib.ts";
import { benchPreflight } from "./preflight.ts";
import * as profile from "./profile.ts";
import { type BenchReport, renderReport } from "./report.ts";
import * as session from "./session.ts";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 1);
const log = (s: string) => process.stdout.write(`${s}\n`);
benchPreflight(log);

const pkgVersion = (name: string) => {
  try {
    return (JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string })
      .version;
  } catch {
    return "?";
  }
};

const started = new Date();
const loadBefore = loadavg();
log(`bench: ${seconds}s per point, load average ${loadBefore.map((l) => l.toFixed(2)).join(" ")}`);

log("raw session.run and the threads-vs-processes measurement");
const sessionResult = await session.run(Math.max(1, Math.min(seconds, 3)));
log(
  `  session.run: ${sessionResult.runMicros[1]!.toFixed(1)} µs (1 row), ${sessionResult.runMicros[32]!.toFixed(1)} µs (32 rows)`,
);

log("HTTP: V1 predict, diabetes-regressor");
const httpResult = await http.run({ seconds, warmupSeconds, log });

log("where the time goes: both servers again under --cpu-prof (scripts/bench/profile.ts)");
let profileResult: BenchReport["profile"];
try {
  profileResult = await profile.run({ seconds, warmupSeconds, log });
} catch (err) {
  log(`  profile scenario failed: ${(err as Error).message}`);
}

const pyVersions = commandVersion("/usr/bin/python3", [
  "-c",
  "import sys, fastapi, uvicorn, sklearn, numpy; print(f'Python {sys.version.split()[0]}, FastAPI {fastapi.__version__}, uvicorn {uvicorn.__version__}, scikit-learn {sklearn.__version__}, numpy {numpy.__version__}')",
]);
const report: BenchReport = {
  date: started.toISOString(),
  durationSeconds: (Date.now() - started.getTime()) / 1000,
  secondsPerPoint: seconds,
  machine: {
    cpu: cpus()[0]?.model ?? "?",
    cores: cpus().length,
    memoryGb: totalmem() / 2 ** 30,
    loadBefore,
    loadAfter: loadavg(),
  },
  versions: {
    node: process.versions.node,
    "onnxruntime-node": pkgVersion("onnxruntime-node"),
    hono: pkgVersion("hono"),
    "@hono/node-server": pkgVersion("@hono/node-server"),
    python: pyVersions,
    wrk: commandVersion("wrk", ["-v"]).split(" [")[0] ?? "wrk",
  },
  session: sessionResult,
  http: httpResult,
  dataplane: undefined,
  ...(profileResult ? { profile: profileResult } : {}),
};
await mkdir(join(ROOT, "bench-results"), { recursive: true });
const save = async () => {
  await writeFile(join(ROOT, "bench-results/latest.json"), JSON.stringify(report, null, 2));
  await writeFile(join(ROOT, "docs/benchmarks.md"), renderReport(report));
};
// Written before the data-plane scenario so that a failure there cannot lose these results.
await save();

const dataplanePath = join(ROOT, "scripts/bench/dataplane.ts");
if (existsSync(dataplanePath)) {
  log("data plane scenario (scripts/bench/dataplane.ts)");
  try {
    const mod = (await import(dataplanePath)) as {
      run(opts: { seconds: number; warmupSeconds: number; log: (s: string) => void }): Promise<unknown>;
    };
    report.dataplane = await mod.run({ seconds, warmupSeconds, log });
  } catch (err) {
    report.dataplane = { error: String((err as Error).stack ?? err) };
    log(`  data plane scenario failed: ${(err as Error).message}`);
  }
  report.durationSeconds = (Date.now() - started.getTime()) / 1000;
  await save();
}
log("binary vs JSON tensors, image-sized input (scripts/bench/binary.ts)");
try {
  report.binary = await binary.run({ seconds, warmupSeconds, log });
} catch (err) {
  report.binary = { error: String((err as Error).stack ?? err) };
  log(`  binary vs JSON scenario failed: ${(err as Error).message}`);
}
report.durationSeconds = (Date.now() - started.getTime()) / 1000;
await save();
log(`wrote docs/benchmarks.md and bench-results/latest.json in ${report.durationSeconds.toFixed(0)} s`);
