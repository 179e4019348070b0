/**
 * What each tier promises (README's tier table, docs/tiers.md, docs/architecture-aws.md), written
 * here as literals and checked on the resources each stack declares under the offline mocks. The
 * other infra tests compare a resource with the preset value the code reads, so a wrong preset
 * passes them; it fails here.
 *
 * The mock harness holds one stack per process, so this file runs itself once per stack as a
 * child that prints the stack's resources as JSON.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { promisify } from "node:util";
import { type MockedResource, runUnderMocks } from "../offline/run-under-mocks.ts";
import { main } from "../program.ts";

const CHILD = "INFERSTACK_TIER_PROMISES_STACK";
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com";
// Only the tier and what only the operator knows (the SSH key), so every value checked is the preset's.
const configs: Record<string, Record<string, string>> = {
  local: { "inferstack:tier": "local" },
  dev: {
    "inferstack:tier": "free",
    "aws:region": "us-east-1",
    "inferstack:host": JSON.stringify({ sshPublicKey: KEY }),
  },
  staging: { "inferstack:tier": "small", "aws:region": "us-east-1" },
  prod: { "inferstack:tier": "medium", "aws:region": "us-east-1" },
};

const childStack = process.env[CHILD];
if (childStack) {
  const stack = await runUnderMocks(childStack, configs[childStack]!, main);
  process.stdout.write(JSON.stringify(stack.resources));
} else {
  describeTierPromises();
}

async function declared(stack: string): Promise<MockedResource[]> {
  // Without the runner's context the child is a plain program, not a nested test file.
  const { NODE_TEST_CONTEXT: _context, ...env } = process.env;
  const { stdout } = await promisify(execFile)(process.execPath, [import.meta.filename], {
    env: { ...env, [CHILD]: stack },
    maxBuffer: 256 * 1024 * 1024,
  });
  return JSON.parse(stdout) as MockedResource[];
}

const byType = (resources: MockedResource[], type: string) => resources.filter((r) => r.type === type);
function one(resources: MockedResource[], type: string, nameEnds = ""): MockedResource {
  const found = byType(resources, type).filter((r) => r.name.endsWith(nameEnds));
  assert.equal(found.length, 1, `expected one ${type} named *${nameEnds}, got ${found.map((r) => r.name)}`);
  return found[0]!;
}
const azsOf = (resources: MockedResource[], kind: "public" | "private") =>
  new Set(
    byType(resources, "aws:ec2/subnet:Subnet")
      .filter((s) => s.inputs.tags["inferstack:subnet"] === kind)
      .map((s) => s.inputs.availabilityZone),
  );
const containerRoles = (resources: MockedResource[]) =>
  byType(resources, "docker:index/container:Container").map((c) => c.name.replace(/^inferstack-(monitoring-)?/, ""));
const grafanaEnv = (resources: MockedResource[]) => {
  const task = one(resources, "aws:ecs/taskDefinition:TaskDefinition", "-monitoring-service");
  const containers = JSON.parse(task.inputs.containerDefinitions) as {
    name: string;
    environment: { name: string; value: string }[];
  }[];
  return containers.find((c) => c.name === "grafana")?.environment;
};
const monitoringVolume = (resources: MockedResource[]) =>
  one(resources, "aws:ecs/service:Service", "-monitoring-service").inputs.volumeConfiguration.managedEbsVolume;

function describeTierPromises(): void {
  // All four start at once; each test awaits its own (the catch only defers a failure to that test).
  const stacks = Object.fromEntries(Object.keys(configs).map((s) => [s, declared(s)]));
  for (const pending of Object.values(stacks)) pending.catch(() => {});

  test("local: no cloud resource, the whole system as containers on the local engine", async () => {
    const resources = await stacks.local!;
    const cloud = resources.filter((r) => !/^(docker|random|inferstack|pulumi):/.test(r.type));
    assert.deepEqual(
      cloud.map((r) => r.type),
      [],
    );
    assert.equal(one(resources, "pulumi:providers:docker").inputs.host, undefined);
    const roles = containerRoles(resources);
    for (const role of ["app-1", "postgres", "redis", "edge", "prometheus", "grafana", "alertmanager"]) {
      assert.ok(roles.includes(role), `local runs no ${role} container (has ${roles})`);
    }
    // https://localhost:8443, as the README's first `pulumi up` says.
    const edge = one(resources, "docker:index/container:Container", "-edge").inputs;
    assert.ok(edge.ports.some((p: { external: number }) => p.external === 8443));
  });

  test("dev (free): one free-tier t3.micro host with at most 30 GiB of EBS, Let's Encrypt TLS", async () => {
    const resources = await stacks.dev!;
    const host = one(resources, "aws:ec2/instance:Instance").inputs;
    assert.equal(host.instanceType, "t3.micro");
    const ebsGiB = byType(resources, "aws:ebs/volume:Volume").reduce(
      (sum, v) => sum + Number(v.inputs.size),
      Number(host.rootBlockDevice.volumeSize),
    );
    assert.ok(ebsGiB <= 30, `${ebsGiB} GiB of EBS is over the free tier's 30`);
    for (const managed of ["aws:rds/instance:Instance", "aws:ecs/service:Service", "aws:ec2/natGateway:NatGateway"]) {
      assert.equal(byType(resources, managed).length, 0, `dev declares a ${managed}`);
    }
    const roles = containerRoles(resources);
    for (const role of ["app-1", "postgres", "redis", "edge", "prometheus", "grafana", "alertmanager"]) {
      assert.ok(roles.includes(role), `dev runs no ${role} container (has ${roles})`);
    }
    // t3.micro has 1 GiB: every container limit sums under it.
    const memory = byType(resources, "docker:index/container:Container").reduce(
      (s, c) => s + Number(c.inputs.memory),
      0,
    );
    assert.ok(memory <= 1024, `containers ask for ${memory} MiB`);
    const caddyfile = one(resources, "docker:index/container:Container", "-edge").inputs.uploads[0].content as string;
    assert.match(caddyfile, /^dev\.example\.com \{$/m);
    assert.doesNotMatch(caddyfile, /tls internal/);
  });

  test("staging (small): 2 AZs, 2 Fargate tasks behind an ALB, single-AZ RDS, one Valkey node", async () => {
    const resources = await stacks.staging!;
    assert.deepEqual([...azsOf(resources, "public")].sort(), ["us-east-1a", "us-east-1b"]);
    assert.deepEqual([...azsOf(resources, "private")].sort(), ["us-east-1a", "us-east-1b"]);
    assert.equal(byType(resources, "aws:ec2/natGateway:NatGateway").length, 1);
    const app = one(resources, "aws:ecs/service:Service", "-app").inputs;
    assert.deepEqual([app.launchType, app.desiredCount], ["FARGATE", 2]);
    const task = one(resources, "aws:ecs/taskDefinition:TaskDefinition", "-app").inputs;
    assert.deepEqual([task.cpu, task.memory], ["512", "1024"]);
    assert.equal(byType(resources, "aws:appautoscaling/target:Target").length, 0, "small does not autoscale");

    const alb = one(resources, "aws:lb/loadBalancer:LoadBalancer").inputs;
    assert.deepEqual([alb.loadBalancerType, alb.internal, alb.enableDeletionProtection], ["application", false, false]);
    const https = one(resources, "aws:lb/listener:Listener", "-https").inputs;
    assert.equal(https.protocol, "HTTPS");
    assert.equal(
      https.certificateArn,
      `arn:aws:certificate:us-east-1:123456789012:${one(resources, "aws:acm/certificate:Certificate").name}`,
    );
    assert.ok(byType(resources, "aws:route53/record:Record").length > 0);

    const pg = one(resources, "aws:rds/instance:Instance").inputs;
    assert.deepEqual(
      [pg.engine, pg.engineVersion, pg.instanceClass, pg.multiAz, pg.backupRetentionPeriod, pg.deletionProtection],
      ["postgres", "16", "db.t4g.small", false, 3, false],
    );
    const redis = one(resources, "aws:elasticache/replicationGroup:ReplicationGroup").inputs;
    assert.deepEqual(
      [
        redis.engine,
        redis.nodeType,
        redis.numCacheClusters,
        redis.automaticFailoverEnabled,
        redis.transitEncryptionEnabled,
      ],
      ["valkey", "cache.t4g.micro", 1, false, true],
    );

    // Prometheus on ECS with a 20 GB gp3 volume, Grafana's database in RDS.
    assert.deepEqual([monitoringVolume(resources).sizeInGb, monitoringVolume(resources).volumeType], [20, "gp3"]);
    assert.equal(grafanaEnv(resources)?.find((e) => e.name === "GF_DATABASE_TYPE")?.value, "postgres");
  });

  test("prod (medium): 3 AZs, Multi-AZ RDS, Valkey failover, 3–10 tasks, protected, 14-day backups", async () => {
    const resources = await stacks.prod!;
    assert.deepEqual([...azsOf(resources, "public")].sort(), ["us-east-1a", "us-east-1b", "us-east-1c"]);
    assert.deepEqual([...azsOf(resources, "private")].sort(), ["us-east-1a", "us-east-1b", "us-east-1c"]);
    assert.equal(byType(resources, "aws:ec2/natGateway:NatGateway").length, 3, "one NAT gateway per AZ");
    assert.equal(one(resources, "aws:ec2/flowLog:FlowLog").inputs.trafficType, "ALL");
    const endpoints = byType(resources, "aws:ec2/vpcEndpoint:VpcEndpoint");
    assert.ok(
      endpoints.some((e) => e.inputs.vpcEndpointType === "Interface"),
      "VPC interface endpoints",
    );

    const app = one(resources, "aws:ecs/service:Service", "-app").inputs;
    assert.deepEqual([app.launchType, app.desiredCount], ["FARGATE", 3]);
    const task = one(resources, "aws:ecs/taskDefinition:TaskDefinition", "-app").inputs;
    assert.deepEqual([task.cpu, task.memory], ["1024", "2048"]);
    const scaling = one(resources, "aws:appautoscaling/target:Target").inputs;
    assert.deepEqual([scaling.minCapacity, scaling.maxCapacity], [3, 10]);
    assert.equal(
      scaling.resourceId,
      `service/inferstack-prod/${one(resources, "aws:ecs/service:Service", "-app").name}`,
    );

    const pg = one(resources, "aws:rds/instance:Instance").inputs;
    assert.deepEqual(
      [pg.engineVersion, pg.instanceClass, pg.multiAz, pg.backupRetentionPeriod, pg.deletionProtection],
      ["16", "db.m7g.large", true, 14, true],
    );
    assert.equal(pg.performanceInsightsEnabled, true);
    const alb = one(resources, "aws:lb/loadBalancer:LoadBalancer").inputs;
    assert.equal(alb.enableDeletionProtection, true);
    assert.equal(alb.accessLogs.enabled, true);
    const redis = one(resources, "aws:elasticache/replicationGroup:ReplicationGroup").inputs;
    assert.deepEqual(
      [redis.engine, redis.nodeType, redis.automaticFailoverEnabled, redis.multiAzEnabled],
      ["valkey", "cache.m7g.large", true, true],
    );
    assert.ok(redis.numCacheClusters >= 2, `failover needs a replica, got ${redis.numCacheClusters} node(s)`);
    assert.deepEqual([monitoringVolume(resources).sizeInGb, monitoringVolume(resources).volumeType], [50, "gp3"]);
  });

  test("staging and prod: a rollout that fails its health checks rolls itself back", async () => {
    for (const stack of ["staging", "prod"]) {
      const app = one(await stacks[stack]!, "aws:ecs/service:Service", "-app").inputs;
      assert.deepEqual(app.deploymentCircuitBreaker, { enable: true, rollback: true }, stack);
    }
  });
}
