/**
 * Prices a stack's resources from their resolved inputs with the table in `prices.ts`.
 * Pure: the same resources give the same estimate, so plans are comparable across revisions.
 * Resources that cost nothing by themselves (security groups, subnets, IAM, Docker containers
 * on a host that is priced elsewhere) produce no line item; a priced type whose size is missing
 * from the table produces a $0 line item listed in `unpriced`, so a gap never passes silently.
 */
import { HOURS_PER_MONTH, type Price, prices, REGION, usageAssumptions as usage } from "./prices.ts";

export interface PricedResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

export interface CostItem {
  /** The resource's Pulumi name. */
  resource: string;
  type: string;
  description: string;
  monthlyUsd: number;
  assumption?: string;
}

export interface CostEstimate {
  currency: "USD";
  region: string;
  total: number;
  items: CostItem[];
  /** Line items whose size has no price in the table (counted as $0). */
  unpriced: string[];
}

const round2 = (n: number) => Math.round(n * 100) / 100;
const perMonth = (price: Price, quantity = 1) =>
  price.unit === "hour" || price.unit === "vCPU-hour" || price.unit === "LCU-hour"
    ? price.amount * HOURS_PER_MONTH * quantity
    : price.amount * quantity;
const usd = (n: number) => `$${n.toFixed(n < 1 ? 3 : 2)}`;

/** Same slug the mocked cloud uses for ids and ARNs; a real ARN matches by task family instead. */
const slug = (name: string) => name.replace(/[^a-zA-Z0-9-]/g, "-").slice(0, 48);

type Pricer = (r: PricedResource, all: PricedResource[]) => Omit<CostItem, "resource" | "type">[];

function num(v: unknown, fallback: number): number {
  const n = typeof v === "string" ? Number(v) : typeof v === "number" ? v : NaN;
  return Number.isFinite(n) ? n : fallback;
}

/** A nested input as an object ({} when absent or not one), to read its fields. */
const fields = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function unpricedItem(what: string): Omit<CostItem, "resource" | "type"> {
  return {
    description: `${what} (no price in infra/pricing/prices.ts)`,
    monthlyUsd: 0,
    assumption: `unpriced: add ${what} to infra/pricing/prices.ts`,
  };
}

function findTaskDefinition(ref: unknown, all: PricedResource[]): PricedResource | undefined {
  const tds = all.filter((r) => r.type === "aws:ecs/taskDefinition:TaskDefinition");
  const s = String(ref ?? "");
  return (
    tds.find(
      (td) =>
        s === td.inputs.family || s.includes(`task-definition/${td.inputs.family}:`) || s.endsWith(`:${slug(td.name)}`),
    ) ?? (tds.length === 1 ? tds[0] : undefined)
  );
}

function scalingTargetFor(service: PricedResource, all: PricedResource[]): PricedResource | undefined {
  const serviceName = String(service.inputs.name ?? service.name);
  return all.find(
    (r) =>
      r.type === "aws:appautoscaling/target:Target" &&
      r.inputs.scalableDimension === "ecs:service:DesiredCount" &&
      String(r.inputs.resourceId ?? "").endsWith(`/${serviceName}`),
  );
}

const ecsService: Pricer = (svc, all) => {
  const strategies = list(svc.inputs.capacityProviderStrategies) as { capacityProvider?: string; weight?: number }[];
  const onFargate =
    svc.inputs.launchType === "FARGATE" ||
    (svc.inputs.launchType === undefined && strategies.length === 0) ||
    strategies.some((s) => s.capacityProvider?.startsWith("FARGATE"));
  if (!onFargate) return [];
  const td = findTaskDefinition(svc.inputs.taskDefinition, all);
  if (!td) return [unpricedItem(`Fargate service ${svc.name} (task definition not found)`)];
  const vcpu = num(td.inputs.cpu, 256) / 1024;
  const memGb = num(td.inputs.memory, 512) / 1024;
  const arch =
    String(fields(td.inputs.runtimePlatform).cpuArchitecture ?? "X86_64").toUpperCase() === "ARM64"
      ? "arm64"
      : "x86_64";
  const rate = prices.fargate[arch];
  const target = scalingTargetFor(svc, all);
  const desired = num(svc.inputs.desiredCount, 1);
  const tasks = target ? Math.max(desired, num(target.inputs.minCapacity, desired)) : desired;
  const extraStorage = Math.max(0, num(fields(td.inputs.ephemeralStorage).sizeInGib, 20) - 20);
  const perTask =
    perMonth(rate.vcpu, vcpu) +
    perMonth(rate.memoryGb, memGb) +
    perMonth(prices.fargate.ephemeralStorageGb, extraStorage);
  const assumptions = [`${tasks} task(s) running 730 h/month`];
  if (target)
    assumptions.push(
      `autoscaling ${num(target.inputs.minCapacity, tasks)}-${num(target.inputs.maxCapacity, tasks)} tasks: each extra task adds ${usd(perTask)}/month`,
    );
  if (strategies.some((s) => s.capacityProvider === "FARGATE_SPOT"))
    assumptions.push("priced as on-demand Fargate; the Spot share costs up to 70% less");
  const items: Omit<CostItem, "resource" | "type">[] = [
    {
      description: `Fargate ${arch} ${tasks} × (${vcpu} vCPU, ${memGb} GB)`,
      monthlyUsd: perTask * tasks,
      assumption: assumptions.join("; "),
    },
  ];
  // An ECS-managed EBS volume exists, and bills, while its task runs: one per task.
  const ebs = fields(svc.inputs.volumeConfiguration).managedEbsVolume as Record<string, unknown> | undefined;
  if (ebs) {
    const gb = num(ebs.sizeInGb, 1);
    const t = String(ebs.volumeType ?? "gp3");
    const price = prices.ebs[t];
    items.push(
      price
        ? {
            description: `EBS ${t} ${tasks} × ${gb} GB (ECS-managed, one per task)`,
            monthlyUsd: perMonth(price, gb * tasks),
            assumption: "exists while its task runs, deleted when the task stops",
          }
        : unpricedItem(`EBS ${t}`),
    );
  }
  return items;
};

/** The database setup task, run by a Lambda on each update that changes its task definition. */
const setupInvocation: Pricer = (r, all) => {
  const td = findTaskDefinition(JSON.parse(String(r.inputs.input ?? "{}")).taskDefinition, all);
  if (!td) return [unpricedItem(`setup run ${r.name} (task definition not found)`)];
  const hours = (usage.dbSetupRunsPerMonth * usage.dbSetupMinutesPerRun) / 60;
  const arch =
    String(fields(td.inputs.runtimePlatform).cpuArchitecture ?? "X86_64").toUpperCase() === "ARM64"
      ? "arm64"
      : "x86_64";
  const task =
    ((prices.fargate[arch].vcpu.amount * num(td.inputs.cpu, 256)) / 1024 +
      (prices.fargate[arch].memoryGb.amount * num(td.inputs.memory, 512)) / 1024) *
    hours;
  const fn = all.find(
    (f) =>
      f.type === "aws:lambda/function:Function" &&
      String(r.inputs.functionName ?? "") === String(f.inputs.name ?? f.name),
  );
  const lambda =
    perMonth(prices.lambda.gbSecond, (num(fn?.inputs.memorySize, 128) / 1024) * hours * 3600) +
    perMonth(prices.lambda.request, usage.dbSetupRunsPerMonth);
  return [
    {
      description: `database setup: ${usage.dbSetupRunsPerMonth} runs × ${usage.dbSetupMinutesPerRun} min (Fargate task + the Lambda waiting on it)`,
      monthlyUsd: task + lambda,
      assumption: `assumes ${usage.dbSetupRunsPerMonth} updates a month that change the app image or the setup`,
    },
  ];
};

const ec2Instance: Pricer = (r, all) => {
  const type = String(r.inputs.instanceType);
  const price = prices.ec2[type];
  const items: Omit<CostItem, "resource" | "type">[] = [];
  const freeTier = type === "t3.micro" || type === "t2.micro";
  items.push(
    price
      ? {
          description: `EC2 ${type}`,
          monthlyUsd: perMonth(price),
          assumption: freeTier ? usage.freeTierNote : "on-demand, 730 h/month",
        }
      : unpricedItem(`EC2 ${type}`),
  );
  const root = fields(r.inputs.rootBlockDevice);
  const gb = num(root.volumeSize, 8);
  const volumeType = String(root.volumeType ?? "gp3");
  const ebs = prices.ebs[volumeType];
  items.push(
    ebs
      ? { description: `EBS ${volumeType} root ${gb} GB`, monthlyUsd: perMonth(ebs, gb) }
      : unpricedItem(`EBS ${volumeType}`),
  );
  const hasEip = all.some((e) => e.type === "aws:ec2/eip:Eip" && e.inputs.instance !== undefined);
  if (r.inputs.associatePublicIpAddress === true && !hasEip)
    items.push({ description: "public IPv4 address", monthlyUsd: perMonth(prices.publicIpv4) });
  return items;
};

const ebsVolume: Pricer = (r) => {
  const gb = num(r.inputs.size, 8);
  const t = String(r.inputs.type ?? "gp3");
  const price = prices.ebs[t];
  return [price ? { description: `EBS ${t} ${gb} GB`, monthlyUsd: perMonth(price, gb) } : unpricedItem(`EBS ${t}`)];
};

const eip: Pricer = () => [{ description: "Elastic IP (public IPv4)", monthlyUsd: perMonth(prices.publicIpv4) }];

const rdsInstance: Pricer = (r, all) => {
  const cls = String(r.inputs.instanceClass);
  const multiAz = r.inputs.multiAz === true;
  const factor = multiAz ? prices.rdsMultiAzFactor : 1;
  const az = multiAz ? "Multi-AZ" : "Single-AZ";
  const items: Omit<CostItem, "resource" | "type">[] = [];
  const price = prices.rdsPostgres[cls];
  items.push(
    price
      ? { description: `RDS PostgreSQL ${cls} ${az}`, monthlyUsd: perMonth(price) * factor }
      : unpricedItem(`RDS ${cls}`),
  );
  const gb = num(r.inputs.allocatedStorage, 20);
  const storageType = String(r.inputs.storageType ?? (r.inputs.iops ? "io1" : "gp2"));
  const storage = prices.rdsStorage[storageType];
  items.push(
    storage
      ? {
          description: `RDS storage ${storageType} ${gb} GB ${az}`,
          monthlyUsd: perMonth(storage, gb) * factor,
          assumption: r.inputs.maxAllocatedStorage
            ? `storage autoscaling up to ${r.inputs.maxAllocatedStorage} GB bills the grown size`
            : undefined,
        }
      : unpricedItem(`RDS storage ${storageType}`),
  );
  const retention = num(r.inputs.backupRetentionPeriod, 1);
  // Backups up to the provisioned size are free; each further retained day keeps that day's changes.
  const billableBackupGb = Math.max(0, gb * usage.rdsBackupDailyChangeShare * (retention - 1));
  items.push({
    description: `RDS backups ${retention} day(s)`,
    monthlyUsd: perMonth(prices.rdsBackup, billableBackupGb),
    assumption: `free up to ${gb} GB (the provisioned storage); assumes ${usage.rdsBackupDailyChangeShare * 100}% of the data changes per day, ${billableBackupGb.toFixed(0)} GB billable`,
  });
  const exports = list(r.inputs.enabledCloudwatchLogsExports).map(String);
  // Log groups the program declares for the exports carry the ingestion on their own lines.
  const declaredGroups = new Set(
    all.filter((g) => g.type === "aws:cloudwatch/logGroup:LogGroup").map((g) => String(g.inputs.name)),
  );
  const undeclared = exports.filter((log) => !declaredGroups.has(`/aws/rds/instance/${r.inputs.identifier}/${log}`));
  if (undeclared.length) {
    items.push({
      description: `RDS log export to CloudWatch (${undeclared.join(", ")}), never expiring`,
      monthlyUsd: perMonth(prices.cloudwatchLogs.ingestedGb, usage.logIngestGbPerGroup),
      assumption: `assumes ${usage.logIngestGbPerGroup} GB/month of database logs`,
    });
  }
  if (r.inputs.performanceInsightsEnabled === true && num(r.inputs.performanceInsightsRetentionPeriod, 7) > 7) {
    items.push(unpricedItem(`Performance Insights retention ${r.inputs.performanceInsightsRetentionPeriod} days`));
  }
  if (r.inputs.manageMasterUserPassword === true)
    items.push({
      description: "Secrets Manager secret (RDS-managed master password)",
      monthlyUsd: perMonth(prices.secretsManagerSecret),
    });
  return items;
};

function cacheNodes(r: PricedResource): number {
  if (r.type === "aws:elasticache/cluster:Cluster") return num(r.inputs.numCacheNodes, 1);
  if (r.inputs.numNodeGroups !== undefined)
    return num(r.inputs.numNodeGroups, 1) * (num(r.inputs.replicasPerNodeGroup, 0) + 1);
  return num(r.inputs.numCacheClusters, 1);
}

const elasticache: Pricer = (r) => {
  const nodeType = String(r.inputs.nodeType);
  const engine = String(r.inputs.engine ?? "redis");
  const price = prices.elasticacheRedis[nodeType];
  if (!price) return [unpricedItem(`ElastiCache ${nodeType}`)];
  const nodes = cacheNodes(r);
  const factor = engine === "valkey" ? prices.valkeyDiscount : 1;
  return [
    {
      description: `ElastiCache ${engine} ${nodes} × ${nodeType}`,
      monthlyUsd: perMonth(price, nodes) * factor,
      assumption: engine === "valkey" ? "Valkey node-hours are 20% below Redis OSS" : undefined,
    },
  ];
};

const loadBalancer: Pricer = (r) => {
  const kind = String(r.inputs.loadBalancerType ?? "application");
  const items: Omit<CostItem, "resource" | "type">[] = [
    {
      description: `${kind === "application" ? "ALB" : kind.toUpperCase()} hours`,
      monthlyUsd: perMonth(prices.alb.hour),
    },
    {
      description: `${usage.albLcus} LCU baseline`,
      monthlyUsd: perMonth(prices.alb.lcu, usage.albLcus),
      assumption: `assumes ${usage.albLcus} LCU around the clock (modest API traffic)`,
    },
  ];
  if (r.inputs.internal !== true) {
    const ips = list(r.inputs.subnets ?? r.inputs.subnetMappings).length || 2;
    items.push({
      description: `${ips} public IPv4 address(es), one per AZ`,
      monthlyUsd: perMonth(prices.publicIpv4, ips),
    });
  }
  return items;
};

const natGateway: Pricer = (r) => {
  if (r.inputs.connectivityType === "private")
    return [{ description: "private NAT gateway hours", monthlyUsd: perMonth(prices.nat.hour) }];
  return [
    { description: "NAT gateway hours", monthlyUsd: perMonth(prices.nat.hour) },
    {
      description: `NAT data processing ${usage.natProcessedGbPerGateway} GB`,
      monthlyUsd: perMonth(prices.nat.processedGb, usage.natProcessedGbPerGateway),
      assumption: `assumes ${usage.natProcessedGbPerGateway} GB/month through this gateway`,
    },
  ];
};

const logGroup: Pricer = (r) => {
  const name = String(r.inputs.name);
  const gb = /^\/aws\/rds\/instance\/[^/]+\/upgrade$/.test(name)
    ? usage.rdsUpgradeLogGbPerMonth
    : /-db-setup$/.test(name)
      ? usage.setupLogGbPerMonth
      : usage.logIngestGbPerGroup;
  const retentionDays = num(r.inputs.retentionInDays, 0);
  // Stored volume levels off at one retention period of ingest; "never expire" is counted as a year.
  const storedGb = (gb * Math.min(retentionDays === 0 ? 365 : retentionDays, 365)) / 30;
  return [
    {
      description: `CloudWatch Logs ${gb} GB ingested, ${retentionDays || "∞"} days kept`,
      monthlyUsd: perMonth(prices.cloudwatchLogs.ingestedGb, gb) + perMonth(prices.cloudwatchLogs.storedGb, storedGb),
      assumption: `assumes ${gb} GB/month ingested into this log group`,
    },
  ];
};

const vpcEndpoint: Pricer = (r) => {
  if (String(r.inputs.vpcEndpointType ?? "Gateway") !== "Interface") return [];
  const azs = list(r.inputs.subnetIds).length || 1;
  const gb = usage.endpointProcessedGbPerEndpoint;
  return [
    {
      description: `interface endpoint ${String(r.inputs.serviceName ?? "")
        .split(".")
        .pop()} in ${azs} AZ(s)`,
      monthlyUsd:
        perMonth(prices.vpcInterfaceEndpoint.azHour, azs) + perMonth(prices.vpcInterfaceEndpoint.processedGb, gb),
      assumption: `assumes ${gb} GB/month through the endpoint`,
    },
  ];
};

const flat =
  (description: string, price: Price, quantity = 1, assumption?: string): Pricer =>
  () => [{ description, monthlyUsd: perMonth(price, quantity), assumption }];

// Both S3 bucket resource types the provider offers price alike.
const s3Bucket = flat(
  `S3 Standard ${usage.s3StoredGbPerBucket} GB`,
  prices.s3Standard,
  usage.s3StoredGbPerBucket,
  `assumes ${usage.s3StoredGbPerBucket} GB stored`,
);

const ecsCluster: Pricer = (r) => {
  const insights = (list(r.inputs.settings) as { name?: string; value?: unknown }[]).find(
    (x) => x.name === "containerInsights",
  )?.value;
  if (insights !== "enabled" && insights !== "enhanced") return [];
  const n = usage.containerInsightsMetrics;
  return [
    {
      description: `Container Insights (${insights})`,
      monthlyUsd: perMonth(prices.cloudwatchMetric, n),
      assumption: `assumes ${n} custom metrics for this cluster's services and tasks`,
    },
  ];
};

const efsBackup: Pricer = (r) =>
  fields(r.inputs.backupPolicy).status === "ENABLED"
    ? [
        {
          description: `AWS Backup of EFS ${usage.efsStoredGbPerFileSystem} GB`,
          monthlyUsd: perMonth(prices.backupEfs, usage.efsStoredGbPerFileSystem),
          assumption: `assumes ${usage.efsStoredGbPerFileSystem} GB backed up`,
        },
      ]
    : [];

const scalingPolicy: Pricer = (r) =>
  r.inputs.policyType === "TargetTrackingScaling"
    ? [{ description: "2 CloudWatch alarms (target tracking)", monthlyUsd: perMonth(prices.cloudwatchAlarm, 2) }]
    : [];

const dockerContainer: Pricer = () => [
  { description: "Docker container (on the host, priced with it)", monthlyUsd: 0 },
];

const pricers: Record<string, Pricer> = {
  "aws:ecs/service:Service": ecsService,
  "aws:ec2/instance:Instance": ec2Instance,
  "aws:ebs/volume:Volume": ebsVolume,
  "aws:ec2/eip:Eip": eip,
  "aws:rds/instance:Instance": rdsInstance,
  "aws:elasticache/replicationGroup:ReplicationGroup": elasticache,
  "aws:elasticache/cluster:Cluster": elasticache,
  "aws:lb/loadBalancer:LoadBalancer": loadBalancer,
  "aws:alb/loadBalancer:LoadBalancer": loadBalancer,
  "aws:ec2/natGateway:NatGateway": natGateway,
  "aws:cloudwatch/logGroup:LogGroup": logGroup,
  "aws:ec2/vpcEndpoint:VpcEndpoint": vpcEndpoint,
  "aws:route53/zone:Zone": flat("Route 53 hosted zone", prices.route53Zone),
  // Cloud Map creates a private Route 53 hosted zone for the namespace.
  "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": flat(
    "Route 53 private hosted zone (Cloud Map namespace)",
    prices.route53Zone,
  ),
  "aws:ecs/cluster:Cluster": ecsCluster,
  "aws:efs/backupPolicy:BackupPolicy": efsBackup,
  "aws:efs/fileSystem:FileSystem": flat(
    `EFS Standard ${usage.efsStoredGbPerFileSystem} GB`,
    prices.efsStandard,
    usage.efsStoredGbPerFileSystem,
    `assumes ${usage.efsStoredGbPerFileSystem} GB stored`,
  ),
  "aws:ecr/repository:Repository": flat(
    `ECR storage ${usage.ecrStoredGbPerRepository} GB`,
    prices.ecrStorage,
    usage.ecrStoredGbPerRepository,
    `assumes ${usage.ecrStoredGbPerRepository} GB of images kept`,
  ),
  "aws:secretsmanager/secret:Secret": flat("Secrets Manager secret", prices.secretsManagerSecret),
  "aws:s3/bucket:Bucket": s3Bucket,
  "aws:s3/bucketV2:BucketV2": s3Bucket,
  "aws:kms/key:Key": flat("KMS customer managed key", prices.kmsKey),
  // To CloudWatch Logs the destination log group's line carries the ingestion; to S3 it is vended.
  "aws:ec2/flowLog:FlowLog": (r, all) =>
    String(r.inputs.logDestinationType ?? "cloud-watch-logs") === "cloud-watch-logs" &&
    all.some((x) => x.type === "aws:cloudwatch/logGroup:LogGroup")
      ? []
      : flat(
          `VPC flow logs ${usage.flowLogGbPerVpc} GB`,
          prices.vendedLogsGb,
          usage.flowLogGbPerVpc,
          `assumes ${usage.flowLogGbPerVpc} GB/month of flow records`,
        )(r, all),
  "aws:cloudwatch/metricAlarm:MetricAlarm": flat("CloudWatch alarm", prices.cloudwatchAlarm),
  "aws:appautoscaling/policy:Policy": scalingPolicy,
  "aws:lambda/invocation:Invocation": setupInvocation,
  "docker:index/container:Container": dockerContainer,
};

/** The resource types this estimator prices (others are free or priced through another resource). */
export const pricedTypes = Object.keys(pricers);

export function estimateMonthlyCost(resources: PricedResource[]): CostEstimate {
  const items: CostItem[] = [];
  for (const r of resources) {
    const pricer = pricers[r.type];
    if (!pricer) continue;
    for (const item of pricer(r, resources)) {
      items.push({
        resource: r.name,
        type: r.type,
        description: item.description,
        monthlyUsd: round2(item.monthlyUsd),
        ...(item.assumption ? { assumption: item.assumption } : {}),
      });
    }
  }
  const unpriced = items
    .filter((i) => i.assumption?.startsWith("unpriced:"))
    .map((i) => `${i.resource}: ${i.description}`);
  return {
    currency: "USD",
    region: REGION,
    total: round2(items.reduce((s, i) => s + i.monthlyUsd, 0)),
    items,
    unpriced,
  };
}
