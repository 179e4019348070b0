/**
 * The rollback command sequence, over the subset of the Pulumi Automation API it uses (so tests
 * can drive it with a fake of Pulumi, which cannot run here) and real git:
 *
 *   history → decide → show the target → git worktree at its commit → select the stack there →
 *   restore the config it ran with → preview --diff → confirm → up with a rollback message →
 *   remove the worktree.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  configDrift,
  decideRollback,
  type HistoryConfigValue,
  type RollbackDecision,
  rollbackMessage,
  type UpdateRecord,
} from "./rollback-decision.ts";

const run = promisify(execFile);

/** What the rollback needs of `@pulumi/pulumi/automation`'s Stack. */
export interface RollbackStack {
  history(pageSize?: number, page?: number, showSecrets?: boolean): Promise<UpdateRecord[]>;
  getAllConfig(): Promise<Record<string, HistoryConfigValue>>;
  setAllConfig(config: Record<string, { value: string; secret?: boolean }>, path?: boolean): Promise<void>;
  preview(opts: {
    diff?: boolean;
    message?: string;
    onOutput?: (out: string) => void;
  }): Promise<{ stdout: string; changeSummary?: Record<string, number> }>;
  up(opts: {
    diff?: boolean;
    message?: string;
    onOutput?: (out: string) => void;
  }): Promise<{ stdout: string; summary: { result: string } }>;
}

/** What it needs of `LocalWorkspace` (a static in the real API). */
export interface RollbackWorkspace {
  selectStack(args: { stackName: string; workDir: string }): Promise<RollbackStack>;
}

export interface RollbackOptions {
  stack: string;
  to?: string;
  yes: boolean;
  previewOnly?: boolean;
  /** The git checkout whose history holds the deployed commits. */
  repo: string;
  /** Asked before `up` unless `yes`; resolves true to go ahead. */
  confirm: (question: string) => Promise<boolean>;
  log: (line: string) => void;
}

export interface RollbackOutcome {
  decision: RollbackDecision;
  status: "rolled-back" | "previewed" | "declined";
  message: string;
  configRestored: string[];
}

async function commitExistsFn(repo: string, shas: string[]): Promise<(sha: string) => boolean> {
  const present = new Set<string>();
  for (const sha of new Set(shas)) {
    const ok = await run("git", ["cat-file", "-e", `${sha}^{commit}`], { cwd: repo }).then(
      () => true,
      () => false,
    );
    if (ok) present.add(sha);
  }
  return (sha) => present.has(sha);
}

export function describeTarget(d: RollbackDecision): string[] {
  const t = d.target;
  return [
    `current: update ${d.current.ref} (${d.current.record.result}, ${d.current.startTime}${d.current.commit ? `, commit ${d.current.commit.slice(0, 12)}` : ""})`,
    `target:  update ${t.ref}`,
    `  time:    ${t.startTime}`,
    `  commit:  ${t.commit}${t.record.environment?.["git.headName"] ? ` (${t.record.environment["git.headName"]})` : ""}`,
    `  message: ${t.record.message || "(none)"}`,
    `  image:   ${t.imageDigest ?? "(not recorded)"}`,
    ...d.warnings.map((w) => `warning: ${w}`),
  ];
}

export async function rollback(workspace: RollbackWorkspace, opts: RollbackOptions): Promise<RollbackOutcome> {
  const current = await workspace.selectStack({ stackName: opts.stack, workDir: opts.repo });
  const history = await current.history(undefined, undefined, true);
  const commits = history.map((u) => u.environment?.["git.head"]).filter((s): s is string => !!s);
  const decision = decideRollback(history, opts.to, await commitExistsFn(opts.repo, commits));
  for (const line of describeTarget(decision)) opts.log(line);
  const message = rollbackMessage(opts.stack, decision);

  const worktree = await mkdtemp(join(tmpdir(), `inferstack-rollback-${opts.stack}-`));
  try {
    await run("git", ["worktree", "add", "--detach", worktree, decision.target.commit!], { cwd: opts.repo });
    opts.log(`source restored: git worktree ${worktree} at ${decision.target.commit}`);
    // The program must run with the dependencies of its own commit: share node_modules only
    // when the lock file is unchanged, otherwise install them in the worktree.
    const sameLock = await run("git", ["diff", "--quiet", decision.target.commit!, "HEAD", "--", "package-lock.json"], {
      cwd: opts.repo,
    }).then(
      () => true,
      () => false,
    );
    if (sameLock && existsSync(join(opts.repo, "node_modules"))) {
      await symlink(join(opts.repo, "node_modules"), join(worktree, "node_modules"), "dir");
    } else if (existsSync(join(worktree, "package-lock.json"))) {
      opts.log("package-lock.json differs from the target commit's: npm ci in the worktree");
      await run("npm", ["ci", "--no-audit", "--no-fund"], { cwd: worktree, maxBuffer: 64 * 1024 * 1024 });
    }

    const target = await workspace.selectStack({ stackName: opts.stack, workDir: worktree });
    // The commit's Pulumi.<stack>.yaml is the config it ran with, unless someone set config
    // without committing: the history holds the exact values, so those win.
    const recorded = decision.target.record.config ?? {};
    const drift = configDrift(recorded, await target.getAllConfig());
    if (drift.length) {
      const restore = Object.fromEntries(
        drift.map((k) => [k, { value: recorded[k]!.value!, secret: recorded[k]!.secret === true }]),
      );
      await target.setAllConfig(restore, false);
      opts.log(`config restored from the update record (differed from the commit's stack file): ${drift.join(", ")}`);
    } else {
      opts.log(`config: the commit's Pulumi.${opts.stack}.yaml matches what update ${decision.target.ref} ran with`);
    }

    opts.log("preview:");
    const preview = await target.preview({ diff: true, message, onOutput: (o) => opts.log(o.replace(/\n$/, "")) });
    if (opts.previewOnly) return { decision, status: "previewed", message, configRestored: drift };
    if (
      !opts.yes &&
      !(await opts.confirm(
        `Roll ${opts.stack} back to update ${decision.target.ref}? ${JSON.stringify(preview.changeSummary ?? {})}`,
      ))
    ) {
      opts.log("rollback declined; nothing changed");
      return { decision, status: "declined", message, configRestored: drift };
    }
    const result = await target.up({ diff: true, message, onOutput: (o) => opts.log(o.replace(/\n$/, "")) });
    if (result.summary.result !== "succeeded")
      throw new Error(`rollback update ${result.summary.result}; see the output above and \`pulumi stack history\``);
    opts.log(`rolled back: ${message}`);
    return { decision, status: "rolled-back", message, configRestored: drift };
  } finally {
    await run("git", ["worktree", "remove", "--force", worktree], { cwd: opts.repo }).catch(() => undefined);
    await rm(worktree, { recursive: true, force: true });
    await run("git", ["worktree", "prune"], { cwd: opts.repo }).catch(() => undefined);
  }
}
