/**
 * Data-plane overhead: the same API process with the data plane on (API key auth, a Redis rate
 * limit too high to trigger, response cache off, prediction log on) and off (no DATABASE_URL or
 * REDIS_URL), measured alternately in one run with wrk. Target: on >= 80 % of off's throughput.
 * Afterwards every request the "on" server answered must be a row in Postgres.
 *
 * Topology: in every AWS tier Postgres and Redis run on their own hosts, so by default (2+ CPUs and
 * `taskset`; BENCH_PIN=0 turns it off) the API process gets CPU 0 to itself and wrk, Postgres and
 * Redis share the others; the local Postgres and Redis are pinned back to all CPUs afterwards.
 * Pinned, wrk runs at real-time priority where permitted: on shared CPUs, Postgres ingesting a
 * batch of the log delayed wrk itself, and the idle API (3 % of CPU 0 at c=16) was counted against
 * the data plane. On separate hosts the clients do not wait for the database's CPU.
 * Each point also reports CPU time per request (from /proc) of the API, Postgres and Redis, which
 * is steadier than throughput on a shared machine.
 * The on/off ratio is the median of per-round ratios, off and on measured back to back and in
 * alternating order (off-on, on-off, ...): this machine's speed drifts by 10-30 % within minutes,
 * which a ratio of two adjacent points cancels, and the order cancels a steady drift within a round.
 *
 * `run()` is called by scripts/bench/index.ts; `node scripts/bench/dataplane.ts` runs it alone.
 * Needs Postgres (TEST_PG_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/test), Redis
 * (BENCH_REDIS_URL, default redis://127.0.0.1:6379) and wrk. BENCH_SECONDS sizes each point.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { createKey } from "../../app/src/data/keys.ts";
import { migrate } from "../../app/src/data/migrations.ts";
import { canRunRealtime, DIABETES_INSTANCE, median, startBenchApi, wrk } from "./lib.ts";

const PG_ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const BODY = JSON.stringify({ instances: [DIABETES_INSTANCE] });
const PATH = "/v1/models/diabetes-regressor:predict";

export interface Point {
  mode: "off" | "on";
  concurrency: number;
  round: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
  /** CPU time per answered request, µs. */
  cpuUs: { api: number; postgres: number; redis: number };
}

export interface DataPlaneBenchResult {
  seconds: number;
  points: Point[];
  /** Per concurrency: medians over the rounds; `throughputRatio` is the median of per-round on/off ratios. */
  summary: Array<{
    concurrency: number;
    offRps: number;
    onRps: number;
    throughputRatio: number;
    ratioRange: [number, number];
    offP99Ms: number;
    onP99Ms: number;
    offApiCpuUs: number;
    onApiCpuUs: number;
    onPostgresCpuUs: number;
    onRedisCpuUs: number;
  }>;
  pinned: boolean;
  /** wrk ran at real-time priority (pinned runs where chrt is permitted). */
  realtime: boolean;
  /** Requests the "on" server answered 200 (warm-ups included) vs rows it wrote to `predictions`. */
  logged: { served: number; rows: number };
  markdown: string;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU time (utime + stime, µs) per pid; pids that have exited are left out. */
function cpuMicros(pids: number[]): Map<number, number> {
  const micros = new Map<number, number>();
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8")
        .replace(/^.*\) /s, "")
        .split(" ");
      micros.set(pid, (Number(fields[11]) + Number(fields[12])) * (1e6 / CLOCK_TICKS));
    } catch {
      // exited between listing and reading
    }
  }
  return micros;
}

/**
 * CPU time used since `before` by `pids` (listed again now): a pid started in between counts from
 * zero; one that exited in between took its counters with it and is left out (an undercount).
 */
function cpuMicrosSince(before: Map<number, number>, pids: number[]): number {
  let used = 0;
  for (const [pid, now] of cpuMicros(pids)) used += now - (before.get(pid) ?? 0);
  return used;
}

/** Pids whose executable name (comm) is `name`. */
function pidsNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === name) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

/** Pins every thread of the processes to `cpus` (taskset list syntax); false if not permitted. */
function pin(pids: number[], cpus: string): boolean {
  try {
    for (const pid of pids) execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function pinnable(): boolean {
  if (process.env.BENCH_PIN === "0" || availableParallelism() < 2) return false;
  try {
    execFileSync("taskset", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export async function run(
  opts: {
    seconds?: number;
    warmupSeconds?: number;
    concurrency?: number[];
    rounds?: number;
    log?: (s: string) => void;
  } = {},
): Promise<DataPlaneBenchResult> {
  const seconds = opts.seconds ?? Number(process.env.BENCH_SECONDS ?? 5);
  const warmup = opts.warmupSeconds ?? Number(process.env.BENCH_WARMUP_SECONDS ?? 1);
  const concurrencies = opts.concurrency ?? [1, 16];
  const rounds = opts.rounds ?? Number(process.env.BENCH_DATAPLANE_ROUNDS ?? 4);
  const log = opts.log ?? ((s: string) => process.stdout.write(`${s}\n`));

  const dbName = `inferstack_bench_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(PG_ADMIN_URL);
  dbUrl.pathname = `/${dbName}`;
  const databaseUrl = dbUrl.toString();
  const prefix = `inferstack-bench:${randomBytes(4).toString("hex")}:`;
  const dir = await mkdtemp(join(tmpdir(), "inferstack-dpbench-"));
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  let pinned = false;
  pool.on("error", () => {}); // DROP DATABASE ... WITH (FORCE) ends its idle connection
  try {
    await migrate(databaseUrl);
    const { key } = await createKey(pool, "bench", "bench");
    const onHeaders = { Authorization: `Bearer ${key}` };
    const cpus = availableParallelism();
    const others = `1-${cpus - 1}`;
    pinned = pinnable() && pin([...pidsNamed("postgres"), ...pidsNamed("redis-server")], others);
    const realtime = pinned && canRunRealtime();
    log(
      pinned
        ? `  pinned: API on CPU 0; wrk${realtime ? " (real-time priority)" : ""}, Postgres and Redis on CPU ${others}`
        : "  not pinned: API, wrk, Postgres and Redis share every CPU",
    );
    const apiCpus = pinned ? "0" : undefined;
    const wrkCpus = pinned ? others : undefined;
    const off = await startBenchApi({ DATABASE_URL: "", REDIS_URL: "", AUTH_MODE: "" }, apiCpus);
    const on = await startBenchApi(
      {
        DATABASE_URL: databaseUrl,
        REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        AUTH_MODE: "required",
        RATE_LIMIT_PLANS: '{"bench": 1000000000}',
        RESPONSE_CACHE: "off",
        PREDICTION_LOG_SPILL_PATH: join(dir, "spill.jsonl"),
      },
      apiCpus,
    );
    const points: Point[] = [];
    let served = 0;
    try {
      for (const concurrency of concurrencies) {
        for (let round = 1; round <= rounds; round++) {
          const pair = [
            ["off", off, {}],
            ["on", on, onHeaders],
          ] as const;
          for (const [mode, target, headers] of round % 2 === 1 ? pair : [pair[1], pair[0]]) {
            if (warmup > 0) {
              const w = await wrk(target.url + PATH, BODY, concurrency, warmup, { headers, cpus: wrkCpus, realtime });
              if (mode === "on") served += w.requests - w.errors;
            }
            const before = {
              api: cpuMicros([target.pid]),
              postgres: cpuMicros(pidsNamed("postgres")),
              redis: cpuMicros(pidsNamed("redis-server")),
            };
            const r = await wrk(target.url + PATH, BODY, concurrency, seconds, { headers, cpus: wrkCpus, realtime });
            const answered = Math.max(1, r.requests - r.errors);
            const cpuUs = {
              api: cpuMicrosSince(before.api, [target.pid]) / answered,
              postgres: cpuMicrosSince(before.postgres, pidsNamed("postgres")) / answered,
              redis: cpuMicrosSince(before.redis, pidsNamed("redis-server")) / answered,
            };
            if (mode === "on") served += r.requests - r.errors;
            points.push({
              mode,
              concurrency,
              round,
              rps: r.rps,
              p50Ms: r.p50Ms,
              p99Ms: r.p99Ms,
              requests: r.requests,
              errors: r.errors,
              cpuUs,
            });
            log(
              `  data plane ${mode.padEnd(3)} c=${String(concurrency).padStart(2)} round ${round}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99Ms.toFixed(2)} ms, errors ${r.errors}; CPU µs/request: API ${cpuUs.api.toFixed(0)}, Postgres ${cpuUs.postgres.toFixed(0)}, Redis ${cpuUs.redis.toFixed(0)}`,
            );
          }
        }
      }
    } finally {
      // SIGTERM: "on" flushes its prediction log before it exits.
      const [offExit, onExit] = await Promise.all([off.stop(), on.stop()]);
      log(`  servers stopped: off ${offExit}; on ${onExit}`);
    }
    const { rows } = await pool.query<{ n: string }>("SELECT count(*) AS n FROM predictions");
    const summary = concurrencies.map((concurrency) => {
      const of = (mode: "on" | "off") =>
        points.filter((p) => p.mode === mode && p.concurrency === concurrency).sort((a, b) => a.round - b.round);
      const offs = of("off");
      const ons = of("on");
      const ratios = ons.map((n, i) => n.rps / offs[i]!.rps);
      return {
        concurrency,
        offRps: median(offs.map((p) => p.rps)),
        onRps: median(ons.map((p) => p.rps)),
        throughputRatio: median(ratios),
        ratioRange: [Math.min(...ratios), Math.max(...ratios)] as [number, number],
        offP99Ms: median(offs.map((p) => p.p99Ms)),
        onP99Ms: median(ons.map((p) => p.p99Ms)),
        // CPU per request: less sensitive than throughput to a noisy neighbour.
        offApiCpuUs: median(offs.map((p) => p.cpuUs.api)),
        onApiCpuUs: median(ons.map((p) => p.cpuUs.api)),
        onPostgresCpuUs: median(ons.map((p) => p.cpuUs.postgres)),
        onRedisCpuUs: median(ons.map((p) => p.cpuUs.redis)),
      };
    });
    const logged = { served, rows: Number(rows[0]!.n) };
    return {
      seconds,
      points,
      summary,
      logged,
      pinned,
      realtime,
      markdown: renderMarkdown(seconds, rounds, summary, points, logged, pinned, realtime),
    };
  } finally {
    if (pinned) pin([...pidsNamed("postgres"), ...pidsNamed("redis-server")], `0-${availableParallelism() - 1}`);
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    await admin.end();
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
        if (keys.length) await redis.del(...keys);
        cursor = next;
      } while (cursor !== "0");
    } catch {
      // Redis gone: the bench keys expire with their rate-limit windows.
    } finally {
      redis.disconnect();
    }
    await rm(dir, { recursive: true, force: true });
  }
}

function renderMarkdown(
  seconds: number,
  rounds: number,
  summary: DataPlaneBenchResult["summary"],
  points: Point[],
  logged: DataPlaneBenchResult["logged"],
  pinned: boolean,
  realtime: boolean,
): string {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
  const errors = points.reduce((s, p) => s + p.errors, 0);
  return [
    `Same API process, V1 predict on diabetes-regressor (1 instance), wrk ${seconds} s per point, ${rounds} rounds of off and on back to back (order alternating), medians over the rounds.`,
    `"On" = API-key auth (Postgres, cached), Redis rate limit (limit never reached), response cache off, prediction log to Postgres.`,
    pinned
      ? `Pinned: the API process alone on CPU 0; wrk, Postgres and Redis on the other CPUs (as in the AWS tiers, where Postgres and Redis have their own hosts)${realtime ? "; wrk at real-time priority, so Postgres ingesting log batches on its CPUs cannot delay the load" : ""}.`
      : "Not pinned: the API, wrk, Postgres and Redis share every CPU.",
    "",
    "| concurrency | off req/s | on req/s | on/off (range) | off p99 ms | on p99 ms | API CPU µs/req off → on | Postgres µs/req | Redis µs/req |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...summary.map(
      (s) =>
        `| ${s.concurrency} | ${f(s.offRps)} | ${f(s.onRps)} | ${f(s.throughputRatio * 100)} % (${f(s.ratioRange[0] * 100)}-${f(s.ratioRange[1] * 100)}) | ${f(s.offP99Ms, 2)} | ${f(s.onP99Ms, 2)} | ${f(s.offApiCpuUs)} → ${f(s.onApiCpuUs)} | ${f(s.onPostgresCpuUs)} | ${f(s.onRedisCpuUs)} |`,
    ),
    "",
    "on/off: the median of each round's on/off throughput ratio (range: lowest and highest round). CPU µs/req: utime + stime from /proc per answered request; steadier than req/s on a shared machine.",
    "",
    `Target: on >= 80 % of off: ${summary.map((s) => `${s.throughputRatio >= 0.8 ? "met" : "not met"} at c=${s.concurrency} (${f(s.throughputRatio * 100)} %)`).join(", ")}.`,
    `Errors (non-2xx or socket) over all points: ${errors}. Prediction log: ${logged.rows} rows in Postgres for ${logged.served} requests the "on" server answered with 200 (warm-ups included; wrk does not count the requests in flight when it stops, and those are logged too).`,
  ].join("\n");
}

if (import.meta.main) {
  const result = await run();
  process.stdout.write(`\n${result.markdown}\n`);
}
