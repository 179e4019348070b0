/**
 * DockerStack: the whole InferStack system on one Docker engine, shared by the `local` tier (the
 * operator's engine) and the `free` tier (an EC2 host reached over SSH).
 *
 * Creates: two bridge networks (`data`, internal: Postgres, Redis, backups and exporters have no
 * route to the internet; `edge`: the proxy, the app replicas, Grafana, Prometheus and
 * Alertmanager), generated passwords (`random.RandomPassword`, kept as Pulumi secrets) for
 * Postgres, Redis and Grafana, and the components: DockerPostgres, DockerRedis, DockerApp,
 * EdgeProxy, DockerMonitoring, DockerBackups. Every resource goes to the Docker provider given in
 * `opts.providers` / `opts.provider`.
 *
 * Inputs:
 * - `cfg`: the validated stack config (`app`, `postgres.memoryMiB`, `redis.memoryMiB`, `edge`,
 *   `monitoring`, `backups`, `domain`).
 * - `stackName`: names containers and volumes (`inferstack-<stack>-...`), so two stacks can share
 *   one engine.
 * - `publishAddress`: host address the proxy's ports bind to (`127.0.0.1` on local).
 * - `publicUrl`: the URL users reach (`https://localhost:8443`, `https://dev.example.com`).
 * - `alertReceivers`: optional secret Alertmanager receivers (monitoring `AlertReceivers`).
 * - `grafanaAdminPassword`: optional secret; generated when absent.
 *
 * Cost: nothing beyond the engine's host.
 */

import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { type AlertReceivers, monitoringBundle, mountPoints } from "../../monitoring/index.ts";
import type { DockerStackConfig } from "../config.ts";
import { DockerApp } from "./docker-app.ts";
import { DockerBackups } from "./docker-backups.ts";
import { DockerMonitoring } from "./docker-monitoring.ts";
import { DockerPostgres, postgresTuning } from "./docker-postgres.ts";
import { DockerRedis } from "./docker-redis.ts";
import { type DockerPlacement, labelList } from "./docker-shared.ts";
import { EdgeProxy } from "./edge-proxy.ts";

export interface DockerStackArgs {
  cfg: DockerStackConfig;
  stackName: string;
  publishAddress: string;
  publicUrl: string;
  alertReceivers?: pulumi.Input<AlertReceivers> | undefined;
  grafanaAdminPassword?: pulumi.Input<string> | undefined;
}

function prefixed(dir: string, files: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(files).map(([path, content]) => [`${dir}/${path}`, content]));
}

export class DockerStack extends pulumi.ComponentResource {
  readonly postgres: DockerPostgres;
  readonly redis: DockerRedis;
  readonly app: DockerApp;
  readonly edge: EdgeProxy;
  readonly monitoring: DockerMonitoring;
  readonly backups: DockerBackups;
  readonly grafanaAdminPassword: pulumi.Output<string>;
  readonly url: string;
  readonly grafanaUrl: string;

  constructor(name: string, args: DockerStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:docker:Stack", name, {}, opts);
    const child = { parent: this };
    const { cfg } = args;
    const placement: DockerPlacement = {
      namePrefix: `inferstack-${args.stackName}`,
      labels: {
        "inferstack.stack": args.stackName,
        "inferstack.tier": cfg.tier,
        "com.docker.compose.project": `inferstack-${args.stackName}`,
      },
    };
    this.url = args.publicUrl;
    this.grafanaUrl = `${args.publicUrl}/grafana/`;

    const dataNetwork = new docker.Network(
      `${name}-data`,
      { name: `${placement.namePrefix}-data`, driver: "bridge", internal: true, labels: labelList(placement.labels) },
      child,
    );
    const edgeNetwork = new docker.Network(
      `${name}-edge`,
      { name: `${placement.namePrefix}-edge`, driver: "bridge", labels: labelList(placement.labels) },
      child,
    );

    // No special characters: the passwords go into URLs and pgpass lines unescaped elsewhere.
    const password = (n: string) =>
      new random.RandomPassword(`${name}-${n}-password`, { length: 32, special: false }, child).result;
    const postgresPassword = password("postgres");
    const redisPassword = password("redis");
    this.grafanaAdminPassword = pulumi.secret(args.grafanaAdminPassword ?? password("grafana"));

    this.postgres = new DockerPostgres(
      `${name}-postgres`,
      { placement, network: dataNetwork, password: postgresPassword, memoryMiB: cfg.postgres.memoryMiB },
      child,
    );
    this.redis = new DockerRedis(
      `${name}-redis`,
      { placement, network: dataNetwork, password: redisPassword, memoryMiB: cfg.redis.memoryMiB },
      child,
    );

    // Leave connections for the exporter, backups and an operator's psql.
    const maxConnections = Number(postgresTuning(cfg.postgres.memoryMiB).max_connections);
    const poolPerReplica = Math.max(2, Math.min(10, Math.floor((maxConnections - 10) / cfg.app.replicas)));
    this.app = new DockerApp(
      `${name}-app`,
      {
        placement,
        dataNetwork,
        edgeNetwork,
        replicas: cfg.app.replicas,
        memoryMiB: cfg.app.memoryMiB,
        cpu: cfg.app.cpu,
        gracefulShutdownSeconds: cfg.app.gracefulShutdownSeconds,
        env: {
          NODE_ENV: "production",
          MODELS_DIR: "/app/models",
          AUTH_MODE: cfg.app.authMode,
          LOG_LEVEL: cfg.app.logLevel,
          SHUTDOWN_TIMEOUT_MS: String(cfg.app.gracefulShutdownSeconds * 1000),
          // Behind Caddy: client addresses (rate limits per IP, logs) come from X-Forwarded-For.
          TRUST_PROXY: "true",
          TRUST_PROXY_HOPS: "1", // Caddy, the one proxy in front, replaces a client's own X-Forwarded-For
          PREDICTION_RETENTION_DAYS: String(cfg.app.predictionLogRetentionDays),
          PG_POOL_MAX: String(poolPerReplica),
        },
        secretEnv: {
          DATABASE_URL: this.postgres.connectionUrl(postgresPassword),
          REDIS_URL: this.redis.connectionUrl(redisPassword),
        },
      },
      { ...child, dependsOn: [this.postgres, this.redis] },
    );

    // The bundle scrapes exactly the exporters the preset runs (monitoring.nodeExporter, .cadvisor).
    const bundle = monitoringBundle(cfg, {
      grafanaRootUrl: this.grafanaUrl,
      externalLabels: { stack: args.stackName, tier: cfg.tier },
    });
    const alertmanagerFiles = pulumi
      .output(args.alertReceivers ?? {})
      .apply((receivers) =>
        prefixed(mountPoints.alertmanager, monitoringBundle(cfg, { receivers }).alertmanager.files),
      );
    const grafanaPasswordFile =
      bundle.grafana.env.GF_SECURITY_ADMIN_PASSWORD__FILE ?? "/run/secrets/grafana-admin-password";

    this.monitoring = new DockerMonitoring(
      `${name}-monitoring`,
      {
        placement,
        dataNetwork,
        edgeNetwork,
        prometheusFiles: prefixed(mountPoints.prometheus, bundle.prometheus.files),
        prometheusArgs: bundle.prometheus.args,
        alertmanagerFiles: args.alertReceivers ? pulumi.secret(alertmanagerFiles) : alertmanagerFiles,
        alertmanagerArgs: bundle.alertmanager.args,
        grafanaFiles: {
          ...prefixed(mountPoints.grafanaProvisioning, bundle.grafana.provisioningFiles),
          ...prefixed(mountPoints.grafanaDashboards, bundle.grafana.dashboardFiles),
        },
        grafanaAdminPassword: this.grafanaAdminPassword,
        grafanaAdminPasswordFile: grafanaPasswordFile,
        grafanaEnv: { ...bundle.grafana.env, GF_SERVER_SERVE_FROM_SUB_PATH: "true" },
        nodeExporter: cfg.monitoring.nodeExporter,
        cadvisor: cfg.monitoring.cadvisor,
        postgres: {
          host: this.postgres.host,
          database: this.postgres.database,
          user: this.postgres.user,
          password: postgresPassword,
        },
        redis: { host: this.redis.host, port: this.redis.port, password: redisPassword },
        memory: {
          prometheus: cfg.monitoring.prometheusMemoryMiB,
          alertmanager: cfg.monitoring.alertmanagerMemoryMiB,
          grafana: cfg.monitoring.grafanaMemoryMiB,
          exporter: cfg.monitoring.exporterMemoryMiB,
        },
      },
      { ...child, dependsOn: [this.postgres, this.redis] },
    );

    this.edge = new EdgeProxy(
      `${name}-edge`,
      {
        placement,
        network: edgeNetwork,
        publishAddress: args.publishAddress,
        domain: cfg.domain,
        httpPort: cfg.edge.httpPort,
        httpsPort: cfg.edge.httpsPort,
        tls: cfg.edge.tls,
        acmeEmail: cfg.edge.acmeEmail,
        upstreams: this.app.upstreams,
        grafanaUpstream: this.monitoring.grafanaUpstream,
        memoryMiB: cfg.edge.memoryMiB,
      },
      { ...child, dependsOn: [this.app] },
    );

    this.backups = new DockerBackups(
      `${name}-backups`,
      {
        placement,
        network: dataNetwork,
        postgresHost: this.postgres.host,
        database: this.postgres.database,
        user: this.postgres.user,
        password: postgresPassword,
        schedule: cfg.backups.schedule,
        retentionDays: cfg.backups.retentionDays,
        memoryMiB: cfg.backups.memoryMiB,
      },
      { ...child, dependsOn: [this.postgres] },
    );
    this.registerOutputs({ url: this.url, grafanaUrl: this.grafanaUrl });
  }
}
