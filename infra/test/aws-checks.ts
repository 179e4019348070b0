/**
 * The assertions both AWS stacks must pass (`aws-staging.test.ts`, `aws-prod.test.ts`), driven by
 * the tier's preset so small and medium are checked against their own values. Besides what
 * the resources declare, they check the AWS limits mocks cannot catch.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import * as tls from "node:tls";
import { fileURLToPath } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import { Redis } from "ioredis";
import pg from "pg";
import { databaseRoles, setupPlan, setupScript } from "../components/aws-database-roles.ts";
import { httpsPolicy } from "../components/aws-load-balancer.ts";
import { type AwsStackConfig, parseStackConfig } from "../config.ts";
import { fargatePairProblem } from "../fargate.ts";
import { type ImageName, images, pinned } from "../images.ts";
import { mockPasswordFor } from "../offline/cloud-mocks.ts";
import { type MockedResource, type MockedStack, runUnderMocks, unwrapSecrets } from "../offline/run-under-mocks.ts";
import { main } from "../program.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

const T = {
  provider: "pulumi:providers:aws",
  vpc: "aws:ec2/vpc:Vpc",
  subnet: "aws:ec2/subnet:Subnet",
  nat: "aws:ec2/natGateway:NatGateway",
  routeTable: "aws:ec2/routeTable:RouteTable",
  endpoint: "aws:ec2/vpcEndpoint:VpcEndpoint",
  flowLog: "aws:ec2/flowLog:FlowLog",
  sg: "aws:ec2/securityGroup:SecurityGroup",
  ingress: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  egress: "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
  repo: "aws:ecr/repository:Repository",
  lifecycle: "aws:ecr/lifecyclePolicy:LifecyclePolicy",
  image: "docker:index/image:Image",
  cluster: "aws:ecs/cluster:Cluster",
  taskDef: "aws:ecs/taskDefinition:TaskDefinition",
  service: "aws:ecs/service:Service",
  registry: "aws:servicediscovery/service:Service",
  scalingTarget: "aws:appautoscaling/target:Target",
  scalingPolicy: "aws:appautoscaling/policy:Policy",
  alb: "aws:lb/loadBalancer:LoadBalancer",
  targetGroup: "aws:lb/targetGroup:TargetGroup",
  listener: "aws:lb/listener:Listener",
  listenerRule: "aws:lb/listenerRule:ListenerRule",
  certificate: "aws:acm/certificate:Certificate",
  certValidation: "aws:acm/certificateValidation:CertificateValidation",
  record: "aws:route53/record:Record",
  bucket: "aws:s3/bucket:Bucket",
  bucketPolicy: "aws:s3/bucketPolicy:BucketPolicy",
  rds: "aws:rds/instance:Instance",
  rdsParams: "aws:rds/parameterGroup:ParameterGroup",
  redis: "aws:elasticache/replicationGroup:ReplicationGroup",
  efs: "aws:efs/fileSystem:FileSystem",
  mountTarget: "aws:efs/mountTarget:MountTarget",
  accessPoint: "aws:efs/accessPoint:AccessPoint",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
} as const;

interface Container {
  name: string;
  image: string;
  environment: { name: string; value: string }[];
  secrets: { name: string; valueFrom: string }[];
  readonlyRootFilesystem: boolean;
  logConfiguration: { logDriver: string };
  portMappings?: { containerPort: number }[];
  stopTimeout?: number;
  command?: string[];
}

/** The RDS CA bundle as app/Dockerfile writes it: its own command, run from the repository root into a temp dir. */
function writeRdsBundle(): { dir: string; path: string; bundle: string } {
  const dockerfile = readFileSync(join(repoRoot, "app/Dockerfile"), "utf8");
  const [, command] = /(node -e "[^"]+") > \/app\/certs\/rds-ca-bundle\.pem/.exec(dockerfile) ?? [];
  assert.ok(command, "app/Dockerfile writes /app/certs/rds-ca-bundle.pem");
  const dir = mkdtempSync(join(tmpdir(), "rds-ca-"));
  const path = join(dir, "rds-ca-bundle.pem");
  execFileSync("/bin/sh", ["-c", `${command} > ${path}`], {
    cwd: repoRoot,
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` },
  });
  return { dir, path, bundle: readFileSync(path, "utf8") };
}

/** Answers a Postgres SSLRequest with 'S' and then TLS with `key`/`cert`, as a server does before startup. */
async function fakePostgresTls(key: string, cert: string): Promise<{ port: number; close: () => void }> {
  const server = net.createServer((socket) => {
    socket.once("data", () => {
      socket.write("S");
      new tls.TLSSocket(socket, { isServer: true, key, cert }).on("error", () => socket.destroy());
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

/** ALB wildcard pattern (`*` any run, `?` one character) as an anchored RegExp. */
function albPattern(pattern: string, flags = ""): RegExp {
  return new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replaceAll("*", ".*")
      .replaceAll("?", ".")}$`,
    flags,
  );
}

/**
 * What an ALB listener does with a request, per the ALB rule semantics: rules in ascending
 * priority, a rule applies when all its conditions match (any value within one condition),
 * host headers compare case-insensitively, paths case-sensitively and without the query string;
 * no rule matching leaves the default action.
 */
interface AlbCondition {
  hostHeader?: { values: string[] };
  pathPattern?: { values?: string[]; regexValues?: string[] };
}
interface AlbAction {
  type: string;
  targetGroupArn?: string;
  fixedResponse?: { statusCode: string };
}
export interface AlbRule {
  priority: number;
  conditions: AlbCondition[];
  actions: AlbAction[];
}

export function albAction(defaultActions: AlbAction[], rules: AlbRule[], host: string, path: string): AlbAction {
  const matches = (c: AlbCondition): boolean => {
    if (c.hostHeader) return c.hostHeader.values.some((v) => albPattern(v, "i").test(host));
    if (c.pathPattern?.values) return c.pathPattern.values.some((v) => albPattern(v).test(path));
    if (c.pathPattern?.regexValues) return c.pathPattern.regexValues.some((v) => new RegExp(v).test(path));
    throw new Error(`condition ${JSON.stringify(c)} not modelled`);
  };
  const rule = [...rules].sort((a, b) => a.priority - b.priority).find((r) => r.conditions.every(matches));
  return (rule ? rule.actions : defaultActions)[0]!;
}

function ipv4ToInt(ip: string): number {
  return ip.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}
function cidrRange(cidr: string): [number, number] {
  const [ip, bits] = cidr.split("/");
  const start = ipv4ToInt(ip!);
  return [start, start + 2 ** (32 - Number(bits)) - 1];
}

/** Secret settings a stack may set (`pulumi config set --secret`); values must never leak. */
export interface StackSecrets {
  grafanaAdminPassword?: string;
  alertReceivers?: { slack?: { webhookUrl: string; channel?: string } };
}

export function describeAwsStack(stackName: string, tier: "small" | "medium", secrets: StackSecrets = {}): void {
  const config: Record<string, string> = {
    "inferstack:tier": tier,
    "aws:region": "us-east-1",
    ...(secrets.grafanaAdminPassword ? { "inferstack:grafanaAdminPassword": secrets.grafanaAdminPassword } : {}),
    ...(secrets.alertReceivers ? { "inferstack:alertReceivers": JSON.stringify(secrets.alertReceivers) } : {}),
  };
  const parsed = parseStackConfig(config);
  if (parsed.platform !== "aws") throw new Error(`${tier} is not an AWS tier`);
  const cfg: AwsStackConfig = parsed;
  let stack: MockedStack;
  const all = (type: string) => stack.resources.filter((r) => r.type === type);
  const one = (type: string, nameEnds = "") => {
    const found = all(type).filter((r) => r.name.endsWith(nameEnds));
    assert.equal(
      found.length,
      1,
      `expected exactly one ${type} named *${nameEnds}, got ${found.map((r) => r.name).join(", ") || "none"}`,
    );
    return found[0]!;
  };
  const nameOf = new WeakMap<pulumi.Resource, string>();
  const dependsOnOf = new Map<string, string[]>();
  const containersOf = (r: MockedResource): Container[] => JSON.parse(r.inputs.containerDefinitions) as Container[];
  const appTask = () => one(T.taskDef, "-app");
  /** The ARN ECS reads a database role's password from (its secret version's, as the program passes it). */
  const roleSecretArn = (role: keyof typeof databaseRoles) =>
    `arn:aws:secretversion:us-east-1:123456789012:inferstack-${stackName}-db-${role}`;
  const appService = () => one(T.service, "-app");

  test(`${stackName}: the program runs under mocks and exports url, tier, grafanaUrl and a cost`, async () => {
    stack = await runUnderMocks(stackName, config, async () => {
      // Records each resource's dependsOn by name (creation order is not visible to mocks).
      pulumi.runtime.registerStackTransformation((args) => {
        nameOf.set(args.resource, args.name);
        const deps = args.opts.dependsOn;
        if (Array.isArray(deps))
          dependsOnOf.set(
            args.name,
            deps.map((d) => nameOf.get(d as pulumi.Resource) ?? "(unknown)"),
          );
        return undefined;
      });
      return main();
    });
    assert.equal(stack.outputs.tier, tier);
    assert.equal(stack.outputs.url, `https://${cfg.domain}`);
    assert.equal(stack.outputs.grafanaUrl, `https://grafana.${cfg.domain}`);
    assert.equal(typeof stack.outputs.estimatedMonthlyCost, "number");
    assert.ok((stack.outputs.estimatedMonthlyCost as number) > 0);
    assert.match(String(stack.outputs.appImage), /@sha256:[0-9a-f]{64}$/);
  });

  test(`${stackName}: every AWS resource goes through one provider that tags app, env and tier`, () => {
    const provider = one(T.provider);
    assert.deepEqual(JSON.parse(provider.inputs.defaultTags), { tags: { app: "inferstack", env: stackName, tier } });
    assert.equal(provider.inputs.region, "us-east-1");
    const untagged = stack.resources.filter(
      (r) => r.custom && r.type.startsWith("aws:") && !String(r.provider).includes("pulumi:providers:aws::aws::"),
    );
    assert.deepEqual(
      untagged.map((r) => `${r.type} ${r.name}`),
      [],
    );
  });

  test(`${stackName}: network spans ${cfg.network.azCount} distinct AZs with public/private subnets, NAT and endpoints`, () => {
    assert.equal(one(T.vpc).inputs.cidrBlock, cfg.network.vpcCidr);
    assert.equal(one(T.vpc).inputs.enableDnsHostnames, true);
    const subnets = all(T.subnet);
    const publics = subnets.filter((s) => s.inputs.tags["inferstack:subnet"] === "public");
    const privates = subnets.filter((s) => s.inputs.tags["inferstack:subnet"] === "private");
    for (const group of [publics, privates]) {
      assert.equal(group.length, cfg.network.azCount);
      assert.equal(
        new Set(group.map((s) => s.inputs.availabilityZone)).size,
        cfg.network.azCount,
        "one subnet per distinct AZ",
      );
    }
    for (const s of subnets) assert.equal(s.inputs.mapPublicIpOnLaunch, false);
    // Subnets inside the VPC block and not overlapping each other.
    const [vpcStart, vpcEnd] = cidrRange(cfg.network.vpcCidr);
    const ranges = subnets.map((s) => cidrRange(s.inputs.cidrBlock)).sort((a, b) => a[0] - b[0]);
    for (const [i, [start, end]] of ranges.entries()) {
      assert.ok(start >= vpcStart && end <= vpcEnd, "subnet inside the VPC");
      if (i > 0) assert.ok(start > ranges[i - 1]![1], "subnets do not overlap");
    }
    assert.equal(all(T.nat).length, cfg.network.natGateways === "perAz" ? cfg.network.azCount : 1);
    const privateRoutes = all(T.routeTable).filter((r) => r.name.includes("-private-"));
    assert.equal(privateRoutes.length, cfg.network.azCount);
    for (const r of privateRoutes) assert.ok(r.inputs.routes[0].natGatewayId, "private subnets egress through NAT");
    const endpoints = all(T.endpoint);
    assert.ok(
      endpoints.some(
        (e) => e.inputs.vpcEndpointType === "Gateway" && e.inputs.serviceName === "com.amazonaws.us-east-1.s3",
      ),
    );
    const interfaces = endpoints
      .filter((e) => e.inputs.vpcEndpointType === "Interface")
      .map((e) => e.inputs.serviceName.split(".").slice(3).join("."));
    assert.deepEqual(
      interfaces.sort(),
      cfg.network.interfaceEndpoints ? ["ecr.api", "ecr.dkr", "logs", "secretsmanager"] : [],
    );
    assert.equal(all(T.flowLog).length, cfg.network.flowLogs ? 1 : 0);
  });

  test(`${stackName}: the app image is built for ${cfg.app.architecture}, pushed to a scanned immutable ECR repo, used by digest`, () => {
    const repo = one(T.repo, "-app");
    assert.equal(repo.inputs.imageTagMutability, "IMMUTABLE");
    assert.equal(repo.inputs.imageScanningConfiguration.scanOnPush, true);
    const lifecycle = JSON.parse(one(T.lifecycle, "-app").inputs.policy);
    assert.ok(lifecycle.rules.some((r: { selection: { tagStatus?: string } }) => r.selection.tagStatus === "untagged"));
    assert.ok(
      lifecycle.rules.some(
        (r: { selection: { countType?: string } }) => r.selection.countType === "imageCountMoreThan",
      ),
    );
    const image = one(T.image, "-app");
    assert.equal(image.inputs.build.dockerfile, "app/Dockerfile");
    assert.equal(image.inputs.build.context, ".");
    assert.equal(image.inputs.build.platform, cfg.app.architecture === "arm64" ? "linux/arm64" : "linux/amd64");
    // Tags are immutable and never reused: content hash + a random part renewed with the content.
    const [, contentHash] = /:(c-[0-9a-f]{20})-[0-9a-f]{8}$/.exec(image.inputs.imageName) ?? [];
    assert.ok(contentHash, `tag of ${image.inputs.imageName}`);
    assert.deepEqual(one("random:index/randomId:RandomId", "-app-tag").inputs.keepers, { contentHash });
    const registry = unwrapSecrets(image.inputs.registry) as { server: string; username: string };
    assert.ok(registry.server.includes(".dkr.ecr."));
    assert.equal(registry.username, "AWS");
    const allowedUpstream = new Set(Object.keys(images).map((k) => pinned(k as ImageName)));
    for (const task of all(T.taskDef)) {
      for (const c of containersOf(task)) {
        if (c.image.includes(".dkr.ecr.")) assert.match(c.image, /@sha256:[0-9a-f]{64}$/, `${c.name} pinned by digest`);
        else
          assert.ok(allowedUpstream.has(c.image), `${c.name}: ${c.image} is a digest-pinned image of infra/images.ts`);
      }
    }
  });

  test(`${stackName}: the app task has a valid Fargate size, secrets from Secrets Manager and no secret in env`, () => {
    const task = appTask();
    const cpu = Number(task.inputs.cpu);
    const memory = Number(task.inputs.memory);
    assert.equal(cpu, cfg.app.cpu * 1024);
    assert.equal(memory, cfg.app.memoryMiB);
    for (const t of all(T.taskDef))
      assert.equal(fargatePairProblem(Number(t.inputs.cpu) / 1024, Number(t.inputs.memory)), null, `${t.name} size`);
    assert.deepEqual(task.inputs.requiresCompatibilities, ["FARGATE"]);
    assert.equal(task.inputs.networkMode, "awsvpc");
    assert.equal(task.inputs.runtimePlatform.cpuArchitecture, cfg.app.architecture === "arm64" ? "ARM64" : "X86_64");
    const [app] = containersOf(task);
    assert.ok(app);
    assert.deepEqual(
      app.portMappings?.map((p) => p.containerPort),
      [8080],
    );
    assert.equal(app.readonlyRootFilesystem, true);
    assert.equal(app.logConfiguration.logDriver, "awslogs");
    assert.equal(app.stopTimeout, cfg.app.gracefulShutdownSeconds + 5);
    const secrets = Object.fromEntries(app.secrets.map((s) => [s.name, s.valueFrom]));
    // The app role's own secret, never the RDS-managed master secret.
    assert.equal(secrets.PGPASSWORD, `${roleSecretArn("app")}:password::`);
    assert.ok(!app.secrets.some((x) => x.valueFrom.includes("rds!db-")), "no master secret in the app task");
    assert.match(secrets.REDIS_URL ?? "", /:url::$/);
    const env = Object.fromEntries(app.environment.map((e) => [e.name, e.value]));
    assert.deepEqual(
      Object.keys(env).filter((k) => /PASSWORD|TOKEN|SECRET/.test(k)),
      [],
    );
    assert.match(
      env.DATABASE_URL ?? "",
      /^postgres:\/\/inferstack_app@[^:/]+:5432\/inferstack\?.*sslmode=verify-full&sslrootcert=\/app\/certs\/rds-ca-bundle\.pem$/,
      "the app role, no password in the URL",
    );
    assert.equal(env.MIGRATE_ON_START, "off", "the app role cannot migrate; the setup task did");
    const { dir: bundleDir, path: bundlePath, bundle } = writeRdsBundle();
    const certs = bundle
      .split(/(?<=-----END CERTIFICATE-----)\n/)
      .filter((c) => c.includes("BEGIN CERTIFICATE"))
      .map((pem) => new X509Certificate(pem));
    // RDS's default CA for new instances is rds-ca-rsa2048-g1; the stack's region's root must be there and valid.
    const regionRoot = certs.find((c) => c.subject.includes("CN=Amazon RDS us-east-1 Root CA RSA2048 G1"));
    assert.ok(regionRoot?.ca && new Date(regionRoot.validTo) > new Date(), "the us-east-1 RSA2048 G1 root, valid");
    // The real node-postgres client, given the task's env: user/host/db from the URL, the password
    // from PGPASSWORD (the secret), TLS verified against the bundle, host name checked.
    process.env.PGPASSWORD = "from-secrets-manager";
    const client = new pg.Client({
      connectionString: env.DATABASE_URL!.replace("/app/certs/rds-ca-bundle.pem", bundlePath),
    });
    const params = (
      client as unknown as {
        connectionParameters: { user: string; host: string; database: string; port: number; ssl: unknown };
      }
    ).connectionParameters;
    assert.deepEqual([params.user, params.database, params.port], ["inferstack_app", "inferstack", 5432]);
    assert.equal(params.host, stack.outputs.databaseAddress);
    assert.equal(client.password, "from-secrets-manager");
    assert.deepEqual(
      params.ssl,
      { ca: bundle },
      "verify-full: the bundle as CA, rejectUnauthorized and the host-name check left on",
    );
    rmSync(bundleDir, { recursive: true, force: true });
    delete process.env.PGPASSWORD;
    assert.equal(env.LOG_LEVEL, cfg.app.logLevel);
    assert.equal(env.AUTH_MODE, cfg.app.authMode);
    assert.equal(env.SHUTDOWN_TIMEOUT_MS, String(cfg.app.gracefulShutdownSeconds * 1000));
    assert.equal(env.TRUST_PROXY, "true");
    assert.match(env.PREDICTION_LOG_SPILL_PATH ?? "", /^\/tmp\//, "spill file on the writable scratch volume");
    // Log group retention from the preset.
    assert.equal(one(T.logGroup, "-app").inputs.retentionInDays, cfg.logs.retentionDays);
    // The execution role pulls from its own repository, writes its own log group, reads exactly the task's secrets.
    const policy = JSON.parse(one(T.rolePolicy, "-app-execution").inputs.policy);
    const statement = (sid: string) => policy.Statement.find((st: { Sid?: string }) => st.Sid === sid);
    assert.deepEqual(
      statement("Secrets").Resource,
      app.secrets.map((x) => x.valueFrom.replace(/:[a-zA-Z]+::$/, "")),
    );
    // (the mock ARN of the `inferstack-<stack>-app` repository)
    assert.deepEqual(statement("EcrPull").Resource, [
      `arn:aws:repository:us-east-1:123456789012:inferstack-${stackName}-app`,
    ]);
    assert.match(statement("Logs").Resource, /:\*$/);
    const wildcards = policy.Statement.filter((st: { Resource: unknown }) => st.Resource === "*").map(
      (st: { Action: unknown }) => st.Action,
    );
    assert.deepEqual(wildcards, [["ecr:GetAuthorizationToken"]], "only the ECR login is account-wide");
    // One managed policy: the ECS infrastructure role's for the Prometheus EBS volume (it acts only on volumes ECS tags).
    assert.deepEqual(
      all("aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((a) => a.inputs.policyArn),
      ["arn:aws:iam::aws:policy/service-role/AmazonECSInfrastructureRolePolicyForVolumes"],
      "no broad managed policies",
    );
    for (const role of all("aws:iam/role:Role").filter(
      (r) => r.name.endsWith("-execution") || r.name.endsWith("-task"),
    )) {
      const trust = JSON.parse(role.inputs.assumeRolePolicy).Statement[0];
      assert.equal(trust.Principal.Service, "ecs-tasks.amazonaws.com");
      if (role.name.endsWith("-task"))
        assert.equal(trust.Condition.StringEquals["aws:SourceAccount"], "123456789012", "no confused deputy");
    }
  });

  test(`${stackName}: verify-full refuses a Postgres server whose certificate is not from the RDS CAs`, async () => {
    const env = Object.fromEntries(containersOf(appTask())[0]!.environment.map((e) => [e.name, e.value]));
    const { dir, path } = writeRdsBundle();
    // A server certificate for 127.0.0.1, self-signed: valid for the host, but no RDS CA signed it.
    const key = join(dir, "key.pem");
    const cert = join(dir, "cert.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
      ],
      { stdio: "ignore" },
    );
    const server = await fakePostgresTls(readFileSync(key, "utf8"), readFileSync(cert, "utf8"));
    const url = env.DATABASE_URL!.replace(/@[^/]+\//, `@127.0.0.1:${server.port}/`);
    const tlsError = async (connectionString: string) => {
      const client = new pg.Client({ connectionString, password: "x", connectionTimeoutMillis: 5000 });
      try {
        await client.connect();
        return "connected";
      } catch (e) {
        return String((e as NodeJS.ErrnoException).code ?? (e as Error).message);
      } finally {
        await client.end().catch(() => {});
      }
    };
    try {
      assert.equal(
        await tlsError(url.replace("/app/certs/rds-ca-bundle.pem", path)),
        "DEPTH_ZERO_SELF_SIGNED_CERT",
        "the task's settings refuse it",
      );
      // Control: trusting that certificate, the same server gets past the TLS handshake.
      assert.doesNotMatch(
        await tlsError(url.replace("/app/certs/rds-ca-bundle.pem", cert)),
        /CERT|SELF_SIGNED|UNABLE_TO/,
      );
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${stackName}: the app service deploys safely: circuit breaker, steady state, private subnets, Cloud Map`, () => {
    const service = appService();
    assert.deepEqual(service.inputs.deploymentCircuitBreaker, { enable: true, rollback: true });
    assert.equal(service.inputs.waitForSteadyState, true);
    // A release that is healthy but answers 5xx is rolled back too.
    const alarm = one("aws:cloudwatch/metricAlarm:MetricAlarm", "-app-5xx");
    assert.deepEqual(service.inputs.alarms, { alarmNames: [alarm.name], enable: true, rollback: true });
    const rate = alarm.inputs.metricQueries.find((q: { returnData?: boolean }) => q.returnData);
    assert.match(rate.expression, /100 \* FILL\(errors, 0\) \/ requests/);
    for (const q of alarm.inputs.metricQueries.filter((q: { metric?: unknown }) => q.metric)) {
      assert.match(q.metric.dimensions.TargetGroup, /^targetgroup\/.*-app\//);
      assert.match(q.metric.dimensions.LoadBalancer, /^app\//);
    }
    assert.equal(service.inputs.desiredCount, cfg.app.replicas);
    assert.ok(cfg.app.replicas >= (tier === "medium" ? 3 : 2));
    assert.equal(service.inputs.deploymentMinimumHealthyPercent, 100);
    assert.equal(service.inputs.deploymentMaximumPercent, 200);
    assert.ok(service.inputs.healthCheckGracePeriodSeconds >= 30);
    assert.equal(service.inputs.launchType, "FARGATE");
    for (const svc of all(T.service))
      assert.equal(svc.inputs.name, undefined, `${svc.name} is autonamed (create-before-delete needs a free name)`);
    assert.equal(service.inputs.networkConfiguration.assignPublicIp, false);
    const privateIds = all(T.subnet)
      .filter((s) => s.inputs.tags["inferstack:subnet"] === "private")
      .map((s) => `${s.name}-id`);
    assert.deepEqual([...service.inputs.networkConfiguration.subnets].sort(), privateIds.sort());
    assert.ok(service.inputs.serviceRegistries.registryArn);
    const registry = one(T.registry, "-app");
    assert.equal(registry.inputs.name, "app");
    assert.deepEqual(registry.inputs.dnsConfig.dnsRecords, [{ type: "A", ttl: 10 }]);
    assert.equal(
      one("aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace").inputs.name,
      `${stackName}.inferstack.internal`,
    );
    assert.deepEqual(one(T.cluster).inputs.settings, [
      { name: "containerInsights", value: cfg.monitoring.containerInsights ? "enabled" : "disabled" },
    ]);
  });

  test(`${stackName}: autoscaling ${cfg.autoscaling.enabled ? "tracks CPU and requests per target" : "is off"}`, () => {
    const targets = all(T.scalingTarget);
    const policies = all(T.scalingPolicy);
    if (!cfg.autoscaling.enabled) {
      assert.equal(targets.length, 0);
      assert.equal(policies.length, 0);
      return;
    }
    const [target] = targets;
    assert.ok(target);
    assert.equal(target.inputs.minCapacity, cfg.autoscaling.min);
    assert.equal(target.inputs.maxCapacity, cfg.autoscaling.max);
    assert.equal(target.inputs.resourceId, `service/${stack.outputs.clusterName}/${stack.outputs.appServiceName}`);
    const byMetric = Object.fromEntries(
      policies.map((p) => [
        p.inputs.targetTrackingScalingPolicyConfiguration.predefinedMetricSpecification.predefinedMetricType,
        p.inputs.targetTrackingScalingPolicyConfiguration,
      ]),
    );
    assert.equal(byMetric.ECSServiceAverageCPUUtilization?.targetValue, cfg.autoscaling.cpuTargetPercent);
    assert.equal(byMetric.ALBRequestCountPerTarget?.targetValue, cfg.autoscaling.requestsPerTarget);
    assert.match(
      byMetric.ALBRequestCountPerTarget?.predefinedMetricSpecification.resourceLabel ?? "",
      /^app\/[^/]+\/[^/]+\/targetgroup\/[^/]+\/[^/]+$/,
    );
  });

  test(`${stackName}: the ALB serves HTTPS with a DNS-validated ACM cert, redirects HTTP, and fits AWS name limits`, () => {
    const alb = one(T.alb);
    assert.ok(alb.inputs.name.length <= 32, `ALB name ${alb.inputs.name} ≤ 32`);
    assert.equal(alb.inputs.internal, false);
    assert.equal(alb.inputs.dropInvalidHeaderFields, true);
    assert.equal(alb.inputs.enableDeletionProtection, cfg.edge.deletionProtection);
    const publicIds = all(T.subnet)
      .filter((s) => s.inputs.tags["inferstack:subnet"] === "public")
      .map((s) => `${s.name}-id`);
    assert.deepEqual([...alb.inputs.subnets].sort(), publicIds.sort());
    for (const tg of all(T.targetGroup)) {
      if (tg.inputs.name !== undefined) assert.ok(tg.inputs.name.length <= 32);
      assert.ok(tg.inputs.namePrefix === undefined || tg.inputs.namePrefix.length <= 6, "target group namePrefix ≤ 6");
      assert.equal(tg.inputs.targetType, "ip");
      assert.equal(tg.inputs.deregistrationDelay, cfg.app.gracefulShutdownSeconds + 10);
    }
    const appTg = one(T.targetGroup, "-app");
    assert.equal(appTg.inputs.healthCheck.path, "/health/ready");
    assert.equal(appTg.inputs.port, 8080);
    const listeners = all(T.listener);
    const https = listeners.find((l) => l.inputs.protocol === "HTTPS");
    const http = listeners.find((l) => l.inputs.protocol === "HTTP");
    assert.equal(https?.inputs.port, 443);
    assert.equal(https?.inputs.sslPolicy, httpsPolicy);
    assert.equal(httpsPolicy, "ELBSecurityPolicy-TLS13-1-2-2021-06");
    assert.deepEqual(http?.inputs.defaultActions[0].redirect, {
      protocol: "HTTPS",
      port: "443",
      statusCode: "HTTP_301",
    });
    const cert = one(T.certificate);
    assert.equal(cert.inputs.domainName, cfg.domain);
    assert.deepEqual(cert.inputs.subjectAlternativeNames, [`grafana.${cfg.domain}`]);
    assert.equal(cert.inputs.validationMethod, "DNS");
    assert.equal(one(T.certValidation).inputs.validationRecordFqdns.length, 2);
    const rule = one(T.listenerRule, "-grafana");
    assert.deepEqual(rule.inputs.conditions[0].hostHeader.values, [`grafana.${cfg.domain}`]);
    const aliases = all(T.record).filter((r) => r.inputs.type === "A");
    assert.deepEqual(aliases.map((r) => r.inputs.name).sort(), [cfg.domain, `grafana.${cfg.domain}`].sort());
    for (const a of aliases) assert.equal(a.inputs.aliases[0].evaluateTargetHealth, true);
  });

  test(`${stackName}: the ALB forwards only the API's public routes; /metrics and /health/* get its fixed 404`, () => {
    const https = all(T.listener).find((l) => l.inputs.protocol === "HTTPS")!;
    assert.equal(https.inputs.defaultActions.length, 1);
    assert.equal(https.inputs.defaultActions[0].type, "fixed-response", "nothing is forwarded by default");
    const rules = all(T.listenerRule);
    // ALB limits: 100 rules per listener, unique priorities 1..50000, ≤ 3 values per condition and ≤ 5 per rule, ≤ 128 chars each.
    assert.ok(rules.length <= 100);
    const priorities = rules.map((r) => r.inputs.priority);
    assert.equal(new Set(priorities).size, priorities.length, `unique priorities ${priorities}`);
    for (const r of rules) {
      assert.ok(Number.isInteger(r.inputs.priority) && r.inputs.priority >= 1 && r.inputs.priority <= 50000);
      const counts = r.inputs.conditions.map((c: Record<string, { values?: string[]; regexValues?: string[] }>) => {
        const [kind, ...more] = Object.keys(c);
        assert.deepEqual(more, [], `${r.name}: one condition type per condition`);
        const values = (c[kind!]!.values ?? c[kind!]!.regexValues)!;
        for (const v of values) assert.ok(v.length <= 128, `${r.name}: ${v} ≤ 128 chars`);
        return values.length;
      });
      for (const n of counts) assert.ok(n >= 1 && n <= 3, `${r.name}: ${n} values in a condition (ALB allows 3)`);
      assert.ok(
        counts.reduce((a: number, b: number) => a + b, 0) <= 5,
        `${r.name}: ALB allows 5 match evaluations per rule`,
      );
    }
    const appTg = `${one(T.targetGroup, "-app").name}-id`;
    const grafanaTg = `${one(T.targetGroup, "-grafana").name}-id`;
    const routeOf = (host: string, path: string) => {
      const action = albAction(
        https.inputs.defaultActions,
        rules.map((r) => r.inputs as AlbRule),
        host,
        path,
      );
      if (action.type === "fixed-response") return Number(action.fixedResponse!.statusCode);
      const arn = String(action.targetGroupArn);
      return arn.includes(appTg.replace(/-id$/, ""))
        ? "app"
        : arn.includes(grafanaTg.replace(/-id$/, ""))
          ? "grafana"
          : arn;
    };
    const api = cfg.domain;
    for (const path of [
      "/v1/models",
      "/v1/models/iris",
      "/v1/models/iris:predict",
      "/v2",
      "/v2/",
      "/v2/health/live",
      "/v2/models/iris/versions/1/infer",
      "/openapi.json",
      "/docs",
      "/docs/assets/5.0.0/swagger-ui.css",
    ]) {
      assert.equal(routeOf(api, path), "app", path);
    }
    assert.equal(routeOf(api.toUpperCase(), "/v1/models"), "app", "host names match case-insensitively");
    for (const path of [
      "/metrics",
      "/health/ready",
      "/health/live",
      "/health/startup",
      "/",
      "/Metrics",
      "/metrics/",
      "/v1x",
      "/docsx",
    ]) {
      assert.equal(routeOf(api, path), 404, path);
    }
    // Paths the ALB sees raw but the app's URL parser (the WHATWG one Node's URL implements, as
    // @hono/node-server uses it) resolves to an internal route.
    for (const path of [
      "/v1/../metrics",
      "/v2/./../health/ready",
      "/v1/%2e%2e/metrics",
      "/docs/%2E./%2e%2E/health/ready",
      "/v2/.%2e/metrics",
      "/v1/models/..",
    ]) {
      const resolved = new URL(`https://${api}${path}`).pathname;
      if (!path.endsWith("/.."))
        assert.ok(["/metrics", "/health/ready"].includes(resolved), `${path} resolves to ${resolved}`);
      assert.equal(routeOf(api, path), 404, path);
    }
    assert.equal(routeOf(`grafana.${cfg.domain}`, "/d/inferstack"), "grafana");
    assert.equal(routeOf(`grafana.${cfg.domain}`, "/api/health"), "grafana");
    assert.equal(routeOf(`grafana.${cfg.domain}`, "/metrics"), 404, "Grafana's own metrics stay inside");
    assert.equal(
      routeOf(String(stack.outputs.loadBalancerDnsName), "/v1/models"),
      404,
      "only the API's own host name is served",
    );
    // The ALB health check reaches the tasks through the target group, which rules never touch.
    assert.equal(one(T.targetGroup, "-app").inputs.healthCheck.path, "/health/ready");
  });

  test(`${stackName}: ALB access logs ${cfg.edge.accessLogs ? "go to a private S3 bucket the ELB account may write" : "are off"}`, () => {
    const alb = one(T.alb);
    if (!cfg.edge.accessLogs) {
      assert.equal(alb.inputs.accessLogs, undefined);
      assert.equal(all(T.bucket).length, 0);
      return;
    }
    assert.equal(alb.inputs.accessLogs.enabled, true);
    assert.equal(alb.inputs.accessLogs.prefix, "alb");
    const policy = JSON.parse(one(T.bucketPolicy).inputs.policy);
    const elb = policy.Statement.find((s: { Sid?: string }) => s.Sid === "ElbAccountWrites");
    assert.equal(elb.Principal.AWS, "arn:aws:iam::127311923021:root");
    assert.match(elb.Resource, /\/alb\/AWSLogs\/123456789012\/\*$/);
    assert.ok(
      policy.Statement.some(
        (s: { Effect: string; Condition: { Bool: Record<string, string> } }) =>
          s.Effect === "Deny" && s.Condition.Bool["aws:SecureTransport"] === "false",
      ),
    );
  });

  test(`${stackName}: Postgres is private, encrypted, RDS-managed password, backups ${cfg.postgres.backupRetentionDays}d`, () => {
    const db = one(T.rds);
    assert.ok(db.inputs.identifier.length <= 63);
    // Stem + a random part renewed with the inputs that force replacement: a replacement has a free identifier.
    assert.match(db.inputs.identifier, new RegExp(`^inferstack-${stackName}-pg-[a-z0-9]+$`));
    assert.deepEqual(
      Object.keys(one("random:index/randomString:RandomString", "-pg-identifier").inputs.keepers).sort(),
      ["dbName", "engine", "storageEncrypted", "username"],
    );
    assert.equal(db.inputs.engine, "postgres");
    assert.ok(Number(db.inputs.engineVersion.split(".")[0]) >= 16);
    assert.equal(db.inputs.storageEncrypted, true);
    assert.equal(db.inputs.publiclyAccessible, false);
    assert.equal(db.inputs.manageMasterUserPassword, true);
    assert.equal(db.inputs.password, undefined);
    assert.equal(db.inputs.instanceClass, cfg.postgres.instanceClass);
    assert.equal(db.inputs.multiAz, cfg.postgres.multiAz);
    assert.equal(db.inputs.backupRetentionPeriod, cfg.postgres.backupRetentionDays);
    assert.equal(db.inputs.deletionProtection, cfg.postgres.deletionProtection);
    assert.equal(db.inputs.performanceInsightsEnabled, cfg.postgres.performanceInsights);
    assert.equal(db.inputs.skipFinalSnapshot, false);
    assert.ok(db.inputs.finalSnapshotIdentifier.length <= 255);
    assert.equal(db.inputs.maxAllocatedStorage, cfg.postgres.maxStorageGiB);
    if (tier === "medium") {
      assert.ok(db.inputs.backupRetentionPeriod >= 7);
      assert.equal(db.inputs.multiAz, true);
      assert.equal(db.inputs.deletionProtection, true);
      assert.equal(db.inputs.performanceInsightsEnabled, true);
    }
    // Its exported logs land in groups the program owns, with the tier's retention, made before it.
    const rdsGroups = all(T.logGroup).filter((g) => String(g.inputs.name ?? "").startsWith("/aws/rds/"));
    assert.deepEqual(
      rdsGroups.map((g) => g.inputs.name).sort(),
      db.inputs.enabledCloudwatchLogsExports
        .map((log: string) => `/aws/rds/instance/${db.inputs.identifier}/${log}`)
        .sort(),
    );
    for (const g of rdsGroups) assert.equal(g.inputs.retentionInDays, cfg.logs.retentionDays);
    assert.deepEqual(
      [...(dependsOnOf.get(db.name) ?? [])].sort(),
      rdsGroups.map((g) => g.name).sort(),
      "the instance dependsOn its log groups",
    );
    // Rotated deliberately: never between the setup task reading the secret and connecting.
    const rotation = one("aws:secretsmanager/secretRotation:SecretRotation");
    assert.equal(rotation.inputs.rotationEnabled, false);
    assert.match(rotation.inputs.secretId, /:secret:rds!db-/);
    const params = one(T.rdsParams);
    assert.equal(params.inputs.family, `postgres${cfg.postgres.engineVersion.split(".")[0]}`);
    assert.ok(
      params.inputs.parameters.some(
        (p: { name: string; value: string }) => p.name === "rds.force_ssl" && p.value === "1",
      ),
    );
  });

  test(`${stackName}: Redis is encrypted with an AUTH token, ${cfg.redis.nodes} node(s), failover ${cfg.redis.automaticFailover}`, () => {
    const redis = one(T.redis);
    // Autonamed (`<name>-<7 random>`), so a replacement can be created before the old group goes.
    assert.equal(redis.inputs.replicationGroupId, undefined);
    assert.ok(redis.name.length + 8 <= 40, `${redis.name} + Pulumi's 8-character suffix ≤ 40`);
    if (cfg.postgres.deletionProtection)
      assert.match(redis.inputs.finalSnapshotIdentifier ?? "", new RegExp(`^${redis.name}-final-[0-9a-f]{8}$`));
    else assert.equal(redis.inputs.finalSnapshotIdentifier, undefined);
    if (tier === "medium")
      assert.ok(redis.inputs.finalSnapshotIdentifier, "medium keeps a final snapshot of the cache");
    assert.equal(redis.inputs.atRestEncryptionEnabled, true);
    assert.equal(redis.inputs.transitEncryptionEnabled, true);
    assert.equal(unwrapSecrets(redis.inputs.authToken), mockPasswordFor(`inferstack-${stackName}-redis-auth-token`));
    assert.equal(redis.inputs.numCacheClusters, cfg.redis.nodes);
    assert.equal(redis.inputs.automaticFailoverEnabled, cfg.redis.automaticFailover);
    assert.equal(redis.inputs.multiAzEnabled, cfg.redis.automaticFailover);
    if (redis.inputs.automaticFailoverEnabled)
      assert.ok(redis.inputs.numCacheClusters >= 2, "ElastiCache failover needs ≥ 2 nodes");
    assert.equal(redis.inputs.engine, cfg.redis.engine);
    // REDIS_URL as the app's ioredis client reads it: TLS, the AUTH token, the primary endpoint.
    const secret = JSON.parse(
      String(unwrapSecrets(one("aws:secretsmanager/secretVersion:SecretVersion", "-redis-auth").inputs.secretString)),
    );
    assert.equal(secret.authToken, unwrapSecrets(redis.inputs.authToken));
    const client = new Redis(secret.url, { lazyConnect: true });
    assert.equal(client.options.password, secret.authToken);
    assert.equal(client.options.host, `master.inferstack-${stackName}-redis.abcdef.use1.cache.amazonaws.com`);
    assert.equal(client.options.port, 6379);
    assert.ok(client.options.tls, "rediss:// turns TLS on");
    client.disconnect();
  });

  test(`${stackName}: security groups chain ALB → app → data stores; only the ALB's 80/443 are world-open`, () => {
    const sgName = (id: string) =>
      all(T.sg)
        .find((g) => `${g.name}-id` === id)
        ?.name.split("-")
        .pop();
    const rules = all(T.ingress).map((r) => ({
      to: sgName(r.inputs.securityGroupId),
      from: r.inputs.referencedSecurityGroupId
        ? sgName(r.inputs.referencedSecurityGroupId)
        : (r.inputs.cidrIpv4 ?? r.inputs.cidrIpv6),
      port: r.inputs.fromPort,
      toPort: r.inputs.toPort,
    }));
    const worldOpen = rules.filter((r) => r.from === "0.0.0.0/0" || r.from === "::/0");
    assert.deepEqual([...new Set(worldOpen.map((r) => `${r.to}:${r.port}`))].sort(), ["alb:443", "alb:80"]);
    for (const r of rules) assert.equal(r.port, r.toPort, "single-port rules");
    // The ALB is IPv4-only, so no rule opens IPv6.
    assert.equal(one(T.alb).inputs.ipAddressType, "ipv4");
    assert.deepEqual(
      all(T.ingress)
        .filter((r) => r.inputs.cidrIpv6 !== undefined)
        .map((r) => r.name),
      [],
    );
    const into = (target: string) =>
      rules
        .filter((r) => r.to === target)
        .map((r) => `${r.from}:${r.port}`)
        .sort();
    assert.deepEqual(into("app"), ["alb:8080", "monitoring:8080"]);
    assert.deepEqual(into("postgres"), ["app:5432", "monitoring:5432"]);
    assert.deepEqual(into("redis"), ["app:6379", "monitoring:6379"]);
    assert.deepEqual(into("efs"), ["monitoring:2049"]);
    // The only groups with internet egress send HTTPS (AWS APIs, alert receivers).
    for (const e of all(T.egress).filter((r) => r.inputs.cidrIpv4 === "0.0.0.0/0"))
      assert.equal(e.inputs.fromPort, 443);
  });

  test(`${stackName}: database roles: a one-shot setup task, run by a Lambda before the services, as the master user then the owner`, () => {
    const task = one(T.taskDef, "-db");
    const [setup, ...others] = containersOf(task) as (Container & { command: string[] })[];
    assert.equal(others.length, 0);
    assert.equal(
      setup!.image,
      containersOf(appTask())[0]!.image,
      "the app image: its migrations match the code being deployed",
    );
    assert.deepEqual(
      setup!.command,
      ["node", "-e", setupScript(setupPlan(databaseRoles, "inferstack", "grafana"))],
      "the program the Postgres test runs",
    );
    assert.equal(setup!.readonlyRootFilesystem, true);
    const env = Object.fromEntries(setup!.environment.map((e) => [e.name, e.value]));
    assert.match(
      env.SETUP_DATABASE_URL ?? "",
      /^postgres:\/\/[^@/]+:5432\/inferstack\?.*sslmode=verify-full&sslrootcert=\/app\/certs\/rds-ca-bundle\.pem$/,
      "no user, TLS verified",
    );
    assert.equal(env.SETUP_MASTER_USER, "inferstack");
    const secrets = Object.fromEntries(setup!.secrets.map((x) => [x.name, x.valueFrom]));
    assert.match(secrets.SETUP_MASTER_PASSWORD ?? "", /:secret:rds!db-.*:password::$/, "the RDS-managed master secret");
    for (const role of Object.keys(databaseRoles) as (keyof typeof databaseRoles)[]) {
      assert.equal(secrets[`SETUP_${role.toUpperCase()}_PASSWORD`], `${roleSecretArn(role)}:password::`);
    }
    assert.equal(Number(task.inputs.cpu), 256);
    assert.equal(fargatePairProblem(Number(task.inputs.cpu) / 1024, Number(task.inputs.memory)), null);
    const execution = JSON.parse(one(T.rolePolicy, "-db-execution").inputs.policy);
    assert.deepEqual(
      execution.Statement.find((st: { Sid?: string }) => st.Sid === "Secrets").Resource.sort(),
      setup!.secrets.map((x) => x.valueFrom.replace(/:[a-zA-Z]+::$/, "")).sort(),
    );
    // Only this task may read the master secret.
    for (const policy of all(T.rolePolicy).filter((r) => !r.name.endsWith("-db-execution")))
      assert.doesNotMatch(policy.inputs.policy, /rds!db-/, policy.name);
    // The runner: starts only this family, in this cluster, passes only its execution role, logs where the program says.
    const fn = one("aws:lambda/function:Function", "-db-runner");
    assert.equal(fn.inputs.timeout, 900);
    assert.equal(fn.inputs.loggingConfig.logGroup, `/aws/lambda/inferstack-${stackName}-db-setup`);
    assert.equal(one(T.logGroup, "-db-runner").inputs.retentionInDays, cfg.logs.retentionDays);
    assert.equal(one(T.logGroup, "-db").inputs.retentionInDays, cfg.logs.retentionDays);
    const runner = JSON.parse(one(T.rolePolicy, "-db-runner").inputs.policy);
    const run = runner.Statement.find((st: { Sid?: string }) => st.Sid === "Run");
    assert.deepEqual(run.Action, ["ecs:RunTask"]);
    assert.equal(run.Resource, `arn:aws:ecs:us-east-1:123456789012:task-definition/${task.inputs.family}:*`);
    assert.equal(
      run.Condition.ArnEquals["ecs:cluster"],
      `arn:aws:cluster:us-east-1:123456789012:${one(T.cluster).name}`,
    );
    assert.equal(
      runner.Statement.find((st: { Sid?: string }) => st.Sid === "PassRole").Condition.StringEquals[
        "iam:PassedToService"
      ],
      "ecs-tasks.amazonaws.com",
    );
    const subnets = fn.inputs.environment.variables.SUBNETS.split(",");
    assert.deepEqual(
      subnets.sort(),
      all(T.subnet)
        .filter((x) => x.inputs.tags["inferstack:subnet"] === "private")
        .map((x) => `${x.name}-id`)
        .sort(),
      "private subnets",
    );
    const invocation = one("aws:lambda/invocation:Invocation", "-db-run");
    assert.equal(
      JSON.parse(invocation.inputs.input).taskDefinition,
      invocation.inputs.triggers.taskDefinition,
      "re-runs with every new task definition",
    );
    // Nothing uses the database before the roles exist and the schema is migrated.
    assert.ok(dependsOnOf.get(appService().name)?.includes(invocation.name), "the app service waits for the setup");
    assert.ok(
      dependsOnOf.get(one(T.service, "-monitoring-service").name)?.includes(invocation.name),
      "the monitoring service waits for the setup",
    );
  });

  test(`${stackName}: monitoring runs on ECS: Prometheus on an ECS-managed EBS volume, Grafana's database in RDS, Alertmanager on EFS`, () => {
    const efs = one(T.efs);
    assert.equal(efs.inputs.encrypted, true);
    assert.equal(all(T.mountTarget).length, cfg.network.azCount);
    assert.deepEqual(
      all(T.accessPoint)
        .map((a) => a.inputs.rootDirectory.path)
        .sort(),
      ["/alertmanager"],
      "no TSDB and no SQLite on NFS",
    );
    const task = one(T.taskDef, "-monitoring-service");
    const containers = containersOf(task);
    assert.deepEqual(containers.map((c) => c.name).sort(), [
      "alertmanager",
      "blackbox-exporter",
      "grafana",
      "postgres-exporter",
      "prometheus",
      "prometheus-volume",
      "redis-exporter",
    ]);
    for (const v of task.inputs.volumes.filter((v: { efsVolumeConfiguration?: unknown }) => v.efsVolumeConfiguration)) {
      assert.equal(v.efsVolumeConfiguration.transitEncryption, "ENABLED");
      assert.equal(v.efsVolumeConfiguration.authorizationConfig.iam, "ENABLED");
    }
    // Prometheus' TSDB: a block device ECS creates per task, sized for retention.size + 25 %.
    assert.deepEqual(
      task.inputs.volumes.find((v: { name: string }) => v.name === "prometheus-data"),
      { name: "prometheus-data", configureAtLaunch: true },
    );
    const ebs = one(T.service, "-monitoring-service").inputs.volumeConfiguration;
    assert.equal(ebs.name, "prometheus-data");
    assert.equal(ebs.managedEbsVolume.volumeType, "gp3");
    assert.equal(ebs.managedEbsVolume.encrypted, true);
    assert.equal(ebs.managedEbsVolume.fileSystemType, "ext4");
    assert.equal(
      ebs.managedEbsVolume.roleArn,
      `arn:aws:role:us-east-1:123456789012:inferstack-${stackName}-monitoring-volumes`,
    );
    const prometheusC = containers.find((c) => c.name === "prometheus") as Container & {
      command: string[];
      mountPoints: { sourceVolume: string; containerPath: string }[];
      dependsOn: unknown[];
    };
    const retentionMb = Number(/--storage\.tsdb\.retention\.size=(\d+)MB/.exec(prometheusC.command.join(" "))![1]);
    assert.ok(
      ebs.managedEbsVolume.sizeInGb * 1024 * 0.8 >= retentionMb &&
        ebs.managedEbsVolume.sizeInGb * 1024 * 0.8 < retentionMb + 1024,
      `${ebs.managedEbsVolume.sizeInGb} GiB for ${retentionMb} MB`,
    );
    assert.deepEqual(
      prometheusC.mountPoints.find((m) => m.sourceVolume === "prometheus-data")?.containerPath,
      "/prometheus",
    );
    assert.deepEqual(prometheusC.dependsOn, [{ containerName: "prometheus-volume", condition: "SUCCESS" }]);
    const init = containers.find((c) => c.name === "prometheus-volume") as Container & {
      command: string[];
      user: string;
      essential: boolean;
    };
    assert.deepEqual([init.user, init.essential], ["0", false]);
    assert.match(init.command[0]!, /^chown 65534:65534 \/prometheus/);
    const volumesRole = one("aws:iam/role:Role", "-monitoring-volumes");
    assert.equal(JSON.parse(volumesRole.inputs.assumeRolePolicy).Statement[0].Principal.Service, "ecs.amazonaws.com");
    const grafana = containers.find((c) => c.name === "grafana")!;
    assert.ok(grafana.secrets.some((s) => s.name === "GF_SECURITY_ADMIN_PASSWORD"));
    // Grafana's database: its own database and role in the stack's RDS.
    const genv = Object.fromEntries(grafana.environment.map((e) => [e.name, e.value]));
    assert.equal(genv.GF_DATABASE_TYPE, "postgres");
    assert.equal(genv.GF_DATABASE_NAME, "grafana");
    assert.equal(genv.GF_DATABASE_USER, databaseRoles.grafana);
    assert.equal(genv.GF_DATABASE_HOST, `${stack.outputs.databaseAddress}:5432`);
    assert.equal(
      grafana.secrets.find((x) => x.name === "GF_DATABASE_PASSWORD")?.valueFrom,
      `${roleSecretArn("grafana")}:password::`,
    );
    assert.ok(
      !(grafana as unknown as { mountPoints: { containerPath: string }[] }).mountPoints.some(
        (m) => m.containerPath === "/var/lib/grafana",
      ),
    );
    // The exporter logs in as the pg_monitor role.
    const exporter = containers.find((c) => c.name === "postgres-exporter")!;
    assert.equal(exporter.environment.find((e) => e.name === "DATA_SOURCE_USER")?.value, databaseRoles.monitor);
    assert.equal(
      exporter.secrets.find((x) => x.name === "DATA_SOURCE_PASS")?.valueFrom,
      `${roleSecretArn("monitor")}:password::`,
    );
    assert.ok(!grafana.environment.some((e) => e.name.includes("PASSWORD")));
    assert.ok(
      grafana.environment.some((e) => e.name === "GF_SERVER_ROOT_URL" && e.value === `https://grafana.${cfg.domain}/`),
    );
    const alertmanager = containers.find((c) => c.name === "alertmanager")!;
    assert.ok(alertmanager.secrets.some((s) => s.name === "ALERTMANAGER_CONFIG"));
    const prometheus = containers.find((c) => c.name === "prometheus")!;
    assert.ok(prometheus.command!.includes(`--storage.tsdb.retention.time=${cfg.monitoring.prometheusRetentionDays}d`));
    const service = one(T.service, "-monitoring-service");
    assert.equal(service.inputs.desiredCount, 1);
    assert.equal(service.inputs.deploymentMinimumHealthyPercent, 0, "one monitoring task at a time");
    assert.equal(service.inputs.deploymentMaximumPercent, 100);
    assert.equal(service.inputs.loadBalancers[0].containerName, "grafana");
    assert.equal(service.inputs.networkConfiguration.assignPublicIp, false);
    // The Prometheus image is built from the rendered config: it finds the app through Cloud Map.
    const prometheusImage = one(T.image, "-monitoring-prometheus");
    const context: string = prometheusImage.inputs.build.context;
    assert.ok(context.startsWith(join(tmpdir(), "inferstack-build")));
    assert.ok(
      context.endsWith(
        `prometheus-${prometheusImage.inputs.imageName
          .split(":")
          .pop()
          .replace(/-[0-9a-f]{8}$/, "")}`,
      ),
      "tag = content hash of the context",
    );
    const prometheusYml = readFileSync(join(context, "prometheus.yml"), "utf8");
    assert.match(
      prometheusYml,
      new RegExp(`dns_sd_configs:\\s*\\n\\s*- names:\\s*\\n\\s*- app\\.${stackName}\\.inferstack\\.internal`),
    );
    assert.match(readFileSync(join(context, "Dockerfile"), "utf8"), /COPY .*prometheus\.yml/);
    // Grafana: datasources on localhost (same task), dashboards baked outside its data dir.
    const grafanaContext: string = one(T.image, "-monitoring-grafana").inputs.build.context;
    assert.match(
      readFileSync(join(grafanaContext, "provisioning/datasources/inferstack.yml"), "utf8"),
      /url: http:\/\/localhost:9090/,
    );
    assert.match(
      readFileSync(join(grafanaContext, "provisioning/dashboards/inferstack.yml"), "utf8"),
      /path: \/etc\/grafana\/dashboards/,
    );
    const home = grafana.environment.find((e) => e.name === "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")!.value;
    assert.ok(home.startsWith("/etc/grafana/dashboards/"));
    assert.ok(
      readFileSync(join(grafanaContext, "dashboards", home.split("/").pop()!), "utf8").length > 0,
      "the home dashboard is in the image",
    );
    assert.equal(prometheusImage.inputs.build.args.BASE_IMAGE.split("@")[0], "prom/prometheus:v3.5.0");
  });

  test(`${stackName}: the baked Prometheus config passes promtool; Alertmanager's start script writes a config amtool accepts`, () => {
    const context: string = one(T.image, "-monitoring-prometheus").inputs.build.context;
    const checked = execFileSync("promtool", ["check", "config", join(context, "prometheus.yml")], {
      encoding: "utf8",
    });
    assert.match(checked, /SUCCESS: 2 rule files found/);
    // Run the container's own start command with /bin/sh, writing under a temp dir instead of
    // /tmp and exec-ing amtool instead of the server.
    const alertmanager = containersOf(one(T.taskDef, "-monitoring-service")).find(
      (c) => c.name === "alertmanager",
    ) as Container & { command: string[]; entryPoint: string[] };
    assert.deepEqual(alertmanager.entryPoint, ["/bin/sh", "-c"]);
    const dir = mkdtempSync(join(tmpdir(), "am-"));
    const script = alertmanager.command[0]!.replaceAll("/tmp/alertmanager", dir).replace(
      /exec \/bin\/alertmanager --config\.file=(\S+).*$/,
      "exec amtool check-config $1",
    );
    const env = Object.fromEntries(alertmanager.environment.map((e) => [e.name, e.value]));
    const config = String(
      unwrapSecrets(one("aws:secretsmanager/secretVersion:SecretVersion", "-alertmanager-config").inputs.secretString),
    );
    const out = execFileSync("/bin/sh", ["-c", script], {
      env: { ...process.env, ...env, ALERTMANAGER_CONFIG: config },
      encoding: "utf8",
    });
    assert.match(out, /SUCCESS/);
    assert.match(out, /1 templates/);
    if (secrets.alertReceivers?.slack)
      assert.match(readFileSync(join(dir, "alertmanager.yml"), "utf8"), /slack_configs/);
    rmSync(dir, { recursive: true, force: true });
  });

  test(`${stackName}: no generated secret reaches a resource input unmarked`, async () => {
    const values = [
      mockPasswordFor(`inferstack-${stackName}-redis-auth-token`),
      secrets.grafanaAdminPassword ?? mockPasswordFor(`inferstack-${stackName}-grafana-admin`),
      ...Object.keys(databaseRoles).map((role) => mockPasswordFor(`inferstack-${stackName}-db-${role}`)),
      ...(secrets.alertReceivers?.slack ? [secrets.alertReceivers.slack.webhookUrl] : []),
    ];
    assert.deepEqual(await stack.plainSecrets(values), []);
    // The secrets do reach their Secrets Manager versions (as secrets), and nothing else.
    const versions = all("aws:secretsmanager/secretVersion:SecretVersion");
    const holding = (value: string) =>
      versions.filter((v) => JSON.stringify(v.inputs.secretString).includes(value)).map((v) => v.name);
    assert.deepEqual(holding(values[1]!), [`inferstack-${stackName}-monitoring-grafana-admin`]);
    for (const role of Object.keys(databaseRoles))
      assert.deepEqual(holding(mockPasswordFor(`inferstack-${stackName}-db-${role}`)), [
        `inferstack-${stackName}-db-${role}`,
      ]);
    if (secrets.alertReceivers?.slack) {
      assert.deepEqual(holding(secrets.alertReceivers.slack.webhookUrl), [
        `inferstack-${stackName}-monitoring-alertmanager-config`,
      ]);
    }
    const randomGrafana = stack.resources.filter(
      (r) => r.type === "random:index/randomPassword:RandomPassword" && r.name.endsWith("-grafana-admin"),
    );
    assert.equal(
      randomGrafana.length,
      secrets.grafanaAdminPassword ? 0 : 1,
      "a configured password replaces the generated one",
    );
    for (const r of stack.resources.filter(
      (r) => r.custom && r.type !== "aws:secretsmanager/secretVersion:SecretVersion",
    )) {
      const text = JSON.stringify(r.inputs);
      for (const v of values.slice(1)) assert.ok(!text.includes(v), `${r.type} ${r.name} holds a secret`);
    }
  });
}
