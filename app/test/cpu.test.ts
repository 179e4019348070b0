/**
 * The CPUs the process may use, read from a real CPU cgroup with a quota (v2 cpu.max where this
 * host has a writable one, else v1 cpu.cfs_quota_us): the default process count follows the quota,
 * fractions included, where the affinity count alone would start one process per host core.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { cgroupCpuQuota } from "../src/cpu.ts";
import { ROOT, spawnMain } from "./data/support.ts";
import { FIXTURES } from "./helpers.ts";

const PERIOD_US = 100_000;

interface CpuCgroup {
  procs: string;
  remove(): void;
}

/** A CPU cgroup allowing `cpus` CPUs of bandwidth: v2 if this host has it writable, else v1. */
function cpuCgroup(cpus: number): CpuCgroup {
  const name = `inferstack-test-${randomBytes(4).toString("hex")}`;
  const quota = Math.round(cpus * PERIOD_US);
  const v2 = "/sys/fs/cgroup";
  if (
    existsSync(`${v2}/cgroup.controllers`) &&
    readFileSync(`${v2}/cgroup.controllers`, "utf8").split(/\s+/).includes("cpu")
  ) {
    const dir = `${v2}/${name}`;
    mkdirSync(dir);
    writeFileSync(`${dir}/cpu.max`, `${quota} ${PERIOD_US}`);
    return { procs: `${dir}/cgroup.procs`, remove: () => rmdirSync(dir) };
  }
  const dir = `/sys/fs/cgroup/cpu/${name}`;
  mkdirSync(dir); // no writable CPU cgroup (v2 or v1): this fails, naming the path
  writeFileSync(`${dir}/cpu.cfs_period_us`, String(PERIOD_US));
  writeFileSync(`${dir}/cpu.cfs_quota_us`, String(quota));
  return { procs: `${dir}/cgroup.procs`, remove: () => rmdirSync(dir) };
}

/** Runs `node <args>` inside the cgroup and returns its stdout. */
function inCgroup(cgroup: CpuCgroup, args: string[]): string {
  return execFileSync("sh", ["-c", `echo $$ > ${cgroup.procs} && exec "$0" "$@"`, process.execPath, ...args], {
    cwd: ROOT,
    encoding: "utf8",
  });
}

test("usable CPUs: the cgroup quota rounded down, at least one, at most the affinity count", () => {
  const affinity = availableParallelism();
  for (const [cpus, expected] of [
    [0.5, 1],
    [1.5, 1],
    [2, Math.min(2, affinity)],
    [64, affinity],
  ] as const) {
    const cgroup = cpuCgroup(cpus);
    try {
      const out = inCgroup(cgroup, [
        "--input-type=module",
        "-e",
        'const m = await import("./app/src/cpu.ts"); console.log(JSON.stringify({ quota: m.cgroupCpuQuota(), usable: m.usableCpus() }))',
      ]);
      const seen = JSON.parse(out) as { quota: number; usable: number };
      assert.equal(seen.quota, cpus, `quota of a ${cpus}-CPU cgroup`);
      assert.equal(seen.usable, expected, `usable CPUs in a ${cpus}-CPU cgroup`);
    } finally {
      cgroup.remove();
    }
  }
});

test("cgroup v2 layout (this host may be v1): the tightest cpu.max from the process's cgroup up to the root", () => {
  // The files as the kernel writes them (Documentation/admin-guide/cgroup-v2.rst, "cpu.max"):
  // an ECS task limits its slice, the container below it has no limit of its own.
  const root = mkdtempSync(join(tmpdir(), "cgroup-v2-"));
  try {
    const files: Record<string, string> = {
      "cpu.max": "max 100000\n",
      "ecstasks.slice/cpu.max": "max 100000\n",
      "ecstasks.slice/ecstasks-abc.slice/cpu.max": "150000 100000\n",
      "ecstasks.slice/ecstasks-abc.slice/docker-123.scope/cpu.max": "max 100000\n",
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(root, path, ".."), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    assert.equal(cgroupCpuQuota(root, "0::/ecstasks.slice/ecstasks-abc.slice/docker-123.scope\n"), 1.5);
    // Inside a cgroup namespace the process's own cgroup is the root: its limit, nothing above.
    writeFileSync(join(root, "cpu.max"), "50000 100000\n");
    assert.equal(cgroupCpuQuota(root, "0::/\n"), 0.5);
    assert.equal(cgroupCpuQuota(root, "0::/ecstasks.slice/ecstasks-abc.slice/docker-123.scope\n"), 0.5);
    assert.equal(cgroupCpuQuota(join(root, "none"), "0::/\n"), undefined, "no cpu controller: no quota");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("half a CPU: the API runs as one serving process by default, not one per host core", async () => {
  const cgroup = cpuCgroup(0.5);
  const child = spawnMain(
    {
      MODELS_DIR: FIXTURES,
      MODEL_POLL_INTERVAL_MS: "0",
      WEB_CONCURRENCY: "",
      DATABASE_URL: "",
      REDIS_URL: "",
      AUTH_MODE: "",
    },
    cgroup.procs,
  );
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (/"msg":"model repository loaded"/.test(out)) return resolve();
        if (child.exitCode !== null) return reject(new Error(`exited ${child.exitCode}:\n${out}`));
        setTimeout(check, 20);
      };
      check();
    });
    const listening = out.split("\n").filter((l) => l.includes('"msg":"listening; loading models"'));
    assert.equal(listening.length, 1, out);
    assert.equal(JSON.parse(listening[0]!).pid, child.pid, "the process itself serves: no supervisor, no workers");
    assert.doesNotMatch(out, /"msg":"starting worker processes"/);
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
  } finally {
    child.kill("SIGKILL");
    await exited;
    cgroup.remove();
  }
});
