/**
 * `npm run plan:diff -- --stack <s> [--stack <s2>...] --base <git-ref> [--out file]`: plans the
 * base revision (in a temporary git worktree sharing this checkout's node_modules) and the working
 * tree, and prints the difference as markdown for a pull-request comment. Offline, no secrets: it
 * also runs on pull requests from forks. Both revisions run with this checkout's dependencies
 * (under mocks a dependency bump rarely changes the inventory; a real preview would show it).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { parseCli, runCli, UsageError } from "./lib/cli.ts";
import type { Plan } from "./lib/plan.ts";
import { diffPlans, formatDiffMarkdown } from "./lib/plan-diff.ts";

const run = promisify(execFile);
const usage = "npm run plan:diff -- --stack <s> [--stack <s>...] --base <git-ref> [--out <file>]";
const planScript = resolve(import.meta.dirname, "plan.ts");
export const COMMENT_MARKER = "<!-- inferstack-plan-diff -->";

async function planOf(root: string, stack: string): Promise<Plan | null> {
  if (!existsSync(join(root, `Pulumi.${stack}.yaml`))) return null;
  try {
    const { stdout } = await run(process.execPath, [planScript, "--root", root, "--stack", stack, "--format", "json"], {
      cwd: root,
      maxBuffer: 256 * 1024 * 1024,
    });
    return JSON.parse(stdout) as Plan;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`planning ${stack} in ${root} failed: ${(e.stderr || e.message).trim()}`);
  }
}

runCli(async () => {
  const { values } = parseCli(usage, {
    stack: { type: "string", short: "s", multiple: true },
    base: { type: "string", short: "b" },
    out: { type: "string", short: "o" },
    repo: { type: "string" },
  });
  const stacks = values.stack ?? [];
  if (stacks.length === 0 || !values.base) throw new UsageError(`--stack and --base are required\n\n${usage}`);
  const repo = resolve(values.repo ?? process.cwd());
  const { stdout: top } = await run("git", ["rev-parse", "--show-toplevel"], { cwd: repo }).catch(() => {
    throw new Error(`${repo} is not inside a git repository`);
  });
  const root = top.trim();
  const baseSha = (
    await run("git", ["rev-parse", "--verify", `${values.base}^{commit}`], { cwd: root }).catch(() => {
      throw new UsageError(
        `--base: "${values.base}" is not a commit in ${root} (fetch it first: git fetch origin ${values.base})`,
      );
    })
  ).stdout.trim();

  const worktree = await mkdtemp(join(tmpdir(), "inferstack-base-"));
  try {
    await run("git", ["worktree", "add", "--detach", worktree, baseSha], { cwd: root });
    await symlink(join(root, "node_modules"), join(worktree, "node_modules"), "dir");
    const sections = [COMMENT_MARKER, `## Offline plan diff`, ""];
    let failed = false;
    for (const stack of stacks) {
      try {
        const [base, head] = [await planOf(worktree, stack), await planOf(root, stack)];
        if (!head) throw new Error(`Pulumi.${stack}.yaml is missing in the working tree`);
        sections.push(
          formatDiffMarkdown(diffPlans(base, head), `${values.base} (${baseSha.slice(0, 7)})`, "working tree"),
          "",
        );
      } catch (err) {
        failed = true;
        sections.push(`### \`${stack}\`: plan failed`, "", "```", (err as Error).message.slice(0, 4000), "```", "");
      }
    }
    sections.push(
      "<sub>Prices: us-east-1 on-demand from infra/pricing/prices.ts; usage assumptions are stated per line item in `npm run plan`.</sub>",
    );
    const markdown = sections.join("\n");
    if (values.out) await writeFile(values.out, `${markdown}\n`);
    process.stdout.write(`${markdown}\n`);
    return failed ? 1 : 0;
  } finally {
    await run("git", ["worktree", "remove", "--force", worktree], { cwd: root }).catch(() => undefined);
    await rm(worktree, { recursive: true, force: true });
    await run("git", ["worktree", "prune"], { cwd: root }).catch(() => undefined);
  }
});
