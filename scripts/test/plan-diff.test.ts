import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Plan } from "../lib/plan.ts";
import { diffPlans, formatDiffMarkdown } from "../lib/plan-diff.ts";

// Two real revisions in a throwaway git repository (a copy of this checkout's program) that
// differ in one preset value; plan:diff must report exactly that change and its cost.
const root = fileURLToPath(new URL("../..", import.meta.url));
const exec = promisify(execFile);
let repo: string;
const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, encoding: "utf8" }).trim();

before(() => {
  repo = mkdtempSync(join(tmpdir(), "plan-diff-test-"));
  for (const path of [
    "infra",
    "scripts",
    "monitoring",
    "app",
    "models",
    "package.json",
    "tsconfig.json",
    "Pulumi.yaml",
    "Pulumi.staging.yaml",
  ]) {
    cpSync(join(root, path), join(repo, path), { recursive: true, filter: (src) => !src.includes("node_modules") });
  }
  symlinkSync(join(root, "node_modules"), join(repo, "node_modules"), "dir");
  writeFileSync(join(repo, ".gitignore"), "node_modules\n");
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base");
  // The one change: staging (tier small) runs 3 app tasks instead of 2.
  const presets = join(repo, "infra/presets.ts");
  const text = readFileSync(presets, "utf8");
  const changed = text.replace(/(small: \{[\s\S]*?app: \{ \.\.\.appDefaults, replicas: )2,/, "$13,");
  assert.notEqual(changed, text, "the preset edit applied");
  writeFileSync(presets, changed);
});
after(() => rmSync(repo, { recursive: true, force: true }));

test("plan:diff between two revisions differing in one preset value shows that change and its cost", async () => {
  const { stdout } = await exec(
    process.execPath,
    [join(root, "scripts/plan-diff.ts"), "--repo", repo, "--stack", "staging", "--base", "HEAD"],
    { cwd: repo, maxBuffer: 64 * 1024 * 1024 },
  );
  assert.match(stdout, /^<!-- inferstack-plan-diff -->/);
  assert.match(stdout, /### `staging`: 0 to add, 1 to change, 0 to delete/);
  assert.match(stdout, /🟡 `aws:ecs:Service` \*\*inferstack-staging-app\*\*/);
  assert.match(stdout, /\| `desiredCount` \| `2` \| `3` \|/);
  const changedRows = stdout.split("\n").filter((l) => /^ {2}\| `/.test(l));
  assert.equal(changedRows.length, 1, `exactly one property changes:\n${changedRows.join("\n")}`);
  // One more 0.5 vCPU / 1 GB Fargate task: (0.5 × 0.04048 + 1 × 0.004445) × 730 = $18.02.
  assert.match(stdout, /\*\*\+\$18\.02\/month\*\*/);
  assert.match(stdout, /\| inferstack-staging-app \(aws:ecs:Service\) \| \$36\.04 \| \$54\.06 \| \+\$18\.02 \|/);
  assert.equal(git("worktree", "list").split("\n").length, 1, "the base worktree is removed");
});

test("plan:diff refuses an unknown base ref with a clear message", async () => {
  await assert.rejects(
    exec(
      process.execPath,
      [join(root, "scripts/plan-diff.ts"), "--repo", repo, "--stack", "staging", "--base", "no-such-ref"],
      { cwd: repo },
    ),
    (e: { code: number; stderr: string }) => e.code === 2 && /--base: "no-such-ref" is not a commit/.test(e.stderr),
  );
});

test("diffPlans: additions, removals, parent moves and a stack that is new in the head", () => {
  const cost = (total: number) => ({ currency: "USD" as const, region: "us-east-1", total, items: [], unpriced: [] });
  const r = (id: string, inputs: Record<string, unknown>, parent?: string) => ({
    id: `t::${id}`,
    type: "t",
    name: id,
    component: false,
    inputs,
    ...(parent ? { parent } : {}),
  });
  const base: Plan = {
    stack: "s",
    tier: "small",
    resources: [r("a", { x: 1 }), r("b", { y: "1" })],
    outputs: {},
    cost: cost(10),
    standIns: [],
  };
  const head: Plan = {
    stack: "s",
    tier: "small",
    resources: [r("a", { x: 1 }, "c::p"), r("c", { z: [1] })],
    outputs: { url: "https://b", estimatedMonthlyCost: 12.5 },
    cost: cost(12.5),
    standIns: [],
  };
  base.outputs = { url: "https://a", estimatedMonthlyCost: 10 };
  const d = diffPlans(base, head);
  assert.deepEqual(
    d.added.map((x) => x.name),
    ["c"],
  );
  assert.deepEqual(
    d.removed.map((x) => x.name),
    ["b"],
  );
  assert.deepEqual(d.changed[0]?.changes, [{ path: "(parent)", before: "(stack)", after: "c::p" }]);
  assert.equal(d.cost.delta, 2.5);
  assert.deepEqual(d.outputs, [{ path: "url", before: "https://a", after: "https://b" }]);
  const fresh = diffPlans(null, head);
  assert.equal(fresh.added.length, 2);
  assert.match(formatDiffMarkdown(fresh, "main", "head"), /\$0\.00 → \$12\.50 \(\*\*\+\$12\.50\/month\*\*\)/);
});
