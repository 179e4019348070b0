/**
 * `npm run rollback -- --stack <s> [--to <update>] [--yes] [--preview-only] [--list]`: returns a
 * stack to an earlier successful update by re-deploying that update's source and config with the
 * Automation API (Pulumi has no rollback command: pulumi/pulumi#96). Needs the Pulumi CLI, the
 * stack's backend login and its cloud credentials. See docs/rollback.md.
 */
import { createInterface } from "node:readline/promises";
import { LocalWorkspace } from "@pulumi/pulumi/automation/index.js";
import { findPulumiCli, missingCliMessage } from "../tools/pulumi-shim/find-cli.mjs";
import { parseCli, runCli, UsageError } from "./lib/cli.ts";
import { identifyUpdates, RollbackRefused, type UpdateRecord } from "./lib/rollback-decision.ts";
import { type RollbackStack, type RollbackWorkspace, rollback } from "./lib/rollback-run.ts";

const usage =
  "npm run rollback -- --stack <s> [--to <ref|version|start time|commit>] [--yes] [--preview-only] [--list]";

const workspace: RollbackWorkspace = {
  selectStack: async (args) => (await LocalWorkspace.selectStack(args)) as unknown as RollbackStack,
};

runCli(async () => {
  const { values } = parseCli(usage, {
    stack: { type: "string", short: "s" },
    to: { type: "string" },
    yes: { type: "boolean", short: "y", default: false },
    "preview-only": { type: "boolean", default: false },
    list: { type: "boolean", default: false },
  });
  if (!values.stack) throw new UsageError(`--stack is required\n\n${usage}`);
  // Checked first: the Automation API would otherwise fail inside its version probe, with the
  // shim's message wrapped twice in a CommandError.
  if (!findPulumiCli()) throw new Error(missingCliMessage);
  const repo = process.cwd();
  if (values.list) {
    const stack = await workspace.selectStack({ stackName: values.stack, workDir: repo });
    for (const u of identifyUpdates((await stack.history(undefined, undefined, false)) as UpdateRecord[])) {
      console.log(
        `${u.ref.padEnd(24)} ${u.record.kind.padEnd(8)} ${u.record.result.padEnd(10)} ${(u.commit ?? "-").slice(0, 12).padEnd(12)} ${u.record.message ?? ""}`,
      );
    }
    return 0;
  }
  const rl = process.stdin.isTTY ? createInterface({ input: process.stdin, output: process.stdout }) : undefined;
  try {
    const outcome = await rollback(workspace, {
      stack: values.stack,
      ...(values.to ? { to: values.to } : {}),
      yes: values.yes,
      previewOnly: values["preview-only"],
      repo,
      log: (line) => console.log(line),
      confirm: async (question) => {
        if (!rl) throw new UsageError("no terminal to confirm on: pass --yes to roll back non-interactively");
        return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
      },
    });
    return outcome.status === "declined" ? 3 : 0;
  } catch (err) {
    if (err instanceof RollbackRefused) throw new Error(`rollback refused: ${err.message}`);
    throw err;
  } finally {
    rl?.close();
  }
});
