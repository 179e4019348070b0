/**
 * AwsFargateService: one ECS service on Fargate, the unit the app and the monitoring tasks share.
 *
 * Creates: a CloudWatch log group (retention set); an execution role (pull from the listed ECR
 * repositories, write its log group, read exactly the listed secrets — nothing else); a task
 * role trusted only by ECS tasks of this account and region, with
 * only the statements given (none by default) plus EFS client access when volumes are mounted;
 * a Fargate task definition (awsvpc, the given CPU/memory pair and CPU architecture, read-only
 * root filesystems unless a container opts out); the service — private subnets, no public IP,
 * deployment circuit breaker with rollback, min/max healthy percent, health-check grace period
 * when behind a target group, `waitForSteadyState` so a rollout that never becomes healthy
 * fails `pulumi up`; a Cloud Map service with A records (one per task) when `discoveryName` is
 * set; with `autoscaling`, an Application Auto Scaling target and target-tracking policies on
 * average CPU and, when a target group label is given, on ALB requests per target.
 *
 * Inputs (all required unless marked optional):
 * - `clusterArn`, `clusterName`: the ECS cluster.
 * - `family`: task definition family and service name.
 * - `cpu` (CPU units), `memoryMiB`: a valid Fargate pair (see `infra/fargate.ts`).
 * - `architecture`: `X86_64` or `ARM64`, matching the image.
 * - `containers`: the container definitions (see `ContainerSpec`).
 * - `secretArns`: Secrets Manager secrets the containers' `secrets` reference (IAM scope).
 * - `repositoryArns` (optional): ECR repositories of the images (IAM scope); public images need none.
 * - `volumes` (optional): EFS access points to mount (encrypted in transit, IAM-authorized).
 * - `ebsVolume` (optional): one ECS-managed EBS volume per task (gp3, encrypted, ext4), created
 *   when the task starts and deleted when it stops (ECS services cannot keep them); `roleArn` is
 *   the ECS infrastructure role that creates and attaches it.
 * - `subnetIds`, `securityGroupIds`: where tasks run.
 * - `desiredCount`, `minHealthyPercent`, `maxPercent`: size and rolling-deploy bounds.
 * - `loadBalancer` (optional): target group, container and port, grace period.
 * - `discovery` (optional): Cloud Map namespace id and the name to register as.
 * - `autoscaling` (optional): min, max, CPU target percent, requests per target + resource label.
 * - `logRetentionDays`: the log group's retention (a CloudWatch Logs value).
 * - `taskPolicyStatements` (optional): IAM statements for the task role.
 * - `rollbackAlarmNames` (optional): deployment alarms (ECS rolls back while one fires).
 * - `dependsOn` (optional): e.g. the listener: ECS rejects a target group no load balancer uses.
 *
 * Cost: Fargate per task-hour — x86 $0.04048/vCPU-h + $0.004445/GB-h (ARM ~20% less);
 * CloudWatch Logs $0.50/GB ingested + $0.03/GB-month stored.
 */

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { fargateMemoryByCpu } from "../fargate.ts";

export interface ContainerSpec {
  name: string;
  image: pulumi.Input<string>;
  /** Stopping an essential container stops the task. Default true. */
  essential?: boolean;
  port?: number;
  environment?: Record<string, pulumi.Input<string>>;
  /** Env var name → Secrets Manager `valueFrom` (an ARN, optionally `:json-key::`). */
  secrets?: Record<string, pulumi.Input<string>>;
  command?: string[];
  entryPoint?: string[];
  /** Soft memory reservation (MiB) within the task. */
  memoryReservationMiB?: number;
  healthCheck?: { command: string[]; startPeriodSeconds: number };
  /** Seconds between SIGTERM and SIGKILL (Fargate caps it at 120). */
  stopTimeoutSeconds?: number;
  mountPoints?: { sourceVolume: string; containerPath: string; readOnly?: boolean }[];
  /** Default true: containers get a read-only root filesystem plus a writable /tmp. */
  readonlyRootFilesystem?: boolean;
  user?: string;
  dependsOn?: { containerName: string; condition: "START" | "HEALTHY" | "COMPLETE" | "SUCCESS" }[];
}

export interface AwsFargateServiceArgs {
  clusterArn: pulumi.Input<string>;
  clusterName: pulumi.Input<string>;
  family: string;
  cpu: number;
  memoryMiB: number;
  architecture: "X86_64" | "ARM64";
  containers: ContainerSpec[];
  secretArns: pulumi.Input<string>[];
  /** ECR repositories the task pulls from (the execution role may pull only these). */
  repositoryArns?: pulumi.Input<string>[];
  volumes?: {
    name: string;
    fileSystemId: pulumi.Input<string>;
    fileSystemArn: pulumi.Input<string>;
    accessPointId: pulumi.Input<string>;
    accessPointArn: pulumi.Input<string>;
  }[];
  ebsVolume?: { name: string; sizeGiB: number; roleArn: pulumi.Input<string> };
  subnetIds: pulumi.Input<string>[];
  securityGroupIds: pulumi.Input<string>[];
  desiredCount: number;
  minHealthyPercent: number;
  maxPercent: number;
  loadBalancer?: {
    targetGroupArn: pulumi.Input<string>;
    containerName: string;
    containerPort: number;
    healthCheckGracePeriodSeconds: number;
  };
  discovery?: { namespaceId: pulumi.Input<string>; name: string };
  autoscaling?: {
    min: number;
    max: number;
    cpuTargetPercent: number;
    requestsPerTarget?: number;
    requestCountResourceLabel?: pulumi.Input<string>;
  };
  logRetentionDays: number;
  taskPolicyStatements?: unknown[];
  /** CloudWatch alarms that fail (and roll back) a deployment while they fire. */
  rollbackAlarmNames?: pulumi.Input<string>[];
  /** Resources the service must wait for (the listener its target group hangs off). */
  dependsOn?: pulumi.Resource[];
}

/**
 * Trust policy for ECS tasks. The task role (what the app's code may do) is limited to tasks of
 * this account and region, as the ECS guide recommends against the confused deputy; the
 * execution role keeps the plain form the guide documents, as the ECS agent assumes it.
 */
function assumedByEcsTasks(scope?: { account: string; region: string; partition: string }): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { Service: "ecs-tasks.amazonaws.com" },
        Action: "sts:AssumeRole",
        ...(scope
          ? {
              Condition: {
                StringEquals: { "aws:SourceAccount": scope.account },
                ArnLike: { "aws:SourceArn": `arn:${scope.partition}:ecs:${scope.region}:${scope.account}:*` },
              },
            }
          : {}),
      },
    ],
  });
}

export class AwsFargateService extends pulumi.ComponentResource {
  readonly serviceName: pulumi.Output<string>;
  readonly taskDefinitionArn: pulumi.Output<string>;
  readonly logGroupName: pulumi.Output<string>;
  readonly executionRoleArn: pulumi.Output<string>;
  readonly taskRoleArn: pulumi.Output<string>;

  constructor(name: string, args: AwsFargateServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:aws:FargateService", name, {}, opts);
    const parent = { parent: this };
    if (!(fargateMemoryByCpu.get(args.cpu) ?? []).includes(args.memoryMiB)) {
      throw new Error(`${args.family}: ${args.cpu} CPU units with ${args.memoryMiB} MiB is not a Fargate size`);
    }
    if (args.autoscaling && (args.desiredCount < args.autoscaling.min || args.desiredCount > args.autoscaling.max)) {
      throw new Error(
        `${args.family}: desired count ${args.desiredCount} is outside autoscaling ${args.autoscaling.min}..${args.autoscaling.max}`,
      );
    }

    const logGroup = new aws.cloudwatch.LogGroup(
      name,
      { name: `/ecs/${args.family}`, retentionInDays: args.logRetentionDays },
      parent,
    );

    const caller = aws.getCallerIdentityOutput({}, parent);
    const region = aws.getRegionOutput({}, parent);
    const partition = aws.getPartitionOutput({}, parent);
    const scopedTrust = pulumi
      .all([caller.accountId, region.region, partition.partition])
      .apply(([account, r, p]) => assumedByEcsTasks({ account, region: r, partition: p }));

    // Instead of AmazonECSTaskExecutionRolePolicy (any repository, any log group): only this
    // service's repositories, its log group and its secrets.
    const executionRole = new aws.iam.Role(
      `${name}-execution`,
      {
        assumeRolePolicy: assumedByEcsTasks(),
        description: `ECS agent for ${args.family}: pull its images, write its logs, read its secrets`,
      },
      parent,
    );
    const repositoryArns = args.repositoryArns ?? [];
    new aws.iam.RolePolicy(
      `${name}-execution`,
      {
        role: executionRole.id,
        policy: pulumi
          .all([pulumi.output(repositoryArns), pulumi.output(args.secretArns), logGroup.arn])
          .apply(([repos, secrets, logArn]) => executionRolePolicy(repos, secrets, logArn)),
      },
      parent,
    );

    const taskRole = new aws.iam.Role(
      `${name}-task`,
      { assumeRolePolicy: scopedTrust, description: `Runtime identity of ${args.family}` },
      parent,
    );
    const volumes = args.volumes ?? [];
    const taskStatements: pulumi.Output<unknown[]> = pulumi
      .all(volumes.map((v) => pulumi.all([v.fileSystemArn, v.accessPointArn])))
      .apply((pairs) => [
        ...(args.taskPolicyStatements ?? []),
        ...pairs.map(([fileSystemArn, accessPointArn]) => ({
          Effect: "Allow",
          Action: ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
          Resource: fileSystemArn,
          Condition: { StringEquals: { "elasticfilesystem:AccessPointArn": accessPointArn } },
        })),
      ]);
    if (volumes.length > 0 || (args.taskPolicyStatements ?? []).length > 0) {
      new aws.iam.RolePolicy(
        `${name}-task`,
        {
          role: taskRole.id,
          policy: taskStatements.apply((Statement) => JSON.stringify({ Version: "2012-10-17", Statement })),
        },
        parent,
      );
    }

    const containerDefinitions = pulumi.jsonStringify(
      args.containers.map((c) => ({
        name: c.name,
        image: c.image,
        essential: c.essential ?? true,
        ...(c.port !== undefined
          ? { portMappings: [{ containerPort: c.port, protocol: "tcp", name: `${c.name}-${c.port}` }] }
          : {}),
        environment: Object.entries(c.environment ?? {}).map(([envName, value]) => ({ name: envName, value })),
        secrets: Object.entries(c.secrets ?? {}).map(([envName, valueFrom]) => ({ name: envName, valueFrom })),
        ...(c.command ? { command: c.command } : {}),
        ...(c.entryPoint ? { entryPoint: c.entryPoint } : {}),
        ...(c.memoryReservationMiB !== undefined ? { memoryReservation: c.memoryReservationMiB } : {}),
        ...(c.healthCheck
          ? {
              healthCheck: {
                command: c.healthCheck.command,
                interval: 15,
                timeout: 5,
                retries: 3,
                startPeriod: c.healthCheck.startPeriodSeconds,
              },
            }
          : {}),
        ...(c.stopTimeoutSeconds !== undefined ? { stopTimeout: Math.min(c.stopTimeoutSeconds, 120) } : {}),
        ...(c.user ? { user: c.user } : {}),
        ...(c.dependsOn ? { dependsOn: c.dependsOn } : {}),
        readonlyRootFilesystem: c.readonlyRootFilesystem ?? true,
        mountPoints: [
          ...((c.readonlyRootFilesystem ?? true)
            ? [{ sourceVolume: `${c.name}-tmp`, containerPath: "/tmp", readOnly: false }]
            : []),
          ...(c.mountPoints ?? []).map((m) => ({ ...m, readOnly: m.readOnly ?? false })),
        ],
        logConfiguration: {
          logDriver: "awslogs",
          options: {
            "awslogs-group": logGroup.name,
            "awslogs-region": region.region,
            "awslogs-stream-prefix": c.name,
            mode: "non-blocking",
            "max-buffer-size": "4m",
          },
        },
      })),
    );

    const taskDefinition = new aws.ecs.TaskDefinition(
      name,
      {
        family: args.family,
        requiresCompatibilities: ["FARGATE"],
        networkMode: "awsvpc",
        cpu: String(args.cpu),
        memory: String(args.memoryMiB),
        runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: args.architecture },
        executionRoleArn: executionRole.arn,
        taskRoleArn: taskRole.arn,
        containerDefinitions,
        volumes: [
          // Scratch space on the task's ephemeral storage: the root filesystems stay read-only.
          ...args.containers.filter((c) => c.readonlyRootFilesystem ?? true).map((c) => ({ name: `${c.name}-tmp` })),
          ...volumes.map((v) => ({
            name: v.name,
            efsVolumeConfiguration: {
              fileSystemId: v.fileSystemId,
              transitEncryption: "ENABLED",
              authorizationConfig: { accessPointId: v.accessPointId, iam: "ENABLED" },
            },
          })),
          ...(args.ebsVolume ? [{ name: args.ebsVolume.name, configureAtLaunch: true }] : []),
        ],
      },
      parent,
    );

    let registry: aws.servicediscovery.Service | undefined;
    if (args.discovery) {
      registry = new aws.servicediscovery.Service(
        name,
        {
          name: args.discovery.name,
          dnsConfig: {
            namespaceId: args.discovery.namespaceId,
            routingPolicy: "MULTIVALUE",
            dnsRecords: [{ type: "A", ttl: 10 }],
          },
          healthCheckCustomConfig: { failureThreshold: 1 },
          forceDestroy: true,
        },
        parent,
      );
    }

    // No fixed name: Pulumi's autoname (`<name>-<random>`) gives a replacement a free name, so it can
    // be created before the old service is deleted (ECS names are unique per cluster).
    const service = new aws.ecs.Service(
      name,
      {
        cluster: args.clusterArn,
        taskDefinition: taskDefinition.arn,
        desiredCount: args.desiredCount,
        launchType: "FARGATE",
        platformVersion: "LATEST",
        networkConfiguration: { subnets: args.subnetIds, securityGroups: args.securityGroupIds, assignPublicIp: false },
        deploymentCircuitBreaker: { enable: true, rollback: true },
        ...(args.rollbackAlarmNames?.length
          ? { alarms: { alarmNames: args.rollbackAlarmNames, enable: true, rollback: true } }
          : {}),
        deploymentMinimumHealthyPercent: args.minHealthyPercent,
        deploymentMaximumPercent: args.maxPercent,
        ...(args.loadBalancer
          ? {
              loadBalancers: [
                {
                  targetGroupArn: args.loadBalancer.targetGroupArn,
                  containerName: args.loadBalancer.containerName,
                  containerPort: args.loadBalancer.containerPort,
                },
              ],
              healthCheckGracePeriodSeconds: args.loadBalancer.healthCheckGracePeriodSeconds,
            }
          : {}),
        ...(registry ? { serviceRegistries: { registryArn: registry.arn } } : {}),
        ...(args.ebsVolume
          ? {
              volumeConfiguration: {
                name: args.ebsVolume.name,
                managedEbsVolume: {
                  roleArn: args.ebsVolume.roleArn,
                  sizeInGb: args.ebsVolume.sizeGiB,
                  volumeType: "gp3",
                  encrypted: true,
                  fileSystemType: "ext4",
                  // The volume carries the service's tags (app, env, tier) like everything else.
                  tagSpecifications: [{ resourceType: "volume", propagateTags: "SERVICE" }],
                },
              },
            }
          : {}),
        availabilityZoneRebalancing: "ENABLED",
        propagateTags: "SERVICE",
        enableEcsManagedTags: true,
        waitForSteadyState: true,
      },
      {
        parent: this,
        dependsOn: args.dependsOn ?? [],
        // The autoscaler owns the task count once it exists; a `pulumi up` must not reset it.
        ignoreChanges: args.autoscaling ? ["desiredCount"] : [],
      },
    );

    if (args.autoscaling) {
      const scaling = args.autoscaling;
      const target = new aws.appautoscaling.Target(
        name,
        {
          serviceNamespace: "ecs",
          scalableDimension: "ecs:service:DesiredCount",
          resourceId: pulumi.interpolate`service/${args.clusterName}/${service.name}`,
          minCapacity: scaling.min,
          maxCapacity: scaling.max,
        },
        parent,
      );
      const policy = (kind: string, metric: string, targetValue: number, resourceLabel?: pulumi.Input<string>) =>
        new aws.appautoscaling.Policy(
          `${name}-${kind}`,
          {
            policyType: "TargetTrackingScaling",
            serviceNamespace: target.serviceNamespace,
            scalableDimension: target.scalableDimension,
            resourceId: target.resourceId,
            targetTrackingScalingPolicyConfiguration: {
              targetValue,
              predefinedMetricSpecification: {
                predefinedMetricType: metric,
                ...(resourceLabel ? { resourceLabel } : {}),
              },
              // Scale out fast, scale in slowly: a cold task needs its models loaded before it helps.
              scaleOutCooldown: 60,
              scaleInCooldown: 300,
            },
          },
          parent,
        );
      policy("cpu", "ECSServiceAverageCPUUtilization", scaling.cpuTargetPercent);
      if (scaling.requestsPerTarget !== undefined && scaling.requestCountResourceLabel !== undefined) {
        policy("requests", "ALBRequestCountPerTarget", scaling.requestsPerTarget, scaling.requestCountResourceLabel);
      }
    }

    this.serviceName = service.name;
    this.taskDefinitionArn = taskDefinition.arn;
    this.logGroupName = logGroup.name;
    this.executionRoleArn = executionRole.arn;
    this.taskRoleArn = taskRole.arn;
    this.registerOutputs({ serviceName: this.serviceName, taskDefinitionArn: this.taskDefinitionArn });
  }
}

/**
 * The policy an ECS task execution role needs and nothing more: pull from `repositories` (ECR login
 * has no resource-level permissions), write to one log group, read `secrets` for the task's
 * environment.
 */
export function executionRolePolicy(repositories: string[], secrets: string[], logGroupArn: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      ...(repositories.length > 0
        ? [
            { Sid: "EcrLogin", Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: "*" },
            {
              Sid: "EcrPull",
              Effect: "Allow",
              Action: ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
              Resource: repositories,
            },
          ]
        : []),
      {
        Sid: "Logs",
        Effect: "Allow",
        Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource: `${logGroupArn}:*`,
      },
      ...(secrets.length > 0
        ? [{ Sid: "Secrets", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: secrets }]
        : []),
    ],
  });
}
