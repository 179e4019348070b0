/**
 * How many CPUs this process may use: the affinity mask (os.availableParallelism()) bounded by the
 * cgroup's CPU quota. libuv applies the quota too, but only as a whole number and only when it is
 * at least one CPU (a 0.5-CPU container reads as every core of the host), and it does not find the
 * v1 `cpu` controller where it is mounted alone; so the quota is read here, as the kernel
 * documents it: v2 `cpu.max` ("max 100000" or "<quota> <period>") on the process's cgroup and
 * every ancestor, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1 = none).
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { posix } from "node:path";

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** The cgroup directory and its ancestors up to the mount point, deepest first. */
function lineage(mount: string, cgroupPath: string): string[] {
  const dirs: string[] = [];
  // Inside a container the cgroup's own directory is usually the mount's root, so paths from
  // /proc/self/cgroup that do not exist there just fall through to the root.
  for (let p = posix.normalize(`/${cgroupPath}`); ; p = posix.dirname(p)) {
    dirs.push(posix.join(mount, p));
    if (p === "/") return dirs;
  }
}

/** CPUs the cgroup quota allows (fractional, e.g. 0.5), or undefined without a quota. */
export function cgroupCpuQuota(
  root = "/sys/fs/cgroup",
  procSelfCgroup = read("/proc/self/cgroup") ?? "",
): number | undefined {
  let tightest: number | undefined;
  const consider = (cpus: number) => {
    if (Number.isFinite(cpus) && cpus > 0 && (tightest === undefined || cpus < tightest)) tightest = cpus;
  };
  for (const line of procSelfCgroup.split("\n")) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (controllers === "") {
      for (const dir of lineage(root, path)) {
        const [quota, period] = (read(`${dir}/cpu.max`) ?? "max").split(/\s+/);
        if (quota !== "max") consider(Number(quota) / Number(period));
      }
    } else if (controllers!.split(",").includes("cpu")) {
      for (const mount of [`${root}/${controllers}`, `${root}/cpu`, `${root}/cpu,cpuacct`]) {
        for (const dir of lineage(mount, path)) {
          const quota = Number(read(`${dir}/cpu.cfs_quota_us`));
          if (quota > 0) consider(quota / Number(read(`${dir}/cpu.cfs_period_us`)));
        }
      }
    }
  }
  return tightest;
}

/** Whole CPUs this process may use, at least 1: one serving process per CPU. */
export function usableCpus(): number {
  const cpus = availableParallelism();
  const quota = cgroupCpuQuota();
  return quota === undefined ? cpus : Math.max(1, Math.min(cpus, Math.floor(quota)));
}

/** Processes to run: WEB_CONCURRENCY when set (> 0), else one per usable CPU. */
export function processCount(webConcurrency: number): number {
  return webConcurrency > 0 ? webConcurrency : usableCpus();
}
