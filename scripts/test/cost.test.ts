import assert from "node:assert/strict";
import { test } from "node:test";
import * as aws from "@pulumi/aws";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { trackCost } from "../../infra/cost.ts";
import { runUnderMocks } from "../../infra/offline/run-under-mocks.ts";
import { presets } from "../../infra/presets.ts";
import { estimateMonthlyCost } from "../../infra/pricing/estimate.ts";
import { prices } from "../../infra/pricing/prices.ts";

const item = (est: ReturnType<typeof estimateMonthlyCost>, resource: string) =>
  est.items.filter((i) => i.resource === resource);

test("prices a Fargate service from its task definition, desired count and autoscaling floor", () => {
  const est = estimateMonthlyCost([
    {
      type: "aws:ecs/taskDefinition:TaskDefinition",
      name: "app",
      inputs: { family: "inferstack-app", cpu: "512", memory: "1024", runtimePlatform: { cpuArchitecture: "X86_64" } },
    },
    {
      type: "aws:ecs/service:Service",
      name: "app",
      inputs: {
        name: "app",
        launchType: "FARGATE",
        desiredCount: 2,
        taskDefinition: "arn:aws:ecs:us-east-1:1:task-definition/inferstack-app:7",
      },
    },
    {
      type: "aws:appautoscaling/target:Target",
      name: "app",
      inputs: {
        scalableDimension: "ecs:service:DesiredCount",
        resourceId: "service/c/app",
        minCapacity: 3,
        maxCapacity: 10,
      },
    },
  ]);
  const [fargate] = item(est, "app");
  // 3 tasks (the autoscaling floor beats desiredCount 2) × (0.5 vCPU + 1 GB) × 730 h.
  assert.equal(fargate?.monthlyUsd, Math.round(3 * (0.5 * 0.04048 + 1 * 0.004445) * 730 * 100) / 100);
  assert.match(fargate?.assumption ?? "", /autoscaling 3-10 tasks/);
  const arm = estimateMonthlyCost([
    {
      type: "aws:ecs/taskDefinition:TaskDefinition",
      name: "app",
      inputs: { family: "f", cpu: "1024", memory: "2048", runtimePlatform: { cpuArchitecture: "ARM64" } },
    },
    { type: "aws:ecs/service:Service", name: "app", inputs: { desiredCount: 1, taskDefinition: "f" } },
  ]);
  assert.equal(arm.total, Math.round((0.03238 + 2 * 0.00356) * 730 * 100) / 100);
});

test("prices RDS by class, Multi-AZ, storage and backups beyond the free allowance", () => {
  const single = estimateMonthlyCost([
    {
      type: "aws:rds/instance:Instance",
      name: "db",
      inputs: { instanceClass: "db.t4g.small", allocatedStorage: 20, storageType: "gp3", backupRetentionPeriod: 3 },
    },
  ]);
  assert.deepEqual(
    single.items.map((i) => i.monthlyUsd),
    [23.36, 2.3, 0.19],
  );
  const multi = estimateMonthlyCost([
    {
      type: "aws:rds/instance:Instance",
      name: "db",
      inputs: {
        instanceClass: "db.m7g.large",
        multiAz: true,
        allocatedStorage: 100,
        storageType: "gp3",
        backupRetentionPeriod: 14,
        manageMasterUserPassword: true,
      },
    },
  ]);
  assert.equal(multi.items[0]?.monthlyUsd, Math.round(0.168 * 730 * 2 * 100) / 100);
  assert.equal(multi.items[1]?.monthlyUsd, 23);
  assert.equal(multi.items[2]?.monthlyUsd, Math.round(100 * 0.05 * 13 * 0.095 * 100) / 100);
  assert.equal(multi.items[3]?.monthlyUsd, 0.4);
});

test("prices ElastiCache per node, with the Valkey discount", () => {
  const est = estimateMonthlyCost([
    {
      type: "aws:elasticache/replicationGroup:ReplicationGroup",
      name: "cache",
      inputs: { nodeType: "cache.m7g.large", numCacheClusters: 2, engine: "valkey" },
    },
  ]);
  assert.equal(est.total, Math.round(0.158 * 730 * 2 * 0.8 * 100) / 100);
  assert.match(est.items[0]?.description ?? "", /valkey 2 × cache\.m7g\.large/);
});

test("prices the network edge: ALB with its public IPs, NAT with stated traffic, endpoints, zone", () => {
  const est = estimateMonthlyCost([
    { type: "aws:lb/loadBalancer:LoadBalancer", name: "alb", inputs: { internal: false, subnets: ["a", "b"] } },
    { type: "aws:ec2/natGateway:NatGateway", name: "nat", inputs: {} },
    {
      type: "aws:ec2/vpcEndpoint:VpcEndpoint",
      name: "ecr",
      inputs: { vpcEndpointType: "Interface", subnetIds: ["a", "b"], serviceName: "com.amazonaws.us-east-1.ecr.dkr" },
    },
    { type: "aws:ec2/vpcEndpoint:VpcEndpoint", name: "s3", inputs: { vpcEndpointType: "Gateway" } },
    { type: "aws:route53/zone:Zone", name: "zone", inputs: {} },
  ]);
  const byDesc = Object.fromEntries(est.items.map((i) => [i.description, i.monthlyUsd]));
  assert.equal(byDesc["ALB hours"], 16.43);
  assert.equal(byDesc["2 public IPv4 address(es), one per AZ"], 7.3);
  assert.equal(byDesc["NAT gateway hours"], 32.85);
  assert.match(est.items.find((i) => i.description.startsWith("NAT data"))?.assumption ?? "", /GB\/month/);
  assert.equal(item(est, "s3").length, 0, "gateway endpoints are free");
  assert.equal(item(est, "ecr")[0]?.monthlyUsd, Math.round((0.01 * 730 * 2 + 0.01 * 5) * 100) / 100);
  assert.equal(byDesc["Route 53 hosted zone"], 0.5);
});

test("the free tier's EC2 host is priced and flagged free-tier eligible; containers cost $0", () => {
  const est = estimateMonthlyCost([
    {
      type: "aws:ec2/instance:Instance",
      name: "host",
      inputs: { instanceType: "t3.micro", rootBlockDevice: { volumeSize: 30, volumeType: "gp3" } },
    },
    { type: "aws:ec2/eip:Eip", name: "ip", inputs: { instance: "i-1" } },
    { type: "docker:index/container:Container", name: "app", inputs: {} },
  ]);
  assert.deepEqual(
    est.items.map((i) => i.monthlyUsd),
    [7.59, 2.4, 3.65, 0],
  );
  assert.match(est.items[0]?.assumption ?? "", /free-tier eligible/);
  assert.equal(est.total, 13.64);
});

test("prices what AWS bills beside the obvious: Container Insights, Cloud Map's private zone, RDS log export", () => {
  const est = estimateMonthlyCost([
    {
      type: "aws:ecs/cluster:Cluster",
      name: "c",
      inputs: { settings: [{ name: "containerInsights", value: "enabled" }] },
    },
    { type: "aws:ecs/cluster:Cluster", name: "plain", inputs: {} },
    { type: "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace", name: "ns", inputs: {} },
    {
      type: "aws:rds/instance:Instance",
      name: "db",
      inputs: { instanceClass: "db.t4g.micro", enabledCloudwatchLogsExports: ["postgresql"] },
    },
    { type: "aws:ec2/flowLog:FlowLog", name: "fl", inputs: { logDestinationType: "cloud-watch-logs" } },
    { type: "aws:cloudwatch/logGroup:LogGroup", name: "fl-group", inputs: { retentionInDays: 30 } },
  ]);
  const byResource = (r: string) => est.items.filter((i) => i.resource === r).map((i) => i.monthlyUsd);
  assert.deepEqual(byResource("c"), [15]);
  assert.deepEqual(byResource("plain"), []);
  assert.deepEqual(byResource("ns"), [0.5]);
  assert.ok(est.items.some((i) => i.resource === "db" && /log export/.test(i.description)));
  assert.deepEqual(byResource("fl"), [], "flow logs into a log group are billed once, on the group");
});

test("a size missing from the table is listed as unpriced, never silently dropped", () => {
  const est = estimateMonthlyCost([
    { type: "aws:rds/instance:Instance", name: "db", inputs: { instanceClass: "db.x2g.16xlarge" } },
  ]);
  assert.deepEqual(est.unpriced, ["db: RDS db.x2g.16xlarge (no price in infra/pricing/prices.ts)"]);
});

test("every instance class and node type the presets use has a price", () => {
  for (const [tier, p] of Object.entries(presets)) {
    if (p.platform === "aws") {
      assert.ok(prices.rdsPostgres[p.postgres.instanceClass], `${tier}: ${p.postgres.instanceClass}`);
      assert.ok(prices.elasticacheRedis[p.redis.nodeType], `${tier}: ${p.redis.nodeType}`);
    } else if (p.host !== null) {
      assert.ok(prices.ec2[p.host.instanceType], `${tier}: ${p.host.instanceType}`);
    }
  }
});

test("trackCost sees resources declared in components and resolves Output inputs", async () => {
  class Db extends pulumi.ComponentResource {
    constructor(name: string, size: pulumi.Input<number>) {
      super("test:index:Db", name);
      new aws.rds.Instance(
        name,
        {
          instanceClass: "db.t4g.small",
          engine: "postgres",
          allocatedStorage: size,
          storageType: "gp3",
          backupRetentionPeriod: 3,
        },
        { parent: this },
      );
      this.registerOutputs({});
    }
  }
  const stack = await runUnderMocks("cost", {}, async () => {
    const est = trackCost();
    const sg = new aws.ec2.SecurityGroup("sg", {});
    new Db(
      "db",
      sg.id.apply(() => 20),
    );
    new docker.Container("c", { image: "x" });
    return { estimatedMonthlyCost: est.apply((e) => e.total), costBreakdown: est };
  });
  assert.equal(stack.outputs.estimatedMonthlyCost, 23.36 + 2.3 + 0.19);
  const breakdown = stack.outputs.costBreakdown as ReturnType<typeof estimateMonthlyCost>;
  assert.deepEqual(
    breakdown.items.map((i) => i.resource),
    ["db", "db", "db", "c"],
  );
});
