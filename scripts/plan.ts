/**
 * `npm run plan -- --stack <s> [--format text|json|markdown|mermaid]`: the stack's resources
 * grouped by component and its monthly cost, offline (Pulumi mocks, no credentials, no network).
 * `--root <dir>` plans another checkout (used by plan:diff for the base revision).
 */
import { resolve } from "node:path";
import { parseCli, runCli, UsageError } from "./lib/cli.ts";
import { formatMermaid } from "./lib/mermaid.ts";
import { buildPlan } from "./lib/plan.ts";
import { formatJson, formatMarkdown, formatText } from "./lib/plan-format.ts";

const usage = "npm run plan -- --stack <local|dev|staging|prod> [--format text|json|markdown|mermaid]";
const formats = { text: formatText, json: formatJson, markdown: formatMarkdown, mermaid: formatMermaid } as const;

runCli(async () => {
  const { values } = parseCli(usage, {
    stack: { type: "string", short: "s" },
    format: { type: "string", short: "f", default: "text" },
    root: { type: "string" },
  });
  if (!values.stack) throw new UsageError(`--stack is required\n\n${usage}`);
  const format = values.format as keyof typeof formats;
  if (!(format in formats))
    throw new UsageError(`--format must be one of ${Object.keys(formats).join(", ")} (got "${values.format}")`);
  const plan = await buildPlan(resolve(values.root ?? process.cwd()), values.stack);
  process.stdout.write(`${formats[format](plan)}\n`);
});
