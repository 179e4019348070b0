/**
 * `npm run docs:tiers`: regenerates the generated blocks of docs/tiers.md from the offline plan of
 * every stack (inventory per component, cost by category, a Mermaid diagram), so the tier docs
 * follow the code. `--check` exits 1 instead of writing when the file is out of date.
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { parseCli, runCli } from "./lib/cli.ts";
import { formatMermaid } from "./lib/mermaid.ts";
import type { Plan } from "./lib/plan.ts";
import { money, shortType } from "./lib/plan-format.ts";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "..");
const docPath = join(root, "docs/tiers.md");

export const stacks = [
  {
    stack: "local",
    tier: "local",
    runsOn: "your Docker engine",
    handBuilt: "$0 (free hosting: Render, Railway, Hugging Face Spaces)",
  },
  {
    stack: "dev",
    tier: "free",
    runsOn: "one EC2 host (Docker over SSH)",
    handBuilt: "$32 (1× t3.small + db.t3.micro + 20 GB)",
  },
  {
    stack: "staging",
    tier: "small",
    runsOn: "ECS Fargate, RDS, ElastiCache, ALB",
    handBuilt: "$222 (2× t3.medium, db.t3.small Multi-AZ, cache.t3.micro, ALB, SaaS monitoring)",
  },
  {
    stack: "prod",
    tier: "medium",
    runsOn: "as small, Multi-AZ and autoscaled",
    handBuilt: '$682 (3× t3.large, db.m5.large Multi-AZ, cache.m5.large, 500 GB, "full stack" monitoring)',
  },
] as const;

const categories: [RegExp, string][] = [
  [/^aws:ecs\/service|^aws:ec2\/instance/, "compute"],
  [/^aws:rds\//, "database"],
  [/^aws:elasticache\//, "cache"],
  [/^aws:lb\/|^aws:alb\//, "load balancer"],
  [/^aws:ec2\/(natGateway|eip|vpcEndpoint|flowLog)/, "network"],
  [/^aws:(efs|ecr|s3|ebs)\//, "storage"],
  [/^aws:cloudwatch\/|^aws:appautoscaling\//, "logs and alarms"],
  [/^aws:secretsmanager\/|^aws:kms\//, "secrets"],
  [/^aws:route53\//, "DNS"],
];

function category(type: string, description: string): string {
  if (/Secrets Manager/.test(description)) return "secrets";
  return categories.find(([re]) => re.test(type))?.[1] ?? "other";
}

export function costByCategory(plan: Plan): [string, number][] {
  const m = new Map<string, number>();
  for (const i of plan.cost.items)
    m.set(category(i.type, i.description), (m.get(category(i.type, i.description)) ?? 0) + i.monthlyUsd);
  return [...m.entries()].filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
}

function inventory(plan: Plan): string {
  const rows = ["| component | resources |", "|---|---|"];
  const groups = new Map<string, Map<string, number>>();
  for (const r of plan.resources.filter((x) => !x.component && !x.type.startsWith("pulumi:providers:"))) {
    const parent = r.parent ? `${r.parent.split("::")[1]} (\`${shortType(r.parent.split("::")[0]!)}\`)` : "(top level)";
    const counts = groups.get(parent) ?? new Map<string, number>();
    counts.set(shortType(r.type), (counts.get(shortType(r.type)) ?? 0) + 1);
    groups.set(parent, counts);
  }
  for (const [parent, counts] of [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    rows.push(
      `| ${parent} | ${[...counts.entries()].map(([t, n]) => `${n > 1 ? `${n}× ` : ""}${t.replace(/^(aws|docker|random):/, "")}`).join(", ")} |`,
    );
  }
  return rows.join("\n");
}

function tierBlock(plan: Plan): string {
  const custom = plan.resources.filter((r) => !r.component).length;
  const byCat = costByCategory(plan);
  return [
    `**${custom} resources in ${plan.resources.length - custom} components; estimated ${money(plan.cost.total)}/month** (us-east-1 on-demand; \`npm run plan -- --stack ${plan.stack}\` lists every line item and its assumption).`,
    "",
    ...(byCat.length
      ? [
          "| cost category | USD/month |",
          "|---|--:|",
          ...byCat.map(([c, v]) => `| ${c} | ${money(v)} |`),
          `| **total** | **${money(plan.cost.total)}** |`,
          "",
        ]
      : []),
    "<details><summary>Inventory by component</summary>",
    "",
    inventory(plan),
    "",
    "</details>",
    "",
    "```mermaid",
    formatMermaid(plan),
    "```",
  ].join("\n");
}

function summaryBlock(plans: Plan[]): string {
  const rows = [
    "| stack | tier | runs on | resources | estimate (this kit) | hand-built equivalent |",
    "|---|---|---|--:|--:|---|",
  ];
  for (const s of stacks) {
    const p = plans.find((x) => x.stack === s.stack)!;
    rows.push(
      `| \`${s.stack}\` | ${s.tier} | ${s.runsOn} | ${p.resources.filter((r) => !r.component).length} | **${money(p.cost.total)}** | ${s.handBuilt} |`,
    );
  }
  return rows.join("\n");
}

export function replaceBlock(doc: string, name: string, content: string): string {
  const begin = `<!-- BEGIN GENERATED:${name} (npm run docs:tiers) -->`;
  const end = `<!-- END GENERATED:${name} -->`;
  const start = doc.indexOf(begin);
  const stop = doc.indexOf(end);
  if (start < 0 || stop < start) throw new Error(`docs/tiers.md lacks the markers of the generated block "${name}"`);
  return `${doc.slice(0, start + begin.length)}\n${content}\n${doc.slice(stop)}`;
}

/** `doc` (the text of docs/tiers.md) with every generated block rebuilt from the stacks' offline plans. */
export async function regenerate(doc: string): Promise<{ doc: string; plans: Plan[] }> {
  const plans: Plan[] = [];
  for (const s of stacks) {
    const { stdout } = await run(
      process.execPath,
      [join(root, "scripts/plan.ts"), "--stack", s.stack, "--format", "json"],
      { cwd: root, maxBuffer: 256 * 1024 * 1024 },
    );
    plans.push(JSON.parse(stdout) as Plan);
  }
  let out = replaceBlock(doc, "summary", summaryBlock(plans));
  for (const p of plans) out = replaceBlock(out, `tier-${p.stack}`, tierBlock(p));
  return { doc: out, plans };
}

if (import.meta.main) {
  runCli(async () => {
    const { values } = parseCli("npm run docs:tiers [-- --check]", { check: { type: "boolean", default: false } });
    const before = await readFile(docPath, "utf8");
    const { doc, plans } = await regenerate(before);
    if (values.check) {
      if (doc !== before) {
        process.stderr.write("docs/tiers.md is out of date: run npm run docs:tiers\n");
        return 1;
      }
      return 0;
    }
    await writeFile(docPath, doc);
    process.stdout.write(`docs/tiers.md: ${plans.map((p) => `${p.stack} ${money(p.cost.total)}`).join(", ")}\n`);
    return 0;
  });
}
