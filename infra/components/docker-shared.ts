/**
 * Settings every container of the Docker tiers shares (no resource here): restart policy, log
 * rotation, healthcheck timing, labels, and the pinned-image pull. Keeping them in one place is
 * what lets the tests assert "every container" rather than container by container.
 */

import * as docker from "@pulumi/docker";
import type * as pulumi from "@pulumi/pulumi";
import { type ImageName, pinned } from "../images.ts";

/** Restart after crashes and host reboots, but not after `docker stop`. */
export const RESTART_POLICY = "unless-stopped";

/** json-file with rotation: at most 3 × 10 MB of logs per container, so logs never fill the disk. */
export const LOG_DRIVER = "json-file";
export const LOG_OPTS = { "max-size": "10m", "max-file": "3", compress: "true" } as const;

/** What every container of the stack needs to know about its place. */
export interface DockerPlacement {
  /** Prefix for container and volume names (`inferstack-local`), unique per stack on one engine. */
  namePrefix: string;
  /** Labels put on every container and volume (stack, project, tier). */
  labels: Record<string, string>;
}

export function labelList(labels: Record<string, string>): docker.types.input.ContainerLabel[] {
  return Object.entries(labels).map(([label, value]) => ({ label, value }));
}

/** The container fields every container gets. */
export function containerDefaults(placement: DockerPlacement, role: string) {
  return {
    restart: RESTART_POLICY,
    logDriver: LOG_DRIVER,
    logOpts: { ...LOG_OPTS },
    labels: labelList({ ...placement.labels, "inferstack.role": role }),
    // no-new-privileges: a compromised process cannot gain privileges via setuid binaries.
    securityOpts: ["no-new-privileges:true"],
  } satisfies Partial<docker.ContainerArgs>;
}

/**
 * Container fields for a container with a healthcheck: `pulumi up` waits until it reports healthy,
 * so dependants start against a working service and a broken release fails the update.
 */
export const WAIT_HEALTHY = { wait: true, waitTimeout: 180 } as const;

/**
 * For containers with a fixed name, a volume, or host ports (every one but the app replicas): the
 * old container must be gone before its replacement starts, or the name, the data directory or
 * the port would be held twice.
 */
export const REPLACE_IN_PLACE = { deleteBeforeReplace: true } as const;

/** Docker healthcheck with the timings we use everywhere; `test` is an exec-form command. */
export function healthcheck(test: string[], startPeriod = "30s"): docker.types.input.ContainerHealthcheck {
  return { tests: ["CMD", ...test], interval: "15s", timeout: "5s", retries: 3, startPeriod, startInterval: "2s" };
}

export function shellHealthcheck(script: string, startPeriod = "30s"): docker.types.input.ContainerHealthcheck {
  return { tests: ["CMD-SHELL", script], interval: "15s", timeout: "5s", retries: 3, startPeriod, startInterval: "2s" };
}

/**
 * Pulls a pinned third-party image onto the engine. Containers use its `repoDigest`, so a
 * container always runs the digest from `images.ts`, never whatever the tag points to today.
 */
export function pullPinned(
  name: ImageName,
  resourceName: string,
  opts: pulumi.CustomResourceOptions,
): docker.RemoteImage {
  return new docker.RemoteImage(resourceName, { name: pinned(name), keepLocally: true }, opts);
}
