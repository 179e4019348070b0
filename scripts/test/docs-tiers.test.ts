import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { costByCategory, regenerate, replaceBlock, stacks } from "../docs-tiers.ts";
import type { Plan } from "../lib/plan.ts";

test("generated blocks are replaced in place and a missing marker is an error", () => {
  const doc =
    "intro\n<!-- BEGIN GENERATED:summary (npm run docs:tiers) -->\nold\n<!-- END GENERATED:summary -->\nouter";
  assert.equal(
    replaceBlock(doc, "summary", "new"),
    "intro\n<!-- BEGIN GENERATED:summary (npm run docs:tiers) -->\nnew\n<!-- END GENERATED:summary -->\nouter",
  );
  assert.throws(() => replaceBlock(doc, "tier-prod", "x"), /lacks the markers of the generated block "tier-prod"/);
});

test("docs/tiers.md carries a generated block for the summary and for every stack", () => {
  const doc = readFileSync(new URL("../../docs/tiers.md", import.meta.url), "utf8");
  for (const name of ["summary", ...stacks.map((s) => `tier-${s.stack}`)]) {
    assert.match(
      doc,
      new RegExp(`<!-- BEGIN GENERATED:${name} \\(npm run docs:tiers\\) -->\\n[^]+?\\n<!-- END GENERATED:${name} -->`),
      name,
    );
  }
  assert.match(doc, /```mermaid\nflowchart LR/);
});

test("docs/tiers.md is what `npm run docs:tiers` makes of the code today", async () => {
  const committed = readFileSync(new URL("../../docs/tiers.md", import.meta.url), "utf8");
  const { doc } = await regenerate(committed);
  const lines = [committed.split("\n"), doc.split("\n")] as const;
  const at = lines[0].findIndex((line, i) => line !== lines[1][i]);
  assert.ok(
    doc === committed,
    `docs/tiers.md is out of date: run npm run docs:tiers (first difference at line ${at + 1}:\n- ${lines[0][at]}\n+ ${lines[1][at]})`,
  );
});

test("cost categories group line items the way hand-built cost tables do", () => {
  const item = (type: string, description: string, monthlyUsd: number) => ({
    resource: "r",
    type,
    description,
    monthlyUsd,
  });
  const plan = {
    cost: {
      items: [
        item("aws:ecs/service:Service", "Fargate", 36),
        item("aws:rds/instance:Instance", "RDS PostgreSQL", 23),
        item("aws:rds/instance:Instance", "Secrets Manager secret (RDS-managed master password)", 0.4),
        item("aws:ec2/natGateway:NatGateway", "NAT gateway hours", 32.85),
        item("docker:index/container:Container", "Docker container", 0),
      ],
    },
  } as unknown as Plan;
  assert.deepEqual(costByCategory(plan), [
    ["compute", 36],
    ["network", 32.85],
    ["database", 23],
    ["secrets", 0.4],
  ]);
});

/** Edges of one generated diagram as `from label --> to label`, the labels' first lines. */
function diagramEdgesOf(doc: string, stack: string): Set<string> {
  const block = doc.slice(
    doc.indexOf(`<!-- BEGIN GENERATED:tier-${stack} `),
    doc.indexOf(`<!-- END GENERATED:tier-${stack} -->`),
  );
  const labels = new Map([...block.matchAll(/^\s*(n\d+|internet)\[?\(?\(?"([^"<]+)/gm)].map((m) => [m[1]!, m[2]!]));
  return new Set(
    [...block.matchAll(/^\s*(\w+) --> (\w+)$/gm)].map(
      (m) => `${labels.get(m[1]!) ?? m[1]} --> ${labels.get(m[2]!) ?? m[2]}`,
    ),
  );
}

test("the generated diagrams draw traffic the way it flows", () => {
  const doc = readFileSync(new URL("../../docs/tiers.md", import.meta.url), "utf8");
  const local = diagramEdgesOf(doc, "local");
  for (const edge of [
    "Internet --> inferstack-edge",
    "inferstack-edge --> inferstack-app-1",
    "inferstack-edge --> inferstack-app-2",
    "inferstack-app-1 --> inferstack-postgres",
    "inferstack-app-1 --> inferstack-redis",
    "inferstack-monitoring-prometheus --> inferstack-app-1",
    "inferstack-monitoring-prometheus --> inferstack-monitoring-alertmanager",
    "inferstack-monitoring-grafana --> inferstack-monitoring-prometheus",
    "inferstack-monitoring-postgres-exporter --> inferstack-postgres",
  ]) {
    assert.ok(local.has(edge), `local: ${edge} in\n${[...local].join("\n")}`);
  }
  // The edge container and the Docker network share a name: nothing but the Internet sends traffic to the proxy.
  assert.deepEqual(
    [...local].filter((e) => e.endsWith("--> inferstack-edge")),
    ["Internet --> inferstack-edge"],
  );
  for (const e of local) assert.doesNotMatch(e, /^inferstack-(postgres|redis) -->/, "databases only answer");

  const prod = diagramEdgesOf(doc, "prod");
  for (const edge of [
    "Internet --> inferstack-prod",
    "inferstack-prod --> inferstack-prod-app",
    "inferstack-prod-app --> inferstack-prod-pg",
    "inferstack-prod-app --> inferstack-prod-redis",
    "inferstack-prod-monitoring-service --> inferstack-prod-app", // Prometheus scrapes the tasks (security group rule)
  ]) {
    assert.ok(prod.has(edge), `prod: ${edge} in\n${[...prod].join("\n")}`);
  }
  assert.ok(!prod.has("inferstack-prod-app --> inferstack-prod"), "the app does not send traffic to its load balancer");
  for (const e of prod) assert.doesNotMatch(e, /^inferstack-prod-(pg|redis) -->/, "databases only answer");
});
