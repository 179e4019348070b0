/**
 * AwsRedis: an ElastiCache (Valkey or Redis OSS) replication group in the private subnets.
 *
 * Creates: a cache subnet group over the private subnets; a random 64-character auth token; a
 * Secrets Manager secret holding `{ authToken, url }` where `url` is the full
 * `rediss://:<token>@<primary>:6379` the app reads as REDIS_URL (ECS injects the JSON key
 * at task start, so the token never appears in a task definition or plain env); the replication
 * group — encrypted at rest and in transit (TLS only), AUTH token required, `nodes` cache
 * clusters, automatic failover and Multi-AZ when `automaticFailover` (ElastiCache requires ≥ 2
 * nodes for that), daily snapshots kept `snapshotRetentionDays`, minor upgrades automatic.
 *
 * The replication group id is Pulumi's autoname (`<name>-<7 random>`), so a replacement gets a free
 * id and is created before the old group is deleted; `name` must leave room for it within
 * ElastiCache's 40 characters. With `finalSnapshot`, deleting or replacing the group first saves
 * a snapshot named after the group and a random part (kept until deleted by hand).
 *
 * Inputs:
 * - `subnetIds`, `securityGroupId`: private subnets; the group that admits only the app.
 * - `engine`: `valkey` or `redis`; `nodeType`: e.g. cache.t4g.micro.
 * - `nodes`: 1..6 cache clusters (1 primary + replicas).
 * - `automaticFailover`: promote a replica automatically; also turns on Multi-AZ.
 * - `snapshotRetentionDays`: 0..35 (0 = no automatic snapshots).
 * - `finalSnapshot`: take a snapshot when the group is deleted.
 *
 * Cost: per node-hour (cache.t4g.micro ~$11.70/month, cache.m7g.large ~$115/month per node;
 * Valkey is ~20% cheaper than Redis OSS on node-based clusters), snapshots beyond one free copy
 * $0.085/GB-month, the secret $0.40/month.
 */

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

export interface AwsRedisArgs {
  subnetIds: pulumi.Input<string>[];
  securityGroupId: pulumi.Input<string>;
  engine: "valkey" | "redis";
  nodeType: string;
  nodes: number;
  automaticFailover: boolean;
  snapshotRetentionDays: number;
  finalSnapshot: boolean;
}

/** Pulumi's autoname appends `-` and 7 random characters. */
const autonameSuffixLength = 8;

/** ElastiCache replication group ids: 1–40 chars, lowercase, starting with a letter, no `--`. */
export function replicationGroupIdProblem(id: string): string | null {
  if (id.length > 40) return `"${id}" is ${id.length} characters (ElastiCache allows 40)`;
  if (!/^[a-z][a-z0-9-]*$/.test(id) || id.includes("--") || id.endsWith("-"))
    return `"${id}" must be lowercase letters, digits and single hyphens, starting with a letter`;
  return null;
}

const engineVersions = { valkey: "8.0", redis: "7.1" } as const;

export class AwsRedis extends pulumi.ComponentResource {
  readonly primaryAddress: pulumi.Output<string>;
  /** Secret with JSON keys `authToken` and `url`. */
  readonly secretArn: pulumi.Output<string>;

  constructor(name: string, args: AwsRedisArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:aws:Redis", name, {}, opts);
    const parent = { parent: this };
    const problem = replicationGroupIdProblem(`${name}-abcdefg`);
    if (problem)
      throw new Error(
        `ElastiCache replication group id (autonamed from "${name}" + ${autonameSuffixLength} characters) ${problem}`,
      );
    if (args.automaticFailover && args.nodes < 2)
      throw new Error("ElastiCache automatic failover needs at least 2 nodes");

    // ElastiCache AUTH tokens: 16–128 printable characters without @, " or /; alphanumeric is safest in a URL.
    const token = new random.RandomPassword(`${name}-auth-token`, { length: 64, special: false }, parent);
    const subnets = new aws.elasticache.SubnetGroup(
      name,
      { subnetIds: args.subnetIds, description: "Private subnets of the InferStack VPC" },
      parent,
    );

    const finalSnapshotId = args.finalSnapshot
      ? new random.RandomId(`${name}-final-snapshot`, { byteLength: 4 }, parent)
      : undefined;
    const group = new aws.elasticache.ReplicationGroup(
      name,
      {
        description: "InferStack cache, rate limits and queues",
        engine: args.engine,
        engineVersion: engineVersions[args.engine],
        nodeType: args.nodeType,
        numCacheClusters: args.nodes,
        port: 6379,
        subnetGroupName: subnets.name,
        securityGroupIds: [args.securityGroupId],
        atRestEncryptionEnabled: true,
        transitEncryptionEnabled: true,
        transitEncryptionMode: "required",
        authToken: token.result,
        authTokenUpdateStrategy: "ROTATE",
        automaticFailoverEnabled: args.automaticFailover,
        multiAzEnabled: args.automaticFailover,
        snapshotRetentionLimit: args.snapshotRetentionDays,
        ...(finalSnapshotId
          ? { finalSnapshotIdentifier: pulumi.interpolate`${name}-final-${finalSnapshotId.hex}` }
          : {}),
        snapshotWindow: "02:00-03:00",
        maintenanceWindow: "sun:05:30-sun:06:30",
        autoMinorVersionUpgrade: true,
        applyImmediately: false,
      },
      parent,
    );

    const secret = new aws.secretsmanager.Secret(
      `${name}-auth`,
      {
        description: "ElastiCache AUTH token and the REDIS_URL built from it",
        recoveryWindowInDays: 7,
      },
      parent,
    );
    const version = new aws.secretsmanager.SecretVersion(
      `${name}-auth`,
      {
        secretId: secret.id,
        secretString: pulumi
          .all([token.result, group.primaryEndpointAddress])
          .apply(([authToken, host]) => JSON.stringify({ authToken, url: `rediss://:${authToken}@${host}:6379` })),
      },
      parent,
    );

    this.primaryAddress = group.primaryEndpointAddress;
    // Through the version: a task must not start before the secret has a value.
    this.secretArn = version.arn;
    this.registerOutputs({ primaryAddress: this.primaryAddress, secretArn: this.secretArn });
  }
}
