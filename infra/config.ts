/**
 * The stack configuration: one zod schema, validated before any resource is declared.
 *
 * A stack sets `inferstack:tier` and may override any preset value (`presets.ts`) with structured
 * config, e.g. `pulumi config set --path 'inferstack:postgres.multiAz' true`. Overrides are
 * deep-merged onto the preset, then the whole result is validated; a bad value fails with an
 * error naming the full key (`inferstack:app.replicas`) and the rule it broke.
 * Secrets (alert receivers, Grafana admin password overrides) are read separately as Pulumi
 * secrets and never appear in this schema.
 */
import type * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import type { AlertReceivers } from "../monitoring/index.ts";
import { presets } from "./presets.ts";
import { fargatePairProblem } from "./fargate.ts";

export const tierNames = ["local", "free", "small", "medium"] as const;
export const tierSchema = z.enum(tierNames);
export type TierName = z.infer<typeof tierSchema>;

const mib = (min: number) => z.number().int().min(min).max(262144);
const hostname = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(?=.{1,253}$)(localhost|([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})$/i, "must be a DNS host name");
const cidr = z
  .string()
  .regex(/^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|3[0-2])$/, "must be an IPv4 CIDR such as 203.0.113.7/32");

export const presetSchema = z
  .object({
    platform: z.enum(["docker", "aws"]),
    /** Host name the stack serves on (`localhost` for local). */
    domain: hostname,
    app: z.object({
      replicas: z.number().int().min(1).max(100),
      /** vCPU per replica; on Fargate one of 0.25, 0.5, 1, 2, 4, 8, 16. */
      cpu: z.number().positive().max(16),
      memoryMiB: mib(128),
      maxBatchSize: z.number().int().min(1).max(4096),
      maxQueueDelayMicros: z.number().int().min(0).max(1_000_000),
      logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]),
      authMode: z.enum(["required", "off"]),
      predictionLogRetentionDays: z.number().int().min(1).max(3650),
      gracefulShutdownSeconds: z.number().int().min(1).max(300),
      architecture: z.enum(["x86_64", "arm64"]),
      /**
       * AWS tiers: deploy this already-pushed image instead of building app/Dockerfile — an ECR
       * reference pinned by digest (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:…`,
       * e.g. another stack's `appImage` output): exact rollback, or promoting the image staging
       * tested. null (the presets) builds from source. Docker tiers ignore it.
       */
      image: z
        .string()
        .regex(/^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\/[a-z0-9][a-z0-9._/-]*@sha256:[0-9a-f]{64}$/, "must be an ECR image pinned by digest: <account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:<64 hex>")
        .nullable(),
    }),
    autoscaling: z.object({
      enabled: z.boolean(),
      min: z.number().int().min(1),
      max: z.number().int().min(1).max(1000),
      cpuTargetPercent: z.number().min(10).max(95),
      requestsPerTarget: z.number().int().min(1),
    }),
    postgres: z.object({
      /** Container memory limit (Docker tiers); ignored on AWS. */
      memoryMiB: z.number().int().min(0),
      instanceClass: z.string().regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, "must be an RDS instance class such as db.t4g.small"),
      storageGiB: z.number().int().min(20).max(65536),
      maxStorageGiB: z.number().int().min(20).max(65536),
      multiAz: z.boolean(),
      backupRetentionDays: z.number().int().min(0).max(35),
      deletionProtection: z.boolean(),
      performanceInsights: z.boolean(),
      engineVersion: z.string().regex(/^(1[6-9]|[2-9]\d)(\.\d+)?$/, "must be PostgreSQL 16 or later"),
    }),
    redis: z.object({
      /** Container memory limit (Docker tiers); Redis maxmemory is set below it. */
      memoryMiB: z.number().int().min(0),
      nodeType: z.string().regex(/^cache\.[a-z0-9]+\.[a-z0-9]+$/, "must be an ElastiCache node type such as cache.t4g.micro"),
      nodes: z.number().int().min(1).max(6),
      automaticFailover: z.boolean(),
      engine: z.enum(["valkey", "redis"]),
    }),
    network: z.object({
      vpcCidr: cidr,
      azCount: z.number().int().min(2).max(6),
      natGateways: z.enum(["single", "perAz"]),
      flowLogs: z.boolean(),
      /**
       * AWS tiers: interface VPC endpoints (ECR API + registry, CloudWatch Logs, Secrets Manager)
       * in every AZ, so image pulls, logs and secrets skip the NAT. They cost ~$7/month per
       * endpoint per AZ, so they pay off only with real traffic. The S3 gateway endpoint (free,
       * carries ECR image layers) is always created.
       */
      interfaceEndpoints: z.boolean(),
    }),
    edge: z.object({
      httpPort: z.number().int().min(1).max(65535),
      httpsPort: z.number().int().min(1).max(65535),
      /** internal: the proxy's own CA (local); letsencrypt: ACME at the proxy (free); acm: ALB. */
      tls: z.enum(["internal", "letsencrypt", "acm"]),
      memoryMiB: z.number().int().min(0),
      acmeEmail: z.string().email().optional(),
      /** AWS tiers: ALB access logs to an S3 bucket (kept `logs.retentionDays`). */
      accessLogs: z.boolean(),
      /** AWS tiers: ALB deletion protection (a `pulumi destroy` must first turn it off). */
      deletionProtection: z.boolean(),
    }),
    monitoring: z.object({
      prometheusRetentionDays: z.number().int().min(1).max(3650),
      prometheusMemoryMiB: z.number().int().min(0),
      grafanaMemoryMiB: z.number().int().min(0),
      alertmanagerMemoryMiB: z.number().int().min(0),
      exporterMemoryMiB: z.number().int().min(0),
      /**
       * Docker tiers: run node-exporter (host CPU, memory, disk) and cAdvisor (per-container
       * usage). Both bind-mount host paths, which Docker Desktop (macOS/Windows) refuses, so they
       * are off on `local`; turn them on for a Linux engine. cAdvisor takes two exporter budgets.
       * Ignored on AWS (Fargate exposes no host).
       */
      nodeExporter: z.boolean(),
      cadvisor: z.boolean(),
      /** AWS tiers: ECS Container Insights on the cluster (per-task CPU/memory/network metrics, billed by CloudWatch). */
      containerInsights: z.boolean(),
      /** p95 latency objective the alert rules use. */
      latencyObjectiveMs: z.number().positive(),
    }),
    backups: z.object({
      schedule: z.string().regex(/^(\S+\s+){4}\S+$/, "must be a 5-field cron expression"),
      retentionDays: z.number().int().min(1).max(3650),
      memoryMiB: z.number().int().min(0),
    }),
    logs: z.object({
      /** CloudWatch Logs accepts only these values. */
      retentionDays: z
        .number()
        .int()
        .refine((d) => [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653].includes(d), {
          message: "must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)",
        }),
    }),
    /** The single EC2 host of the `free` tier. */
    host: z.object({
      instanceType: z.string().regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, "must be an EC2 instance type such as t3.micro"),
      volumeGiB: z.number().int().min(8).max(16384),
      swapMiB: z.number().int().min(0).max(65536),
      sshUser: z.string().min(1),
      /** CIDR allowed to SSH in; null means no SSH ingress (use SSM Session Manager). */
      adminCidr: cidr.nullable(),
      /**
       * OpenSSH public key installed for `sshUser` on the free-tier host: Pulumi's Docker provider
       * reaches the host's engine over SSH with the matching private key (agent or ~/.ssh). Not a
       * secret. Required on `free`; null elsewhere.
       */
      sshPublicKey: z
        .string()
        .regex(/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,3}( \S.*)?$/, "must be an OpenSSH public key line (ssh-ed25519 AAAA...)")
        .nullable(),
    }),
    dns: z.object({
      /** Route 53 hosted zone that holds `domain`; null on local. */
      zoneName: hostname.nullable(),
    }),
  })
  .superRefine((p, ctx) => {
    if (p.autoscaling.min > p.autoscaling.max) {
      ctx.addIssue({ code: "custom", path: ["autoscaling", "min"], message: `must be ≤ autoscaling.max (${p.autoscaling.max})` });
    }
    if (p.postgres.maxStorageGiB < p.postgres.storageGiB) {
      ctx.addIssue({ code: "custom", path: ["postgres", "maxStorageGiB"], message: `must be ≥ postgres.storageGiB (${p.postgres.storageGiB})` });
    }
    if (p.redis.automaticFailover && p.redis.nodes < 2) {
      ctx.addIssue({ code: "custom", path: ["redis", "nodes"], message: "must be ≥ 2 when redis.automaticFailover is true (ElastiCache rejects failover with one node)" });
    }
    if (p.platform === "aws" && p.dns.zoneName === null) {
      ctx.addIssue({ code: "custom", path: ["dns", "zoneName"], message: "is required on AWS tiers (the ACM certificate is validated in this Route 53 zone)" });
    }
    if (p.dns.zoneName !== null && p.domain !== p.dns.zoneName && !p.domain.endsWith(`.${p.dns.zoneName}`)) {
      ctx.addIssue({ code: "custom", path: ["domain"], message: `must be inside dns.zoneName (${p.dns.zoneName})` });
    }
    if (p.platform === "aws") {
      const fargate = fargatePairProblem(p.app.cpu, p.app.memoryMiB);
      if (fargate) ctx.addIssue({ code: "custom", path: ["app", "memoryMiB"], message: fargate });
      if (p.app.replicas < 2) {
        ctx.addIssue({ code: "custom", path: ["app", "replicas"], message: "must be ≥ 2 on AWS tiers (one task per AZ keeps the service up through a deploy or an AZ loss)" });
      }
      if (p.autoscaling.enabled && (p.app.replicas < p.autoscaling.min || p.app.replicas > p.autoscaling.max)) {
        ctx.addIssue({ code: "custom", path: ["app", "replicas"], message: `must be within autoscaling.min..max (${p.autoscaling.min}..${p.autoscaling.max}) when autoscaling is enabled` });
      }
      if (p.redis.nodes > 1 && p.redis.nodes > p.network.azCount && p.redis.automaticFailover) {
        ctx.addIssue({ code: "custom", path: ["redis", "nodes"], message: `must be ≤ network.azCount (${p.network.azCount}) so each Redis node sits in its own AZ` });
      }
    }
    if (p.edge.tls === "letsencrypt" && p.domain === "localhost") {
      ctx.addIssue({ code: "custom", path: ["edge", "tls"], message: "letsencrypt needs a public domain, not localhost" });
    }
  });

export type TierPreset = z.input<typeof presetSchema>;
export type Preset = z.output<typeof presetSchema>;

export interface StackConfig extends Preset {
  tier: TierName;
}

export class ConfigError extends Error {
  readonly issues: { key: string; message: string }[];
  constructor(issues: { key: string; message: string }[]) {
    super(`Invalid stack configuration:\n${issues.map((i) => `  - ${i.key}: ${i.message}`).join("\n")}`);
    this.name = "ConfigError";
    this.issues = issues;
  }
}

const NAMESPACE = "inferstack";
/**
 * Secret settings, read by the platforms with `pulumi.Config#getSecretObject` (never validated
 * into `StackConfig`, so they stay secret): `alertReceivers` (JSON, monitoring/src/alertmanager.ts
 * `AlertReceivers`), `grafanaAdminPassword` (defaults to a generated one).
 */
export const secretKeys = ["alertReceivers", "grafanaAdminPassword"] as const;

/**
 * Reads the secret settings. Pulumi.yaml gives both the default "" (the CLI requires a declared key
 * that has no default in every stack), so "" means unset: no receivers, a generated password.
 */
export function readSecretSettings(config: pulumi.Config): { alertReceivers?: pulumi.Output<AlertReceivers>; grafanaAdminPassword?: pulumi.Output<string> } {
  const set = (key: string) => (config.get(key) ?? "") !== "";
  return {
    ...(set("alertReceivers") ? { alertReceivers: config.getSecretObject<AlertReceivers>("alertReceivers")! } : {}),
    ...(set("grafanaAdminPassword") ? { grafanaAdminPassword: config.getSecret("grafanaAdminPassword")! } : {}),
  };
}
const topLevelKeys = new Set<string>(["tier", ...Object.keys(presetSchema.shape)]);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Deep merge where objects merge key by key and anything else replaces. */
export function deepMerge<T>(base: T, override: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(override)) return (override === undefined ? base : override) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = deepMerge((base as Record<string, unknown>)[k], v);
  return out as T;
}

/** Pulumi hands structured config values over as JSON strings; plain strings stay strings. */
function parseValue(raw: string): Json {
  try {
    return JSON.parse(raw) as Json;
  } catch {
    return raw;
  }
}

/** Finds override keys that no preset has, so a typo fails instead of being ignored. */
function unknownKeys(base: unknown, override: unknown, path: string[]): string[] {
  if (!isPlainObject(override)) return [];
  if (!isPlainObject(base)) return [];
  const keys: string[] = [];
  for (const [k, v] of Object.entries(override)) {
    if (!(k in base)) {
      if (path.join(".") === "edge" && k === "acmeEmail") continue;
      keys.push([...path, k].join("."));
    } else keys.push(...unknownKeys(base[k], v, [...path, k]));
  }
  return keys;
}

/**
 * Validates a stack's config. `raw` maps config keys (`inferstack:tier`, `inferstack:app`, ...,
 * as `pulumi.runtime.allConfig()` returns them) to their string values. Keys of other
 * namespaces (`aws:region`, `docker:host`) are ignored.
 */
export function parseStackConfig(raw: Record<string, string>): StackConfig {
  const values: Record<string, Json> = {};
  for (const [key, value] of Object.entries(raw)) {
    const [ns, name] = key.split(":", 2);
    if (ns !== NAMESPACE || name === undefined || (secretKeys as readonly string[]).includes(name)) continue;
    // Pulumi.yaml's default for string keys: the CLI hands "" to the program for a key the stack leaves unset.
    if (value === "" && name !== "tier") continue;
    values[name] = name === "tier" ? value : parseValue(value);
  }

  const issues: { key: string; message: string }[] = [];
  for (const name of Object.keys(values)) {
    if (!topLevelKeys.has(name)) issues.push({ key: `${NAMESPACE}:${name}`, message: "is not a known setting" });
  }
  const tier = tierSchema.safeParse(values.tier ?? "local");
  if (!tier.success) {
    issues.push({ key: `${NAMESPACE}:tier`, message: `must be one of ${tierNames.join(", ")} (got ${JSON.stringify(values.tier)})` });
    throw new ConfigError(issues);
  }

  const preset = presets[tier.data];
  const { tier: _tier, ...overrides } = values;
  for (const key of unknownKeys(preset, overrides, [])) {
    if (topLevelKeys.has(key.split(".")[0] ?? "")) issues.push({ key: `${NAMESPACE}:${key}`, message: "is not a known setting" });
  }
  const merged = deepMerge(preset, overrides);
  const parsed = presetSchema.safeParse(merged);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = `${NAMESPACE}:${issue.path.join(".")}`;
      const got = issue.path.reduce<unknown>((v, p) => (isPlainObject(v) ? v[String(p)] : undefined), merged);
      issues.push({ key, message: `${issue.message}${got === undefined ? "" : ` (got ${JSON.stringify(got)})`}` });
    }
  }
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);
  return { tier: tier.data, ...parsed.data };
}
