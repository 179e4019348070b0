import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Plan } from "../lib/plan.ts";

// Each plan runs in its own process, as `npm run plan` does (Pulumi's mock state is process-global).
const root = fileURLToPath(new URL("../..", import.meta.url));
const exec = promisify(execFile);
const plan = async (...args: string[]) =>
  exec(process.execPath, ["scripts/plan.ts", ...args], { cwd: root, maxBuffer: 64 * 1024 * 1024 });
const planJson = async (stack: string) => JSON.parse((await plan("--stack", stack, "--format", "json")).stdout) as Plan;

const types = (p: Plan) => new Set(p.resources.map((r) => r.type));
const pricedTypes = (p: Plan) => new Set(p.cost.items.filter((i) => i.monthlyUsd > 0).map((i) => i.type));

for (const stack of ["local", "dev", "staging", "prod"]) {
  test(`plan of ${stack}: resources grouped by component, priced, identical across runs`, async () => {
    // Sequential: the AWS monitoring component writes its image build context to a fixed /tmp path.
    const first = await planJson(stack);
    const second = await planJson(stack);
    assert.deepEqual(first, second, "the plan is deterministic");
    assert.equal(first.stack, stack);
    assert.ok(
      first.resources.some((r) => r.component),
      "components are listed",
    );
    assert.ok(
      first.resources.filter((r) => r.parent).length > first.resources.length / 2,
      "most resources sit inside a component",
    );
    for (const r of first.resources)
      if (r.parent)
        assert.ok(
          first.resources.some((p) => p.id === r.parent && p.component),
          `${r.id}'s parent ${r.parent} is a listed component`,
        );
    assert.deepEqual(first.cost.unpriced, [], "every priced resource has a price");
    assert.equal(
      first.outputs.estimatedMonthlyCost,
      first.cost.total,
      "the stack output (trackCost) agrees with the plan",
    );
    assert.ok(String(first.outputs.url).startsWith("https://"), "url output");
    assert.ok(!JSON.stringify(first).includes("mock-secret-"), "secrets are masked");
  });
}

test("local costs nothing; dev prices its one EC2 host and says it is free-tier eligible", async () => {
  const local = await planJson("local");
  const dev = await planJson("dev");
  assert.equal(local.tier, "local");
  assert.equal(local.cost.total, 0);
  assert.ok(types(local).has("docker:index/container:Container"));
  assert.equal(dev.tier, "free");
  assert.ok(dev.cost.total > 0 && dev.cost.total < 25, `dev costs ${dev.cost.total}`);
  const host = dev.cost.items.find((i) => i.type === "aws:ec2/instance:Instance" && i.description.startsWith("EC2"));
  assert.match(host?.assumption ?? "", /free-tier eligible/);
  assert.deepEqual(dev.standIns, ["inferstack:host.sshPublicKey"]);
});

test("staging and prod price Fargate, RDS, ElastiCache, ALB and NAT, and prod costs more", async () => {
  const staging = await planJson("staging");
  const prod = await planJson("prod");
  for (const p of [staging, prod]) {
    for (const t of [
      "aws:ecs/service:Service",
      "aws:rds/instance:Instance",
      "aws:elasticache/replicationGroup:ReplicationGroup",
      "aws:lb/loadBalancer:LoadBalancer",
      "aws:ec2/natGateway:NatGateway",
      "aws:cloudwatch/logGroup:LogGroup",
    ]) {
      assert.ok(pricedTypes(p).has(t), `${p.stack} prices ${t}`);
    }
    assert.ok(
      p.cost.items.some((i) => i.description.startsWith("NAT data processing") && /GB\/month/.test(i.assumption ?? "")),
      "NAT traffic assumption is stated",
    );
  }
  assert.ok(staging.cost.total > 50, `staging ${staging.cost.total}`);
  assert.ok(prod.cost.total > staging.cost.total * 2, `prod ${prod.cost.total} vs staging ${staging.cost.total}`);
  assert.ok(prod.cost.items.some((i) => /RDS PostgreSQL .* Multi-AZ/.test(i.description)));
});

test("text and markdown show the component tree, properties and the cost table", async () => {
  const text = (await plan("--stack", "staging")).stdout;
  assert.match(text, /^stack staging \(tier small\): \d+ resources in \d+ components, estimated \$\d+\.\d\d\/month/);
  assert.match(text, /▸ inferstack:aws:\w+/);
  assert.match(text, /instanceClass: db\.t4g\.small/);
  assert.match(text, /\n {2}total +\$\d+\.\d\d/);
  const md = (await plan("--stack", "prod", "--format", "markdown")).stdout;
  assert.match(md, /\| resource \| item \| USD\/month \| assumption \|/);
  assert.match(md, /\| \*\*total\*\* \| \| \*\*\$\d+\.\d\d\*\* \| \|/);
  const mermaid = (await plan("--stack", "staging", "--format", "mermaid")).stdout;
  assert.match(mermaid, /^flowchart LR\n/);
  const node = (label: RegExp) =>
    mermaid
      .split("\n")
      .find((l) => label.test(l))
      ?.trim()
      .split("[")[0];
  const alb = node(/\["inferstack-staging<br\/>ALB/);
  const app = node(/\["inferstack-staging-app<br\/>ECS service ×2"\]/);
  const db = node(/\["inferstack-staging-pg<br\/>RDS db\.t4g\.small"\]/);
  const cache = node(/\["inferstack-staging-redis<br\/>ElastiCache/);
  assert.ok(alb && app && db && cache, mermaid);
  const edges = new Set(
    mermaid
      .split("\n")
      .filter((l) => l.includes(" --> "))
      .map((l) => l.trim()),
  );
  // Traffic direction: client → ALB → app → Postgres / Redis (the Redis URL reaches the app through a secret).
  for (const edge of [`internet --> ${alb}`, `${alb} --> ${app}`, `${app} --> ${db}`, `${app} --> ${cache}`])
    assert.ok(edges.has(edge), `${edge} in\n${mermaid}`);
  for (const backwards of [`${app} --> ${alb}`, `${db} --> ${app}`, `${cache} --> ${app}`])
    assert.ok(!edges.has(backwards), `${backwards} points against the traffic`);
});

test("bad arguments fail with a message naming the problem", async () => {
  await assert.rejects(
    plan("--stack", "nope"),
    (e: { code: number; stderr: string }) => e.code === 1 && /Pulumi\.nope\.yaml not found/.test(e.stderr),
  );
  await assert.rejects(
    plan("--stack", "local", "--format", "xml"),
    (e: { code: number; stderr: string }) => e.code === 2 && /--format must be one of/.test(e.stderr),
  );
  await assert.rejects(
    plan(),
    (e: { code: number; stderr: string }) => e.code === 2 && /--stack is required/.test(e.stderr),
  );
});

test("a bad stack config fails before any resource, naming the key", async () => {
  // A checkout whose only difference is one more stack file with a bad value.
  const dir = mkdtempSync(join(tmpdir(), "plan-bad-config-"));
  try {
    for (const entry of ["infra", "monitoring", "app", "models", "node_modules", "package.json"])
      symlinkSync(join(root, entry), join(dir, entry));
    writeFileSync(
      join(dir, "Pulumi.broken.yaml"),
      "config:\n  inferstack:tier: small\n  inferstack:app:\n    replicas: 0\n",
    );
    await assert.rejects(plan("--stack", "broken", "--root", dir), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /inferstack:app\.replicas/);
      assert.doesNotMatch(e.stderr, /\n\s+at /, "no stack trace");
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
