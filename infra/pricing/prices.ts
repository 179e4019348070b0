/**
 * The price table behind `estimatedMonthlyCost` and `npm run plan`: AWS us-east-1, on-demand, USD,
 * Linux, no Savings Plans or Reserved Instances, no free-tier credits (noted where they apply).
 *
 * Every price names the AWS pricing page it comes from and the month it was read. To update:
 * change `amount` and `checked`, run `npm run plan -- --stack prod` and commit with the diff.
 * Anything the estimator cannot price from inputs alone (traffic, log volume, stored bytes) is a
 * usage assumption in `usageAssumptions` below, stated in every line item that uses it.
 */

export interface Price {
  /** USD per `unit`. */
  amount: number;
  unit: "hour" | "GB-month" | "GB" | "month" | "LCU-hour" | "vCPU-hour" | "GB-second" | "request";
  /** The AWS pricing page the amount was read from. */
  source: string;
  /** Year and month the amount was read (YYYY-MM). */
  checked: string;
}

export const REGION = "us-east-1";
/** AWS bills monthly estimates with 730 hours a month. */
export const HOURS_PER_MONTH = 730;

const FARGATE = "https://aws.amazon.com/fargate/pricing/";
const EC2 = "https://aws.amazon.com/ec2/pricing/on-demand/";
const EBS = "https://aws.amazon.com/ebs/pricing/";
const RDS = "https://aws.amazon.com/rds/postgresql/pricing/";
const ELASTICACHE = "https://aws.amazon.com/elasticache/pricing/";
const ELB = "https://aws.amazon.com/elasticloadbalancing/pricing/";
const VPC = "https://aws.amazon.com/vpc/pricing/";
const ROUTE53 = "https://aws.amazon.com/route53/pricing/";
const CLOUDWATCH = "https://aws.amazon.com/cloudwatch/pricing/";
const EFS = "https://aws.amazon.com/efs/pricing/";
const ECR = "https://aws.amazon.com/ecr/pricing/";
const PRIVATELINK = "https://aws.amazon.com/privatelink/pricing/";
const SECRETS = "https://aws.amazon.com/secrets-manager/pricing/";
const S3 = "https://aws.amazon.com/s3/pricing/";
const KMS = "https://aws.amazon.com/kms/pricing/";
const BACKUP = "https://aws.amazon.com/backup/pricing/";
const LAMBDA = "https://aws.amazon.com/lambda/pricing/";
const AMP = "https://aws.amazon.com/prometheus/pricing/";

const p = (amount: number, unit: Price["unit"], source: string, checked = "2025-06"): Price => ({
  amount,
  unit,
  source,
  checked,
});

export const prices = {
  fargate: {
    x86_64: { vcpu: p(0.04048, "vCPU-hour", FARGATE), memoryGb: p(0.004445, "hour", FARGATE) },
    arm64: { vcpu: p(0.03238, "vCPU-hour", FARGATE), memoryGb: p(0.00356, "hour", FARGATE) },
    /** Ephemeral storage beyond the 20 GB every task gets free. */
    ephemeralStorageGb: p(0.000111, "hour", FARGATE),
  },
  /** EC2 Linux on-demand, per instance-hour. */
  ec2: {
    "t3.nano": p(0.0052, "hour", EC2),
    "t3.micro": p(0.0104, "hour", EC2),
    "t3.small": p(0.0208, "hour", EC2),
    "t3.medium": p(0.0416, "hour", EC2),
    "t3.large": p(0.0832, "hour", EC2),
    "t4g.nano": p(0.0042, "hour", EC2),
    "t4g.micro": p(0.0084, "hour", EC2),
    "t4g.small": p(0.0168, "hour", EC2),
    "t4g.medium": p(0.0336, "hour", EC2),
    "t4g.large": p(0.0672, "hour", EC2),
  } as Record<string, Price>,
  ebs: {
    gp3: p(0.08, "GB-month", EBS),
    gp2: p(0.1, "GB-month", EBS),
    /** Snapshots (used by backups of the EC2 host). */
    snapshot: p(0.05, "GB-month", EBS),
  } as Record<string, Price>,
  /** RDS for PostgreSQL, Single-AZ instance-hour; Multi-AZ (one standby) bills twice this. */
  rdsPostgres: {
    "db.t3.micro": p(0.018, "hour", RDS),
    "db.t3.small": p(0.036, "hour", RDS),
    "db.t3.medium": p(0.072, "hour", RDS),
    "db.t4g.micro": p(0.016, "hour", RDS),
    "db.t4g.small": p(0.032, "hour", RDS),
    "db.t4g.medium": p(0.065, "hour", RDS),
    "db.t4g.large": p(0.129, "hour", RDS),
    "db.m6g.large": p(0.159, "hour", RDS),
    "db.m7g.large": p(0.168, "hour", RDS),
    "db.m7g.xlarge": p(0.337, "hour", RDS),
    "db.m5.large": p(0.178, "hour", RDS),
    "db.r7g.large": p(0.239, "hour", RDS),
  } as Record<string, Price>,
  rdsMultiAzFactor: 2,
  rdsStorage: {
    /** Single-AZ per GB-month; Multi-AZ bills twice this. gp2 costs the same on RDS. */
    gp3: p(0.115, "GB-month", RDS),
    gp2: p(0.115, "GB-month", RDS),
    io1: p(0.125, "GB-month", RDS),
    /** Provisioned IOPS above the gp3 baseline of 3,000. */
    gp3Iops: p(0.02, "month", RDS),
  } as Record<string, Price>,
  /** Backup storage beyond the free allowance (100% of provisioned storage in the region). */
  rdsBackup: p(0.095, "GB-month", RDS),
  /** ElastiCache node-hour for the Redis OSS engine; Valkey nodes are 20% cheaper. */
  elasticacheRedis: {
    "cache.t3.micro": p(0.017, "hour", ELASTICACHE),
    "cache.t3.small": p(0.034, "hour", ELASTICACHE),
    "cache.t4g.micro": p(0.016, "hour", ELASTICACHE),
    "cache.t4g.small": p(0.032, "hour", ELASTICACHE),
    "cache.t4g.medium": p(0.065, "hour", ELASTICACHE),
    "cache.m6g.large": p(0.149, "hour", ELASTICACHE),
    "cache.m7g.large": p(0.158, "hour", ELASTICACHE),
    "cache.r7g.large": p(0.219, "hour", ELASTICACHE),
  } as Record<string, Price>,
  valkeyDiscount: 0.8,
  alb: { hour: p(0.0225, "hour", ELB), lcu: p(0.008, "LCU-hour", ELB) },
  nat: { hour: p(0.045, "hour", VPC), processedGb: p(0.045, "GB", VPC) },
  publicIpv4: p(0.005, "hour", VPC),
  route53Zone: p(0.5, "month", ROUTE53),
  cloudwatchLogs: { ingestedGb: p(0.5, "GB", CLOUDWATCH), storedGb: p(0.03, "GB-month", CLOUDWATCH) },
  /** Vended logs (VPC flow logs) delivered to CloudWatch Logs, first 10 TB tier. */
  vendedLogsGb: p(0.5, "GB", CLOUDWATCH),
  cloudwatchAlarm: p(0.1, "month", CLOUDWATCH),
  /** Custom metrics (Container Insights publishes its metrics as these), first 10,000. */
  cloudwatchMetric: p(0.3, "month", CLOUDWATCH),
  /** AWS Backup of EFS, warm storage. */
  backupEfs: p(0.05, "GB-month", BACKUP),
  efsStandard: p(0.3, "GB-month", EFS),
  ecrStorage: p(0.1, "GB-month", ECR),
  /** Interface endpoint per AZ-hour; gateway endpoints (S3, DynamoDB) are free. */
  vpcInterfaceEndpoint: { azHour: p(0.01, "hour", PRIVATELINK), processedGb: p(0.01, "GB", PRIVATELINK) },
  secretsManagerSecret: p(0.4, "month", SECRETS),
  s3Standard: p(0.023, "GB-month", S3),
  kmsKey: p(1, "month", KMS),
  /** x86, first 6 billion GB-seconds a month; requests $0.20 per million. */
  lambda: { gbSecond: p(0.0000166667, "GB-second", LAMBDA), request: p(0.0000002, "request", LAMBDA) },
  /**
   * Amazon Managed Service for Prometheus, first 2 billion samples a month: not deployed, the
   * durable alternative to Prometheus on EBS that docs/architecture-aws.md weighs.
   */
  ampIngestedSamples10M: p(0.9, "request", AMP),
} as const;

/**
 * What the estimate assumes where the bill depends on usage rather than on what is declared.
 * Change these to match your traffic; each line item that uses one says so.
 */
export const usageAssumptions = {
  /** Traffic through each NAT gateway (image pulls are mostly kept off NAT by VPC endpoints). */
  natProcessedGbPerGateway: 20,
  /** An API at a few requests per second stays within one LCU around the clock. */
  albLcus: 1,
  /** Log lines ingested per log group per month (JSON request logs at modest traffic). */
  logIngestGbPerGroup: 2,
  /** RDS's `upgrade` log: written only while the engine is upgraded, so a few MB a month at most. */
  rdsUpgradeLogGbPerMonth: 0.01,
  /** Data through each interface endpoint per month (image layers, logs, secrets). */
  endpointProcessedGbPerEndpoint: 5,
  /** Stored app images in each ECR repository (lifecycle keeps the last few). */
  ecrStoredGbPerRepository: 2,
  /** Data on each EFS file system (Alertmanager's silences and notification log: a few KB). */
  efsStoredGbPerFileSystem: 0.1,
  /** The database setup task's and its Lambda's logs: a few lines per run. */
  setupLogGbPerMonth: 0.01,
  /** `pulumi up` runs of a stack a month that start the database setup task (each new task definition). */
  dbSetupRunsPerMonth: 30,
  /** How long one setup run keeps its task and the Lambda waiting on it (image pull, start, SQL). */
  dbSetupMinutesPerRun: 3,
  /** ALB access logs and other bucket contents. */
  s3StoredGbPerBucket: 5,
  /** Container Insights metrics of one cluster with two services and their tasks. */
  containerInsightsMetrics: 50,
  /** VPC flow log volume per VPC. */
  flowLogGbPerVpc: 5,
  /** Daily change of a database, as a share of its storage, that each retained backup day keeps. */
  rdsBackupDailyChangeShare: 0.05,
  /** AWS free tier (12 months for accounts created before 2025-07-15; credits after that). */
  freeTierNote:
    "free-tier eligible: 750 h/month of t3.micro (t2.micro in some regions) and 30 GB of EBS for 12 months on accounts created before 2025-07-15; newer accounts get up to $200 in credits instead",
} as const;
