/**
 * EdgeProxy: Caddy at the edge of a Docker-tier stack: TLS termination, load balancing across the
 * app replicas with active health checks, and Grafana under `/grafana/`.
 *
 * Creates: the pinned Caddy image pull, two volumes (`/data` holds certificates and the internal
 * CA, so they survive container replacement and Let's Encrypt rate limits are never hit by
 * redeploys; `/config`), and the container with the generated Caddyfile uploaded, publishing the
 * HTTP and HTTPS ports (bound to 127.0.0.1 on `local`, all interfaces on `free`).
 *
 * TLS: `internal` uses Caddy's own CA (trust its root once, see docs/deploy-docker.md);
 * `letsencrypt` gets a certificate for `domain` over ACME (HTTP-01/TLS-ALPN-01, so ports 80/443
 * must be reachable). HTTP redirects to HTTPS; HSTS on public domains. The app's `/metrics` is
 * not served publicly; Prometheus scrapes it on the private network.
 *
 * Inputs:
 * - `placement`: name prefix and labels.
 * - `network`: the edge network (Caddy, the app replicas, Grafana).
 * - `domain`, `httpPort`, `httpsPort`, `tls`, `acmeEmail`: from the preset's `domain` and `edge`.
 * - `publishAddress`: host address the ports bind to.
 * - `upstreams`: `host:port` of each app replica.
 * - `grafanaUpstream`: `host:port` of Grafana.
 * - `memoryMiB`: container memory limit.
 *
 * Cost: nothing beyond the host; Let's Encrypt certificates are free.
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

export interface CaddyfileOptions {
  domain: string;
  httpPort: number;
  httpsPort: number;
  tls: "internal" | "letsencrypt";
  acmeEmail?: string | undefined;
  upstreams: string[];
  grafanaUpstream: string;
  /** Port of the private metrics/health endpoint (default 2020). */
  metricsPort?: number;
}

export interface EdgeProxyArgs extends CaddyfileOptions {
  placement: DockerPlacement;
  network: docker.Network;
  publishAddress: string;
  memoryMiB: number;
}

/** Port of the proxy's own metrics endpoint, on the private network only. */
export const EDGE_METRICS_PORT = 2020;

/** The Caddyfile for a stack. Pure, so the tests read exactly what Caddy gets. */
export function renderCaddyfile(o: CaddyfileOptions): string {
  if (o.upstreams.length === 0) throw new Error("edge proxy: at least one upstream is required");
  const metricsPort = o.metricsPort ?? EDGE_METRICS_PORT;
  const global = [
    // Config changes replace the container: no admin API to reach or to secure.
    "\tadmin off",
    `\thttp_port ${o.httpPort}`,
    `\thttps_port ${o.httpsPort}`,
    // The internal CA is trusted by clients (docs/deploy-docker.md), not by the proxy's own OS.
    ...(o.tls === "internal" ? ["\tskip_install_trust"] : []),
    ...(o.tls === "letsencrypt" && o.acmeEmail ? [`\temail ${o.acmeEmail}`] : []),
    "\tservers {",
    // Request metrics for Prometheus. `servers { metrics }` is accepted by every Caddy from 2.6 on
    // (2.9+ log a deprecation note and prefer a global `metrics`), so the Debian caddy the tests
    // validate with and the pinned 2.10 image read the same file.
    "\t\tmetrics",
    "\t\ttimeouts {",
    "\t\t\tread_header 10s",
    "\t\t\tidle 2m",
    "\t\t}",
    "\t}",
  ];
  const site = o.domain === "localhost" || o.httpsPort !== 443 ? `${o.domain}:${o.httpsPort}` : o.domain;
  const lines = [
    "{",
    ...global,
    "}",
    "",
    `${site} {`,
    ...(o.tls === "internal" ? ["\ttls internal"] : []),
    "\tencode zstd gzip",
    "\theader {",
    ...(o.tls === "letsencrypt" ? ['\t\tStrict-Transport-Security "max-age=31536000; includeSubDomains"'] : []),
    '\t\tX-Content-Type-Options "nosniff"',
    '\t\tReferrer-Policy "no-referrer"',
    "\t\t-Server",
    "\t}",
    "\t# Metrics are scraped on the private network, never served to the internet.",
    "\t@metrics path /metrics /metrics/*",
    "\thandle @metrics {",
    "\t\trespond 404",
    "\t}",
    "\tredir /grafana /grafana/ 308",
    "\thandle /grafana/* {",
    `\t\treverse_proxy ${o.grafanaUpstream}`,
    "\t}",
    "\thandle {",
    `\t\treverse_proxy ${o.upstreams.join(" ")} {`,
    "\t\t\tlb_policy least_conn",
    // Retry another replica for up to 5 s when one is down (e.g. during a rolling replace).
    "\t\t\tlb_try_duration 5s",
    "\t\t\tlb_try_interval 250ms",
    "\t\t\thealth_uri /health/ready",
    "\t\t\thealth_interval 5s",
    "\t\t\thealth_timeout 2s",
    "\t\t\thealth_status 2xx",
    "\t\t\tfail_duration 30s",
    "\t\t\tmax_fails 3",
    "\t\t\tunhealthy_status 502 503 504",
    "\t\t\theader_up X-Request-Id {http.request.uuid}",
    "\t\t}",
    "\t}",
    "\tlog {",
    "\t\toutput stdout",
    "\t\tformat json",
    "\t}",
    "}",
    "",
    // Caddy's automatic redirect drops a non-standard HTTPS port (it would send local users to
    // :443), so on such ports the redirect is spelled out.
    ...(o.httpsPort !== 443
      ? [`http://${o.domain}:${o.httpPort} {`, `\tredir https://${o.domain}:${o.httpsPort}{uri} 308`, "}", ""]
      : []),
    `:${metricsPort} {`,
    "\tmetrics /metrics",
    "\trespond /healthz 200",
    "}",
    "",
  ];
  return lines.join("\n");
}

export class EdgeProxy extends pulumi.ComponentResource {
  readonly container: docker.Container;
  readonly caddyfile: string;
  readonly host = "edge";

  constructor(name: string, args: EdgeProxyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:docker:EdgeProxy", name, {}, opts);
    const child = { parent: this };
    const { namePrefix, labels } = args.placement;
    this.caddyfile = renderCaddyfile(args);

    const image = pullPinned("caddy", `${name}-image`, child);
    const data = new docker.Volume(
      `${name}-data`,
      { name: `${namePrefix}-caddy-data`, labels: labelList(labels) },
      child,
    );
    const config = new docker.Volume(
      `${name}-config`,
      { name: `${namePrefix}-caddy-config`, labels: labelList(labels) },
      child,
    );

    this.container = new docker.Container(
      name,
      {
        ...containerDefaults(args.placement, "edge"),
        ...WAIT_HEALTHY,
        name: `${namePrefix}-edge`,
        image: image.repoDigest,
        command: ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"],
        uploads: [{ file: "/etc/caddy/Caddyfile", content: this.caddyfile }],
        memory: args.memoryMiB,
        ports: [
          { internal: args.httpPort, external: args.httpPort, ip: args.publishAddress, protocol: "tcp" },
          { internal: args.httpsPort, external: args.httpsPort, ip: args.publishAddress, protocol: "tcp" },
          // HTTP/3 over QUIC.
          { internal: args.httpsPort, external: args.httpsPort, ip: args.publishAddress, protocol: "udp" },
        ],
        // Binding ports below 1024 as Caddy's non-root default needs this one capability only.
        capabilities: { drops: ["ALL"], adds: ["NET_BIND_SERVICE"] },
        healthcheck: shellHealthcheck(`wget -q -O /dev/null http://127.0.0.1:${EDGE_METRICS_PORT}/healthz`, "20s"),
        volumes: [
          { volumeName: data.name, containerPath: "/data" },
          { volumeName: config.name, containerPath: "/config" },
        ],
        networksAdvanced: [{ name: args.network.name, aliases: [this.host] }],
      },
      { ...child, ...REPLACE_IN_PLACE },
    );
    this.registerOutputs({ containerName: this.container.name });
  }
}
