/**
 * The difference between two plans of one stack: resources added, removed and changed (with each
 * changed property), and the cost delta per line item, rendered as markdown for a PR comment.
 */
import type { Plan, PlanResource } from "./plan.ts";
import { money, shortType } from "./plan-format.ts";
import { flatten } from "./properties.ts";

export interface PropertyChange {
  path: string;
  before?: unknown;
  after?: unknown;
}

export interface CostLineChange {
  item: string;
  before: number;
  after: number;
}

export interface PlanDiff {
  stack: string;
  added: PlanResource[];
  removed: PlanResource[];
  changed: { resource: PlanResource; changes: PropertyChange[] }[];
  /** Stack outputs whose value changes (the cost outputs are covered by `cost`). */
  outputs: PropertyChange[];
  cost: { before: number; after: number; delta: number; lines: CostLineChange[] };
}

export function diffPlans(base: Plan | null, head: Plan): PlanDiff {
  const before = new Map((base?.resources ?? []).map((r) => [r.id, r]));
  const after = new Map(head.resources.map((r) => [r.id, r]));
  const added = head.resources.filter((r) => !before.has(r.id));
  const removed = (base?.resources ?? []).filter((r) => !after.has(r.id));
  const changed: PlanDiff["changed"] = [];
  for (const r of head.resources) {
    const old = before.get(r.id);
    if (!old) continue;
    const a = flatten(old.inputs);
    const b = flatten(r.inputs);
    const paths = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    const changes = paths
      .filter((p) => a[p] !== b[p])
      .map((p) => ({ path: p, ...(p in a ? { before: a[p] } : {}), ...(p in b ? { after: b[p] } : {}) }));
    if (r.parent !== old.parent)
      changes.unshift({ path: "(parent)", before: old.parent ?? "(stack)", after: r.parent ?? "(stack)" });
    if (changes.length) changed.push({ resource: r, changes });
  }
  // Per resource, so a resized line item shows as one change rather than a removal and an addition.
  const lineKey = (i: { resource: string; type: string }) => `${i.resource} (${shortType(i.type)})`;
  const sum = (items: { resource: string; type: string; monthlyUsd: number }[]) => {
    const m = new Map<string, number>();
    for (const i of items) m.set(lineKey(i), (m.get(lineKey(i)) ?? 0) + i.monthlyUsd);
    return m;
  };
  const oldLines = sum(base?.cost.items ?? []);
  const newLines = sum(head.cost.items);
  const lines = [...new Set([...oldLines.keys(), ...newLines.keys()])]
    .sort()
    .map((item) => ({ item, before: oldLines.get(item) ?? 0, after: newLines.get(item) ?? 0 }))
    .filter((l) => Math.abs(l.after - l.before) >= 0.005);
  const costBefore = base?.cost.total ?? 0;
  const outBefore = flatten(
    Object.fromEntries(Object.entries(base?.outputs ?? {}).filter(([k]) => k !== "estimatedMonthlyCost")),
  );
  const outAfter = flatten(
    Object.fromEntries(Object.entries(head.outputs).filter(([k]) => k !== "estimatedMonthlyCost")),
  );
  const outputs = [...new Set([...Object.keys(outBefore), ...Object.keys(outAfter)])]
    .sort()
    .filter((p) => outBefore[p] !== outAfter[p])
    .map((p) => ({
      path: p,
      ...(p in outBefore ? { before: outBefore[p] } : {}),
      ...(p in outAfter ? { after: outAfter[p] } : {}),
    }));
  return {
    stack: head.stack,
    added,
    removed,
    changed,
    outputs,
    cost: {
      before: costBefore,
      after: head.cost.total,
      delta: Math.round((head.cost.total - costBefore) * 100) / 100,
      lines,
    },
  };
}

const signed = (n: number) => `${n >= 0 ? "+" : "−"}${money(Math.abs(n))}`;
const show = (v: unknown) =>
  v === undefined
    ? "_(none)_"
    : `\`${String(typeof v === "string" ? v : JSON.stringify(v))
        .replace(/\|/g, "\\|")
        .replace(/`/g, "'")
        .slice(0, 120)}\``;
const label = (r: PlanResource) =>
  `\`${shortType(r.type)}\` **${r.name}**${r.parent ? ` (in ${r.parent.split("::")[1]})` : ""}`;

export function isEmptyDiff(d: PlanDiff): boolean {
  return d.added.length + d.removed.length + d.changed.length + d.outputs.length === 0 && d.cost.lines.length === 0;
}

export function formatDiffMarkdown(d: PlanDiff, baseLabel: string, headLabel: string): string {
  const pct =
    d.cost.before > 0 ? ` (${d.cost.delta >= 0 ? "+" : ""}${((d.cost.delta / d.cost.before) * 100).toFixed(1)}%)` : "";
  const out = [
    `### \`${d.stack}\`: ${isEmptyDiff(d) ? "no changes" : `${d.added.length} to add, ${d.changed.length} to change, ${d.removed.length} to delete`}`,
    "",
    `Estimated monthly cost: ${money(d.cost.before)} → ${money(d.cost.after)} (**${signed(d.cost.delta)}/month**${pct}) · base \`${baseLabel}\` → \`${headLabel}\``,
  ];
  if (d.added.length) out.push("", `**Added (${d.added.length})**`, "", ...d.added.map((r) => `- 🟢 ${label(r)}`));
  if (d.removed.length)
    out.push("", `**Removed (${d.removed.length})**`, "", ...d.removed.map((r) => `- 🔴 ${label(r)}`));
  if (d.changed.length) {
    out.push("", `**Changed (${d.changed.length})**`);
    for (const { resource, changes } of d.changed) {
      out.push("", `- 🟡 ${label(resource)}`, "", "  | property | before | after |", "  |---|---|---|");
      for (const c of changes.slice(0, 40)) out.push(`  | \`${c.path}\` | ${show(c.before)} | ${show(c.after)} |`);
      if (changes.length > 40) out.push(`  | … ${changes.length - 40} more | | |`);
    }
  }
  if (d.outputs.length) {
    out.push("", "**Outputs**", "", "| output | before | after |", "|---|---|---|");
    for (const c of d.outputs) out.push(`| \`${c.path}\` | ${show(c.before)} | ${show(c.after)} |`);
  }
  if (d.cost.lines.length) {
    out.push("", "**Cost changes**", "", "| resource | before | after | delta |", "|---|--:|--:|--:|");
    for (const l of d.cost.lines)
      out.push(`| ${l.item} | ${money(l.before)} | ${money(l.after)} | ${signed(l.after - l.before)} |`);
  }
  return out.join("\n");
}
