/**
 * Third-party images the stacks run (containers on Docker, base images on ECS), pinned by tag AND
 * digest: the tag says what it is, the digest makes `pulumi up` pull exactly the bytes we tested,
 * even if the tag is re-pushed. Each digest is the multi-arch index digest as pinned by other
 * public projects (several independent files agree unless noted), so the same reference works on
 * x86_64 (t3) and arm64 (t4g) hosts.
 *
 * To bump one: `docker buildx imagetools inspect <repo>:<tag>` prints the index digest; update
 * the line and run `npm test`.
 */

export interface PinnedImage {
  /** Repository and tag, e.g. `postgres:16.10-alpine`. */
  tag: string;
  /** `sha256:<64 hex>` index digest. */
  digest: string;
  /** Where the digest was cross-checked. */
  source: string;
}

export const images = {
  postgres: {
    tag: "postgres:16.10-alpine",
    digest: "sha256:029660641a0cfc575b14f336ba448fb8a75fd595d42e1fa316b9fb4378742297",
    source: "public compose files, CI workflows and testcontainers code (10+ independent files)",
  },
  valkey: {
    tag: "valkey/valkey:8-alpine",
    digest: "sha256:a038175878d66b9d274fbf8be73c0305e93798b83917647f167e18cef3c71eec",
    source: "public NixOS container configs and a k8s operator default (Valkey 8.1.9)",
  },
  caddy: {
    tag: "caddy:2.10.0-alpine",
    digest: "sha256:ae4458638da8e1a91aafffb231c5f8778e964bca650c8a8cb23a7e8ac557aa3c",
    source: "public Dockerfiles and Caddy validation scripts (4 independent files)",
  },
  prometheus: {
    tag: "prom/prometheus:v3.5.0",
    digest: "sha256:63805ebb8d2b3920190daf1cb14a60871b16fd38bed42b857a3182bc621f4996",
    source: "public compose files and promtool CI scripts (10+ files); v3.5 is a Prometheus LTS release",
  },
  alertmanager: {
    tag: "prom/alertmanager:v0.28.1",
    digest: "sha256:27c475db5fb156cab31d5c18a4251ac7ed567746a2483ff264516437a39b15ba",
    source: "public compose files and image allow-lists (10 files)",
  },
  grafana: {
    tag: "grafana/grafana:12.1.0",
    digest: "sha256:6ac590e7cabc2fbe8d7b8fc1ce9c9f0582177b334e0df9c927ebd9670469440f",
    source: "public test harnesses and backup scripts (5 files)",
  },
  postgresExporter: {
    tag: "quay.io/prometheuscommunity/postgres-exporter:v0.17.1",
    digest: "sha256:38606faa38c54787525fb0ff2fd6b41b4cfb75d455c1df294927c5f611699b17",
    source: "public Go operator code, Terraform k8s module and a deploy script (3 files)",
  },
  redisExporter: {
    tag: "oliver006/redis_exporter:v1.76.0",
    digest: "sha256:1542bc6a88decfc16db6603045accd502cc3a46c46659d7cfd568e1f6965fe59",
    source: "one public production deploy script (single source: re-verify before relying on it)",
  },
  nodeExporter: {
    tag: "prom/node-exporter:v1.9.1",
    digest: "sha256:d00a542e409ee618a4edc67da14dd48c5da66726bbd5537ab2af9c1dfc442c8a",
    source: "public compose files, NixOS configs and a license inventory (6 files)",
  },
  cadvisor: {
    tag: "gcr.io/cadvisor/cadvisor:v0.52.1",
    digest: "sha256:f40e65878e25c2e78ea037f73a449527a0fb994e303dc3e34cb6b187b4b91435",
    source: "one public production deploy script (single source: re-verify before relying on it)",
  },
  blackboxExporter: {
    tag: "prom/blackbox-exporter:v0.25.0",
    digest: "sha256:b04a9fef4fa086a02fc7fcd8dcdbc4b7b35cc30cdee860fdc6a19dd8b208d63e",
    source: "public monitoring compose files and an image allow-list (2 independent files); AWS tiers' HTTPS probe",
  },
} as const satisfies Record<string, PinnedImage>;

export type ImageName = keyof typeof images;

/** The pull reference: `repo:tag@sha256:...`. */
export function pinned(name: ImageName): string {
  const image = images[name];
  return `${image.tag}@${image.digest}`;
}
