/**
 * What Prometheus scrapes on each platform, and where. On Docker it resolves containers through
 * the Docker network's embedded DNS; on AWS it resolves app tasks through Cloud Map and runs the
 * exporters as sidecars of the monitoring task (see docs/monitoring.md for why not CloudWatch).
 */

/** Where the stack runs: containers on one Docker engine, or ECS tasks on AWS. */
export type Platform = "docker" | "aws";

/** How Prometheus finds the app replicas. */
export type AppDiscovery =
  /** A-record DNS service discovery: a Docker network alias shared by all replicas, or a Cloud Map service. */
  | { kind: "dns"; name: string; port: number }
  /** Fixed host:port list (tests, or a Docker tier that names each replica). */
  | { kind: "static"; targets: string[] };

export interface ScrapeTargets {
  app: AppDiscovery;
  /** host:port of Prometheus as seen from itself. */
  prometheus: string;
  /** host:port of Alertmanager; Prometheus sends alerts there and scrapes it. */
  alertmanager: string;
  /** Exporters; null where the tier does not run one. */
  postgresExporter: string | null;
  redisExporter: string | null;
  nodeExporter: string | null;
  cadvisor: string | null;
  /** Blackbox exporter host:port and the HTTPS URL whose certificate it watches. */
  blackbox: { exporter: string; probeUrls: string[] } | null;
}

export const appPort = 8080;

/** Defaults per platform; the Pulumi components pass their real names when they differ. */
export function defaultScrapeTargets(platform: Platform, domain: string): ScrapeTargets {
  return platform === "docker" ? dockerTargets() : ecsTargets(domain);
}

/** host:port of Prometheus as Grafana reaches it: its own container on Docker, the shared task on ECS. */
export function prometheusForGrafana(platform: Platform, targets: ScrapeTargets): string {
  return platform === "docker" ? "prometheus:9090" : targets.prometheus;
}

function dockerTargets(): ScrapeTargets {
  return {
    // Every app container joins the network with alias `app`; Docker DNS answers one A record each.
    app: { kind: "dns", name: "app", port: appPort },
    prometheus: "localhost:9090",
    alertmanager: "alertmanager:9093",
    postgresExporter: "postgres-exporter:9187",
    redisExporter: "redis-exporter:9121",
    nodeExporter: "node-exporter:9100",
    cadvisor: "cadvisor:8080",
    // The edge proxy renews Let's Encrypt itself; a blackbox container would not fit the 1 GiB host.
    blackbox: null,
  };
}

function ecsTargets(domain: string): ScrapeTargets {
  return {
    app: { kind: "dns", name: "app.inferstack.local", port: appPort },
    // Prometheus, Alertmanager, Grafana and the exporters share one task: localhost between them.
    prometheus: "localhost:9090",
    alertmanager: "localhost:9093",
    postgresExporter: "localhost:9187",
    redisExporter: "localhost:9121",
    // Fargate exposes no host: no node-exporter and no cAdvisor.
    nodeExporter: null,
    cadvisor: null,
    blackbox: { exporter: "localhost:9115", probeUrls: [`https://${domain}/health/live`] },
  };
}
