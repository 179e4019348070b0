import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { costByCategory, replaceBlock, stacks } from "../docs-tiers.ts";
import type { Plan } from "../lib/plan.ts";

test("generated blocks are replaced in place and a missing marker is an error", () => {
  const doc = "intro\n<!-- BEGIN GENERATED:summary (npm run docs:tiers) -->\nold\n<!-- END GENERATED:summary -->\nouter";
  assert.equal(replaceBlock(doc, "summary", "new"), "intro\n<!-- BEGIN GENERATED:summary (npm run docs:tiers) -->\nnew\n<!-- END GENERATED:summary -->\nouter");
  assert.throws(() => replaceBlock(doc, "tier-prod", "x"), /lacks the markers of the generated block "tier-prod"/);
});

test("docs/tiers.md carries a generated block for the summary and for every stack", () => {
  const doc = readFileSync(new URL("../../docs/tiers.md", import.meta.url), "utf8");
  for (const name of ["summary", ...stacks.map((s) => `tier-${s.stack}`)]) {
    assert.match(doc, new RegExp(`<!-- BEGIN GENERATED:${name} \\(npm run docs:tiers\\) -->\\n[^]+?\\n<!-- END GENERATED:${name} -->`), name);
  }
  assert.match(doc, /```mermaid\nflowchart LR/);
});

test("cost categories group line items the way the seed guides' tables do", () => {
  const item = (type: string, description: string, monthlyUsd: number) => ({ resource: "r", type, description, monthlyUsd });
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
  assert.deepEqual(costByCategory(plan), [["compute", 36], ["network", 32.85], ["database", 23], ["secrets", 0.4]]);
});
