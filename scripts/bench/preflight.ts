/**
 * The programs `npm run bench` runs besides this project, checked before any measurement (a
 * missing one would otherwise end the run part-way with `spawn wrk ENOENT`). Where it may (root
 * or passwordless sudo, with apt-get) it installs the Debian packages; anywhere else it exits with
 * one line naming what is missing and the command that installs it.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

const PYTHON = "/usr/bin/python3";

/** program or Python module → the Debian package that provides it. */
const programs: Record<string, string> = { wrk: "wrk", taskset: "util-linux", chrt: "util-linux" };
const pythonModules: Record<string, string> = {
  fastapi: "python3-fastapi",
  uvicorn: "python3-uvicorn",
  sklearn: "python3-sklearn",
  numpy: "python3-numpy",
};

function onPath(program: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** What is missing, as `{ name: package }`: programs by name, Python modules as `python3 <module>`. */
export function missingBenchTools(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const missing: Record<string, string> = {};
  for (const [program, pkg] of Object.entries(programs)) if (!onPath(program, env)) missing[program] = pkg;
  const probe = spawnSync(
    PYTHON,
    [
      "-c",
      "import importlib.util, sys\nprint(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))",
      ...Object.keys(pythonModules),
    ],
    { encoding: "utf8", env },
  );
  const absent = probe.status === 0 ? probe.stdout.trim().split(/\s+/).filter(Boolean) : Object.keys(pythonModules);
  for (const module of absent) missing[`python3 ${module}`] = pythonModules[module]!;
  return missing;
}

function asRoot(env: NodeJS.ProcessEnv): string[] | undefined {
  if (!onPath("apt-get", env)) return undefined;
  if (process.getuid?.() === 0) return [];
  return onPath("sudo", env) && spawnSync("sudo", ["-n", "true"], { stdio: "ignore", env }).status === 0
    ? ["sudo", "-n"]
    : undefined;
}

/** Returns when every tool is there (installing them where it may); otherwise exits 1 with one line. */
export function benchPreflight(log: (line: string) => void, env: NodeJS.ProcessEnv = process.env): void {
  let missing = missingBenchTools(env);
  const packages = () => [...new Set(Object.values(missing))];
  if (Object.keys(missing).length === 0) return;
  const prefix = asRoot(env);
  if (prefix) {
    log(`bench: installing ${packages().join(" ")}`);
    const apt = (...args: string[]) => {
      const argv = [...prefix, "apt-get", ...args];
      const r = spawnSync(argv[0]!, argv.slice(1), {
        encoding: "utf8",
        env: { ...env, DEBIAN_FRONTEND: "noninteractive" },
      });
      if (r.status !== 0) process.stderr.write(r.stderr);
    };
    apt("update", "-qq");
    apt("install", "-y", "-qq", "--no-install-recommends", ...packages());
    missing = missingBenchTools(env);
    if (Object.keys(missing).length === 0) return;
  }
  process.stderr.write(
    `bench: missing ${Object.keys(missing).join(", ")}; install them with: sudo apt-get install -y --no-install-recommends ${packages().join(" ")}\n`,
  );
  process.exit(1);
}
