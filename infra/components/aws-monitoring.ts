/**
 * AwsMonitoring: Prometheus, Alertmanager, Grafana and the exporters as one ECS service.
 *
 * Layout (monitoring/src/targets.ts): one Fargate task whose
 * containers reach each other on localhost — Prometheus (scrapes the app tasks it finds through
 * the Cloud Map A records, evaluates the alert rules), Alertmanager, Grafana (behind the ALB on
 * its own host name), postgres-exporter, redis-exporter and blackbox-exporter (probes the public
 * HTTPS URL and its certificate). One task, as two would both scrape and both send every alert:
 * the service deploys with min 0% / max 100% so the old task stops first.
 *
 * Storage, each on what its software supports:
 * - Prometheus' TSDB on an ECS-managed EBS volume (gp3, encrypted, ext4): a local block device,
 *   which is what Prometheus supports (its docs: NFS, hence EFS, is not, and can corrupt the
 *   TSDB). ECS creates the volume when the task starts and deletes it when the task stops (a
 *   service cannot keep it), so the history lasts as long as the monitoring task: a change to the
 *   monitoring task (rules, images, receivers) or a Fargate retirement starts it empty. Alerts
 *   need only their rules' windows (≤ 1 h) of history, which the new task has again within the
 *   hour; dashboards lose older history. Chosen by cost: $0.08/GB-month (small 20 GB: $1.60,
 *   medium 50 GB: $4.00) against Amazon Managed Service for Prometheus, which keeps 150 days
 *   through replacements but bills per sample ingested ($0.90 per 10 M, so $0.016 per series
 *   scraped every 15 s for a month: ~$41/month for staging's ~2,600 series, $49–104 for prod's
 *   3–10 app tasks) plus queries; docs/architecture-aws.md weighs both.
 *   A root init container gives the fresh volume to Prometheus' user (65534) before it starts.
 * - Grafana's database in the stack's RDS instance (its own `grafana` database and role, made by
 *   the database setup task; `AwsDatabaseRoles`): users, sessions and annotations survive task
 *   replacements with RDS's backups. Dashboards and datasources are provisioned from the image.
 * - Alertmanager's silences and notification log on EFS (one access point, POSIX owner 65534):
 *   a few KB rewritten whole every 15 minutes, which NFS handles, and silences set during an
 *   incident outlive a redeploy.
 *
 * Creates: an encrypted EFS file system (elastic throughput, AWS Backup on, TLS-only policy) with
 * a mount target per private subnet and the Alertmanager access point; the ECS infrastructure role
 * that creates and attaches the EBS volume (AWS's AmazonECSInfrastructureRolePolicyForVolumes,
 * which lets ECS act only on volumes it tags as its own); two ECR
 * images built here (Prometheus with config + rules, Grafana with datasources + dashboards)
 * from `infra/images/*` and the files `monitoring/index.ts` rendered, pinned by digest;
 * Secrets Manager secrets for the Grafana admin password and the Alertmanager config (it
 * carries receiver URLs and tokens, so it is never baked into an image or a plain env var); the
 * Fargate service (`AwsFargateService`) attached to the Grafana target group.
 *
 * Inputs:
 * - `namePrefix`: prefix of the ECR repositories and the task family.
 * - `cluster`, `subnetIds`, `securityGroupId`, `efsSecurityGroupId`, `architecture`.
 * - `buildDir`: scratch directory for the rendered image build contexts (content-addressed).
 * - `prometheus`: `files` (prometheus.yml, rules/*.yml) and `args` from the bundle.
 * - `alertmanager`: `config` (secret Output: the rendered alertmanager.yml), `template`, `args`.
 * - `grafana`: provisioning and dashboard files, env, admin password (secret), target group,
 *   and the listener resources the service must wait for.
 * - `baseImages`: pinned upstream images (`repo:tag@sha256:...`).
 * - `memoryMiB`: soft reservation per container; the task size is the smallest Fargate pair
 *   that holds their sum with ≥ 0.5 vCPU.
 * - `postgres`: endpoint, the exporter's role (`monitor`, pg_monitor) and Grafana's database and
 *   role, each with its secret; `ready`, the setup that creates them (the service waits for it).
 * - `redis`: endpoint and secret ARN for the exporter.
 * - `logRetentionDays`.
 *
 * Cost: the task (small: 0.5 vCPU/4 GiB ≈ $28/month; medium: 1 vCPU/5 GiB ≈ $46/month), the EBS
 * volume at gp3 $0.08/GB-month (size: the TSDB's retention.size + 25 %), EFS $0.30/GB-month for
 * Alertmanager's few KB + AWS Backup $0.05/GB-month, two secrets $0.80/month, ECR storage.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { smallestFargateSize } from "../fargate.ts";
import { AwsFargateService, type ContainerSpec } from "./aws-fargate-service.ts";
import { AwsImage } from "./aws-image.ts";

export interface AwsMonitoringArgs {
  namePrefix: string;
  cluster: { arn: pulumi.Input<string>; name: pulumi.Input<string> };
  subnetIds: pulumi.Input<string>[];
  securityGroupId: pulumi.Input<string>;
  efsSecurityGroupId: pulumi.Input<string>;
  architecture: "X86_64" | "ARM64";
  buildDir: string;
  prometheus: { files: Record<string, string>; args: string[] };
  alertmanager: { config: pulumi.Input<string>; template: string; args: string[] };
  grafana: {
    provisioningFiles: Record<string, string>;
    dashboardFiles: Record<string, string>;
    env: Record<string, string>;
    adminPassword: pulumi.Input<string>;
    targetGroupArn: pulumi.Input<string>;
    listeners: pulumi.Resource[];
  };
  baseImages: {
    prometheus: string;
    alertmanager: string;
    grafana: string;
    postgresExporter: string;
    redisExporter: string;
    blackboxExporter: string;
  };
  memoryMiB: { prometheus: number; alertmanager: number; grafana: number; exporter: number };
  postgres: {
    address: pulumi.Input<string>;
    port: pulumi.Input<number>;
    database: string;
    monitor: { username: string; secretArn: pulumi.Input<string> };
    grafana: { database: string; username: string; secretArn: pulumi.Input<string> };
    ready: pulumi.Resource;
  };
  redis: { address: pulumi.Input<string>; secretArn: pulumi.Input<string> };
  logRetentionDays: number;
}

/** Directory inside the Grafana image holding the dashboards (outside its data directory). */
export const grafanaImageDashboardsDir = "/etc/grafana/dashboards";
const imagesDir = join(dirname(new URL(import.meta.url).pathname), "..", "images");

/**
 * Writes the build context of `infra/images/<image>` plus `files` into a directory named after
 * their content hash, and returns it with that hash as the image tag. Content-addressed, so the
 * path and tag are stable across runs and concurrent runs (plans, tests) never see a half-written
 * directory: each writes a private temp dir and renames it into place.
 */
function writeBuildContext(
  buildDir: string,
  image: string,
  files: Record<string, string>,
  extra: string,
): { context: string; tag: string } {
  const all: Record<string, string> = {
    ...files,
    Dockerfile: readFileSync(join(imagesDir, image, "Dockerfile"), "utf8"),
  };
  const hash = createHash("sha256").update(extra);
  for (const rel of Object.keys(all).sort()) hash.update(rel).update("\0").update(all[rel]!).update("\0");
  const tag = `c-${hash.digest("hex").slice(0, 20)}`;
  const context = join(buildDir, `${image}-${tag}`);
  if (!existsSync(context)) {
    const staging = `${context}.tmp-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    for (const [rel, text] of Object.entries(all)) {
      const path = join(staging, rel);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
    }
    try {
      renameSync(staging, context);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another run placed the same content first
    }
  }
  return { context, tag };
}

export class AwsMonitoring extends pulumi.ComponentResource {
  readonly serviceName: pulumi.Output<string>;
  readonly fileSystemId: pulumi.Output<string>;
  readonly grafanaAdminSecretArn: pulumi.Output<string>;

  constructor(name: string, args: AwsMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:aws:Monitoring", name, {}, opts);
    const parent = { parent: this };
    const platform = args.architecture === "ARM64" ? "linux/arm64" : "linux/amd64";

    // --- storage -------------------------------------------------------------------------
    const fileSystem = new aws.efs.FileSystem(
      name,
      {
        encrypted: true,
        performanceMode: "generalPurpose",
        throughputMode: "elastic",
        tags: { Name: `${args.namePrefix}-monitoring` },
      },
      parent,
    );
    new aws.efs.BackupPolicy(name, { fileSystemId: fileSystem.id, backupPolicy: { status: "ENABLED" } }, parent);
    new aws.efs.FileSystemPolicy(
      name,
      {
        fileSystemId: fileSystem.id,
        policy: fileSystem.arn.apply((arn) =>
          JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "TlsOnly",
                Effect: "Deny",
                Principal: { AWS: "*" },
                Action: "*",
                Resource: arn,
                Condition: { Bool: { "aws:SecureTransport": "false" } },
              },
            ],
          }),
        ),
      },
      parent,
    );
    const mountTargets = args.subnetIds.map(
      (subnetId, i) =>
        new aws.efs.MountTarget(
          `${name}-${i}`,
          { fileSystemId: fileSystem.id, subnetId, securityGroups: [args.efsSecurityGroupId] },
          parent,
        ),
    );
    const accessPoint = (role: string, uid: number, gid: number) =>
      new aws.efs.AccessPoint(
        `${name}-${role}`,
        {
          fileSystemId: fileSystem.id,
          posixUser: { uid, gid },
          rootDirectory: { path: `/${role}`, creationInfo: { ownerUid: uid, ownerGid: gid, permissions: "0750" } },
          tags: { Name: `${args.namePrefix}-${role}` },
        },
        parent,
      );
    const alertmanagerPoint = accessPoint("alertmanager", 65534, 65534);
    const volumes = [
      {
        name: "alertmanager-data",
        fileSystemId: fileSystem.id,
        fileSystemArn: fileSystem.arn,
        accessPointId: alertmanagerPoint.id,
        accessPointArn: alertmanagerPoint.arn,
      },
    ];

    // The volume holds retention.size (80 % of the disk the bundle sized) plus room for compaction and the WAL.
    const retentionMb = Number(
      /--storage\.tsdb\.retention\.size=(\d+)MB/.exec(args.prometheus.args.join(" "))?.[1] ?? 0,
    );
    if (!(retentionMb > 0)) throw new Error("the Prometheus flags carry no --storage.tsdb.retention.size");
    const prometheusVolumeGiB = Math.max(1, Math.ceil(retentionMb / 0.8 / 1024));
    const volumesRole = new aws.iam.Role(
      `${name}-volumes`,
      {
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "ecs.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
        description: `ECS creates and attaches the Prometheus EBS volume of ${args.namePrefix}-monitoring`,
      },
      parent,
    );
    const partition = aws.getPartitionOutput({}, parent);
    const volumesPolicy = new aws.iam.RolePolicyAttachment(
      `${name}-volumes`,
      {
        role: volumesRole.name,
        policyArn: pulumi.interpolate`arn:${partition.partition}:iam::aws:policy/service-role/AmazonECSInfrastructureRolePolicyForVolumes`,
      },
      parent,
    );

    // --- images --------------------------------------------------------------------------
    const image = (role: "prometheus" | "grafana", files: Record<string, string>, base: string) => {
      const { context, tag } = writeBuildContext(args.buildDir, role, files, `${base} ${platform}`);
      return new AwsImage(
        `${name}-${role}`,
        {
          repositoryName: `${args.namePrefix}/${role}`,
          context,
          dockerfile: join(context, "Dockerfile"),
          platform,
          contentHash: tag,
          buildArgs: { BASE_IMAGE: base },
          keepImages: 10,
        },
        parent,
      );
    };
    const prometheusImage = image("prometheus", args.prometheus.files, args.baseImages.prometheus);
    const grafanaImage = image(
      "grafana",
      {
        ...Object.fromEntries(
          Object.entries(args.grafana.provisioningFiles).map(([rel, text]) => [`provisioning/${rel}`, text]),
        ),
        ...Object.fromEntries(
          Object.entries(args.grafana.dashboardFiles).map(([rel, text]) => [`dashboards/${rel}`, text]),
        ),
      },
      args.baseImages.grafana,
    );

    // --- secrets -------------------------------------------------------------------------
    const secret = (role: string, description: string, value: pulumi.Input<string>) => {
      const s = new aws.secretsmanager.Secret(`${name}-${role}`, { description, recoveryWindowInDays: 7 }, parent);
      const version = new aws.secretsmanager.SecretVersion(
        `${name}-${role}`,
        { secretId: s.id, secretString: pulumi.secret(value) },
        parent,
      );
      // Through the version: the task must not start before the secret has a value.
      return { arn: version.arn };
    };
    const grafanaAdmin = secret("grafana-admin", "Grafana admin password", args.grafana.adminPassword);
    const alertmanagerConfig = secret(
      "alertmanager-config",
      "alertmanager.yml with its receivers",
      args.alertmanager.config,
    );

    // --- the task ------------------------------------------------------------------------
    const m = args.memoryMiB;
    const size = smallestFargateSize(512, m.prometheus + m.alertmanager + m.grafana + 3 * m.exporter);
    const wget = (url: string) => ["CMD-SHELL", `wget -q -O /dev/null ${url} || exit 1`];
    const grafanaEnv = { ...args.grafana.env };
    delete grafanaEnv.GF_SECURITY_ADMIN_PASSWORD__FILE;
    const alertmanagerStart = [
      "mkdir -p /tmp/alertmanager/templates",
      `printf '%s' "$ALERTMANAGER_CONFIG" > /tmp/alertmanager/alertmanager.yml`,
      `printf '%s' "$ALERTMANAGER_TEMPLATE" > /tmp/alertmanager/templates/inferstack.tmpl`,
      `exec /bin/alertmanager ${args.alertmanager.args.map((a) => a.replace("/etc/alertmanager/", "/tmp/alertmanager/")).join(" ")} --cluster.listen-address=`,
    ].join(" && ");

    const containers: ContainerSpec[] = [
      {
        // A fresh ext4 volume's root belongs to root; Prometheus runs as nobody (65534).
        name: "prometheus-volume",
        image: prometheusImage.imageRef,
        essential: false,
        user: "0",
        entryPoint: ["/bin/sh", "-c"],
        command: ["chown 65534:65534 /prometheus && chmod 0750 /prometheus"],
        mountPoints: [{ sourceVolume: "prometheus-data", containerPath: "/prometheus" }],
      },
      {
        name: "prometheus",
        image: prometheusImage.imageRef,
        port: 9090,
        command: args.prometheus.args,
        memoryReservationMiB: m.prometheus,
        mountPoints: [{ sourceVolume: "prometheus-data", containerPath: "/prometheus" }],
        dependsOn: [{ containerName: "prometheus-volume", condition: "SUCCESS" }],
        healthCheck: { command: wget("http://127.0.0.1:9090/-/ready"), startPeriodSeconds: 120 },
        stopTimeoutSeconds: 60,
      },
      {
        name: "alertmanager",
        image: args.baseImages.alertmanager,
        port: 9093,
        entryPoint: ["/bin/sh", "-c"],
        command: [alertmanagerStart],
        environment: { ALERTMANAGER_TEMPLATE: args.alertmanager.template },
        secrets: { ALERTMANAGER_CONFIG: alertmanagerConfig.arn },
        memoryReservationMiB: m.alertmanager,
        mountPoints: [{ sourceVolume: "alertmanager-data", containerPath: "/alertmanager" }],
        healthCheck: { command: wget("http://127.0.0.1:9093/-/ready"), startPeriodSeconds: 60 },
      },
      {
        name: "grafana",
        image: grafanaImage.imageRef,
        port: 3000,
        environment: {
          ...grafanaEnv,
          // Scratch only (plugins, renders): its database is in RDS.
          GF_PATHS_DATA: "/tmp/grafana",
          GF_DATABASE_TYPE: "postgres",
          GF_DATABASE_HOST: pulumi.interpolate`${args.postgres.address}:${args.postgres.port}`,
          GF_DATABASE_NAME: args.postgres.grafana.database,
          GF_DATABASE_USER: args.postgres.grafana.username,
          // Encrypted inside the VPC; the upstream image carries no RDS CA bundle to verify with.
          GF_DATABASE_SSL_MODE: "require",
          // The root filesystem is read-only: log to stdout (awslogs) only, not to /var/log/grafana.
          GF_LOG_MODE: "console",
          GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: `${grafanaImageDashboardsDir}/api-overview.json`,
        },
        secrets: {
          GF_SECURITY_ADMIN_PASSWORD: grafanaAdmin.arn,
          GF_DATABASE_PASSWORD: pulumi.interpolate`${args.postgres.grafana.secretArn}:password::`,
        },
        memoryReservationMiB: m.grafana,
        healthCheck: { command: wget("http://127.0.0.1:3000/api/health"), startPeriodSeconds: 120 },
      },
      {
        name: "postgres-exporter",
        image: args.baseImages.postgresExporter,
        port: 9187,
        essential: false,
        environment: {
          DATA_SOURCE_URI: pulumi.interpolate`${args.postgres.address}:${args.postgres.port}/${args.postgres.database}?sslmode=require`,
          DATA_SOURCE_USER: args.postgres.monitor.username,
        },
        secrets: { DATA_SOURCE_PASS: pulumi.interpolate`${args.postgres.monitor.secretArn}:password::` },
        memoryReservationMiB: m.exporter,
      },
      {
        name: "redis-exporter",
        image: args.baseImages.redisExporter,
        port: 9121,
        essential: false,
        environment: { REDIS_ADDR: pulumi.interpolate`rediss://${args.redis.address}:6379` },
        secrets: { REDIS_PASSWORD: pulumi.interpolate`${args.redis.secretArn}:authToken::` },
        memoryReservationMiB: m.exporter,
      },
      {
        name: "blackbox-exporter",
        image: args.baseImages.blackboxExporter,
        port: 9115,
        essential: false,
        memoryReservationMiB: m.exporter,
      },
    ];

    const service = new AwsFargateService(
      `${name}-service`,
      {
        clusterArn: args.cluster.arn,
        clusterName: args.cluster.name,
        family: `${args.namePrefix}-monitoring`,
        cpu: size.cpu,
        memoryMiB: size.memoryMiB,
        architecture: args.architecture,
        containers,
        secretArns: [
          grafanaAdmin.arn,
          alertmanagerConfig.arn,
          args.postgres.monitor.secretArn,
          args.postgres.grafana.secretArn,
          args.redis.secretArn,
        ],
        repositoryArns: [...prometheusImage.pullRepositoryArns, ...grafanaImage.pullRepositoryArns],
        volumes,
        ebsVolume: { name: "prometheus-data", sizeGiB: prometheusVolumeGiB, roleArn: volumesRole.arn },
        subnetIds: args.subnetIds,
        securityGroupIds: [args.securityGroupId],
        desiredCount: 1,
        // One monitoring task at a time: two would both scrape and both send every alert.
        minHealthyPercent: 0,
        maxPercent: 100,
        loadBalancer: {
          targetGroupArn: args.grafana.targetGroupArn,
          containerName: "grafana",
          containerPort: 3000,
          healthCheckGracePeriodSeconds: 180,
        },
        logRetentionDays: args.logRetentionDays,
        dependsOn: [...args.grafana.listeners, ...mountTargets, volumesPolicy, args.postgres.ready],
      },
      parent,
    );

    this.serviceName = service.serviceName;
    this.fileSystemId = fileSystem.id;
    this.grafanaAdminSecretArn = grafanaAdmin.arn;
    this.registerOutputs({ serviceName: this.serviceName, fileSystemId: this.fileSystemId });
  }
}
