/**
 * DockerMonitoring: Prometheus, Alertmanager, Grafana and the exporters of a Docker-tier stack.
 *
 * Creates: pinned image pulls; data volumes for Prometheus (TSDB), Alertmanager (silences) and
 * Grafana (users, state); containers for
 * - Prometheus (retention from the preset; config and rule files uploaded; data network to
 *   scrape the app replicas and exporters, edge network to scrape the proxy),
 * - Alertmanager (config uploaded; reached by Prometheus as `alertmanager:9093`),
 * - Grafana (provisioning uploaded; served by the edge proxy under `/grafana/`; admin password a
 *   Pulumi secret; sign-up, anonymous access and telemetry off),
 * - postgres_exporter, redis_exporter (credentials as secret env) and node_exporter (host metrics,
 *   read-only host mounts) and cAdvisor, when enabled.
 * Every container: memory limit, restart policy, log rotation; healthchecks where the image has a
 * shell (redis_exporter's image is `scratch`: Prometheus's `up` alert covers it). Nothing is
 * published on a host port.
 *
 * Inputs:
 * - `placement`: name prefix and labels.
 * - `dataNetwork`, `edgeNetwork`: the stack's networks.
 * - `prometheusFiles`, `alertmanagerFiles`, `grafanaFiles`: container path → file content, as
 *   rendered by `monitoring/` for the tier (`prometheus.yml` must be
 *   `/etc/prometheus/prometheus.yml`, the Alertmanager config `/etc/alertmanager/alertmanager.yml`).
 *   `alertmanagerFiles` may hold secrets (receiver URLs): pass it as a secret Output then.
 * - `prometheusArgs`, `alertmanagerArgs`: their command-line flags (from `monitoring/`).
 * - `grafanaEnv`: `GF_*` settings; `grafanaAdminPassword` (secret) is uploaded, readable by
 *   Grafana's user only, to `grafanaAdminPasswordFile`.
 * - `nodeExporter`, `cadvisor`: also run these (they need host bind mounts; cAdvisor gets twice
 *   the exporter memory).
 * - `postgres`: `{ host, database, user, password }` for postgres_exporter.
 * - `redis`: `{ host, port, password }` for redis_exporter.
 * - `memory`: `{ prometheus, alertmanager, grafana, exporter }` limits in MiB (exporter: each).
 *
 * Cost: nothing beyond the host; the TSDB volume grows with retention.
 */

import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import {
  containerDefaults,
  type DockerPlacement,
  labelList,
  pullPinned,
  REPLACE_IN_PLACE,
  shellHealthcheck,
  WAIT_HEALTHY,
} from "./docker-shared.ts";

export type FileSet = pulumi.Input<Record<string, string>>;

export interface DockerMonitoringArgs {
  placement: DockerPlacement;
  dataNetwork: docker.Network;
  edgeNetwork: docker.Network;
  prometheusFiles: FileSet;
  /** Prometheus flags (config path, TSDB path, retention time and size). */
  prometheusArgs: string[];
  alertmanagerFiles: FileSet;
  alertmanagerArgs: string[];
  grafanaFiles: FileSet;
  /** Grafana settings as `GF_*` variables (no secrets: the password comes from a file). */
  grafanaEnv: Record<string, string>;
  grafanaAdminPassword: pulumi.Input<string>;
  /** Where Grafana reads the admin password (`GF_SECURITY_ADMIN_PASSWORD__FILE`). */
  grafanaAdminPasswordFile: string;
  /** Run node-exporter (host metrics; bind-mounts the host's `/`). */
  nodeExporter: boolean;
  /** Run cAdvisor (per-container CPU and memory); it needs ~2 exporter budgets of memory. */
  cadvisor: boolean;
  postgres: { host: string; database: string; user: string; password: pulumi.Input<string> };
  redis: { host: string; port: number; password: pulumi.Input<string> };
  memory: { prometheus: number; alertmanager: number; grafana: number; exporter: number };
}

export const MONITORING_PORTS = {
  prometheus: 9090,
  alertmanager: 9093,
  grafana: 3000,
  postgresExporter: 9187,
  redisExporter: 9121,
  nodeExporter: 9100,
} as const;

function uploadsOf(files: FileSet): pulumi.Output<docker.types.input.ContainerUpload[]> {
  return pulumi.output(files).apply((f) =>
    Object.entries(f)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([file, content]) => ({ file, content })),
  );
}

export class DockerMonitoring extends pulumi.ComponentResource {
  readonly prometheus: docker.Container;
  readonly alertmanager: docker.Container;
  readonly grafana: docker.Container;
  readonly exporters: docker.Container[];
  /** `host:port` the edge proxy uses for Grafana. */
  readonly grafanaUpstream = `grafana:${MONITORING_PORTS.grafana}`;

  constructor(name: string, args: DockerMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:docker:Monitoring", name, {}, opts);
    const child = { parent: this };
    const { namePrefix, labels } = args.placement;
    const volume = (suffix: string) =>
      new docker.Volume(`${name}-${suffix}`, { name: `${namePrefix}-${suffix}`, labels: labelList(labels) }, child);
    const both = [
      { name: args.dataNetwork.name, aliases: [] as string[] },
      { name: args.edgeNetwork.name, aliases: [] as string[] },
    ];

    const promImage = pullPinned("prometheus", `${name}-prometheus-image`, child);
    const promData = volume("prometheus-data");
    this.prometheus = new docker.Container(
      `${name}-prometheus`,
      {
        ...containerDefaults(args.placement, "prometheus"),
        ...WAIT_HEALTHY,
        name: `${namePrefix}-prometheus`,
        image: promImage.repoDigest,
        command: args.prometheusArgs,
        uploads: uploadsOf(args.prometheusFiles),
        memory: args.memory.prometheus,
        healthcheck: shellHealthcheck(`wget -q -O /dev/null http://127.0.0.1:${MONITORING_PORTS.prometheus}/-/healthy`),
        volumes: [{ volumeName: promData.name, containerPath: "/prometheus" }],
        networksAdvanced: both.map((n) => ({ ...n, aliases: ["prometheus"] })),
      },
      { ...child, ...REPLACE_IN_PLACE },
    );

    const amImage = pullPinned("alertmanager", `${name}-alertmanager-image`, child);
    const amData = volume("alertmanager-data");
    this.alertmanager = new docker.Container(
      `${name}-alertmanager`,
      {
        ...containerDefaults(args.placement, "alertmanager"),
        ...WAIT_HEALTHY,
        name: `${namePrefix}-alertmanager`,
        image: amImage.repoDigest,
        // Single instance: no gossip cluster port.
        command: [...args.alertmanagerArgs, "--cluster.listen-address="],
        uploads: uploadsOf(args.alertmanagerFiles),
        memory: args.memory.alertmanager,
        healthcheck: shellHealthcheck(
          `wget -q -O /dev/null http://127.0.0.1:${MONITORING_PORTS.alertmanager}/-/healthy`,
        ),
        volumes: [{ volumeName: amData.name, containerPath: "/alertmanager" }],
        // Edge network for egress to receivers (webhooks, email); data network for Prometheus.
        networksAdvanced: both.map((n) => ({ ...n, aliases: ["alertmanager"] })),
      },
      { ...child, ...REPLACE_IN_PLACE },
    );

    const grafanaImage = pullPinned("grafana", `${name}-grafana-image`, child);
    const grafanaData = volume("grafana-data");
    this.grafana = new docker.Container(
      `${name}-grafana`,
      {
        ...containerDefaults(args.placement, "grafana"),
        ...WAIT_HEALTHY,
        name: `${namePrefix}-grafana`,
        image: grafanaImage.repoDigest,
        envs: Object.entries({ ...args.grafanaEnv, GF_LOG_MODE: "console" }).map(([k, v]) => `${k}=${v}`),
        uploads: pulumi
          .all([uploadsOf(args.grafanaFiles), pulumi.secret(args.grafanaAdminPassword)])
          .apply(([files, password]) => [
            ...files,
            // Grafana runs as uid 472: only it can read the password.
            { file: args.grafanaAdminPasswordFile, content: password, owner: "472", group: "0", permissions: "0400" },
          ]),
        memory: args.memory.grafana,
        healthcheck: shellHealthcheck(
          `wget -q -O /dev/null http://127.0.0.1:${MONITORING_PORTS.grafana}/api/health`,
          "60s",
        ),
        volumes: [{ volumeName: grafanaData.name, containerPath: "/var/lib/grafana" }],
        networksAdvanced: both.map((n) => ({ ...n, aliases: ["grafana"] })),
      },
      { ...child, ...REPLACE_IN_PLACE },
    );

    const exporter = (role: string, args2: Omit<docker.ContainerArgs, "name" | "memory">) =>
      new docker.Container(
        `${name}-${role}`,
        {
          ...containerDefaults(args.placement, role),
          ...args2,
          name: `${namePrefix}-${role}`,
          memory: args.memory.exporter,
        },
        { ...child, ...REPLACE_IN_PLACE },
      );
    const dataOnly = (alias: string) => [{ name: args.dataNetwork.name, aliases: [alias] }];

    const pgExporterImage = pullPinned("postgresExporter", `${name}-postgres-exporter-image`, child);
    const redisExporterImage = pullPinned("redisExporter", `${name}-redis-exporter-image`, child);
    this.exporters = [
      exporter("postgres-exporter", {
        ...WAIT_HEALTHY,
        image: pgExporterImage.repoDigest,
        envs: [
          `DATA_SOURCE_URI=${args.postgres.host}:5432/${args.postgres.database}?sslmode=disable`,
          `DATA_SOURCE_USER=${args.postgres.user}`,
          pulumi.interpolate`DATA_SOURCE_PASS=${args.postgres.password}`,
        ],
        healthcheck: shellHealthcheck(
          `wget -q -O /dev/null http://127.0.0.1:${MONITORING_PORTS.postgresExporter}/metrics`,
        ),
        networksAdvanced: dataOnly("postgres-exporter"),
      }),
      exporter("redis-exporter", {
        image: redisExporterImage.repoDigest,
        envs: [
          `REDIS_ADDR=redis://${args.redis.host}:${args.redis.port}`,
          pulumi.interpolate`REDIS_PASSWORD=${args.redis.password}`,
        ],
        networksAdvanced: dataOnly("redis-exporter"),
      }),
    ];
    if (args.nodeExporter) {
      const nodeExporterImage = pullPinned("nodeExporter", `${name}-node-exporter-image`, child);
      this.exporters.push(
        exporter("node-exporter", {
          ...WAIT_HEALTHY,
          image: nodeExporterImage.repoDigest,
          command: [
            "--path.rootfs=/host",
            "--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|var/lib/docker/.+)($|/)",
          ],
          pidMode: "host",
          readOnly: true,
          volumes: [{ hostPath: "/", containerPath: "/host", readOnly: true }],
          healthcheck: shellHealthcheck(
            `wget -q -O /dev/null http://127.0.0.1:${MONITORING_PORTS.nodeExporter}/metrics`,
          ),
          networksAdvanced: dataOnly("node-exporter"),
        }),
      );
    }
    if (args.cadvisor) {
      const cadvisorImage = pullPinned("cadvisor", `${name}-cadvisor-image`, child);
      this.exporters.push(
        new docker.Container(
          `${name}-cadvisor`,
          {
            ...containerDefaults(args.placement, "cadvisor"),
            ...WAIT_HEALTHY,
            name: `${namePrefix}-cadvisor`,
            image: cadvisorImage.repoDigest,
            command: [
              "--docker_only=true",
              "--housekeeping_interval=30s",
              "--store_container_labels=false",
              "--disable_metrics=percpu,sched,tcp,udp,disk,diskIO,hugetlb,referenced_memory",
            ],
            memory: args.memory.exporter * 2,
            volumes: [
              { hostPath: "/", containerPath: "/rootfs", readOnly: true },
              { hostPath: "/var/run", containerPath: "/var/run", readOnly: true },
              { hostPath: "/sys", containerPath: "/sys", readOnly: true },
              { hostPath: "/var/lib/docker", containerPath: "/var/lib/docker", readOnly: true },
            ],
            healthcheck: shellHealthcheck(`wget -q -O /dev/null http://127.0.0.1:8080/healthz`),
            networksAdvanced: dataOnly("cadvisor"),
          },
          { ...child, ...REPLACE_IN_PLACE },
        ),
      );
    }
    this.registerOutputs({});
  }
}
