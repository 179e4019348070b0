/**
 * The README's Quickstart, run as written on a fresh clone of the committed HEAD: the commands come
 * from README.md's ```sh blocks, so the two cannot drift. `npm ci`, then `npm run dev` (left running),
 * then each curl line; every answer is compared with the `# ` line(s) under it, where `...` stands
 * for the rest of an object or array and a number must match to the digits shown. `npm test` itself
 * is the suite this file belongs to, so it is the one line not run here.
 *
 * The clone runs with the environment of a user's shell: no npm_* variables and no node_modules/.bin
 * of this checkout on PATH. npm uses its cache (--prefer-offline only changes where the same files
 * come from; the lock file and integrity checks are the same).
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join, resolve, sep } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** The ```sh blocks of README.md's Quickstart section, each as a list of commands with the `# ` lines under them. */
export function quickstartBlocks(readme: string): { command: string; expected: string[] }[][] {
  const start = readme.indexOf("## Quickstart");
  assert.ok(start >= 0, "README.md has a Quickstart section");
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => {
    const commands: { command: string; expected: string[] }[] = [];
    let pending = "";
    for (const line of m[1]!.split("\n")) {
      if (line.startsWith("# ")) {
        assert.ok(commands.length > 0, `an expected output with no command above it: ${line}`);
        commands.at(-1)!.expected.push(line.slice(2));
      } else if (line.trim() !== "") {
        pending += line.endsWith("\\") ? line.slice(0, -1) : line;
        if (!line.endsWith("\\")) {
          commands.push({ command: stripComment(pending).trim(), expected: [] });
          pending = "";
        }
      }
    }
    return commands;
  });
}

/** Drops a trailing `# comment` outside quotes. */
function stripComment(line: string): string {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

const OPEN = "\u2026"; // marks "and the rest" in the parsed expectation

/** README example output → a value to compare with: `...` becomes an open end, numbers keep their digits. */
export function parseExpected(text: string): unknown {
  const marked = text
    .replace(/,\s*\.\.\.\s*([}\]])/g, `,"${OPEN}":true$1`)
    .replace(/([{[])\s*\.\.\.\s*([}\]])/g, `$1"${OPEN}":true$2`);
  // Arrays cannot hold a key: turn `"…":true` inside an array back into an element.
  const fixed = marked.replace(/("\u2026":true)(\s*\])/g, (_, _m, close) => `"${OPEN}"${close}`);
  return JSON.parse(fixed, (_key, value, context?: { source?: string }) =>
    typeof value === "number" ? { number: value, shown: context?.source ?? String(value) } : value,
  );
}

/** Where `actual` departs from `expected`, or undefined when it matches. */
export function mismatch(actual: unknown, expected: unknown, path = "$"): string | undefined {
  if (expected && typeof expected === "object" && "shown" in expected && "number" in expected) {
    const { number, shown } = expected as { number: number; shown: string };
    const decimals = shown.split(".")[1]?.length ?? 0;
    if (typeof actual !== "number") return `${path}: expected a number, got ${JSON.stringify(actual)}`;
    return Math.abs(actual - number) <= 0.5 * 10 ** -decimals + Number.EPSILON
      ? undefined
      : `${path}: ${actual} is not ${shown}`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${path}: expected an array`;
    const open = expected.at(-1) === OPEN;
    const items = open ? expected.slice(0, -1) : expected;
    if (open ? actual.length < items.length : actual.length !== items.length)
      return `${path}: ${actual.length} items, README shows ${items.length}${open ? " or more" : ""}`;
    for (const [i, item] of items.entries()) {
      const m = mismatch(actual[i], item, `${path}[${i}]`);
      if (m) return m;
    }
    return undefined;
  }
  if (expected && typeof expected === "object") {
    if (!actual || typeof actual !== "object" || Array.isArray(actual)) return `${path}: expected an object`;
    const keys = Object.keys(expected).filter((k) => k !== OPEN);
    if (!(OPEN in expected)) {
      const extra = Object.keys(actual).filter((k) => !keys.includes(k));
      if (extra.length) return `${path}: keys the README does not show: ${extra.join(", ")}`;
    }
    for (const k of keys) {
      if (!(k in actual)) return `${path}.${k}: missing`;
      const m = mismatch(
        (actual as Record<string, unknown>)[k],
        (expected as Record<string, unknown>)[k],
        `${path}.${k}`,
      );
      if (m) return m;
    }
    return undefined;
  }
  return actual === expected ? undefined : `${path}: ${JSON.stringify(actual)} is not ${JSON.stringify(expected)}`;
}

test("npm ci's engines warnings pass only where the project's Node satisfies them", () => {
  const stderr =
    "npm warn EBADENGINE Unsupported engine {\nnpm warn EBADENGINE   package: 'mermaid@12.3.0',\nnpm warn EBADENGINE   required: { node: '>=22.12.0' },\nnpm warn EBADENGINE   current: { node: 'v20.20.2', npm: '11.19.1' }\nnpm warn EBADENGINE }\nnpm warn deprecated foo@1: gone\n";
  const warnings = npmWarnings(stderr);
  assert.equal(warnings.length, 2);
  assert.equal(runsOnProjectNode(warnings[0]!, "24.21.0"), true);
  assert.equal(runsOnProjectNode(warnings[0]!, "22.11.0"), false);
  assert.equal(runsOnProjectNode(warnings[1]!, "24.21.0"), false);
});

test("the matcher is strict where the README is: extra keys, other numbers and short arrays fail", () => {
  const e = parseExpected('{"predictions":[{"label":"setosa","probabilities":{"setosa":0.9998,...}}]}');
  assert.equal(
    mismatch({ predictions: [{ label: "setosa", probabilities: { setosa: 0.99981, versicolor: 0.0002 } }] }, e),
    undefined,
  );
  assert.match(
    mismatch({ predictions: [{ label: "setosa", probabilities: { setosa: 0.999 } }] }, e)!,
    /0\.999 is not 0\.9998/,
  );
  assert.match(
    mismatch({ predictions: [{ label: "setosa", probabilities: { setosa: 0.9998 }, extra: 1 }] }, e)!,
    /keys the README does not show: extra/,
  );
  assert.match(mismatch({ predictions: [] }, e)!, /0 items/);
  assert.equal(mismatch([1, 2, 3], parseExpected("[1,2,...]")), undefined);
});

/** npm's warnings, one string per warning (an EBADENGINE block is one warning). */
export function npmWarnings(stderr: string): string[] {
  const warnings: string[] = [];
  for (const line of stderr.split("\n")) {
    const m = /^npm warn (\S+)\s?(.*)$/i.exec(line);
    if (!m) continue;
    const [, code, text] = m;
    if (code === "EBADENGINE" && !/^Unsupported engine/.test(text!) && warnings.length)
      warnings[warnings.length - 1] += ` ${text!.trim()}`;
    else warnings.push(`${code} ${text}`);
  }
  return warnings;
}

/**
 * An engines warning that only says the system Node running `npm ci` is older than a dependency
 * asks for, where the project's own Node (which runs every dependency) is new enough. The README's
 * Quickstart names these; anything else fails the test.
 */
export function runsOnProjectNode(warning: string, projectNode: string): boolean {
  const m = /^EBADENGINE Unsupported engine \{ package: '[^']+', required: \{ node: '>=(\d+)\.(\d+)\.(\d+)' \},/.exec(
    warning,
  );
  if (!m) return false;
  const [major, minor, patch] = projectNode.split(".").map(Number) as [number, number, number];
  const need = m.slice(1).map(Number) as [number, number, number];
  return major !== need[0] ? major > need[0] : minor !== need[1] ? minor > need[1] : patch >= need[2];
}

function userShellEnv(port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_|^(DATABASE_URL|REDIS_URL|PORT|MODELS_DIR|NODE_OPTIONS|NODE_TEST_CONTEXT)$/i.test(k)) env[k] = v;
  }
  env.PATH = (process.env.PATH ?? "")
    .split(delimiter)
    .filter((d) => !d.includes(`${sep}node_modules${sep}`))
    .join(delimiter);
  env.npm_config_prefer_offline = "true";
  if (port !== 8080) env.PORT = String(port);
  return env;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createServer()
      .once("error", () => done(false))
      .listen(port, () => s.close(() => done(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

/** Ends the process group this test started (npm → sh → node --watch → node). */
async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const exited = new Promise((r) => child.once("exit", r));
  process.kill(-child.pid, "SIGTERM");
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {}
  }, 10_000);
  await exited;
  clearTimeout(timer);
}

test("README Quickstart on a fresh clone: npm ci, npm run dev, and each curl answers as the README shows", {
  timeout: 600_000,
}, async (t) => {
  const clone = mkdtempSync(join(tmpdir(), "inferstack-quickstart-"));
  const servers: ChildProcess[] = [];
  t.after(async () => {
    for (const s of servers) await stopGroup(s);
    rmSync(clone, { recursive: true, force: true });
  });
  const cloned = spawnSync("git", ["clone", "--quiet", "--no-hardlinks", root, clone], { encoding: "utf8" });
  assert.equal(cloned.status, 0, cloned.stderr);

  const blocks = quickstartBlocks(readFileSync(join(clone, "README.md"), "utf8"));
  assert.equal(blocks.length, 2, "Quickstart: a block to install and start, a block of requests");
  const [setup, requests] = blocks as [(typeof blocks)[0], (typeof blocks)[0]];
  const steps = setup.flatMap(({ command }) => command.split("&&").map((c) => c.trim()));
  assert.deepEqual(steps, ["npm ci", "npm run dev", "npm test"], "the commands this test knows how to run");
  assert.ok(
    requests.length >= 2 && requests.every((r) => r.command.startsWith("curl ") && r.expected.length === 1),
    "each request shows its answer",
  );

  const projectNode = (
    JSON.parse(readFileSync(join(clone, "package.json"), "utf8")) as { devDependencies: Record<string, string> }
  ).devDependencies.node!;
  const port = (await portFree(8080)) ? 8080 : await freePort();
  const env = userShellEnv(port);
  const timings: string[] = [];

  let started = Date.now();
  const ci = spawnSync("npm", ["ci"], { cwd: clone, env, encoding: "utf8", timeout: 480_000 });
  assert.equal(ci.status, 0, `npm ci:\n${ci.stdout}\n${ci.stderr}`);
  timings.push(`npm ci ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const unexplained = npmWarnings(ci.stderr).filter((w) => !runsOnProjectNode(w, projectNode));
  assert.deepEqual(unexplained, [], "npm ci prints no warning but the engines ones the README explains");

  started = Date.now();
  const dev = spawn("npm", ["run", "dev"], { cwd: clone, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  servers.push(dev);
  let devLog = "";
  dev.stdout!.on("data", (b: Buffer) => (devLog = (devLog + b).slice(-4000)));
  dev.stderr!.on("data", (b: Buffer) => (devLog = (devLog + b).slice(-4000)));
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    assert.equal(dev.exitCode, null, `npm run dev exited:\n${devLog}`);
    assert.ok(Date.now() - started < 60_000, `npm run dev not ready in 60 s:\n${devLog}`);
    const ready = await fetch(`${base}/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  timings.push(`npm run dev ready ${((Date.now() - started) / 1000).toFixed(1)} s`);

  for (const { command, expected } of requests) {
    const line = port === 8080 ? command : command.replaceAll("localhost:8080", `localhost:${port}`);
    started = Date.now();
    const run = spawnSync("sh", ["-c", line], { cwd: clone, env, encoding: "utf8", timeout: 30_000 });
    assert.equal(run.status, 0, `${command}\n${run.stderr}`);
    timings.push(`${command.slice(0, 40)}… ${Date.now() - started} ms`);
    const problem = mismatch(JSON.parse(run.stdout), parseExpected(expected[0]!));
    assert.equal(problem, undefined, `${command}\nanswered ${run.stdout}\nREADME shows ${expected[0]}\n${problem}`);
  }
  t.diagnostic(timings.join("; "));
});
