/**
 * Tier presets: the whole difference between tiers, as data. A stack picks one with
 * `inferstack:tier` and may override any value per stack, e.g.
 * `pulumi config set --path 'inferstack:app.replicas' 3`. `config.ts` validates the merged result
 * against `schema.ts`, whose shape depends on `platform`.
 */
import type { TierPreset } from "./schema.ts";

export const tierNames = ["local", "free", "small", "medium"] as const;
export type TierName = (typeof tierNames)[number];

const appDefaults = {
  logLevel: "info",
  authMode: "required",
  predictionLogRetentionDays: 30,
  gracefulShutdownSeconds: 20,
} as const;

const awsApp = { architecture: "x86_64", image: null } as const;

export const presets = {
  local: {
    platform: "docker",
    domain: "localhost",
    app: { ...appDefaults, replicas: 2, cpu: 1, memoryMiB: 384, authMode: "off" },
    postgres: { memoryMiB: 256 },
    redis: { memoryMiB: 128 },
    edge: { httpPort: 8080, httpsPort: 8443, tls: "internal", memoryMiB: 64 },
    monitoring: {
      prometheusRetentionDays: 7,
      prometheusStorageGiB: 4,
      prometheusMemoryMiB: 256,
      grafanaMemoryMiB: 192,
      alertmanagerMemoryMiB: 48,
      exporterMemoryMiB: 48,
      nodeExporter: false,
      cadvisor: false,
      latencyObjectiveMs: 50,
    },
    backups: { schedule: "0 3 * * *", retentionDays: 7, memoryMiB: 64 },
    // The operator's own Docker engine.
    host: null,
    dns: { zoneName: null },
  },
  free: {
    platform: "docker",
    domain: "dev.example.com",
    // Every container limit below sums to ≤ 1024 MiB: the free-tier host has 1 GiB (+ swap).
    app: { ...appDefaults, replicas: 1, cpu: 1, memoryMiB: 288 },
    postgres: { memoryMiB: 192 },
    redis: { memoryMiB: 48 },
    edge: { httpPort: 80, httpsPort: 443, tls: "letsencrypt", memoryMiB: 48 },
    monitoring: {
      prometheusRetentionDays: 5,
      prometheusStorageGiB: 3,
      prometheusMemoryMiB: 160,
      grafanaMemoryMiB: 112,
      alertmanagerMemoryMiB: 32,
      exporterMemoryMiB: 32,
      nodeExporter: true,
      cadvisor: false,
      latencyObjectiveMs: 100,
    },
    backups: { schedule: "0 3 * * *", retentionDays: 7, memoryMiB: 32 },
    host: {
      instanceType: "t3.micro",
      volumeGiB: 30,
      swapMiB: 2048,
      sshUser: "ec2-user",
      adminCidr: null,
      sshPublicKey: null,
      vpcCidr: "10.41.0.0/16",
    },
    dns: { zoneName: "example.com" },
  },
  small: {
    platform: "aws",
    domain: "staging.example.com",
    app: { ...appDefaults, replicas: 2, cpu: 0.5, memoryMiB: 1024, ...awsApp },
    autoscaling: { enabled: false, min: 2, max: 2, cpuTargetPercent: 60, requestsPerTarget: 500 },
    postgres: {
      instanceClass: "db.t4g.small",
      storageGiB: 20,
      maxStorageGiB: 100,
      multiAz: false,
      backupRetentionDays: 3,
      deletionProtection: false,
      performanceInsights: false,
      engineVersion: "16",
    },
    redis: { nodeType: "cache.t4g.micro", nodes: 1, automaticFailover: false, engine: "valkey" },
    network: { vpcCidr: "10.42.0.0/16", azCount: 2, natGateways: "single", flowLogs: false, interfaceEndpoints: false },
    edge: { accessLogs: false, deletionProtection: false },
    monitoring: {
      prometheusRetentionDays: 15,
      prometheusStorageGiB: 20,
      prometheusMemoryMiB: 1024,
      grafanaMemoryMiB: 512,
      alertmanagerMemoryMiB: 512,
      exporterMemoryMiB: 512,
      containerInsights: false,
      latencyObjectiveMs: 50,
    },
    backups: { retentionDays: 3 },
    logs: { retentionDays: 14 },
    dns: { zoneName: "example.com" },
  },
  medium: {
    platform: "aws",
    domain: "api.example.com",
    app: { ...appDefaults, replicas: 3, cpu: 1, memoryMiB: 2048, ...awsApp },
    autoscaling: { enabled: true, min: 3, max: 10, cpuTargetPercent: 60, requestsPerTarget: 1000 },
    postgres: {
      instanceClass: "db.m7g.large",
      storageGiB: 100,
      maxStorageGiB: 500,
      multiAz: true,
      backupRetentionDays: 14,
      deletionProtection: true,
      performanceInsights: true,
      engineVersion: "16",
    },
    redis: { nodeType: "cache.m7g.large", nodes: 2, automaticFailover: true, engine: "valkey" },
    network: { vpcCidr: "10.43.0.0/16", azCount: 3, natGateways: "perAz", flowLogs: true, interfaceEndpoints: true },
    edge: { accessLogs: true, deletionProtection: true },
    monitoring: {
      prometheusRetentionDays: 30,
      prometheusStorageGiB: 50,
      prometheusMemoryMiB: 2048,
      grafanaMemoryMiB: 1024,
      alertmanagerMemoryMiB: 512,
      exporterMemoryMiB: 512,
      containerInsights: true,
      latencyObjectiveMs: 50,
    },
    backups: { retentionDays: 14 },
    logs: { retentionDays: 90 },
    dns: { zoneName: "example.com" },
  },
} as const satisfies Record<TierName, TierPreset>;
