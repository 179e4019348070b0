/**
 * DockerPostgres: PostgreSQL 16 in a container, for the Docker tiers.
 *
 * Creates: the pinned image pull, a named data volume, and the container (healthcheck with
 * `pg_isready`, memory limit, restart policy, log rotation), on the private data network only: no
 * published port, no route to the internet. Memory settings (shared_buffers, work_mem,
 * max_connections) are derived from the memory limit so Postgres never plans to use more than
 * its cgroup allows.
 *
 * Inputs:
 * - `placement`: name prefix and labels of the stack.
 * - `network`: the private network; the container answers there as `postgres`.
 * - `password`: the superuser password, a Pulumi secret (from `random.RandomPassword`).
 * - `memoryMiB`: container memory limit.
 * - `database`, `user`: created at first start (default `inferstack`).
 *
 * Cost: nothing beyond the host; the data volume grows with the prediction log.
 */

import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import {
  containerDefaults,
  type DockerPlacement,
  pullPinned,
  REPLACE_IN_PLACE,
  shellHealthcheck,
  WAIT_HEALTHY,
} from "./docker-shared.ts";

export interface DockerPostgresArgs {
  placement: DockerPlacement;
  network: docker.Network;
  password: pulumi.Input<string>;
  memoryMiB: number;
  database?: string;
  user?: string;
}

export const POSTGRES_PORT = 5432;

/** Postgres settings sized to a container memory limit. */
export function postgresTuning(memoryMiB: number): Record<string, string> {
  const sharedBuffers = Math.max(16, Math.floor(memoryMiB / 4));
  const maxConnections = memoryMiB < 256 ? 40 : memoryMiB < 1024 ? 80 : 150;
  // Leave room for shared_buffers and per-connection overhead; sorts spill to disk beyond work_mem.
  const workMem = Math.max(1, Math.floor((memoryMiB - sharedBuffers) / (maxConnections * 3)));
  return {
    shared_buffers: `${sharedBuffers}MB`,
    effective_cache_size: `${Math.floor(memoryMiB / 2)}MB`,
    work_mem: `${workMem}MB`,
    maintenance_work_mem: `${Math.max(8, Math.floor(memoryMiB / 16))}MB`,
    max_connections: String(maxConnections),
    // Log slow statements: the runbook's first stop for latency incidents.
    log_min_duration_statement: "500ms",
  };
}

export class DockerPostgres extends pulumi.ComponentResource {
  readonly container: docker.Container;
  readonly volume: docker.Volume;
  /** Host name on the private network. */
  readonly host = "postgres";
  readonly port = POSTGRES_PORT;
  readonly database: string;
  readonly user: string;

  constructor(name: string, args: DockerPostgresArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:docker:Postgres", name, {}, opts);
    const child = { parent: this };
    this.database = args.database ?? "inferstack";
    this.user = args.user ?? "inferstack";
    const { namePrefix, labels } = args.placement;

    const image = pullPinned("postgres", `${name}-image`, child);
    this.volume = new docker.Volume(
      `${name}-data`,
      { name: `${namePrefix}-pgdata`, labels: Object.entries(labels).map(([label, value]) => ({ label, value })) },
      child,
    );

    const tuning = Object.entries(postgresTuning(args.memoryMiB)).flatMap(([k, v]) => ["-c", `${k}=${v}`]);
    this.container = new docker.Container(
      name,
      {
        ...containerDefaults(args.placement, "postgres"),
        ...WAIT_HEALTHY,
        name: `${namePrefix}-postgres`,
        image: image.repoDigest,
        command: ["postgres", ...tuning],
        envs: [
          `POSTGRES_DB=${this.database}`,
          `POSTGRES_USER=${this.user}`,
          pulumi.interpolate`POSTGRES_PASSWORD=${args.password}`,
          // scram-sha-256 for every connection, including the first superuser.
          "POSTGRES_INITDB_ARGS=--auth-host=scram-sha-256 --auth-local=scram-sha-256",
          "POSTGRES_HOST_AUTH_METHOD=scram-sha-256",
          "PGDATA=/var/lib/postgresql/data/pgdata",
        ],
        memory: args.memoryMiB,
        // Postgres needs shared memory beyond Docker's 64 MB default for parallel queries.
        shmSize: 128,
        // Postgres flushes and shuts down cleanly on SIGINT (fast shutdown) within the grace period.
        stopSignal: "SIGINT",
        stopTimeout: 60,
        healthcheck: shellHealthcheck(`pg_isready -q -h 127.0.0.1 -U ${this.user} -d ${this.database}`, "60s"),
        volumes: [{ volumeName: this.volume.name, containerPath: "/var/lib/postgresql/data" }],
        networksAdvanced: [{ name: args.network.name, aliases: [this.host] }],
      },
      { ...child, ...REPLACE_IN_PLACE },
    );
    this.registerOutputs({ containerName: this.container.name });
  }

  /** `postgres://user:password@postgres:5432/db`, a secret because it carries the password. */
  connectionUrl(password: pulumi.Input<string>): pulumi.Output<string> {
    return pulumi.secret(
      pulumi.interpolate`postgres://${this.user}:${pulumi.output(password).apply(encodeURIComponent)}@${this.host}:${this.port}/${this.database}`,
    );
  }
}
