/**
 * Do rate-limit leases pay? Two API processes on one private Redis (a redis-server of its own on a
 * free port, so its counters see nothing else), auth off (every request is one anonymous subject:
 * wrk's address), a limit never reached, response cache off, no Postgres. They differ only in
 * RATE_LIMIT_LEASE_MS: 100 (the default) and 0 (every request counted in Redis). Measured with wrk
 * in alternating rounds; per point: req/s, p50, Redis round trips per request (calls of the
 * limiter's Lua scripts, from INFO commandstats) and CPU per request of the API and of Redis.
 * The figures are in docs/data-plane.md ("Leases, measured").
 *
 * `node scripts/bench/rate-limit-leases.ts`; LEASE_BENCH_SECONDS (5) per point,
 * LEASE_BENCH_ROUNDS (4), LEASE_BENCH_CONCURRENCY (1,16). Needs redis-server and wrk.
 */
import { spawn } from "node:child_process";
import { Redis } from "ioredis";
import { cpuMicros, DIABETES_INSTANCE, freePort, median, startBenchApi, wrk } from "./lib.ts";

const seconds = Number(process.env.LEASE_BENCH_SECONDS ?? 5);
const rounds = Number(process.env.LEASE_BENCH_ROUNDS ?? 4);
const concurrencies = (process.env.LEASE_BENCH_CONCURRENCY ?? "1,16").split(",").map(Number);
const BODY = JSON.stringify({ instances: [DIABETES_INSTANCE] });
const PATH = "/v1/models/diabetes-regressor:predict";

function startApi(redisUrl: string, leaseMs: string) {
  return startBenchApi({
    DATABASE_URL: "",
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: `lease-${leaseMs}:`,
    RESPONSE_CACHE: "off",
    RATE_LIMIT_PLANS: '{"bench": 1000000000}',
    RATE_LIMIT_ANON_PLAN: "bench",
    RATE_LIMIT_LEASE_MS: leaseMs,
  });
}

const redisPort = await freePort();
const redisServer = spawn(
  "redis-server",
  ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
  { stdio: "ignore" },
);
const redisUrl = `redis://127.0.0.1:${redisPort}`;
const redis = new Redis(redisUrl);
redis.on("error", () => {}); // refused until the server listens; ioredis reconnects

/** Calls of the limiter's Lua scripts so far: one per round trip (INFO's command count also counts the commands inside them). */
async function scriptCalls(): Promise<number> {
  const info = await redis.info("commandstats");
  return [...info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

interface Point {
  lease: boolean;
  c: number;
  rps: number;
  p50Ms: number;
  roundTrips: number;
  apiUs: number;
  redisUs: number;
}
const points: Point[] = [];
const apis: Array<Awaited<ReturnType<typeof startApi>>> = [];
try {
  await redis.ping(); // queued until connected
  const withLease = await startApi(redisUrl, "100");
  apis.push(withLease);
  const without = await startApi(redisUrl, "0");
  apis.push(without);
  for (const c of concurrencies) {
    for (let round = 1; round <= rounds; round++) {
      const pair = [
        [true, withLease],
        [false, without],
      ] as const;
      for (const [lease, api] of round % 2 ? pair : [pair[1], pair[0]]) {
        await wrk(api.url + PATH, BODY, c, 1); // warm-up
        const [calls0, api0, redis0] = [await scriptCalls(), cpuMicros(api.pid), cpuMicros(redisServer.pid!)];
        const r = await wrk(api.url + PATH, BODY, c, seconds);
        const [calls1, api1, redis1] = [await scriptCalls(), cpuMicros(api.pid), cpuMicros(redisServer.pid!)];
        const n = Math.max(1, r.requests - r.errors);
        const p = {
          lease,
          c,
          rps: r.rps,
          p50Ms: r.p50Ms,
          roundTrips: (calls1 - calls0) / n,
          apiUs: (api1 - api0) / n,
          redisUs: (redis1 - redis0) / n,
        };
        points.push(p);
        console.log(
          `lease ${lease ? "100" : "  0"} ms c=${c} round ${round}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(3)} ms, errors ${r.errors}, ` +
            `${p.roundTrips.toFixed(4)} Redis round trips/request, CPU µs/request API ${p.apiUs.toFixed(0)} Redis ${p.redisUs.toFixed(1)}`,
        );
      }
    }
  }
} finally {
  await Promise.all(apis.map((api) => api.stop()));
  redis.disconnect();
  redisServer.kill("SIGTERM");
}

console.log(
  "\n| concurrency | req/s leases on/off (range) | p50 ms on / off | Redis round trips per request on / off | API CPU µs/req on / off | Redis CPU µs/req on / off |",
);
console.log("|---:|---:|---:|---:|---:|---:|");
for (const c of concurrencies) {
  const of = (lease: boolean) => points.filter((p) => p.c === c && p.lease === lease);
  const on = of(true);
  const off = of(false);
  const ratios = on.map((p, i) => p.rps / off[i]!.rps);
  const m = (ps: Point[], k: keyof Point) => median(ps.map((p) => p[k] as number));
  console.log(
    `| ${c} | ${median(ratios).toFixed(2)}x (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}) | ${m(on, "p50Ms").toFixed(2)} / ${m(off, "p50Ms").toFixed(2)} | ` +
      `${m(on, "roundTrips").toFixed(4)} / ${m(off, "roundTrips").toFixed(3)} | ${m(on, "apiUs").toFixed(0)} / ${m(off, "apiUs").toFixed(0)} | ${m(on, "redisUs").toFixed(1)} / ${m(off, "redisUs").toFixed(1)} |`,
  );
}
