// AWS-tier config validation and the AWS limits the components enforce, without a stack,
// plus one bad-config run of the whole program under mocks.

import assert from "node:assert/strict";
import { test } from "node:test";
import { subnetCidr } from "../components/aws-network.ts";
import { rdsIdentifierProblem } from "../components/aws-postgres.ts";
import { replicationGroupIdProblem } from "../components/aws-redis.ts";
import { ConfigError, parseStackConfig } from "../config.ts";
import { fargateMemoryByCpu, fargatePairProblem, smallestFargateSize } from "../fargate.ts";
import { runUnderMocks } from "../offline/run-under-mocks.ts";
import { resourceName } from "../platforms/aws.ts";
import { presets } from "../presets.ts";
import { main } from "../program.ts";

function errorKeys(config: Record<string, string>): string[] {
  try {
    parseStackConfig(config);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.issues.map((i) => i.key);
  }
  return [];
}

test("the small and medium presets are valid and differ in the hardening the issue asks for", () => {
  const small = parseStackConfig({ "inferstack:tier": "small" });
  const medium = parseStackConfig({ "inferstack:tier": "medium" });
  assert.equal(small.platform, "aws");
  assert.equal(medium.platform, "aws");
  assert.ok(small.app.replicas >= 2 && medium.app.replicas >= 3);
  assert.deepEqual([small.network.azCount, medium.network.azCount], [2, 3]);
  assert.deepEqual([small.network.natGateways, medium.network.natGateways], ["single", "perAz"]);
  assert.deepEqual([small.network.flowLogs, medium.network.flowLogs], [false, true]);
  assert.deepEqual([small.postgres.multiAz, medium.postgres.multiAz], [false, true]);
  assert.ok(medium.postgres.backupRetentionDays >= 7);
  assert.deepEqual([small.redis.automaticFailover, medium.redis.automaticFailover], [false, true]);
  assert.deepEqual([small.autoscaling.enabled, medium.autoscaling.enabled], [false, true]);
  assert.deepEqual([small.edge.accessLogs, medium.edge.accessLogs], [false, true]);
  assert.deepEqual([small.monitoring.containerInsights, medium.monitoring.containerInsights], [false, true]);
});

test("Fargate sizes: the table matches AWS's rules and the schema rejects other pairs naming the key", () => {
  assert.deepEqual([...fargateMemoryByCpu.keys()], [256, 512, 1024, 2048, 4096, 8192, 16384]);
  assert.deepEqual(fargateMemoryByCpu.get(256), [512, 1024, 2048]);
  assert.equal(fargateMemoryByCpu.get(4096)?.at(-1), 30720);
  assert.equal(fargateMemoryByCpu.get(16384)?.at(-1), 122880);
  assert.equal(fargatePairProblem(0.5, 1024), null);
  assert.match(fargatePairProblem(0.25, 4096) ?? "", /not valid with 0.25 vCPU/);
  assert.match(fargatePairProblem(0.75, 2048) ?? "", /not a Fargate size/);
  assert.match(fargatePairProblem(8, 18432) ?? "", /steps of 4096/);
  assert.deepEqual(smallestFargateSize(512, 3584), { cpu: 512, memoryMiB: 4096 });
  assert.deepEqual(smallestFargateSize(512, 5120), { cpu: 1024, memoryMiB: 5120 });
  assert.deepEqual(
    errorKeys({ "inferstack:tier": "small", "inferstack:app": JSON.stringify({ cpu: 0.25, memoryMiB: 4096 }) }),
    ["inferstack:app.memoryMiB"],
  );
  assert.deepEqual(errorKeys({ "inferstack:tier": "medium", "inferstack:app": JSON.stringify({ cpu: 3 }) }), [
    "inferstack:app.memoryMiB",
  ]);
  // Docker tiers size containers, not Fargate tasks: no pair rule there.
  assert.deepEqual(errorKeys({ "inferstack:tier": "local" }), []);
});

test("bad AWS-tier values fail before any resource, naming the key", () => {
  const cases: [Record<string, string>, string][] = [
    [{ "inferstack:redis": JSON.stringify({ nodes: 1, automaticFailover: true }) }, "inferstack:redis.nodes"],
    [{ "inferstack:redis": JSON.stringify({ nodes: 4 }) }, "inferstack:redis.nodes"],
    [{ "inferstack:app": JSON.stringify({ replicas: 1 }) }, "inferstack:app.replicas"],
    [{ "inferstack:app": JSON.stringify({ replicas: 20 }) }, "inferstack:app.replicas"],
    [{ "inferstack:network": JSON.stringify({ azCount: 1 }) }, "inferstack:network.azCount"],
    [{ "inferstack:network": JSON.stringify({ natGateways: "none" }) }, "inferstack:network.natGateways"],
    [{ "inferstack:dns": JSON.stringify({ zoneName: null }) }, "inferstack:dns.zoneName"],
    [{ "inferstack:domain": "api.other.org" }, "inferstack:domain"],
    [{ "inferstack:postgres": JSON.stringify({ engineVersion: "15" }) }, "inferstack:postgres.engineVersion"],
    [{ "inferstack:logs": JSON.stringify({ retentionDays: 10 }) }, "inferstack:logs.retentionDays"],
    [{ "inferstack:edge": JSON.stringify({ accessLogz: true }) }, "inferstack:edge.accessLogz"],
  ];
  for (const [override, key] of cases) {
    assert.ok(
      errorKeys({ "inferstack:tier": "medium", ...override }).includes(key),
      `${JSON.stringify(override)} → ${key}`,
    );
  }
  // Secret settings are read by the platform, not rejected as unknown keys.
  assert.deepEqual(
    errorKeys({
      "inferstack:tier": "small",
      "inferstack:grafanaAdminPassword": "x",
      "inferstack:alertReceivers": "{}",
    }),
    [],
  );
});

test("AWS name limits: ALB ≤ 32, RDS ≤ 63, ElastiCache ≤ 40, shortened stably when a stack name is long", () => {
  assert.equal(resourceName("inferstack", "staging", "", 32), "inferstack-staging");
  const long = resourceName("inferstack", "feature-branch-with-a-very-long-name", "", 32);
  assert.ok(long.length <= 32);
  assert.equal(long, resourceName("inferstack", "feature-branch-with-a-very-long-name", "", 32), "deterministic");
  assert.notEqual(
    long,
    resourceName("inferstack", "feature-branch-with-a-very-long-nam3", "", 32),
    "distinct stacks stay distinct",
  );
  assert.match(long, /^[a-z0-9]+(-[a-z0-9]+)*$/);
  assert.equal(rdsIdentifierProblem(resourceName("inferstack", "x".repeat(80), "pg", 63)), null);
  assert.equal(replicationGroupIdProblem(resourceName("inferstack", "Prod_EU", "redis", 40)), null);
  assert.match(rdsIdentifierProblem("a".repeat(64)) ?? "", /63/);
  assert.match(rdsIdentifierProblem("1db") ?? "", /starting with a letter/);
  assert.match(replicationGroupIdProblem("a".repeat(41)) ?? "", /40/);
  assert.match(replicationGroupIdProblem("a--b") ?? "", /single hyphens/);
});

test("subnets are carved from the VPC block without overlap", () => {
  assert.equal(subnetCidr("10.42.0.0/16", 4, 0), "10.42.0.0/20");
  assert.equal(subnetCidr("10.42.0.0/16", 4, 1), "10.42.16.0/20");
  assert.equal(subnetCidr("10.42.0.0/16", 4, 9), "10.42.144.0/20");
  assert.equal(subnetCidr("172.16.0.0/20", 4, 15), "172.16.15.0/24");
  assert.throws(() => subnetCidr("10.0.0.0/26", 4, 0), /too small/);
  assert.throws(() => subnetCidr("10.0.0.0/16", 4, 16), /only 16/);
});

test("the program refuses a bad AWS config before declaring any resource", async () => {
  assert.ok(presets.medium.redis.automaticFailover);
  let failure: unknown;
  const stack = await runUnderMocks(
    "prod",
    { "inferstack:tier": "medium", "inferstack:redis": JSON.stringify({ nodes: 1 }) },
    async () => {
      try {
        return await main();
      } catch (e) {
        failure = e;
        return {};
      }
    },
  );
  assert.ok(failure instanceof ConfigError);
  assert.match(failure.message, /inferstack:redis\.nodes: must be ≥ 2 when redis\.automaticFailover is true/);
  assert.deepEqual(
    stack.resources.filter((r) => r.custom).map((r) => r.type),
    [],
  );
});
