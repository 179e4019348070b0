// scripts/test-setup.sh, the step `npm test` runs first: it lists every program the tests spawn,
// and where it may not install one it stops at once with the one command to run.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { withoutRoot } from "./without-root.ts";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const script = join(root, "scripts/test-setup.sh");
const listed = new Set(
  [...readFileSync(script, "utf8").matchAll(/^\s+"([a-z0-9_.:-]+)\s+[a-z0-9.-]+\s/gm)].map((m) => m[1]!),
);
// Programs every Debian system has (coreutils, util-linux, mount, tar, the shell), npm itself, and
// sudo, which the bench preflight uses only where it is there.
const baseSystem = new Set(["sh", "id", "chmod", "chroot", "tar", "taskset", "chrt", "umount", "sudo", "npm"]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name));
}

test("every program the tests and scripts spawn by name is in the setup's one list", () => {
  const files = [
    ...["app", "infra", "models", "monitoring", "policy"].flatMap((a) => sources(join(root, a, "test"))),
    ...sources(join(root, "scripts")),
  ];
  const spawned = new Map<string, string>();
  for (const file of files) {
    for (const m of readFileSync(file, "utf8").matchAll(
      /\b(?:spawn|spawnSync|execFile|execFileSync|startDaemon|run)\(\s*"([a-z0-9_.-]+)"/g,
    )) {
      spawned.set(m[1]!, file.slice(root.length + 1));
    }
  }
  assert.ok(spawned.has("promtool") && spawned.has("caddy"), "the scan finds the known spawns");
  const unlisted = [...spawned].filter(([program]) => !listed.has(program) && !baseSystem.has(program));
  assert.deepEqual(unlisted, [], "add these to scripts/test-setup.sh's list with their Debian package");
  assert.ok(listed.has("python3:sklearn") && listed.has("chromium") && listed.has("debootstrap"));
});

test("without root or sudo it stops before anything else, naming the missing program and the one command", (t) => {
  // A PATH that has every program of /usr/bin except caddy and sudo; run without root.
  const bin = mkdtempSync(join(tmpdir(), "inferstack-setup-bin-"));
  t.after(() => rmSync(bin, { recursive: true, force: true }));
  chmodSync(bin, 0o755);
  for (const name of readdirSync("/usr/bin")) {
    if (name !== "caddy" && name !== "sudo") symlinkSync(join("/usr/bin", name), join(bin, name));
  }
  const argv = [...withoutRoot(), "/bin/bash", script];
  const run = spawnSync(argv[0]!, argv.slice(1), {
    encoding: "utf8",
    env: { PATH: bin, HOME: tmpdir() },
    timeout: 30_000,
  });
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /^test-setup: missing: caddy \(Debian packages: caddy\)$/m);
  assert.match(run.stderr, /^\s+sudo bash scripts\/test-setup\.sh$/m);
  assert.doesNotMatch(run.stdout + run.stderr, /starting|installing/, "nothing is started or installed first");
});

test("CI runs the same steps: .ci/run and the Test workflow call the setup, npm ci, image test and npm test in order", async () => {
  const { parse } = await import("yaml");
  const ciRun = readFileSync(join(root, ".ci/run"), "utf8");
  // Where each step's command starts a line (comments aside), in order.
  const commands = (text: string) => {
    const lines = text.split("\n").map((l) => l.trim().replace(/^if (timeout \S+ \d+ )?/, ""));
    return ["bash scripts/test-setup.sh", "npm ci", "npm run image:test", "npm test"].map((c) =>
      lines.findIndex((l) => l === c || l.startsWith(`${c} `)),
    );
  };
  const inCi = commands(ciRun);
  assert.ok(
    inCi.every((i, n) => i >= 0 && (n === 0 || i > inCi[n - 1]!)),
    `.ci/run order: ${inCi}`,
  );
  assert.match(ciRun.trimEnd(), /\nnpm test$/, "npm test is last, so its summary ends the log");
  const job = (
    parse(readFileSync(join(root, ".github/workflows/test.yml"), "utf8")) as {
      jobs: { test: { steps: { run?: string }[]; services: Record<string, unknown> } };
    }
  ).jobs.test;
  const runs = job.steps
    .map((s: { run?: string }) => s.run ?? "")
    .filter(Boolean)
    .join("\n");
  const inWorkflow = commands(runs);
  assert.ok(
    inWorkflow.every((i, n) => i >= 0 && (n === 0 || i > inWorkflow[n - 1]!)),
    `workflow order: ${inWorkflow}`,
  );
  assert.deepEqual(Object.keys(job.services).sort(), ["postgres", "redis"]);
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  assert.equal(pkg.scripts.pretest, "bash scripts/test-setup.sh", "npm test runs the same setup first");
  for (const text of [ciRun, runs, readFileSync(script, "utf8")]) {
    assert.doesNotMatch(
      text.replace(/^\s*#.*$/gm, ""),
      /\bpkill\b|\bkillall\b|systemctl stop/,
      "no step ends a process it did not start",
    );
  }
});
