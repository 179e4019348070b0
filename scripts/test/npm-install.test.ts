// What `npm ci` does on a fresh clone, decided by the real npm: the install scripts it runs
// (allowScripts in package.json), the config it reads (.npmrc) and the versions it requires.
// onnxruntime-node's postinstall downloads CUDA libraries from NuGet on linux/x64; it must never run.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const exec = promisify(execFile);
const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const npm = (...args: string[]) =>
  exec("npm", args, { cwd: root, encoding: "utf8", env: { ...process.env, npm_config_loglevel: "warn" } });

test("every dependency install script is reviewed: npm ci prints no allowScripts warning", async () => {
  const { stdout } = await npm("install-scripts", "ls");
  assert.match(stdout, /No packages with unreviewed install scripts/, stdout);
  assert.equal(pkg.allowScripts.node, true, "the `node` package's preinstall provides the project's Node 24");
});

/** Runs `npm rebuild` with a stand-in shell that records each lifecycle script instead of running it. */
async function scriptsNpmWouldRun(packages: string[], ...flags: string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "inferstack-npm-scripts-"));
  try {
    const shell = join(dir, "record.sh");
    writeFileSync(shell, `#!/bin/sh\nprintf '%s\\n' "$*" >> "${join(dir, "ran.log")}"\n`);
    chmodSync(shell, 0o755);
    await npm("rebuild", ...packages, `--script-shell=${shell}`, ...flags);
    try {
      return readFileSync(join(dir, "ran.log"), "utf8");
    } catch {
      return "";
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("npm never runs onnxruntime-node's downloader, nor the telemetry and version-check postinstalls", async () => {
  const ran = await scriptsNpmWouldRun(["onnxruntime-node", "protobufjs", "@scarf/scarf"]);
  assert.equal(ran, "", `npm ran: ${ran}`);
  // The same npm without the policy does run it: the check above can fail.
  const unguarded = await scriptsNpmWouldRun(["onnxruntime-node"], "--dangerously-allow-all-scripts");
  assert.match(unguarded, /node \.\/script\/install/);
});

test(".npmrc holds only config npm knows (no 'Unknown project config' warning)", async () => {
  const { stderr } = await npm("config", "get", "engine-strict");
  assert.doesNotMatch(stderr, /Unknown|will stop working/i, stderr);
});

test("the Node and npm versions are stated once: engines, devEngines and the README agree", () => {
  // engines: what runs `npm ci` (the system Node and an npm that honours allowScripts);
  // the project itself then runs on the Node 24 of the npm `node` package.
  assert.equal(pkg.engines.node, "^20.17.0 || >=22.9.0", "npm 11's own engines");
  assert.equal(pkg.engines.npm, ">=11.16.0", "allowScripts is honoured from npm 11.16");
  assert.deepEqual(pkg.devEngines.packageManager, { name: "npm", version: pkg.engines.npm, onFail: "error" });
  assert.match(pkg.devDependencies.node, /^24\./);
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const quickstart = readme.slice(
    readme.indexOf("## Quickstart"),
    readme.indexOf("\n## ", readme.indexOf("## Quickstart") + 1),
  );
  assert.match(quickstart, /Node 20\.17\+ or 22\.9\+ with npm 11\.16\+/);
  assert.match(quickstart, /Node 24/);
  assert.doesNotMatch(readme, /Node ≥ 20\b/);
});
