import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type HistoryConfigValue, RollbackRefused, type UpdateRecord } from "../lib/rollback-decision.ts";
import { type RollbackStack, type RollbackWorkspace, rollback } from "../lib/rollback-run.ts";

// A real git repository with two deployed commits; Pulumi itself is faked (no CLI here) by a
// workspace implementing the Automation API calls the rollback makes, recording each one.
let repo: string;
const commits: string[] = [];
const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, encoding: "utf8" }).trim();

function stackFile(replicas: number) {
  return `config:\n  inferstack:tier: medium\n  inferstack:app:\n    replicas: ${replicas}\n`;
}

before(() => {
  repo = mkdtempSync(join(tmpdir(), "rollback-test-"));
  git("init", "-q", "-b", "main");
  // Same lock file in both commits: the worktree shares the checkout's node_modules.
  writeFileSync(join(repo, "package-lock.json"), "{}\n");
  writeFileSync(join(repo, ".gitignore"), "node_modules\n");
  mkdirSync(join(repo, "node_modules"));
  git("add", "package-lock.json", ".gitignore");
  for (const replicas of [3, 5]) {
    writeFileSync(join(repo, "Pulumi.prod.yaml"), stackFile(replicas));
    git("add", "Pulumi.prod.yaml");
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", `replicas ${replicas}`);
    commits.push(git("rev-parse", "HEAD"));
  }
});
after(() => rmSync(repo, { recursive: true, force: true }));

function history(): UpdateRecord[] {
  const cfg = (replicas: number): Record<string, HistoryConfigValue> => ({
    "inferstack:tier": { value: "medium", secret: false },
    "inferstack:app": { value: JSON.stringify({ replicas }), secret: false, object: true },
  });
  const entry = (startTime: string, sha: string, result: string, replicas: number, message: string): UpdateRecord => ({
    version: 0,
    kind: "update",
    startTime,
    endTime: startTime,
    message,
    result,
    config: cfg(replicas),
    environment: { "git.head": sha, "git.dirty": "false", "exec.kind": "auto.local" },
  });
  return [
    entry("2026-11-22T12:00:00Z", commits[1]!, "succeeded", 5, "deploy replicas 5"),
    entry("2026-11-21T12:00:00Z", commits[0]!, "succeeded", 3, `deploy replicas 3 image sha256:${"a".repeat(64)}`),
  ];
}

interface Call {
  op: string;
  workDir: string;
  detail?: unknown;
}

function fakeWorkspace(
  opts: { records?: UpdateRecord[]; upResult?: string; liveConfig?: Record<string, HistoryConfigValue> } = {},
) {
  const calls: Call[] = [];
  const workspace: RollbackWorkspace = {
    async selectStack({ stackName, workDir }) {
      const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: workDir, encoding: "utf8" }).trim();
      const sharedModules = lstatSync(join(workDir, "node_modules")).isSymbolicLink();
      calls.push({
        op: "selectStack",
        workDir,
        detail: {
          stackName,
          head,
          sharedModules,
          stackFile: readFileSync(join(workDir, `Pulumi.${stackName}.yaml`), "utf8"),
        },
      });
      const stack: RollbackStack = {
        async history(_size, _page, showSecrets) {
          calls.push({ op: "history", workDir, detail: { showSecrets } });
          return opts.records ?? history();
        },
        async getAllConfig() {
          calls.push({ op: "getAllConfig", workDir });
          return (
            opts.liveConfig ?? {
              "inferstack:tier": { value: "medium" },
              "inferstack:app": { value: '{"replicas": 3}', secret: false },
            }
          );
        },
        async setAllConfig(config) {
          calls.push({ op: "setAllConfig", workDir, detail: config });
        },
        async preview(o) {
          calls.push({ op: "preview", workDir, detail: o });
          o.onOutput?.("~ aws:ecs/service:Service app update [diff: ~desiredCount]\n");
          return { stdout: "", changeSummary: { update: 1, same: 80 } };
        },
        async up(o) {
          calls.push({ op: "up", workDir, detail: o });
          return { stdout: "", summary: { result: opts.upResult ?? "succeeded" } };
        },
      };
      return stack;
    },
  };
  return { workspace, calls };
}

const worktrees = () => git("worktree", "list").split("\n").length;
const base = {
  stack: "prod",
  repo: "",
  yes: true,
  log: () => undefined,
  confirm: async () => {
    throw new Error("must not ask with --yes");
  },
};

test("rolls back: history, worktree at the target commit, config, preview --diff, up with a rollback message", async () => {
  const { workspace, calls } = fakeWorkspace();
  const out = await rollback(workspace, { ...base, repo });
  assert.equal(out.status, "rolled-back");
  assert.deepEqual(
    calls.map((c) => c.op),
    ["selectStack", "history", "selectStack", "getAllConfig", "preview", "up"],
  );
  assert.equal(calls[0]!.workDir, repo);
  assert.deepEqual(calls[1]!.detail, { showSecrets: true });
  const atTarget = calls[2]!.detail as { head: string; stackFile: string; sharedModules: boolean };
  assert.equal(atTarget.sharedModules, true, "node_modules is shared when the lock file is unchanged");
  assert.equal(atTarget.head, commits[0], "the stack is selected in a worktree at the target's commit");
  assert.equal(atTarget.stackFile, stackFile(3), "so its Pulumi.prod.yaml is the one that update ran with");
  assert.notEqual(calls[2]!.workDir, repo);
  assert.equal((calls[4]!.detail as { diff: boolean }).diff, true);
  const message = (calls[5]!.detail as { message: string }).message;
  assert.match(
    message,
    new RegExp(
      `^rollback of prod to update 2026-11-21T12:00:00Z \\(commit ${commits[0]!.slice(0, 12)}\\) from update 2026-11-22T12:00:00Z \\(commit ${commits[1]!.slice(0, 12)}\\) image sha256:a{64}$`,
    ),
  );
  assert.equal(worktrees(), 1, "the temporary worktree is removed");
});

test("restores config the update ran with when it differs from the commit's stack file", async () => {
  const { workspace, calls } = fakeWorkspace({
    liveConfig: { "inferstack:tier": { value: "medium" }, "inferstack:app": { value: '{"replicas":4}' } },
  });
  const out = await rollback(workspace, { ...base, repo });
  assert.deepEqual(out.configRestored, ["inferstack:app"]);
  const set = calls.find((c) => c.op === "setAllConfig")!;
  assert.deepEqual(set.detail, { "inferstack:app": { value: '{"replicas":3}', secret: false } });
  assert.ok(calls.findIndex((c) => c.op === "setAllConfig") < calls.findIndex((c) => c.op === "preview"));
});

test("asks before up without --yes, and does nothing when declined", async () => {
  const { workspace, calls } = fakeWorkspace();
  let asked = "";
  const out = await rollback(workspace, {
    ...base,
    repo,
    yes: false,
    confirm: async (q) => {
      asked = q;
      return false;
    },
  });
  assert.equal(out.status, "declined");
  assert.match(asked, /Roll prod back to update 2026-11-21T12:00:00Z/);
  assert.ok(!calls.some((c) => c.op === "up"));
  assert.equal(worktrees(), 1);
});

test("--preview-only stops after the preview", async () => {
  const { workspace, calls } = fakeWorkspace();
  const out = await rollback(workspace, { ...base, repo, previewOnly: true });
  assert.equal(out.status, "previewed");
  assert.equal(calls.at(-1)!.op, "preview");
});

test("refuses before touching anything when the target's commit is not in the repository", async () => {
  const records = history();
  records[1]!.environment!["git.head"] = "0123456789abcdef0123456789abcdef01234567";
  const { workspace, calls } = fakeWorkspace({ records });
  await assert.rejects(
    rollback(workspace, { ...base, repo }),
    (e: Error) => e instanceof RollbackRefused && /not in this repository/.test(e.message),
  );
  assert.deepEqual(
    calls.map((c) => c.op),
    ["selectStack", "history"],
  );
});

test("a failed rollback update is an error, and the worktree is still cleaned up", async () => {
  const { workspace } = fakeWorkspace({ upResult: "failed" });
  await assert.rejects(rollback(workspace, { ...base, repo }), /rollback update failed/);
  assert.equal(worktrees(), 1);
});

test("npm run rollback without a Pulumi CLI prints one line saying so and exits 1", async () => {
  const home = mkdtempSync(join(tmpdir(), "rollback-no-cli-"));
  try {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    // What `npm run` gives the script: node_modules/.bin (with the pulumi shim) first on PATH.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: home,
      PATH: `${join(root, "node_modules/.bin")}:/usr/bin:/bin`,
    };
    delete env.PULUMI_HOME;
    delete env.PULUMI_CLI;
    const run = spawnSync(process.execPath, [join(root, "scripts/rollback.ts"), "--stack", "dev"], {
      cwd: root,
      env,
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.status, 1, run.stderr);
    assert.equal(
      run.stderr,
      "error: the Pulumi CLI is not installed: install it (https://www.pulumi.com/docs/install/) or point PULUMI_CLI at the binary\n",
    );
    assert.equal(run.stdout, "");
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
