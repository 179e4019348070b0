/**
 * Renders a plan as text (terminal), markdown (PR comments, docs) or JSON. Resources are grouped
 * under their component (the parent chain), children sorted by type and name, so the output is
 * the same on every run.
 */
import type { Plan, PlanResource } from "./plan.ts";
import { keyProperties } from "./properties.ts";

export const money = (n: number) => `$${n.toFixed(2)}`;

/** `aws:rds/instance:Instance` → `aws:rds:Instance`; readable and still unambiguous enough. */
export function shortType(type: string): string {
  const [pkg, mod, kind] = type.split(":");
  if (!mod || !kind) return type;
  const module = mod.split("/")[0];
  return module === "index" ? `${pkg}:${kind}` : `${pkg}:${module}:${kind}`;
}

interface Node {
  resource: PlanResource;
  children: Node[];
}

export function resourceTree(plan: Plan): Node[] {
  const nodes = new Map(plan.resources.map((r) => [r.id, { resource: r, children: [] as Node[] }]));
  const roots: Node[] = [];
  for (const node of nodes.values()) {
    const parent = node.resource.parent ? nodes.get(node.resource.parent) : undefined;
    (parent ? parent.children : roots).push(node);
  }
  // Components first, then custom resources, each by id.
  const order = (a: Node, b: Node) =>
    Number(b.resource.component) - Number(a.resource.component) || (a.resource.id < b.resource.id ? -1 : 1);
  const sortRec = (list: Node[]) => {
    list.sort(order);
    for (const n of list) sortRec(n.children);
  };
  sortRec(roots);
  return roots;
}

function costByResource(plan: Plan): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of plan.cost.items)
    m.set(`${i.type}::${i.resource}`, (m.get(`${i.type}::${i.resource}`) ?? 0) + i.monthlyUsd);
  return m;
}

function header(plan: Plan): string {
  const custom = plan.resources.filter((r) => !r.component).length;
  return `stack ${plan.stack} (tier ${plan.tier}): ${custom} resources in ${plan.resources.length - custom} components, estimated ${money(plan.cost.total)}/month`;
}

export function formatText(plan: Plan): string {
  const lines = [
    header(plan),
    ...(plan.standIns?.length ? [`(stand-in values for ${plan.standIns.join(", ")}: set them before pulumi up)`] : []),
    "",
  ];
  const costs = costByResource(plan);
  const walk = (nodes: Node[], depth: number) => {
    for (const { resource: r, children } of nodes) {
      const pad = "  ".repeat(depth);
      const cost = costs.get(r.id);
      lines.push(
        `${pad}${r.component ? "▸ " : "- "}${shortType(r.type)} ${r.name}${cost ? `  ${money(cost)}/mo` : ""}`,
      );
      if (!r.component) for (const [k, v] of keyProperties(r.inputs)) lines.push(`${pad}    ${k}: ${v}`);
      walk(children, depth + 1);
    }
  };
  walk(resourceTree(plan), 0);
  lines.push("", "Outputs:");
  for (const [k, v] of Object.entries(plan.outputs))
    lines.push(`  ${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
  lines.push(
    "",
    `Monthly cost estimate (${plan.cost.currency}, ${plan.cost.region} on-demand, infra/pricing/prices.ts):`,
  );
  const width = Math.max(20, ...plan.cost.items.map((i) => `${i.resource}: ${i.description}`.length));
  for (const i of plan.cost.items) {
    lines.push(
      `  ${`${i.resource}: ${i.description}`.padEnd(width)}  ${money(i.monthlyUsd).padStart(9)}${i.assumption ? `  (${i.assumption})` : ""}`,
    );
  }
  lines.push(`  ${"total".padEnd(width)}  ${money(plan.cost.total).padStart(9)}`);
  if (plan.cost.unpriced.length) lines.push("", `Unpriced (counted as $0): ${plan.cost.unpriced.join("; ")}`);
  return lines.join("\n");
}

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

export function formatCostTable(plan: Plan): string {
  const rows = ["| resource | item | USD/month | assumption |", "|---|---|--:|---|"];
  for (const i of plan.cost.items)
    rows.push(`| \`${i.resource}\` | ${cell(i.description)} | ${money(i.monthlyUsd)} | ${cell(i.assumption ?? "")} |`);
  rows.push(`| **total** | | **${money(plan.cost.total)}** | |`);
  return rows.join("\n");
}

export function formatMarkdown(plan: Plan): string {
  const out = [
    `### ${header(plan)}`,
    ...(plan.standIns?.length
      ? ["", `_Stand-in values for ${plan.standIns.map((k) => `\`${k}\``).join(", ")}: set them before \`pulumi up\`._`]
      : []),
    "",
  ];
  const costs = costByResource(plan);
  const walk = (nodes: Node[], depth: number) => {
    for (const { resource: r, children } of nodes) {
      const pad = "  ".repeat(depth);
      const props = r.component
        ? ""
        : keyProperties(r.inputs, 8)
            .map(([k, v]) => `\`${k}=${v}\``)
            .join(" ");
      const cost = costs.get(r.id);
      out.push(
        `${pad}- ${r.component ? "**" : ""}\`${shortType(r.type)}\` ${r.name}${r.component ? "**" : ""}${cost ? ` (${money(cost)}/mo)` : ""}${props ? ` ${cell(props)}` : ""}`,
      );
      walk(children, depth + 1);
    }
  };
  out.push("<details><summary>Resources</summary>", "");
  walk(resourceTree(plan), 0);
  out.push("", "</details>", "", "#### Monthly cost estimate", "", formatCostTable(plan));
  return out.join("\n");
}

export function formatJson(plan: Plan): string {
  return JSON.stringify(plan, null, 2);
}
