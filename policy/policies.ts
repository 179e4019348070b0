/**
 * InferStack's guardrails as @pulumi/policy policies, kept apart from `index.ts` (which serves
 * the pack to the Pulumi engine) so tests can call each validator directly.
 *
 * Production is recognised by the `env` tag (resource tags or the AWS provider's `defaultTags`,
 * as `infra/platforms/aws.ts` sets them) being one of `prodEnvironments`, or by the pack config
 * `environment` (CI passes it per stack with `--policy-pack-config`).
 */
import type {
  PolicyResource,
  ReportViolation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";

export interface GuardrailConfig {
  /** Forces the environment name, e.g. `prod`, where resources carry no env tag (Docker). */
  environment?: string;
  /** Environment names held to the production rules. */
  prodEnvironments?: string[];
  /** Tag keys every taggable AWS resource must carry. */
  requiredTags?: string[];
  /** Ports that may be open to the world on load balancers (and the free tier's edge host). */
  publicPorts?: number[];
}

const defaults = {
  prodEnvironments: ["prod", "production"],
  requiredTags: ["app", "env", "tier"],
  publicPorts: [80, 443],
};

const configSchema = {
  properties: {
    environment: { type: "string" as const },
    prodEnvironments: {
      type: "array" as const,
      items: { type: "string" as const },
      default: defaults.prodEnvironments,
    },
    requiredTags: { type: "array" as const, items: { type: "string" as const }, default: defaults.requiredTags },
    publicPorts: { type: "array" as const, items: { type: "number" as const }, default: defaults.publicPorts },
  },
};

type Props = Record<string, unknown>;
interface Subject {
  type: string;
  name: string;
  props: Props;
  provider?: { props: Props };
}

function config(args: {
  getConfig<T extends object>(): T;
}): Required<Omit<GuardrailConfig, "environment">> & GuardrailConfig {
  const c = (args.getConfig<GuardrailConfig>() ?? {}) as GuardrailConfig;
  return { ...defaults, ...Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) } as Required<
    Omit<GuardrailConfig, "environment">
  > &
    GuardrailConfig;
}

/** A nested prop as an object ({} when absent or not one), to read its fields. */
const fields = (v: unknown): Props => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Props) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function parseMaybeJson(v: unknown): unknown {
  if (typeof v !== "string") return v;
  try {
    return JSON.parse(v);
  } catch {
    return undefined;
  }
}

/** Tags on the resource merged over its provider's default tags (providers hold config as strings). */
export function effectiveTags(r: Subject): Record<string, string> {
  const defaultTags = parseMaybeJson(r.provider?.props?.defaultTags) as { tags?: Record<string, string> } | undefined;
  return { ...(defaultTags?.tags ?? {}), ...(r.props.tagsAll ?? {}), ...(r.props.tags ?? {}) };
}

export function isProd(r: Subject, cfg: GuardrailConfig & { prodEnvironments: string[] }): boolean {
  const env = cfg.environment ?? effectiveTags(r).env;
  return env !== undefined && cfg.prodEnvironments.includes(env);
}

type Check = (r: Subject, report: (message: string) => void, cfg: ReturnType<typeof config>) => void;

function resourcePolicy(
  name: string,
  description: string,
  checks: Record<string, Check>,
  remediationSteps: string,
): ResourceValidationPolicy {
  return {
    name,
    description,
    enforcementLevel: "mandatory",
    configSchema,
    remediationSteps,
    validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
      const check = checks[args.type];
      if (!check) return;
      const subject: Subject = {
        type: args.type,
        name: args.name,
        props: args.props,
        ...(args.provider ? { provider: args.provider } : {}),
      };
      check(subject, (m) => reportViolation(`${args.name}: ${m}`), config(args));
    },
  };
}

const RDS = "aws:rds/instance:Instance";
const RDS_CLUSTER = "aws:rds/cluster:Cluster";
const REDIS_RG = "aws:elasticache/replicationGroup:ReplicationGroup";
const REDIS_CLUSTER = "aws:elasticache/cluster:Cluster";

export const noPublicDatastores = resourcePolicy(
  "no-public-datastores",
  "RDS and ElastiCache are never publicly accessible and live in the VPC's private subnet groups.",
  {
    [RDS]: (r, report) => {
      if (r.props.publiclyAccessible === true) report("publiclyAccessible must be false");
      if (!r.props.dbSubnetGroupName)
        report("needs a dbSubnetGroupName (private subnets); without one RDS uses the default VPC");
    },
    [RDS_CLUSTER]: (r, report) => {
      if (!r.props.dbSubnetGroupName) report("needs a dbSubnetGroupName (private subnets)");
    },
    [REDIS_RG]: (r, report) => {
      if (!r.props.subnetGroupName) report("needs a subnetGroupName (private subnets)");
      if (!(list(r.props.securityGroupIds).length > 0))
        report("needs its own securityGroupIds (the default group is not restricted to the app)");
    },
    [REDIS_CLUSTER]: (r, report) => {
      if (!r.props.replicationGroupId && !r.props.subnetGroupName) report("needs a subnetGroupName (private subnets)");
    },
  },
  "Set publiclyAccessible: false, a private subnet group and a security group that admits the app only.",
);

export const encryptionAtRest = resourcePolicy(
  "encryption-at-rest",
  "Databases, caches, file systems and volumes are encrypted at rest.",
  {
    [RDS]: (r, report) => r.props.storageEncrypted !== true && report("storageEncrypted must be true"),
    [RDS_CLUSTER]: (r, report) => r.props.storageEncrypted !== true && report("storageEncrypted must be true"),
    [REDIS_RG]: (r, report) =>
      r.props.atRestEncryptionEnabled !== true &&
      r.props.atRestEncryptionEnabled !== "true" &&
      report("atRestEncryptionEnabled must be true"),
    "aws:efs/fileSystem:FileSystem": (r, report) => r.props.encrypted !== true && report("encrypted must be true"),
    "aws:ebs/volume:Volume": (r, report) => r.props.encrypted !== true && report("encrypted must be true"),
    "aws:ec2/instance:Instance": (r, report) =>
      fields(r.props.rootBlockDevice).encrypted !== true && report("rootBlockDevice.encrypted must be true"),
  },
  "Turn on the resource's encryption-at-rest setting (AWS-managed keys are fine).",
);

export const encryptionInTransit = resourcePolicy(
  "encryption-in-transit",
  "Redis requires TLS, Postgres does not switch off rds.force_ssl, EFS mounts use TLS.",
  {
    [REDIS_RG]: (r, report) =>
      r.props.transitEncryptionEnabled !== true && report("transitEncryptionEnabled must be true"),
    "aws:rds/parameterGroup:ParameterGroup": (r, report) => {
      const forceSsl = (list(r.props.parameters) as { name: string; value?: unknown }[]).find(
        (p) => p.name === "rds.force_ssl",
      );
      if (forceSsl && String(forceSsl.value) !== "1") report("rds.force_ssl must stay 1 (TLS only)");
    },
    "aws:ecs/taskDefinition:TaskDefinition": (r, report) => {
      for (const v of list(r.props.volumes) as {
        name?: string;
        efsVolumeConfiguration?: { transitEncryption?: string };
      }[]) {
        if (v.efsVolumeConfiguration && v.efsVolumeConfiguration.transitEncryption !== "ENABLED")
          report(`volume ${v.name}: efsVolumeConfiguration.transitEncryption must be ENABLED`);
      }
    },
  },
  "Enable TLS on the connection (transitEncryptionEnabled, rds.force_ssl=1, EFS transitEncryption).",
);

/** ELB security policies that allow TLS 1.2 and later only. */
export const tls12Policies = /^ELBSecurityPolicy-(TLS13-1-[23]-.*|TLS-1-2-.*|FS-1-2-.*)$/;

export const albHttpsOnly = resourcePolicy(
  "alb-https-tls12",
  "Load balancer listeners serve HTTPS with a TLS 1.2+ policy; plain HTTP only redirects to HTTPS.",
  Object.fromEntries(
    ["aws:lb/listener:Listener", "aws:alb/listener:Listener"].map((t) => [
      t,
      ((r, report) => {
        const protocol = String(r.props.protocol ?? "HTTP").toUpperCase();
        if (protocol === "HTTPS" || protocol === "TLS") {
          if (!tls12Policies.test(String(r.props.sslPolicy ?? "")))
            report(
              `sslPolicy ${r.props.sslPolicy ?? "(default, allows TLS 1.0)"} must allow TLS 1.2+ only, e.g. ELBSecurityPolicy-TLS13-1-2-2021-06`,
            );
          if (!r.props.certificateArn) report("an HTTPS listener needs a certificateArn");
        } else if (protocol === "HTTP") {
          const actions = list(r.props.defaultActions) as { type?: string; redirect?: { protocol?: string } }[];
          if (
            actions.length === 0 ||
            actions.some((a) => a.type !== "redirect" || String(a.redirect?.protocol).toUpperCase() !== "HTTPS")
          ) {
            report("an HTTP listener may only redirect to HTTPS");
          }
        }
      }) as Check,
    ]),
  ),
  "Use protocol HTTPS with sslPolicy ELBSecurityPolicy-TLS13-1-2-2021-06 and an ACM certificate; make port 80 a redirect.",
);

/** Routes of the API that only the VPC may reach (probes that query the data stores, metrics). */
export const internalPaths = ["/metrics", "/health/ready", "/health/live", "/health/startup"];

/** ALB wildcard path pattern (`*` any run, `?` one character), case-sensitive, as a RegExp. */
const albPathPattern = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replaceAll("*", ".*")
      .replaceAll("?", ".")}$`,
  );
const forwards = (actions: unknown) =>
  (list(actions) as { type?: string }[]).some((a) => String(a.type).toLowerCase() === "forward");

export const albInternalRoutesPrivate = resourcePolicy(
  "alb-internal-routes-private",
  "A load balancer forwards only listed public paths: listeners answer a fixed response or redirect by default, and no forwarding path rule matches /metrics or /health/*.",
  {
    ...Object.fromEntries(
      ["aws:lb/listener:Listener", "aws:alb/listener:Listener"].map((t) => [
        t,
        ((r, report) => {
          if (forwards(r.props.defaultActions))
            report(
              "the default action forwards every path (including /metrics and /health/*); answer a fixed-response 404 and forward public paths with listener rules",
            );
        }) as Check,
      ]),
    ),
    ...Object.fromEntries(
      ["aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule"].map((t) => [
        t,
        ((r, report) => {
          if (!forwards(r.props.actions)) return;
          for (const c of list(r.props.conditions) as {
            pathPattern?: { values?: string[]; regexValues?: string[] };
          }[]) {
            const patterns: RegExp[] = [
              ...(c.pathPattern?.values ?? []).map(albPathPattern),
              ...(c.pathPattern?.regexValues ?? []).map((v: string) => new RegExp(v)),
            ];
            const exposed = internalPaths.filter((path) => patterns.some((re) => re.test(path)));
            if (exposed.length) report(`forwards internal path(s) ${exposed.join(", ")} to the internet`);
          }
        }) as Check,
      ]),
    ),
  },
  "Make the HTTPS listener's default action a fixed-response 404 and add forward rules whose path patterns list only the API's public routes (/v1/*, /v2/*, /openapi.json, /docs*).",
);

export const imdsV2 = resourcePolicy(
  "ec2-imdsv2",
  "EC2 instances require IMDSv2 session tokens (metadataOptions.httpTokens = required).",
  {
    "aws:ec2/instance:Instance": (r, report) =>
      fields(r.props.metadataOptions).httpTokens !== "required" &&
      report("metadataOptions.httpTokens must be required (IMDSv2)"),
    "aws:ec2/launchTemplate:LaunchTemplate": (r, report) =>
      fields(r.props.metadataOptions).httpTokens !== "required" &&
      report("metadataOptions.httpTokens must be required (IMDSv2)"),
  },
  'Set metadataOptions: { httpTokens: "required", httpPutResponseHopLimit: 1 }.',
);

export const prodDatabaseProtection = resourcePolicy(
  "prod-database-protection",
  "Production databases have deletion protection, at least 7 days of backups and a final snapshot; production caches take a final snapshot.",
  {
    [RDS]: (r, report, cfg) => {
      if (!isProd(r, cfg)) return;
      if (r.props.deletionProtection !== true) report("deletionProtection must be true in production");
      if (!(Number(r.props.backupRetentionPeriod ?? 0) >= 7))
        report(`backupRetentionPeriod must be ≥ 7 days in production (is ${r.props.backupRetentionPeriod ?? 0})`);
      if (r.props.skipFinalSnapshot === true) report("skipFinalSnapshot must be false in production");
    },
    [RDS_CLUSTER]: (r, report, cfg) => {
      if (!isProd(r, cfg)) return;
      if (r.props.deletionProtection !== true) report("deletionProtection must be true in production");
      if (!(Number(r.props.backupRetentionPeriod ?? 0) >= 7))
        report("backupRetentionPeriod must be ≥ 7 days in production");
    },
    [REDIS_RG]: (r, report, cfg) => {
      if (!isProd(r, cfg)) return;
      if (!r.props.finalSnapshotIdentifier)
        report(
          "finalSnapshotIdentifier must be set in production (deleting or replacing the group keeps its last state)",
        );
    },
  },
  "Set deletionProtection: true, backupRetentionPeriod ≥ 7 and a finalSnapshotIdentifier on the prod tier (postgres.* in infra/presets.ts).",
);

export const logRetention = resourcePolicy(
  "log-retention",
  "Every CloudWatch log group sets a retention (never-expiring logs grow cost forever).",
  {
    "aws:cloudwatch/logGroup:LogGroup": (r, report) =>
      !(Number(r.props.retentionInDays ?? 0) > 0) && report("retentionInDays must be set"),
  },
  "Set retentionInDays (logs.retentionDays in the stack config).",
);

/** AWS types in our stacks that take tags; others (rules, attachments, records) cannot be tagged. */
export const taggableTypes = new Set([
  "aws:ec2/vpc:Vpc",
  "aws:ec2/subnet:Subnet",
  "aws:ec2/securityGroup:SecurityGroup",
  "aws:ec2/internetGateway:InternetGateway",
  "aws:ec2/natGateway:NatGateway",
  "aws:ec2/eip:Eip",
  "aws:ec2/routeTable:RouteTable",
  "aws:ec2/vpcEndpoint:VpcEndpoint",
  "aws:ec2/flowLog:FlowLog",
  "aws:ec2/instance:Instance",
  "aws:ebs/volume:Volume",
  "aws:lb/loadBalancer:LoadBalancer",
  "aws:lb/targetGroup:TargetGroup",
  "aws:lb/listener:Listener",
  "aws:rds/instance:Instance",
  "aws:rds/subnetGroup:SubnetGroup",
  "aws:rds/parameterGroup:ParameterGroup",
  "aws:elasticache/replicationGroup:ReplicationGroup",
  "aws:elasticache/subnetGroup:SubnetGroup",
  "aws:ecs/cluster:Cluster",
  "aws:ecs/service:Service",
  "aws:ecs/taskDefinition:TaskDefinition",
  "aws:cloudwatch/logGroup:LogGroup",
  "aws:efs/fileSystem:FileSystem",
  "aws:ecr/repository:Repository",
  "aws:secretsmanager/secret:Secret",
  "aws:iam/role:Role",
  "aws:s3/bucket:Bucket",
  "aws:s3/bucketV2:BucketV2",
  "aws:kms/key:Key",
  "aws:acm/certificate:Certificate",
  "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace",
  "aws:servicediscovery/service:Service",
]);

export const requiredTags: ResourceValidationPolicy = {
  name: "required-tags",
  description:
    "Taggable AWS resources carry the app, env and tier tags (directly or through the provider's defaultTags).",
  enforcementLevel: "mandatory",
  configSchema,
  remediationSteps: "Give the AWS provider defaultTags: { tags: { app, env, tier } } (infra/platforms/aws.ts does).",
  validateResource: (args, reportViolation) => {
    if (!taggableTypes.has(args.type)) return;
    const cfg = config(args);
    const tags = effectiveTags({
      type: args.type,
      name: args.name,
      props: args.props,
      ...(args.provider ? { provider: args.provider } : {}),
    });
    const missing = cfg.requiredTags.filter((k) => !tags[k]);
    if (missing.length) reportViolation(`${args.name}: missing tag(s) ${missing.join(", ")}`);
  },
};

const digestPinned = (image: unknown) => typeof image === "string" && /@sha256:[0-9a-f]{64}$/.test(image);

export const prodImagesPinned = resourcePolicy(
  "prod-images-pinned",
  "Production runs container images pinned by digest (name@sha256:...), so a deploy or rollback runs exactly the image it names.",
  {
    "aws:ecs/taskDefinition:TaskDefinition": (r, report, cfg) => {
      if (!isProd(r, cfg)) return;
      const defs = (parseMaybeJson(r.props.containerDefinitions) ?? []) as { name?: string; image?: string }[];
      for (const d of defs)
        if (!digestPinned(d.image)) report(`container ${d.name}: image ${d.image} is not pinned by digest`);
    },
    "docker:index/container:Container": (r, report, cfg) => {
      if (!isProd(r, cfg)) return;
      if (!digestPinned(r.props.image) && !/^sha256:[0-9a-f]{64}$/.test(String(r.props.image)))
        report(`image ${r.props.image} is not pinned by digest`);
    },
  },
  "Reference images as repository@sha256:<digest> (the Image component's repoDigest).",
);

interface ContainerDef {
  name?: string;
  image?: string;
  command?: string[];
  environment?: { name: string; value: string }[];
  secrets?: { name: string; valueFrom: string }[];
  portMappings?: unknown[];
  mountPoints?: { sourceVolume?: string; containerPath?: string }[];
}
const containerDefs = (r: Subject) => (parseMaybeJson(r.props.containerDefinitions) ?? []) as ContainerDef[];

/** RDS names the master-user secrets it manages `rds!db-…` (instances) and `rds!cluster-…`. */
const rdsManagedSecret = /:secret:rds!/;

export const rdsMasterSecretAdminOnly = resourcePolicy(
  "rds-master-secret-admin-only",
  "The RDS-managed master password is for administrators and one-shot setup tasks: no task that serves a port (an API, an exporter, Grafana) reads it; those log in as their own least-privilege roles.",
  {
    "aws:ecs/taskDefinition:TaskDefinition": (r, report) => {
      const defs = containerDefs(r);
      const serving = defs.filter((d) => (d.portMappings ?? []).length > 0).map((d) => d.name);
      if (serving.length === 0) return;
      for (const d of defs) {
        for (const secret of d.secrets ?? []) {
          if (rdsManagedSecret.test(secret.valueFrom))
            report(
              `container ${d.name}: ${secret.name} reads the RDS-managed master secret in a task that serves (${serving.join(", ")})`,
            );
        }
      }
    },
  },
  "Create a role per use (infra/components/aws-database-roles.ts) and give each task its own role's secret; keep the master secret for a one-shot setup task.",
);

/** By container name, or by the image repository's last part (`prometheus`, `grafana-oss`). */
function imageIs(d: ContainerDef, software: string): boolean {
  const repository =
    String(d.image ?? "")
      .split("@")[0]!
      .replace(/:[^/]*$/, "")
      .split("/")
      .pop() ?? "";
  return d.name === software || repository === software || repository.startsWith(`${software}-`);
}
const envOf = (d: ContainerDef, key: string) => d.environment?.find((e) => e.name === key)?.value;

export const stateOnSupportedStorage = resourcePolicy(
  "state-on-supported-storage",
  "Prometheus' TSDB and Grafana's SQLite database are not on NFS (EFS): Prometheus documents NFS as unsupported (it can corrupt the TSDB), and SQLite's locking is unreliable over NFS.",
  {
    "aws:ecs/taskDefinition:TaskDefinition": (r, report) => {
      const volumes = (r.props.volumes ?? []) as { name?: string; efsVolumeConfiguration?: unknown }[];
      const nfs = new Set(volumes.filter((v) => v.efsVolumeConfiguration).map((v) => v.name));
      if (nfs.size === 0) return;
      for (const d of containerDefs(r)) {
        const onNfs = (path: string) =>
          (d.mountPoints ?? []).some((m) => nfs.has(m.sourceVolume) && m.containerPath === path);
        if (imageIs(d, "prometheus")) {
          const tsdb =
            (d.command ?? []).find((a) => a.startsWith("--storage.tsdb.path="))?.split("=")[1] ?? "/prometheus";
          const agent = (d.command ?? []).includes("--agent");
          if (!agent && onNfs(tsdb)) report(`container ${d.name}: the Prometheus TSDB (${tsdb}) is on EFS`);
        }
        if (imageIs(d, "grafana")) {
          const data = envOf(d, "GF_PATHS_DATA") ?? "/var/lib/grafana";
          const type = envOf(d, "GF_DATABASE_TYPE") ?? "sqlite3";
          if (type === "sqlite3" && onNfs(data))
            report(`container ${d.name}: Grafana's SQLite database (${data}) is on EFS`);
        }
      }
    },
  },
  "Put the TSDB on block storage (an ECS-managed EBS volume) or use Amazon Managed Service for Prometheus; point Grafana at Postgres (GF_DATABASE_TYPE=postgres).",
);

/** World-open ingress sources. */
const worldOpen = (cidrs: unknown) =>
  (Array.isArray(cidrs) ? cidrs : [cidrs]).some((c) => c === "0.0.0.0/0" || c === "::/0");

interface IngressRule {
  owner: PolicyResource;
  group?: PolicyResource;
  fromPort: number;
  toPort: number;
  protocol: string;
}

function worldOpenIngress(resources: PolicyResource[]): IngressRule[] {
  const rules: IngressRule[] = [];
  for (const r of resources) {
    const p = r.props;
    if (r.type === "aws:ec2/securityGroup:SecurityGroup") {
      for (const i of p.ingress ?? [])
        if (worldOpen(i.cidrBlocks) || worldOpen(i.ipv6CidrBlocks))
          rules.push({
            owner: r,
            group: r,
            fromPort: Number(i.fromPort),
            toPort: Number(i.toPort),
            protocol: String(i.protocol),
          });
    } else if (r.type === "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") {
      if (worldOpen(p.cidrIpv4) || worldOpen(p.cidrIpv6))
        rules.push({
          owner: r,
          group: r.propertyDependencies?.securityGroupId?.[0],
          fromPort: Number(p.fromPort ?? 0),
          toPort: Number(p.toPort ?? 65535),
          protocol: String(p.ipProtocol),
        });
    } else if (r.type === "aws:ec2/securityGroupRule:SecurityGroupRule" && p.type === "ingress") {
      if (worldOpen(p.cidrBlocks) || worldOpen(p.ipv6CidrBlocks))
        rules.push({
          owner: r,
          group: r.propertyDependencies?.securityGroupId?.[0],
          fromPort: Number(p.fromPort),
          toPort: Number(p.toPort),
          protocol: String(p.protocol),
        });
    }
  }
  return rules;
}

/** Security groups that front traffic: a load balancer's, or the free tier's single edge host's. */
function edgeGroups(resources: PolicyResource[]): Set<string> {
  const urns = new Set<string>();
  for (const r of resources) {
    if (r.type === "aws:lb/loadBalancer:LoadBalancer" || r.type === "aws:alb/loadBalancer:LoadBalancer") {
      for (const sg of r.propertyDependencies?.securityGroups ?? []) urns.add(sg.urn);
    }
    if (r.type === "aws:ec2/instance:Instance") {
      for (const sg of [
        ...(r.propertyDependencies?.vpcSecurityGroupIds ?? []),
        ...(r.propertyDependencies?.securityGroups ?? []),
      ])
        urns.add(sg.urn);
      // An instance booted on an existing network interface has that interface's groups.
      for (const nic of r.propertyDependencies?.primaryNetworkInterface ?? []) {
        const found = resources.find((x) => x.urn === nic.urn);
        for (const sg of found?.propertyDependencies?.securityGroups ?? []) urns.add(sg.urn);
      }
    }
  }
  return urns;
}

export const noWorldOpenIngress: StackValidationPolicy = {
  name: "no-world-open-ingress",
  description:
    "Nothing is open to 0.0.0.0/0 or ::/0 except ports 80 and 443 on load balancers (and on the free tier's single host, which is its own edge proxy).",
  enforcementLevel: "mandatory",
  configSchema,
  remediationSteps: "Open the port to a security group (app ← ALB) or an admin /32 instead of the world.",
  validateStack: (args: StackValidationArgs, reportViolation: ReportViolation) => {
    const cfg = config(args);
    const edges = edgeGroups(args.resources);
    for (const rule of worldOpenIngress(args.resources)) {
      const ports =
        rule.protocol === "-1" || rule.protocol === "all"
          ? "all ports"
          : rule.fromPort === rule.toPort
            ? `port ${rule.fromPort}`
            : `ports ${rule.fromPort}-${rule.toPort}`;
      const publicPortsOnly =
        rule.protocol !== "-1" && rule.fromPort === rule.toPort && cfg.publicPorts.includes(rule.fromPort);
      if (!publicPortsOnly) reportViolation(`${rule.owner.name}: ${ports} open to the world`, rule.owner.urn);
      else if (!rule.group || !edges.has(rule.group.urn))
        reportViolation(
          `${rule.owner.name}: ${ports} open to the world on a group that no load balancer or edge host uses`,
          rule.owner.urn,
        );
    }
  },
};

export const lbIngressMatchesIpFamily: StackValidationPolicy = {
  name: "lb-ingress-matches-ip-family",
  description:
    "A load balancer that listens on IPv4 only has no IPv6 ingress rules (they would open nothing but suggest IPv6 works).",
  enforcementLevel: "mandatory",
  configSchema,
  remediationSteps: "Drop the ::/0 rules, or make the load balancer dualstack (ipAddressType) with AAAA alias records.",
  validateStack: (args: StackValidationArgs, reportViolation: ReportViolation) => {
    const ipv4Groups = new Set<string>();
    for (const r of args.resources) {
      if (r.type !== "aws:lb/loadBalancer:LoadBalancer" && r.type !== "aws:alb/loadBalancer:LoadBalancer") continue;
      if (String(r.props.ipAddressType ?? "ipv4") !== "ipv4") continue;
      for (const sg of r.propertyDependencies?.securityGroups ?? []) ipv4Groups.add(sg.urn);
    }
    for (const r of args.resources) {
      if (r.type === "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule" && r.props.cidrIpv6) {
        const group = r.propertyDependencies?.securityGroupId?.[0];
        if (group && ipv4Groups.has(group.urn))
          reportViolation(`${r.name}: IPv6 ingress (${r.props.cidrIpv6}) on an IPv4-only load balancer's group`, r.urn);
      }
      if (r.type === "aws:ec2/securityGroup:SecurityGroup" && ipv4Groups.has(r.urn)) {
        for (const i of r.props.ingress ?? [])
          if ((i.ipv6CidrBlocks ?? []).length)
            reportViolation(`${r.name}: IPv6 ingress on an IPv4-only load balancer's group`, r.urn);
      }
    }
  },
};

export const rdsLogGroupsManaged: StackValidationPolicy = {
  name: "rds-log-groups-managed",
  description:
    "Each log an RDS instance exports goes to a log group the stack declares (/aws/rds/instance/<identifier>/<log>, with a retention); otherwise RDS creates it outside the program, never expiring.",
  enforcementLevel: "mandatory",
  configSchema,
  remediationSteps:
    "Declare aws.cloudwatch.LogGroup /aws/rds/instance/<identifier>/<log> with retentionInDays for every enabledCloudwatchLogsExports entry, and make the instance dependsOn them.",
  validateStack: (args: StackValidationArgs, reportViolation: ReportViolation) => {
    const groups = new Map(
      args.resources.filter((r) => r.type === "aws:cloudwatch/logGroup:LogGroup").map((r) => [String(r.props.name), r]),
    );
    for (const r of args.resources) {
      if (r.type !== RDS) continue;
      for (const log of (r.props.enabledCloudwatchLogsExports ?? []) as string[]) {
        const name = `/aws/rds/instance/${r.props.identifier}/${log}`;
        const group = groups.get(name);
        if (!group)
          reportViolation(
            `${r.name}: exports ${log} but the stack declares no log group ${name} (RDS would create one that never expires)`,
            r.urn,
          );
        else if (!(Number(group.props.retentionInDays ?? 0) > 0))
          reportViolation(`${group.name}: ${name} needs retentionInDays`, group.urn);
      }
    }
  },
};

export const resourcePolicies: ResourceValidationPolicy[] = [
  noPublicDatastores,
  encryptionAtRest,
  encryptionInTransit,
  albHttpsOnly,
  albInternalRoutesPrivate,
  imdsV2,
  prodDatabaseProtection,
  logRetention,
  requiredTags,
  prodImagesPinned,
  rdsMasterSecretAdminOnly,
  stateOnSupportedStorage,
];
export const stackPolicies: StackValidationPolicy[] = [
  noWorldOpenIngress,
  rdsLogGroupsManaged,
  lbIngressMatchesIpFamily,
];
