/**
 * A Docker engine for the image test: the one that already answers (DOCKER_HOST or the default
 * socket), else a dockerd of our own (vfs storage, no iptables, no bridge: what starts on a VM or
 * container without kernel modules), with its data under the cache folder so images survive runs.
 * Only the daemon started here is ever stopped, by its PID.
 */
import { type SpawnOptions, spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Fail unless the command exits 0 (the default). */
  check?: boolean;
  timeoutMs?: number;
}

/** Runs a command to completion, output captured; a failure names the command and shows its stderr tail. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const spawnOpts: SpawnOptions = { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, spawnOpts);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs) : undefined;
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result = { code: code ?? (signal ? 128 : 1), stdout, stderr };
      if (opts.check !== false && result.code !== 0) {
        const why = signal
          ? `killed by ${signal}${opts.timeoutMs ? ` after ${opts.timeoutMs} ms` : ""}`
          : `exit ${result.code}`;
        reject(new Error(`${cmd} ${args.join(" ")}: ${why}\n${tail(stderr || stdout, 40)}`));
      } else resolve(result);
    });
  });
}

export function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** The first executable of that name on PATH or in the sbin folders (root's PATH may lack them). */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/local/sbin", "/usr/sbin", "/sbin"];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * A docker CLI that builds with BuildKit: app/Dockerfile uses `RUN --mount=type=cache`, which the
 * legacy builder rejects. CLIs from 23 on build through the buildx plugin; older ones (Debian
 * bookworm's docker.io 20.10) carry BuildKit support themselves under DOCKER_BUILDKIT=1.
 */
export async function buildKitCli(): Promise<{ cli: string; how: string }> {
  const candidates = [
    ...new Set([which("docker"), "/usr/bin/docker"].filter((c): c is string => !!c && existsSync(c))),
  ];
  const seen: string[] = [];
  for (const cli of candidates) {
    if ((await run(cli, ["buildx", "version"], { check: false })).code === 0) return { cli, how: "buildx plugin" };
    const version = (await run(cli, ["version", "--format", "{{.Client.Version}}"], { check: false })).stdout.trim();
    const major = Number.parseInt(version, 10);
    if (major > 0 && major < 23) return { cli, how: `built-in BuildKit client (${version})` };
    seen.push(`${cli} ${version || "(unknown version)"}: no buildx plugin`);
  }
  throw new Error(
    `no docker CLI that can build with BuildKit (app/Dockerfile needs RUN --mount): ${seen.join("; ") || "docker not found"}. ` +
      "Install docker-buildx, or Debian's docker.io (its 20.10 CLI has BuildKit built in).",
  );
}

/** Mount points at or below a folder, deepest first (/proc/self/mountinfo, field 5, octal escapes). */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8").catch(() => "");
  return info
    .split("\n")
    .map((line) =>
      line.split(" ")[4]?.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))),
    )
    .filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

/**
 * A Debian package's executable, installed with apt-get when missing and running as root: the
 * image test must run on a fresh machine of the kind CI uses. Serialised with other apt users
 * through /tmp/apt.lock when flock exists.
 */
export async function ensureDebianTool(binary: string, pkg: string, log: (line: string) => void): Promise<string> {
  const found = which(binary);
  if (found) return found;
  if (process.getuid?.() !== 0 || !which("apt-get"))
    throw new Error(`${binary} is missing: install the Debian package ${pkg}`);
  log(`${binary} is missing: apt-get install ${pkg}`);
  const install = ["apt-get", "install", "-y", "--no-install-recommends", pkg];
  const flock = which("flock");
  const [cmd, ...args] = flock ? [flock, "/tmp/apt.lock", ...install] : install;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const first = await run(cmd!, args, { env, check: false, timeoutMs: 10 * 60_000 });
  if (first.code !== 0) {
    // A fresh machine may have no package lists yet.
    const [ucmd, ...uargs] = flock ? [flock, "/tmp/apt.lock", "apt-get", "update"] : ["apt-get", "update"];
    await run(ucmd!, uargs, { env, timeoutMs: 10 * 60_000 });
    await run(cmd!, args, { env, timeoutMs: 10 * 60_000 });
  }
  const installed = which(binary);
  if (!installed) throw new Error(`apt-get install ${pkg} brought no ${binary}`);
  return installed;
}

export interface Engine {
  /** Environment for every docker call: DOCKER_HOST of the engine, DOCKER_BUILDKIT=1. */
  env: NodeJS.ProcessEnv;
  /** Where it came from, for the report. */
  description: string;
  /** Started by this process, so its data root is ours to prune. */
  startedHere: boolean;
  /** Stops the daemon if this process started it; a no-op for an engine that was already there. */
  stop(): Promise<void>;
}

async function answers(cli: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const res = await run(cli, ["info", "--format", "{{.ServerVersion}} {{.Driver}}"], {
    env,
    check: false,
    timeoutMs: 15_000,
  });
  return res.code === 0 ? res.stdout.trim() : undefined;
}

/**
 * The engine to use. dockerd's pidfile lives in the cache folder next to its data root: dockerd
 * refuses to start while the PID in it is alive, which keeps two runs off one data root.
 */
export async function ensureEngine(cli: string, cacheDir: string, log: (line: string) => void): Promise<Engine> {
  const baseEnv = { ...process.env, DOCKER_BUILDKIT: "1" };
  const existing = await answers(cli, baseEnv);
  if (existing) {
    return {
      env: baseEnv,
      description: `existing engine ${existing} at ${process.env.DOCKER_HOST ?? "the default socket"}`,
      startedHere: false,
      stop: async () => {},
    };
  }
  if (process.getuid?.() !== 0)
    throw new Error(`no Docker engine answers, and starting dockerd needs root (running as uid ${process.getuid?.()})`);
  const dockerd = await ensureDebianTool("dockerd", "docker.io", log);

  // exec-root holds unix sockets, whose paths must stay short: a fresh folder under /tmp.
  const runDir = await mkdtemp(path.join(tmpdir(), "inferstack-dockerd-"));
  const socket = path.join(runDir, "docker.sock");
  const logFile = path.join(runDir, "dockerd.log");
  const dataRoot = path.join(cacheDir, "docker");
  const args = [
    "--storage-driver=vfs",
    "--iptables=false",
    "--ip6tables=false",
    "--bridge=none",
    `--data-root=${dataRoot}`,
    `--exec-root=${path.join(runDir, "exec")}`,
    `--pidfile=${path.join(cacheDir, "dockerd.pid")}`,
    `--host=unix://${socket}`,
  ];
  const out = createWriteStream(logFile);
  await new Promise((r) => out.once("open", r));
  const child = spawn(dockerd, args, { stdio: ["ignore", out, out] });
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = signal ? `signal ${signal}` : `exit ${code}`;
      resolve();
    }),
  );
  child.once("error", (err) => (exited = err.message));
  const env = { ...baseEnv, DOCKER_HOST: `unix://${socket}` };
  const stop = async (): Promise<void> => {
    if (!exited && child.pid) {
      log(`stopping dockerd (PID ${child.pid})`);
      process.kill(child.pid, "SIGTERM");
      const timer = setTimeout(() => child.pid && !exited && process.kill(child.pid, "SIGKILL"), 30_000);
      await exit;
      clearTimeout(timer);
    }
    out.close();
    // dockerd leaves its default network namespace bind-mounted under exec-root, and when it fails
    // to start, its data root bind-mounted onto itself.
    for (const dir of [runDir, dataRoot]) {
      for (const mountPoint of await mountsUnder(dir)) await run("umount", [mountPoint], { check: false });
    }
    await rm(runDir, { recursive: true, force: true });
  };
  log(`starting dockerd (PID ${child.pid}): ${args.join(" ")}`);
  const deadline = Date.now() + 60_000;
  while (!exited && Date.now() < deadline) {
    const version = await answers(cli, env);
    if (version)
      return { env, description: `dockerd ${version} started here (PID ${child.pid})`, startedHere: true, stop };
    await new Promise((r) => setTimeout(r, 500));
  }
  const reason = exited ? `dockerd exited (${exited})` : "dockerd did not answer within 60 s";
  const logText = await readFile(logFile, "utf8").catch(() => "");
  await stop();
  throw new Error(`the Docker engine could not start: ${reason}\n${tail(logText, 30)}`);
}
