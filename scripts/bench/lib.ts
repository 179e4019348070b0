/** Bench plumbing: child servers, readiness timing, RSS sampling and the wrk load generator. */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = new URL("../../", import.meta.url).pathname;

export interface Target {
  name: string;
  proc: ChildProcess;
  url: string;
  /** ms from spawn to the first 200 on the health URL. */
  readyMs: number;
  stop(): Promise<void>;
}

export async function startTarget(
  name: string,
  cmd: string,
  args: string[],
  opts: { port: number; healthPath: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<Target> {
  const started = performance.now();
  const proc = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${opts.port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode}: ${stderr}`);
    try {
      const r = await fetch(url + opts.healthPath);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`${name} not ready in time: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const readyMs = performance.now() - started;
  return {
    name,
    proc,
    url,
    readyMs,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once("exit", () => resolve());
        proc.kill("SIGTERM");
        setTimeout(() => proc.kill("SIGKILL"), 5_000).unref();
      }),
  };
}

/** Resident set of a process and its children (cluster workers, uvicorn) in bytes. */
export function rssBytes(pid: number): number {
  let total = 0;
  const visit = (p: number) => {
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      if (m) total += Number(m[1]) * 1024;
      const children = readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim();
      for (const c of children.split(/\s+/).filter(Boolean)) visit(Number(c));
    } catch {
      // process gone
    }
  };
  visit(pid);
  return total;
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ: the unit of /proc/<pid>/stat's utime and stime on Linux

/** CPU time (user + system) of a process and its children (cluster workers, uvicorn) in µs. */
export function cpuMicros(pid: number): number {
  let ticks = 0;
  const visit = (p: number) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      // Fields after the command (which may hold spaces) closed by ")": utime and stime are 14th and 15th.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
      const children = readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim();
      for (const c of children.split(/\s+/).filter(Boolean)) visit(Number(c));
    } catch {
      // process gone
    }
  };
  visit(pid);
  return (ticks / CLOCK_TICKS_PER_SECOND) * 1e6;
}

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  errors: number;
  requests: number;
  maxRssMb: number;
  /**
   * Server CPU (user + system) per answered request, in µs, when a pid was given: steadier than
   * req/s on a shared machine, where other work takes turns on the same cores.
   */
  cpuUsPerRequest?: number;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : n * 60_000;
}

let scriptDir: string | undefined;
const scripts = new Map<string, string>();

export interface WrkOptions {
  /** Sample this process's RSS during the run (LoadResult.maxRssMb). */
  pid?: number;
  /** Request headers besides Content-Type. */
  headers?: Record<string, string>;
  /** Content-Type of the body (default application/json). */
  contentType?: string;
  /** Send this file's bytes as the body instead of `body` (binary bodies: Lua strings hold any byte). */
  bodyFile?: string;
  /** Run wrk on these CPUs (taskset list syntax). */
  cpus?: string;
  /**
   * Run wrk at real-time priority (SCHED_FIFO, via chrt) where permitted, so processes sharing its
   * CPUs cannot delay the load itself. Linux keeps 5 % of each CPU for the others.
   */
  realtime?: boolean;
}

let realtimePermitted: boolean | undefined;
export function canRunRealtime(): boolean {
  realtimePermitted ??= spawnSync("chrt", ["-f", "1", "true"], { stdio: "ignore" }).status === 0;
  return realtimePermitted;
}

/** wrk, closed loop: `connections` clients each with one request outstanding, for `seconds`. */
export async function wrk(
  url: string,
  body: string,
  connections: number,
  seconds: number,
  { pid, headers = {}, cpus, realtime = false, contentType = "application/json", bodyFile }: WrkOptions = {},
): Promise<LoadResult> {
  const bodyLua = bodyFile
    ? `local f = assert(io.open(${JSON.stringify(bodyFile)}, "rb"))\nwrk.body = f:read("*a")\nf:close()`
    : `wrk.body = ${JSON.stringify(body)}`;
  const lines = [
    `wrk.method = "POST"`,
    bodyLua,
    `wrk.headers["Content-Type"] = ${JSON.stringify(contentType)}`,
    ...Object.entries(headers).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`),
  ];
  const lua = `${lines.join("\n")}\n`;
  let script = scripts.get(lua);
  if (!script) {
    scriptDir ??= await mkdtemp(join(tmpdir(), "inferstack-bench-"));
    script = join(scriptDir, `post-${scripts.size}.lua`);
    await writeFile(script, lua);
    scripts.set(lua, script);
  }
  let maxRss = 0;
  const cpuBefore = pid ? cpuMicros(pid) : 0;
  const sampler = pid
    ? setInterval(() => {
        maxRss = Math.max(maxRss, rssBytes(pid));
      }, 200)
    : undefined;
  const out = await new Promise<string>((resolve, reject) => {
    const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "--timeout", "5s", "-s", script!, url];
    const command = [
      ...(realtime && canRunRealtime() ? ["chrt", "-f", "1"] : []),
      ...(cpus ? ["taskset", "-c", cpus] : []),
      "wrk",
      ...args,
    ];
    const p = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    p.on("error", reject); // wrk (or taskset) missing
    p.stdout.on("data", (d: Buffer) => (text += d.toString()));
    p.stderr.on("data", (d: Buffer) => (text += d.toString()));
    p.on("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk failed (${code}): ${text}`))));
  });
  clearInterval(sampler);
  const cpuUsed = pid ? cpuMicros(pid) - cpuBefore : 0;
  const pct = (p: string) => toMs(new RegExp(`^\\s*${p}%\\s+(\\S+)`, "m").exec(out)?.[1] ?? "NaN");
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock ? sock.slice(1).reduce((n, v) => n + Number(v), 0) : 0;
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50Ms: pct("50"),
    p90Ms: pct("90"),
    p99Ms: pct("99"),
    errors: non2xx + sockErrors,
    requests,
    maxRssMb: maxRss / 1024 / 1024,
    ...(pid && requests > 0 ? { cpuUsPerRequest: cpuUsed / requests } : {}),
  };
}

export function commandVersion(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return (r.stdout || r.stderr || "").trim().split("\n")[0] ?? "";
}

export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A valid diabetes-regressor instance (clinical units, inside every feature's range). */
export const DIABETES_INSTANCE = {
  age: 50,
  sex: 1,
  bmi: 25.3,
  bp: 90,
  s1: 190,
  s2: 115,
  s3: 50,
  s4: 4,
  s5: 4.6,
  s6: 90,
};
export const DIABETES_FEATURES = Object.keys(DIABETES_INSTANCE);
export const DIABETES_MODEL = join(ROOT, "models/diabetes-regressor/1/model.onnx");

export function predictBody(instances: number): string {
  return JSON.stringify({
    instances: Array.from({ length: instances }, (_, i) => ({ ...DIABETES_INSTANCE, age: 30 + (i % 40) })),
  });
}

/**
 * Starts `node app/src/main.ts` (one process, bundled models, warn-level logs) with `env` on top,
 * optionally pinned to `cpus` with taskset, and resolves once /health/ready answers 200.
 */
export async function startBenchApi(env: Record<string, string>, cpus?: string) {
  const port = await freePort();
  const [command, args] = cpus
    ? ["taskset", ["-c", cpus, process.execPath, "app/src/main.ts"]]
    : [process.execPath, ["app/src/main.ts"]];
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      MODELS_DIR: "models",
      LOG_LEVEL: "warn",
      WEB_CONCURRENCY: "1",
      MODEL_WATCH: "false",
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`API exited with ${proc.exitCode}: ${stderr}`);
    if (
      (await fetch(`${url}/health/ready`).then(
        (r) => r.status,
        () => 0,
      )) === 200
    )
      break;
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`API not ready: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    pid: proc.pid!,
    stop: () =>
      new Promise<string>((resolve) => {
        if (proc.exitCode !== null) return resolve(`exit ${proc.exitCode}`);
        const started = Date.now();
        proc.once("exit", (code, signal) =>
          resolve(
            `${code === null ? `signal ${signal}` : `exit ${code}`} after ${Date.now() - started} ms${code === 0 && Date.now() - started < 5000 ? "" : `: ${stderr}`}`,
          ),
        );
        proc.kill("SIGTERM");
        setTimeout(() => proc.kill("SIGKILL"), 45_000).unref();
      }),
  };
}

export function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}
