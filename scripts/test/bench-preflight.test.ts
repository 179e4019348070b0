// `npm run bench` checks its tools before measuring anything: without wrk (and without root or
// sudo to install it) it exits at once with one line naming the package and the command.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { missingBenchTools } from "../bench/preflight.ts";
import { withoutRoot } from "./without-root.ts";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** A PATH with every program of /usr/bin but these. */
function pathWithout(t: { after(fn: () => void): void }, ...absent: string[]): string {
  const bin = mkdtempSync(join(tmpdir(), "inferstack-bench-bin-"));
  t.after(() => rmSync(bin, { recursive: true, force: true }));
  chmodSync(bin, 0o755);
  for (const name of readdirSync("/usr/bin"))
    if (!absent.includes(name)) symlinkSync(join("/usr/bin", name), join(bin, name));
  return bin;
}

test("a missing program is named with its Debian package", (t) => {
  const missing = missingBenchTools({ PATH: pathWithout(t, "wrk") });
  assert.equal(missing.wrk, "wrk");
  assert.ok(!("taskset" in missing), "util-linux is there");
});

test("npm run bench without wrk, root or sudo exits 1 before measuring, with one line", (t) => {
  const bin = pathWithout(t, "wrk", "sudo");
  const argv = [...withoutRoot(), process.execPath, join(root, "scripts/bench/index.ts")];
  const started = Date.now();
  const run = spawnSync(argv[0]!, argv.slice(1), {
    cwd: root,
    encoding: "utf8",
    env: { PATH: bin, HOME: tmpdir() },
    timeout: 60_000,
  });
  assert.equal(run.status, 1, run.stderr);
  assert.equal(run.stdout, "", "nothing measured");
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, run.stderr);
  assert.match(
    lines[0]!,
    /^bench: missing wrk(, python3 \w+)*; install them with: sudo apt-get install -y --no-install-recommends wrk( python3-\w+)*$/,
  );
  assert.ok(Date.now() - started < 20_000, "at once, not after the first measurements");
});
