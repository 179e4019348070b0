/**
 * OffsiteBackups: an S3 bucket that keeps the free-tier host's nightly dumps off the host, so a
 * lost instance, a `pulumi destroy` of the host or a full disk does not take the backups with it.
 *
 * Creates: the bucket (public access blocked, bucket-owner-enforced objects, SSE-S3 encryption,
 * versioning so an overwritten dump survives, a TLS-only bucket policy, a lifecycle that expires
 * dumps after `retentionDays` and old versions a week later, and aborts stale multipart uploads),
 * and an inline policy on the host's role that can only list the bucket and put objects under
 * `backups/`: the host cannot read or delete what it shipped. The host's systemd timer
 * (`Ec2DockerHost`, `backupSync`) runs `aws s3 sync` of the backups volume every hour.
 *
 * Inputs:
 * - `role`: the host's IAM role (its name).
 * - `retentionDays`: days a dump is kept in S3 (the preset's `backups.retentionDays`).
 * - `tags`: added to the bucket.
 *
 * Cost: S3 Standard $0.023/GB-month (5 GB free for 12 months); a week of small dumps is cents.
 */

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface OffsiteBackupsArgs {
  role: pulumi.Input<string>;
  retentionDays: number;
  tags: Record<string, string>;
}

export const OFFSITE_PREFIX = "backups/";

export class OffsiteBackups extends pulumi.ComponentResource {
  readonly bucket: aws.s3.Bucket;
  readonly bucketName: pulumi.Output<string>;

  constructor(name: string, args: OffsiteBackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:aws:OffsiteBackups", name, {}, opts);
    const child = { parent: this };
    // Keep the dumps if the stack is destroyed by mistake: emptying the bucket is a deliberate act.
    this.bucket = new aws.s3.Bucket(`${name}`, { forceDestroy: false, tags: args.tags }, child);
    const bucket = this.bucket.id;
    const blocked = new aws.s3.BucketPublicAccessBlock(
      `${name}`,
      { bucket, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
      child,
    );
    new aws.s3.BucketOwnershipControls(`${name}`, { bucket, rule: { objectOwnership: "BucketOwnerEnforced" } }, child);
    new aws.s3.BucketServerSideEncryptionConfiguration(
      `${name}`,
      { bucket, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }] },
      child,
    );
    const versioning = new aws.s3.BucketVersioning(
      `${name}`,
      { bucket, versioningConfiguration: { status: "Enabled" } },
      child,
    );
    new aws.s3.BucketLifecycleConfiguration(
      `${name}`,
      {
        bucket,
        rules: [
          {
            id: "expire-dumps",
            status: "Enabled",
            filter: { prefix: OFFSITE_PREFIX },
            expiration: { days: args.retentionDays },
            noncurrentVersionExpiration: { noncurrentDays: 7 },
            abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
          },
        ],
      },
      { ...child, dependsOn: [versioning] },
    );
    new aws.s3.BucketPolicy(
      `${name}`,
      {
        bucket,
        policy: this.bucket.arn.apply((arn) =>
          JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "TlsOnly",
                Effect: "Deny",
                Principal: "*",
                Action: "s3:*",
                Resource: [arn, `${arn}/*`],
                Condition: { Bool: { "aws:SecureTransport": "false" } },
              },
            ],
          }),
        ),
      },
      { ...child, dependsOn: [blocked] },
    );
    new aws.iam.RolePolicy(
      `${name}-upload`,
      {
        role: args.role,
        policy: this.bucket.arn.apply((arn) =>
          JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "ListBackups",
                Effect: "Allow",
                Action: "s3:ListBucket",
                Resource: arn,
                Condition: { StringLike: { "s3:prefix": [`${OFFSITE_PREFIX}*`] } },
              },
              { Sid: "UploadBackups", Effect: "Allow", Action: "s3:PutObject", Resource: `${arn}/${OFFSITE_PREFIX}*` },
            ],
          }),
        ),
      },
      child,
    );
    this.bucketName = this.bucket.bucket;
    this.registerOutputs({ bucketName: this.bucketName });
  }
}
