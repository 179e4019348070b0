/**
 * DockerApp: the inference API, built from `app/Dockerfile` on the target engine and run as N
 * replicas behind the edge proxy.
 *
 * Creates: the image build (on the engine the provider points at, so the free tier builds natively
 * on its own arm64 or x86_64 host and needs no registry), one spill volume per replica (the
 * prediction log's fallback file when Postgres is down; one per replica so two writers never
 * share a file), and the replica containers `app-1..N` (healthcheck on `/health/live`, memory
 * limit, read-only root filesystem, restart policy, log rotation), on both networks: the data
 * network (Postgres, Redis) and the edge network (the proxy). No published port: traffic comes in
 * through the proxy only.
 *
 * Inputs:
 * - `placement`: name prefix and labels of the stack.
 * - `dataNetwork`, `edgeNetwork`: the two private networks.
 * - `replicas`, `memoryMiB`, `cpu`: count and per-replica limits.
 * - `env`: the app's environment (plain values); `secretEnv`: values that are Pulumi secrets
 *   (`DATABASE_URL`, `REDIS_URL`).
 * - `gracefulShutdownSeconds`: how long Docker waits after SIGTERM before SIGKILL (plus margin).
 * - `buildContext`, `dockerfile`: paths relative to the project root (default `.` and `app/Dockerfile`).
 *
 * Cost: nothing beyond the host.
 */

import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { projectPath } from "../project-path.ts";
import { containerDefaults, type DockerPlacement, labelList, shellHealthcheck, WAIT_HEALTHY } from "./docker-shared.ts";

export interface DockerAppArgs {
  placement: DockerPlacement;
  dataNetwork: docker.Network;
  edgeNetwork: docker.Network;
  replicas: number;
  memoryMiB: number;
  cpu: number;
  env: Record<string, string>;
  secretEnv: Record<string, pulumi.Input<string>>;
  gracefulShutdownSeconds: number;
  buildContext?: string;
  dockerfile?: string;
}

export const APP_PORT = 8080;
export const SPILL_DIR = "/var/lib/inferstack/spill";

export class DockerApp extends pulumi.ComponentResource {
  readonly image: docker.Image;
  readonly containers: docker.Container[] = [];
  /** `app-1:8080`, ... as the proxy and Prometheus reach them. */
  readonly upstreams: string[] = [];

  constructor(name: string, args: DockerAppArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:docker:App", name, {}, opts);
    const child = { parent: this };
    const { namePrefix, labels } = args.placement;

    this.image = new docker.Image(
      `${name}-image`,
      {
        imageName: `${namePrefix}-app:latest`,
        build: {
          context: projectPath(args.buildContext ?? "."),
          dockerfile: projectPath(args.dockerfile ?? "app/Dockerfile"),
        },
        // No registry on the Docker tiers: the engine that runs the containers builds the image.
        skipPush: true,
      },
      child,
    );

    const secretEnvs = Object.entries(args.secretEnv).map(([k, v]) => pulumi.interpolate`${k}=${v}`);
    for (let i = 1; i <= args.replicas; i++) {
      const host = `app-${i}`;
      const spill = new docker.Volume(
        `${name}-${i}-spill`,
        { name: `${namePrefix}-app-${i}-spill`, labels: labelList(labels) },
        child,
      );
      const plainEnv = {
        ...args.env,
        PORT: String(APP_PORT),
        PREDICTION_LOG_SPILL_PATH: `${SPILL_DIR}/predictions.jsonl`,
        // V8 would take nearly the whole container limit as heap; half leaves room for ONNX Runtime and buffers.
        NODE_OPTIONS: "--max-old-space-size-percentage=50",
      };
      this.containers.push(
        new docker.Container(
          `${name}-${i}`,
          {
            ...containerDefaults(args.placement, "app"),
            ...WAIT_HEALTHY,
            // No fixed name: on a new release the new replica starts (and turns healthy) next to the
            // old one, which is removed after; the `app-N` alias resolves to whichever is up.
            hostname: host,
            // For a local build repoDigest is the image id (sha256:...): unique per build, so a new
            // build replaces the replicas and a rollback names exactly the image it ran.
            image: this.image.repoDigest,
            envs: [...Object.entries(plainEnv).map(([k, v]) => `${k}=${v}`), ...secretEnvs],
            memory: args.memoryMiB,
            cpus: String(args.cpu),
            readOnly: true,
            tmpfs: { "/tmp": "rw,noexec,nosuid,size=64m" },
            init: true,
            stopSignal: "SIGTERM",
            stopTimeout: args.gracefulShutdownSeconds + 5,
            healthcheck: shellHealthcheck(
              `node -e "fetch('http://127.0.0.1:${APP_PORT}/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"`,
              "60s",
            ),
            volumes: [{ volumeName: spill.name, containerPath: SPILL_DIR }],
            networksAdvanced: [
              // `app` resolves to every replica: Prometheus discovers them by DNS.
              { name: args.dataNetwork.name, aliases: [host, "app"] },
              { name: args.edgeNetwork.name, aliases: [host] },
            ],
          },
          child,
        ),
      );
      this.upstreams.push(`${host}:${APP_PORT}`);
    }
    this.registerOutputs({ imageName: this.image.imageName, upstreams: this.upstreams });
  }
}
