/**
 * AwsPostgres: RDS for PostgreSQL in the private subnets.
 *
 * Creates: a DB subnet group over the private subnets; a parameter group (`postgres<major>`)
 * that forces TLS, loads pg_stat_statements, logs slow statements, lock waits and connections,
 * and ends sessions left idle inside a transaction (no global statement_timeout: migrations and
 * maintenance may run long; the app sets its own per-query timeout); the DB instance — storage encrypted (gp3,
 * autoscaling up to `maxStorageGiB`), not publicly accessible, in `securityGroupId` only, master
 * password generated and kept by RDS in Secrets Manager (`masterSecretArn`; it never passes
 * through Pulumi state), automated backups, minor version upgrades in the maintenance window,
 * CloudWatch log exports into log groups this component creates first (RDS would otherwise create
 * `/aws/rds/instance/<identifier>/<log>` itself, outside the program and never expiring), kept
 * `logRetentionDays`, tags copied to snapshots, a final snapshot on delete. No service logs in
 * as the master user (each has its own role: `aws-database-roles.ts`); only the one-shot setup
 * task and administrators do. The managed secret's automatic 7-day rotation stays off, so that a
 * rotation never lands between the setup task reading the secret and connecting during an
 * update; rotate it deliberately (docs/architecture-aws.md).
 *
 * Inputs:
 * - `identifier`: the DB instance identifier's stem (≤ 55 chars, letters, digits, hyphens; a
 *   7-character random part follows, renewed whenever a change forces a replacement).
 * - `subnetIds`: private subnets in ≥ 2 AZs (RDS requires two even for Single-AZ).
 * - `securityGroupId`: the group that admits only the app.
 * - `instanceClass`, `storageGiB`, `maxStorageGiB`, `engineVersion` (major, or major.minor ≥ 16).
 * - `multiAz`: synchronous standby in another AZ with automatic failover.
 * - `backupRetentionDays`: 0..35 days of automated backups (point-in-time restore).
 * - `deletionProtection`: refuse deletion until turned off.
 * - `performanceInsights`: Performance Insights (7 days, free tier of retention).
 * - `databaseName`, `username`: the database and the master user (administrators and setup only).
 * - `finalSnapshot`: take a final snapshot when the instance is deleted.
 * - `logRetentionDays`: how long the exported Postgres and upgrade logs are kept.
 *
 * Cost: the instance class per hour (db.t4g.small ~$23/month, db.m7g.large ~$120/month, ×2 for
 * Multi-AZ), gp3 storage $0.115/GB-month (×2 Multi-AZ), backups beyond the DB size
 * $0.095/GB-month, $0.40/month for the Secrets Manager secret; the log groups at CloudWatch Logs
 * rates ($0.50/GB ingested, $0.03/GB-month stored for the retention period).
 */

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

export interface AwsPostgresArgs {
  identifier: string;
  subnetIds: pulumi.Input<string>[];
  securityGroupId: pulumi.Input<string>;
  instanceClass: string;
  storageGiB: number;
  maxStorageGiB: number;
  engineVersion: string;
  multiAz: boolean;
  backupRetentionDays: number;
  deletionProtection: boolean;
  performanceInsights: boolean;
  databaseName: string;
  username: string;
  finalSnapshot: boolean;
  logRetentionDays: number;
}

/** The logs RDS exports to CloudWatch; each lands in `rdsLogGroupName(identifier, log)`. */
export const rdsLogExports = ["postgresql", "upgrade"] as const;

/** The log group name RDS writes an instance's exported log to (fixed by RDS). */
export function rdsLogGroupName(identifier: string, log: string): string {
  return `/aws/rds/instance/${identifier}/${log}`;
}

/** RDS identifiers: 1–63 letters, digits or hyphens, starting with a letter, no `--`, no trailing `-`. */
export function rdsIdentifierProblem(id: string): string | null {
  if (id.length > 63) return `"${id}" is ${id.length} characters (RDS allows 63)`;
  if (!/^[a-z][a-z0-9-]*$/.test(id) || id.includes("--") || id.endsWith("-"))
    return `"${id}" must be lowercase letters, digits and single hyphens, starting with a letter`;
  return null;
}

export class AwsPostgres extends pulumi.ComponentResource {
  readonly address: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  readonly databaseName: string;
  readonly username: string;
  /** Secrets Manager secret (JSON `{username, password}`) that RDS creates and rotates. */
  readonly masterSecretArn: pulumi.Output<string>;

  constructor(name: string, args: AwsPostgresArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:aws:Postgres", name, {}, opts);
    const parent = { parent: this };
    const problem = rdsIdentifierProblem(`${args.identifier}-abcdefg`);
    if (problem) throw new Error(`RDS identifier ${problem}`);
    const major = args.engineVersion.split(".")[0];

    const subnets = new aws.rds.SubnetGroup(
      name,
      { subnetIds: args.subnetIds, description: "Private subnets of the InferStack VPC" },
      parent,
    );
    const parameters = new aws.rds.ParameterGroup(
      name,
      {
        family: `postgres${major}`,
        description: "InferStack Postgres settings",
        parameters: [
          { name: "rds.force_ssl", value: "1" },
          { name: "shared_preload_libraries", value: "pg_stat_statements", applyMethod: "pending-reboot" },
          { name: "log_min_duration_statement", value: "500" },
          { name: "log_lock_waits", value: "1" },
          { name: "log_connections", value: "1" },
          { name: "log_disconnections", value: "1" },
          { name: "idle_in_transaction_session_timeout", value: "60000" },
        ],
      },
      parent,
    );

    // `<identifier>-<random>`, renewed with the inputs that force a replacement: the new instance
    // then has a free identifier and is created before the old one is deleted. Chosen here, not
    // by Pulumi's autoname, because the log groups below must be named before the instance exists.
    const suffix = new random.RandomString(
      `${name}-identifier`,
      {
        length: 7,
        special: false,
        upper: false,
        keepers: { engine: "postgres", dbName: args.databaseName, username: args.username, storageEncrypted: "true" },
      },
      parent,
    );
    const identifier = pulumi.interpolate`${args.identifier}-${suffix.result}`;

    // Before the instance: RDS writes into an existing group of that name rather than creating one.
    const logGroups = rdsLogExports.map(
      (log) =>
        new aws.cloudwatch.LogGroup(
          `${name}-${log}`,
          {
            name: identifier.apply((id) => rdsLogGroupName(id, log)),
            retentionInDays: args.logRetentionDays,
          },
          parent,
        ),
    );

    const finalSnapshotId = args.finalSnapshot
      ? new random.RandomId(`${name}-final-snapshot`, { byteLength: 4 }, parent)
      : undefined;
    const db = new aws.rds.Instance(
      name,
      {
        identifier,
        engine: "postgres",
        engineVersion: args.engineVersion,
        instanceClass: args.instanceClass,
        allocatedStorage: args.storageGiB,
        maxAllocatedStorage: args.maxStorageGiB,
        storageType: "gp3",
        storageEncrypted: true,
        dbName: args.databaseName,
        username: args.username,
        manageMasterUserPassword: true,
        dbSubnetGroupName: subnets.name,
        vpcSecurityGroupIds: [args.securityGroupId],
        parameterGroupName: parameters.name,
        publiclyAccessible: false,
        multiAz: args.multiAz,
        backupRetentionPeriod: args.backupRetentionDays,
        backupWindow: "03:00-04:00",
        maintenanceWindow: "sun:04:30-sun:05:30",
        autoMinorVersionUpgrade: true,
        allowMajorVersionUpgrade: false,
        deletionProtection: args.deletionProtection,
        performanceInsightsEnabled: args.performanceInsights,
        ...(args.performanceInsights ? { performanceInsightsRetentionPeriod: 7 } : {}),
        enabledCloudwatchLogsExports: [...rdsLogExports],
        copyTagsToSnapshot: true,
        skipFinalSnapshot: !args.finalSnapshot,
        // Unique per instance, so a stack destroyed and re-created can be destroyed again.
        ...(finalSnapshotId
          ? { finalSnapshotIdentifier: pulumi.interpolate`${identifier}-final-${finalSnapshotId.hex}` }
          : {}),
        applyImmediately: false,
      },
      { parent: this, dependsOn: logGroups },
    );

    new aws.secretsmanager.SecretRotation(
      `${name}-master-secret`,
      {
        secretId: db.masterUserSecrets.apply((secrets) => secrets?.[0]?.secretArn ?? ""),
        rotationEnabled: false,
      },
      parent,
    );

    this.address = db.address;
    this.port = db.port;
    this.databaseName = args.databaseName;
    this.username = args.username;
    this.masterSecretArn = db.masterUserSecrets.apply((secrets) => {
      const arn = secrets?.[0]?.secretArn;
      if (!arn) throw new Error("RDS did not report its managed master secret");
      return arn;
    });
    this.registerOutputs({ address: this.address, masterSecretArn: this.masterSecretArn });
  }
}
