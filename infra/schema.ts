/**
 * The shape of a tier preset: a union keyed by `platform`. Docker tiers size containers on one
 * engine (the operator's, or one EC2 host when `host` is set); AWS tiers size managed services.
 * Each platform carries only the settings it reads, so a key the other platform uses is an
 * unknown setting here, and every difference between tiers is a value in `presets.ts`.
 */
import { z } from "zod";
import { fargatePairProblem } from "./fargate.ts";

const mib = (min: number) => z.number().int().min(min).max(262144);
const hostname = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(?=.{1,253}$)(localhost|([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})$/i, "must be a DNS host name");
const cidr = z
  .string()
  .regex(/^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|3[0-2])$/, "must be an IPv4 CIDR such as 203.0.113.7/32");

/** A container's memory limit: Docker refuses under 6 MiB, and our images need far more to start. */
const containerMiB = z.number().int().min(16, "must be ≥ 16 (MiB): it is a container's memory limit");

const app = {
  replicas: z.number().int().min(1).max(100),
  /** vCPU per replica; on Fargate one of 0.25, 0.5, 1, 2, 4, 8, 16. */
  cpu: z.number().positive().max(16),
  memoryMiB: mib(128),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]),
  authMode: z.enum(["required", "off"]),
  predictionLogRetentionDays: z.number().int().min(1).max(3650),
  gracefulShutdownSeconds: z.number().int().min(1).max(300),
};

const monitoring = {
  prometheusRetentionDays: z.number().int().min(1).max(3650),
  /** Disk the TSDB may fill (its size-based retention): a slice of the host's volume, or of EFS. */
  prometheusStorageGiB: z.number().int().min(1).max(16384),
  prometheusMemoryMiB: containerMiB,
  grafanaMemoryMiB: containerMiB,
  alertmanagerMemoryMiB: containerMiB,
  exporterMemoryMiB: containerMiB,
  /** p95 latency objective the alert rules use. */
  latencyObjectiveMs: z.number().positive(),
};

const backups = {
  retentionDays: z.number().int().min(1).max(3650),
};

const dns = z.strictObject({
  /** Route 53 hosted zone that holds `domain`; null on local. */
  zoneName: hostname.nullable(),
});

/** The EC2 instance a Docker tier runs on; null runs on the operator's own engine. */
const ec2Host = z.strictObject({
  instanceType: z.string().regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, "must be an EC2 instance type such as t3.micro"),
  volumeGiB: z.number().int().min(8).max(16384),
  swapMiB: z.number().int().min(0).max(65536),
  sshUser: z.string().min(1),
  /** CIDR allowed to SSH in; null means no SSH ingress (use SSM Session Manager). */
  adminCidr: cidr.nullable(),
  /**
   * OpenSSH public key installed for `sshUser`: Pulumi's Docker provider reaches the host's engine
   * over SSH with the matching private key (agent or ~/.ssh). Not a secret. Required to deploy.
   */
  sshPublicKey: z
    .string()
    .regex(
      /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,3}( \S.*)?$/,
      "must be an OpenSSH public key line (ssh-ed25519 AAAA...)",
    )
    .nullable(),
  /** The host's own VPC. */
  vpcCidr: cidr,
});

export const dockerPresetSchema = z.strictObject({
  platform: z.literal("docker"),
  /** Host name the stack serves on (`localhost` for local). */
  domain: hostname,
  app: z.strictObject(app),
  /** Container memory limits; Redis maxmemory is set below its limit. */
  postgres: z.strictObject({ memoryMiB: containerMiB }),
  redis: z.strictObject({ memoryMiB: containerMiB }),
  edge: z.strictObject({
    httpPort: z.number().int().min(1).max(65535),
    httpsPort: z.number().int().min(1).max(65535),
    /** internal: the proxy's own CA (local); letsencrypt: ACME at the proxy (a public domain). */
    tls: z.enum(["internal", "letsencrypt"]),
    memoryMiB: containerMiB,
    acmeEmail: z.string().email().optional(),
  }),
  monitoring: z.strictObject({
    ...monitoring,
    /**
     * node-exporter (host CPU, memory, disk) and cAdvisor (per-container usage). Both bind-mount
     * host paths, which Docker Desktop (macOS/Windows) refuses, so they are off on `local`; turn
     * them on for a Linux engine. cAdvisor takes two exporter budgets.
     */
    nodeExporter: z.boolean(),
    cadvisor: z.boolean(),
  }),
  backups: z.strictObject({
    ...backups,
    schedule: z.string().regex(/^(\S+\s+){4}\S+$/, "must be a 5-field cron expression"),
    memoryMiB: containerMiB,
  }),
  host: ec2Host.nullable(),
  dns,
});

export const awsPresetSchema = z.strictObject({
  platform: z.literal("aws"),
  domain: hostname,
  app: z.strictObject({
    ...app,
    architecture: z.enum(["x86_64", "arm64"]),
    /**
     * Deploy this already-pushed image instead of building app/Dockerfile: an ECR reference pinned
     * by digest (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:…`, e.g. another stack's
     * `appImage` output), for an exact rollback or to promote the image staging tested. null (the
     * presets) builds from source.
     */
    image: z
      .string()
      .regex(
        /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\/[a-z0-9][a-z0-9._/-]*@sha256:[0-9a-f]{64}$/,
        "must be an ECR image pinned by digest: <account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:<64 hex>",
      )
      .nullable(),
  }),
  autoscaling: z.strictObject({
    enabled: z.boolean(),
    min: z.number().int().min(1),
    max: z.number().int().min(1).max(1000),
    cpuTargetPercent: z.number().min(10).max(95),
    requestsPerTarget: z.number().int().min(1),
  }),
  postgres: z.strictObject({
    instanceClass: z.string().regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, "must be an RDS instance class such as db.t4g.small"),
    storageGiB: z.number().int().min(20).max(65536),
    maxStorageGiB: z.number().int().min(20).max(65536),
    multiAz: z.boolean(),
    backupRetentionDays: z.number().int().min(0).max(35),
    deletionProtection: z.boolean(),
    performanceInsights: z.boolean(),
    engineVersion: z.string().regex(/^(1[6-9]|[2-9]\d)(\.\d+)?$/, "must be PostgreSQL 16 or later"),
  }),
  redis: z.strictObject({
    nodeType: z
      .string()
      .regex(/^cache\.[a-z0-9]+\.[a-z0-9]+$/, "must be an ElastiCache node type such as cache.t4g.micro"),
    nodes: z.number().int().min(1).max(6),
    automaticFailover: z.boolean(),
    engine: z.enum(["valkey", "redis"]),
  }),
  network: z.strictObject({
    vpcCidr: cidr,
    azCount: z.number().int().min(2).max(6),
    natGateways: z.enum(["single", "perAz"]),
    flowLogs: z.boolean(),
    /**
     * Interface VPC endpoints (ECR API + registry, CloudWatch Logs, Secrets Manager) in every AZ,
     * so image pulls, logs and secrets skip the NAT. They cost ~$7/month per endpoint per AZ, so
     * they pay off only with real traffic. The S3 gateway endpoint (free, carries ECR image
     * layers) is always created.
     */
    interfaceEndpoints: z.boolean(),
  }),
  /** The ALB, with its ACM certificate. */
  edge: z.strictObject({
    /** ALB access logs to an S3 bucket (kept `logs.retentionDays`). */
    accessLogs: z.boolean(),
    /** ALB deletion protection (a `pulumi destroy` must first turn it off). */
    deletionProtection: z.boolean(),
  }),
  monitoring: z.strictObject({
    ...monitoring,
    /** ECS Container Insights on the cluster (per-task CPU/memory/network metrics, billed by CloudWatch). */
    containerInsights: z.boolean(),
  }),
  backups: z.strictObject(backups),
  logs: z.strictObject({
    /** CloudWatch Logs accepts only these values. */
    retentionDays: z
      .number()
      .int()
      .refine((d) => [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653].includes(d), {
        message: "must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)",
      }),
  }),
  dns,
});

export const presetSchema = z
  .discriminatedUnion("platform", [dockerPresetSchema, awsPresetSchema])
  .superRefine((p, ctx) => {
    if (p.dns.zoneName !== null && p.domain !== p.dns.zoneName && !p.domain.endsWith(`.${p.dns.zoneName}`)) {
      ctx.addIssue({ code: "custom", path: ["domain"], message: `must be inside dns.zoneName (${p.dns.zoneName})` });
    }
    if (p.platform === "docker") {
      if (p.edge.tls === "letsencrypt" && p.domain === "localhost") {
        ctx.addIssue({
          code: "custom",
          path: ["edge", "tls"],
          message: "letsencrypt needs a public domain, not localhost",
        });
      }
      return;
    }
    if (p.autoscaling.min > p.autoscaling.max) {
      ctx.addIssue({
        code: "custom",
        path: ["autoscaling", "min"],
        message: `must be ≤ autoscaling.max (${p.autoscaling.max})`,
      });
    }
    if (p.postgres.maxStorageGiB < p.postgres.storageGiB) {
      ctx.addIssue({
        code: "custom",
        path: ["postgres", "maxStorageGiB"],
        message: `must be ≥ postgres.storageGiB (${p.postgres.storageGiB})`,
      });
    }
    if (p.redis.automaticFailover && p.redis.nodes < 2) {
      ctx.addIssue({
        code: "custom",
        path: ["redis", "nodes"],
        message: "must be ≥ 2 when redis.automaticFailover is true (ElastiCache rejects failover with one node)",
      });
    }
    if (p.dns.zoneName === null) {
      ctx.addIssue({
        code: "custom",
        path: ["dns", "zoneName"],
        message: "is required on AWS tiers (the ACM certificate is validated in this Route 53 zone)",
      });
    }
    const fargate = fargatePairProblem(p.app.cpu, p.app.memoryMiB);
    if (fargate) ctx.addIssue({ code: "custom", path: ["app", "memoryMiB"], message: fargate });
    if (p.app.replicas < 2) {
      ctx.addIssue({
        code: "custom",
        path: ["app", "replicas"],
        message: "must be ≥ 2 on AWS tiers (one task per AZ keeps the service up through a deploy or an AZ loss)",
      });
    }
    if (p.autoscaling.enabled && (p.app.replicas < p.autoscaling.min || p.app.replicas > p.autoscaling.max)) {
      ctx.addIssue({
        code: "custom",
        path: ["app", "replicas"],
        message: `must be within autoscaling.min..max (${p.autoscaling.min}..${p.autoscaling.max}) when autoscaling is enabled`,
      });
    }
    if (p.redis.nodes > 1 && p.redis.nodes > p.network.azCount && p.redis.automaticFailover) {
      ctx.addIssue({
        code: "custom",
        path: ["redis", "nodes"],
        message: `must be ≤ network.azCount (${p.network.azCount}) so each Redis node sits in its own AZ`,
      });
    }
  });

export type TierPreset = z.input<typeof presetSchema>;
export type Preset = z.output<typeof presetSchema>;
export type Platform = Preset["platform"];

/** Every setting a stack may override, per platform: the top-level keys of each shape. */
export const settingsByPlatform: Record<Platform, readonly string[]> = {
  docker: Object.keys(dockerPresetSchema.shape),
  aws: Object.keys(awsPresetSchema.shape),
};
