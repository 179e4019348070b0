/**
 * DockerRedis: Valkey (the Redis-compatible, BSD-licensed fork) in a container, for the Docker tiers.
 *
 * Creates: the pinned image pull and the container, on the private data network only (no
 * published port). Valkey runs as a cache and rate-limit store: `maxmemory` at 75 % of the
 * container limit (the rest is fragmentation and client buffers) with `allkeys-lru` eviction, so
 * memory pressure evicts keys instead of failing writes or getting OOM-killed; persistence is off
 * (no fork for snapshots, which would double memory on a small host); a password is required.
 *
 * Inputs:
 * - `placement`: name prefix and labels of the stack.
 * - `network`: the private network; the container answers there as `redis`.
 * - `password`: the `requirepass` password, a Pulumi secret.
 * - `memoryMiB`: container memory limit.
 *
 * Cost: nothing beyond the host.
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

export interface DockerRedisArgs {
  placement: DockerPlacement;
  network: docker.Network;
  password: pulumi.Input<string>;
  memoryMiB: number;
}

export const REDIS_PORT = 6379;

/** Valkey's maxmemory for a container limit: 75 %, at least 8 MiB. */
export function redisMaxMemoryMiB(containerMiB: number): number {
  return Math.max(8, Math.floor(containerMiB * 0.75));
}

export class DockerRedis extends pulumi.ComponentResource {
  readonly container: docker.Container;
  readonly host = "redis";
  readonly port = REDIS_PORT;

  constructor(name: string, args: DockerRedisArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:docker:Redis", name, {}, opts);
    const child = { parent: this };
    const image = pullPinned("valkey", `${name}-image`, child);

    this.container = new docker.Container(
      name,
      {
        ...containerDefaults(args.placement, "redis"),
        ...WAIT_HEALTHY,
        name: `${args.placement.namePrefix}-redis`,
        image: image.repoDigest,
        // The password comes in through the environment, not the container's config args; the
        // image's entrypoint still runs, so Valkey drops root and owns /data as usual.
        entrypoints: [
          "sh",
          "-c",
          'exec docker-entrypoint.sh valkey-server "$@" --requirepass "$VALKEY_PASSWORD"',
          "valkey",
        ],
        command: [
          "--maxmemory",
          `${redisMaxMemoryMiB(args.memoryMiB)}mb`,
          "--maxmemory-policy",
          "allkeys-lru",
          "--save",
          "",
          "--appendonly",
          "no",
          "--protected-mode",
          "no",
        ],
        envs: [pulumi.interpolate`VALKEY_PASSWORD=${args.password}`],
        memory: args.memoryMiB,
        healthcheck: shellHealthcheck(
          'REDISCLI_AUTH="$VALKEY_PASSWORD" valkey-cli -h 127.0.0.1 ping | grep -q PONG',
          "20s",
        ),
        networksAdvanced: [{ name: args.network.name, aliases: [this.host] }],
      },
      { ...child, ...REPLACE_IN_PLACE },
    );
    this.registerOutputs({ containerName: this.container.name });
  }

  /** `redis://:password@redis:6379`, a secret. */
  connectionUrl(password: pulumi.Input<string>): pulumi.Output<string> {
    return pulumi.secret(
      pulumi.interpolate`redis://:${pulumi.output(password).apply(encodeURIComponent)}@${this.host}:${this.port}`,
    );
  }
}
