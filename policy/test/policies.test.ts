import assert from "node:assert/strict";
import { test } from "node:test";
import {
  albHttpsOnly,
  albInternalRoutesPrivate,
  encryptionAtRest,
  encryptionInTransit,
  imdsV2,
  lbIngressMatchesIpFamily,
  logRetention,
  noPublicDatastores,
  noWorldOpenIngress,
  prodDatabaseProtection,
  prodImagesPinned,
  rdsLogGroupsManaged,
  rdsMasterSecretAdminOnly,
  requiredTags,
  resourcePolicies,
  stackPolicies,
  stateOnSupportedStorage,
} from "../policies.ts";
import { type FakeResource, stackViolationsOf, violationsOf } from "./fake-args.ts";

const prodProvider = {
  type: "pulumi:providers:aws",
  name: "aws",
  urn: "urn:aws",
  props: { defaultTags: JSON.stringify({ tags: { app: "inferstack", env: "prod", tier: "medium" } }) },
};
const stagingProvider = {
  ...prodProvider,
  props: { defaultTags: JSON.stringify({ tags: { app: "inferstack", env: "staging", tier: "small" } }) },
};
const rds = (props: Record<string, unknown>, provider = prodProvider): FakeResource => ({
  type: "aws:rds/instance:Instance",
  name: "pg",
  provider,
  props: {
    instanceClass: "db.m7g.large",
    dbSubnetGroupName: "private",
    storageEncrypted: true,
    deletionProtection: true,
    backupRetentionPeriod: 14,
    ...props,
  },
});
const redis = (props: Record<string, unknown>): FakeResource => ({
  type: "aws:elasticache/replicationGroup:ReplicationGroup",
  name: "cache",
  props: {
    subnetGroupName: "private",
    securityGroupIds: ["sg-1"],
    atRestEncryptionEnabled: true,
    transitEncryptionEnabled: true,
    ...props,
  },
});

test("no-public-datastores", async () => {
  assert.deepEqual(await violationsOf(noPublicDatastores, rds({ publiclyAccessible: false })), []);
  assert.deepEqual(await violationsOf(noPublicDatastores, rds({ publiclyAccessible: true })), [
    "pg: publiclyAccessible must be false",
  ]);
  assert.deepEqual(await violationsOf(noPublicDatastores, redis({})), []);
  assert.deepEqual(
    await violationsOf(noPublicDatastores, redis({ subnetGroupName: undefined, securityGroupIds: [] })),
    [
      "cache: needs a subnetGroupName (private subnets)",
      "cache: needs its own securityGroupIds (the default group is not restricted to the app)",
    ],
  );
});

test("encryption-at-rest", async () => {
  assert.deepEqual(await violationsOf(encryptionAtRest, rds({})), []);
  assert.deepEqual(await violationsOf(encryptionAtRest, rds({ storageEncrypted: false })), [
    "pg: storageEncrypted must be true",
  ]);
  assert.deepEqual(await violationsOf(encryptionAtRest, redis({ atRestEncryptionEnabled: false })), [
    "cache: atRestEncryptionEnabled must be true",
  ]);
  const efs = (encrypted: boolean): FakeResource => ({
    type: "aws:efs/fileSystem:FileSystem",
    name: "fs",
    props: { encrypted },
  });
  assert.deepEqual(await violationsOf(encryptionAtRest, efs(true)), []);
  assert.deepEqual(await violationsOf(encryptionAtRest, efs(false)), ["fs: encrypted must be true"]);
  const host = (encrypted: boolean): FakeResource => ({
    type: "aws:ec2/instance:Instance",
    name: "host",
    props: { rootBlockDevice: { encrypted } },
  });
  assert.deepEqual(await violationsOf(encryptionAtRest, host(true)), []);
  assert.deepEqual(await violationsOf(encryptionAtRest, host(false)), ["host: rootBlockDevice.encrypted must be true"]);
});

test("encryption-in-transit", async () => {
  assert.deepEqual(await violationsOf(encryptionInTransit, redis({})), []);
  assert.deepEqual(await violationsOf(encryptionInTransit, redis({ transitEncryptionEnabled: false })), [
    "cache: transitEncryptionEnabled must be true",
  ]);
  const pg = (value: string): FakeResource => ({
    type: "aws:rds/parameterGroup:ParameterGroup",
    name: "params",
    props: { parameters: [{ name: "rds.force_ssl", value }] },
  });
  assert.deepEqual(await violationsOf(encryptionInTransit, pg("1")), []);
  assert.deepEqual(await violationsOf(encryptionInTransit, pg("0")), ["params: rds.force_ssl must stay 1 (TLS only)"]);
  const td = (transitEncryption: string): FakeResource => ({
    type: "aws:ecs/taskDefinition:TaskDefinition",
    name: "mon",
    props: { volumes: [{ name: "tsdb", efsVolumeConfiguration: { fileSystemId: "fs", transitEncryption } }] },
  });
  assert.deepEqual(await violationsOf(encryptionInTransit, td("ENABLED")), []);
  assert.deepEqual(await violationsOf(encryptionInTransit, td("DISABLED")), [
    "mon: volume tsdb: efsVolumeConfiguration.transitEncryption must be ENABLED",
  ]);
});

test("alb-https-tls12", async () => {
  const listener = (props: Record<string, unknown>): FakeResource => ({
    type: "aws:lb/listener:Listener",
    name: "l",
    props,
  });
  assert.deepEqual(
    await violationsOf(
      albHttpsOnly,
      listener({
        protocol: "HTTPS",
        port: 443,
        sslPolicy: "ELBSecurityPolicy-TLS13-1-2-2021-06",
        certificateArn: "arn:cert",
      }),
    ),
    [],
  );
  assert.deepEqual(
    await violationsOf(
      albHttpsOnly,
      listener({ protocol: "HTTPS", port: 443, sslPolicy: "ELBSecurityPolicy-2016-08", certificateArn: "arn:cert" }),
    ),
    ["l: sslPolicy ELBSecurityPolicy-2016-08 must allow TLS 1.2+ only, e.g. ELBSecurityPolicy-TLS13-1-2-2021-06"],
  );
  const redirect = { type: "redirect", redirect: { protocol: "HTTPS", port: "443", statusCode: "HTTP_301" } };
  assert.deepEqual(
    await violationsOf(albHttpsOnly, listener({ protocol: "HTTP", port: 80, defaultActions: [redirect] })),
    [],
  );
  assert.deepEqual(
    await violationsOf(
      albHttpsOnly,
      listener({ protocol: "HTTP", port: 80, defaultActions: [{ type: "forward", targetGroupArn: "tg" }] }),
    ),
    ["l: an HTTP listener may only redirect to HTTPS"],
  );
});

test("alb-internal-routes-private: a forward-everything listener fails; path rules must not cover /metrics or /health/*", async () => {
  const https = (defaultActions: Record<string, unknown>[]): FakeResource => ({
    type: "aws:lb/listener:Listener",
    name: "https",
    props: { protocol: "HTTPS", port: 443, defaultActions },
  });
  // The HTTPS listener as infra/components/aws-load-balancer.ts declared it before: forward by default.
  assert.deepEqual(
    await violationsOf(albInternalRoutesPrivate, https([{ type: "forward", targetGroupArn: "api-tg" }])),
    [
      "https: the default action forwards every path (including /metrics and /health/*); answer a fixed-response 404 and forward public paths with listener rules",
    ],
  );
  assert.deepEqual(
    await violationsOf(
      albInternalRoutesPrivate,
      https([{ type: "fixed-response", fixedResponse: { statusCode: "404", contentType: "application/json" } }]),
    ),
    [],
  );
  const rule = (pathPattern: Record<string, string[]> | undefined, type = "forward"): FakeResource => ({
    type: "aws:lb/listenerRule:ListenerRule",
    name: "rule",
    props: {
      priority: 100,
      conditions: [{ hostHeader: { values: ["api.example.com"] } }, ...(pathPattern ? [{ pathPattern }] : [])],
      actions: [{ type, targetGroupArn: "api-tg" }],
    },
  });
  assert.deepEqual(await violationsOf(albInternalRoutesPrivate, rule({ values: ["/v1/*", "/v2", "/v2/*"] })), []);
  assert.deepEqual(await violationsOf(albInternalRoutesPrivate, rule({ values: ["/*"] })), [
    "rule: forwards internal path(s) /metrics, /health/ready, /health/live, /health/startup to the internet",
  ]);
  assert.deepEqual(await violationsOf(albInternalRoutesPrivate, rule({ values: ["/health/*"] })), [
    "rule: forwards internal path(s) /health/ready, /health/live, /health/startup to the internet",
  ]);
  assert.deepEqual(await violationsOf(albInternalRoutesPrivate, rule({ values: ["/metric?"] })), [
    "rule: forwards internal path(s) /metrics to the internet",
  ]);
  assert.deepEqual(await violationsOf(albInternalRoutesPrivate, rule({ regexValues: ["^/(v1|metrics)"] })), [
    "rule: forwards internal path(s) /metrics to the internet",
  ]);
  assert.deepEqual(
    await violationsOf(albInternalRoutesPrivate, rule({ values: ["/*"] }, "fixed-response")),
    [],
    "refusing is always fine",
  );
  assert.deepEqual(
    await violationsOf(albInternalRoutesPrivate, rule(undefined)),
    [],
    "a whole other host (Grafana) is its own app",
  );
});

test("ec2-imdsv2", async () => {
  const host = (httpTokens?: string): FakeResource => ({
    type: "aws:ec2/instance:Instance",
    name: "host",
    props: httpTokens ? { metadataOptions: { httpTokens } } : {},
  });
  assert.deepEqual(await violationsOf(imdsV2, host("required")), []);
  assert.deepEqual(await violationsOf(imdsV2, host("optional")), [
    "host: metadataOptions.httpTokens must be required (IMDSv2)",
  ]);
  assert.deepEqual(await violationsOf(imdsV2, host()), ["host: metadataOptions.httpTokens must be required (IMDSv2)"]);
});

test("prod-database-protection applies to prod only", async () => {
  assert.deepEqual(await violationsOf(prodDatabaseProtection, rds({})), []);
  assert.deepEqual(
    await violationsOf(
      prodDatabaseProtection,
      rds({ deletionProtection: false, backupRetentionPeriod: 3, skipFinalSnapshot: true }),
    ),
    [
      "pg: deletionProtection must be true in production",
      "pg: backupRetentionPeriod must be ≥ 7 days in production (is 3)",
      "pg: skipFinalSnapshot must be false in production",
    ],
  );
  assert.deepEqual(
    await violationsOf(
      prodDatabaseProtection,
      rds({ deletionProtection: false, backupRetentionPeriod: 3 }, stagingProvider),
    ),
    [],
    "staging may skip them",
  );
  // The prod cache as infra/components/aws-redis.ts declared it before: no final snapshot.
  const cache = (props: Record<string, unknown>, provider = prodProvider): FakeResource => ({
    ...redis(props),
    provider,
  });
  assert.deepEqual(await violationsOf(prodDatabaseProtection, cache({})), [
    "cache: finalSnapshotIdentifier must be set in production (deleting or replacing the group keeps its last state)",
  ]);
  assert.deepEqual(
    await violationsOf(
      prodDatabaseProtection,
      cache({ finalSnapshotIdentifier: "inferstack-prod-redis-final-a1b2c3d4" }),
    ),
    [],
  );
  assert.deepEqual(await violationsOf(prodDatabaseProtection, cache({}, stagingProvider)), [], "staging may skip it");
  // Pack config can name the environment where no env tag exists.
  assert.equal(
    (
      await violationsOf(prodDatabaseProtection, rds({ deletionProtection: false }, stagingProvider), {
        environment: "prod",
      })
    ).length,
    1,
  );
});

test("log-retention", async () => {
  const group = (retentionInDays?: number): FakeResource => ({
    type: "aws:cloudwatch/logGroup:LogGroup",
    name: "logs",
    props: retentionInDays ? { retentionInDays } : {},
  });
  assert.deepEqual(await violationsOf(logRetention, group(14)), []);
  assert.deepEqual(await violationsOf(logRetention, group()), ["logs: retentionInDays must be set"]);
});

test("required-tags: from the resource or its provider's defaultTags", async () => {
  const vpc = (props: Record<string, unknown>, provider?: typeof prodProvider): FakeResource => ({
    type: "aws:ec2/vpc:Vpc",
    name: "vpc",
    props,
    ...(provider ? { provider } : {}),
  });
  assert.deepEqual(await violationsOf(requiredTags, vpc({}, prodProvider)), []);
  assert.deepEqual(await violationsOf(requiredTags, vpc({ tags: { app: "a", env: "dev", tier: "free" } })), []);
  assert.deepEqual(await violationsOf(requiredTags, vpc({ tags: { Project: "inferstack", Stack: "dev" } })), [
    "vpc: missing tag(s) app, env, tier",
  ]);
  assert.deepEqual(
    await violationsOf(requiredTags, {
      type: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
      name: "r",
      props: {},
    }),
    [],
    "untaggable types are skipped",
  );
});

test("prod-images-pinned: ECS task definitions and Docker containers in prod", async () => {
  const digest = `sha256:${"ab".repeat(32)}`;
  const td = (image: string, provider = prodProvider): FakeResource => ({
    type: "aws:ecs/taskDefinition:TaskDefinition",
    name: "app",
    provider,
    props: { containerDefinitions: JSON.stringify([{ name: "app", image }]) },
  });
  assert.deepEqual(await violationsOf(prodImagesPinned, td(`123.dkr.ecr.us-east-1.amazonaws.com/app@${digest}`)), []);
  assert.deepEqual(await violationsOf(prodImagesPinned, td("grafana/grafana:12.1.0")), [
    "app: container app: image grafana/grafana:12.1.0 is not pinned by digest",
  ]);
  assert.deepEqual(
    await violationsOf(prodImagesPinned, td("grafana/grafana:12.1.0", stagingProvider)),
    [],
    "staging may run tags",
  );
  const container = (image: string): FakeResource => ({
    type: "docker:index/container:Container",
    name: "c",
    props: { image },
  });
  assert.deepEqual(await violationsOf(prodImagesPinned, container(`caddy:2@${digest}`), { environment: "prod" }), []);
  assert.deepEqual(await violationsOf(prodImagesPinned, container("caddy:latest"), { environment: "prod" }), [
    "c: image caddy:latest is not pinned by digest",
  ]);
});

test("no-world-open-ingress: only 80/443, and only on a load balancer's or the edge host's group", async () => {
  const sg = (name: string, ingress: Record<string, unknown>[] = []): FakeResource => ({
    type: "aws:ec2/securityGroup:SecurityGroup",
    name,
    props: { ingress },
  });
  const albSg = sg("alb-sg");
  const appSg = sg("app-sg");
  const rule = (name: string, group: FakeResource, port: number, cidrIpv4 = "0.0.0.0/0"): FakeResource => ({
    type: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    name,
    props: { cidrIpv4, fromPort: port, toPort: port, ipProtocol: "tcp" },
    propertyDependencies: { securityGroupId: [group] },
  });
  const alb: FakeResource = {
    type: "aws:lb/loadBalancer:LoadBalancer",
    name: "alb",
    props: {},
    propertyDependencies: { securityGroups: [albSg] },
  };
  const ok = [
    albSg,
    appSg,
    alb,
    rule("https", albSg, 443),
    rule("http", albSg, 80),
    rule("app-from-vpc", appSg, 8080, "10.0.0.0/16"),
  ];
  assert.deepEqual(await stackViolationsOf(noWorldOpenIngress, ok), []);
  assert.deepEqual(await stackViolationsOf(noWorldOpenIngress, [...ok, rule("ssh", albSg, 22)]), [
    "ssh: port 22 open to the world",
  ]);
  assert.deepEqual(await stackViolationsOf(noWorldOpenIngress, [...ok, rule("app-https", appSg, 443)]), [
    "app-https: port 443 open to the world on a group that no load balancer or edge host uses",
  ]);
  const hostSg = sg("host-sg", [
    { protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"] },
    { protocol: "-1", fromPort: 0, toPort: 0, ipv6CidrBlocks: ["::/0"] },
  ]);
  const host: FakeResource = {
    type: "aws:ec2/instance:Instance",
    name: "host",
    props: {},
    propertyDependencies: { vpcSecurityGroupIds: [hostSg] },
  };
  assert.deepEqual(await stackViolationsOf(noWorldOpenIngress, [hostSg, host]), [
    "host-sg: all ports open to the world",
  ]);
});

test("rds-log-groups-managed: exports without declared log groups fail", async () => {
  const db: FakeResource = {
    type: "aws:rds/instance:Instance",
    name: "pg",
    props: { identifier: "inferstack-prod-pg", enabledCloudwatchLogsExports: ["postgresql", "upgrade"] },
  };
  const group = (log: string, retentionInDays?: number): FakeResource => ({
    type: "aws:cloudwatch/logGroup:LogGroup",
    name: `pg-${log}`,
    props: { name: `/aws/rds/instance/inferstack-prod-pg/${log}`, ...(retentionInDays ? { retentionInDays } : {}) },
  });
  // As infra/components/aws-postgres.ts declared it before: exports on, no groups.
  assert.deepEqual(await stackViolationsOf(rdsLogGroupsManaged, [db]), [
    "pg: exports postgresql but the stack declares no log group /aws/rds/instance/inferstack-prod-pg/postgresql (RDS would create one that never expires)",
    "pg: exports upgrade but the stack declares no log group /aws/rds/instance/inferstack-prod-pg/upgrade (RDS would create one that never expires)",
  ]);
  assert.deepEqual(
    await stackViolationsOf(rdsLogGroupsManaged, [db, group("postgresql", 90), group("upgrade", 90)]),
    [],
  );
  assert.deepEqual(await stackViolationsOf(rdsLogGroupsManaged, [db, group("postgresql", 90), group("upgrade")]), [
    "pg-upgrade: /aws/rds/instance/inferstack-prod-pg/upgrade needs retentionInDays",
  ]);
});

test("lb-ingress-matches-ip-family: ::/0 rules on an IPv4-only ALB fail", async () => {
  const albSg: FakeResource = { type: "aws:ec2/securityGroup:SecurityGroup", name: "alb-sg", props: {} };
  const rule = (name: string, cidr: Record<string, string>): FakeResource => ({
    type: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    name,
    props: { ...cidr, fromPort: 443, toPort: 443, ipProtocol: "tcp" },
    propertyDependencies: { securityGroupId: [albSg] },
  });
  const alb = (ipAddressType?: string): FakeResource => ({
    type: "aws:lb/loadBalancer:LoadBalancer",
    name: "alb",
    props: ipAddressType ? { ipAddressType } : {},
    propertyDependencies: { securityGroups: [albSg] },
  });
  const v4 = rule("alb-in-443-v4", { cidrIpv4: "0.0.0.0/0" });
  const v6 = rule("alb-in-443-v6", { cidrIpv6: "::/0" });
  // As infra/components/aws-security-groups.ts declared it before: both families on an ALB without ipAddressType (IPv4).
  assert.deepEqual(await stackViolationsOf(lbIngressMatchesIpFamily, [albSg, alb(), v4, v6]), [
    "alb-in-443-v6: IPv6 ingress (::/0) on an IPv4-only load balancer's group",
  ]);
  assert.deepEqual(await stackViolationsOf(lbIngressMatchesIpFamily, [albSg, alb("ipv4"), v4]), []);
  assert.deepEqual(
    await stackViolationsOf(lbIngressMatchesIpFamily, [albSg, alb("dualstack"), v4, v6]),
    [],
    "a dualstack ALB may open IPv6",
  );
});

const taskDefinition = (
  name: string,
  containers: Record<string, unknown>[],
  volumes: Record<string, unknown>[] = [],
): FakeResource => ({
  type: "aws:ecs/taskDefinition:TaskDefinition",
  name,
  props: { containerDefinitions: JSON.stringify(containers), volumes },
});

test("rds-master-secret-admin-only: app and exporter tasks that read the master secret fail; the one-shot setup task may", async () => {
  const master = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-0f1e2d3c-AbCdEf:password::";
  const own = "arn:aws:secretsmanager:us-east-1:123456789012:secret:inferstack-prod-db-app-Xy12Ab:password::";
  // As infra/platforms/aws.ts declared them before: the app and the Postgres exporter log in as the master user.
  const oldApp = taskDefinition("app", [
    { name: "app", portMappings: [{ containerPort: 8080 }], secrets: [{ name: "PGPASSWORD", valueFrom: master }] },
  ]);
  const oldMonitoring = taskDefinition("monitoring", [
    { name: "grafana", portMappings: [{ containerPort: 3000 }] },
    {
      name: "postgres-exporter",
      portMappings: [{ containerPort: 9187 }],
      secrets: [{ name: "DATA_SOURCE_PASS", valueFrom: master }],
    },
  ]);
  assert.deepEqual(await violationsOf(rdsMasterSecretAdminOnly, oldApp), [
    "app: container app: PGPASSWORD reads the RDS-managed master secret in a task that serves (app)",
  ]);
  assert.deepEqual(await violationsOf(rdsMasterSecretAdminOnly, oldMonitoring), [
    "monitoring: container postgres-exporter: DATA_SOURCE_PASS reads the RDS-managed master secret in a task that serves (grafana, postgres-exporter)",
  ]);
  const newApp = taskDefinition("app", [
    { name: "app", portMappings: [{ containerPort: 8080 }], secrets: [{ name: "PGPASSWORD", valueFrom: own }] },
  ]);
  const setup = taskDefinition("db-setup", [
    {
      name: "db-setup",
      secrets: [
        { name: "SETUP_MASTER_PASSWORD", valueFrom: master },
        { name: "SETUP_APP_PASSWORD", valueFrom: own },
      ],
    },
  ]);
  assert.deepEqual(await violationsOf(rdsMasterSecretAdminOnly, newApp), []);
  assert.deepEqual(
    await violationsOf(rdsMasterSecretAdminOnly, setup),
    [],
    "a one-shot task serving no port is the administrators' tool",
  );
});

test("state-on-supported-storage: a monitoring task with its TSDB and Grafana SQLite on EFS fails", async () => {
  const efs = (name: string) => ({
    name,
    efsVolumeConfiguration: { fileSystemId: "fs-1", transitEncryption: "ENABLED" },
  });
  const prometheus = (volume: string) => ({
    name: "prometheus",
    image: `123456789012.dkr.ecr.us-east-1.amazonaws.com/inferstack-prod/prometheus@sha256:${"ab".repeat(32)}`,
    command: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"],
    mountPoints: [{ sourceVolume: volume, containerPath: "/prometheus" }],
  });
  const alertmanager = {
    name: "alertmanager",
    image: "prom/alertmanager:v0.28.1",
    mountPoints: [{ sourceVolume: "alertmanager-data", containerPath: "/alertmanager" }],
  };
  // As infra/components/aws-monitoring.ts declared it before: three EFS access points.
  const old = taskDefinition(
    "monitoring",
    [
      prometheus("prometheus-data"),
      alertmanager,
      {
        name: "grafana",
        image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/inferstack-prod/grafana:c-1",
        environment: [{ name: "GF_PATHS_DATA", value: "/var/lib/grafana" }],
        mountPoints: [{ sourceVolume: "grafana-data", containerPath: "/var/lib/grafana" }],
      },
    ],
    [efs("prometheus-data"), efs("alertmanager-data"), efs("grafana-data")],
  );
  assert.deepEqual(await violationsOf(stateOnSupportedStorage, old), [
    "monitoring: container prometheus: the Prometheus TSDB (/prometheus) is on EFS",
    "monitoring: container grafana: Grafana's SQLite database (/var/lib/grafana) is on EFS",
  ]);
  const now = taskDefinition(
    "monitoring",
    [
      prometheus("prometheus-data"),
      alertmanager,
      {
        name: "grafana",
        image: "grafana/grafana:12.1.0",
        environment: [
          { name: "GF_PATHS_DATA", value: "/tmp/grafana" },
          { name: "GF_DATABASE_TYPE", value: "postgres" },
        ],
      },
    ],
    [{ name: "prometheus-data", configureAtLaunch: true }, efs("alertmanager-data")],
  );
  assert.deepEqual(
    await violationsOf(stateOnSupportedStorage, now),
    [],
    "EBS for the TSDB, Postgres for Grafana; Alertmanager's files may stay on EFS",
  );
  const sqliteOnEfs = taskDefinition(
    "g",
    [
      {
        name: "dash",
        image: "grafana/grafana-oss:11.0.0",
        mountPoints: [{ sourceVolume: "d", containerPath: "/var/lib/grafana" }],
      },
    ],
    [efs("d")],
  );
  assert.equal(
    (await violationsOf(stateOnSupportedStorage, sqliteOnEfs)).length,
    1,
    "found by image, default data path",
  );
});

test("the pack holds every policy the issue lists, each mandatory", () => {
  const names = [...resourcePolicies, ...stackPolicies].map((p) => p.name).sort();
  assert.deepEqual(names, [
    "alb-https-tls12",
    "alb-internal-routes-private",
    "ec2-imdsv2",
    "encryption-at-rest",
    "encryption-in-transit",
    "lb-ingress-matches-ip-family",
    "log-retention",
    "no-public-datastores",
    "no-world-open-ingress",
    "prod-database-protection",
    "prod-images-pinned",
    "rds-log-groups-managed",
    "rds-master-secret-admin-only",
    "required-tags",
    "state-on-supported-storage",
  ]);
  for (const p of [...resourcePolicies, ...stackPolicies]) assert.equal(p.enforcementLevel, "mandatory", p.name);
});
