/**
 * Ec2DockerHost: the single free-tier EC2 instance that runs the `free` tier's containers.
 *
 * Creates:
 * - a VPC with one public subnet, an internet gateway and a route table (all free of charge; no
 *   NAT gateway), so the stack depends on no default VPC;
 * - a security group open to the world on 80 and 443 only, SSH (22) only from `adminCidr` (no
 *   SSH ingress at all when it is null: the Docker provider then tunnels SSH through SSM Session
 *   Manager);
 * - an IAM role + instance profile with AmazonSSMManagedInstanceCore only (least privilege:
 *   Session Manager and patching, nothing else);
 * - the instance: Amazon Linux 2023 from the public SSM parameter (arm64 for Graviton types such as
 *   t4g, x86_64 otherwise), IMDSv2 required with hop limit 1 (containers cannot reach instance
 *   credentials), encrypted gp3 root volume, standard (not unlimited) CPU credits so a busy month
 *   cannot bill CPU surplus, cloud-init that installs Docker, a swap file, the operator's SSH key,
 *   Docker's log rotation defaults, then signals readiness;
 * - an Elastic IP and a Route 53 A record for `domain` in `zoneName`;
 * - with `backupSync`: OffsiteBackups (an S3 bucket the role may only list and put into) and a
 *   systemd timer that ships the backups volume there every hour.
 * The AMI is read at create time and then ignored (`ignoreChanges`), so a new AMI release never
 * replaces the host and its volumes; roll it deliberately with `pulumi up --replace <urn>`.
 *
 * Inputs (from the preset's `host`, `network`, `domain`, `dns`):
 * - `instanceType`, `volumeGiB`, `swapMiB`, `sshUser`, `sshPublicKey`, `adminCidr`.
 * - `vpcCidr`: the VPC range; the subnet is its first /24.
 * - `domain`, `zoneName`: the public name and its hosted zone.
 * - `tags`: added to every resource.
 * - `backupSync`: `{ volumeName, retentionDays }` of the dumps to ship off the host.
 *
 * Cost: t3.micro / t4g.micro are free-tier eligible (750 h/month for 12 months), then about
 * $7.6 / $6.1 a month; 30 GiB gp3 is inside the 30 GB free tier, then $2.40; the public IPv4
 * address $3.65 a month after the free tier's 750 h; Route 53 hosted zone $0.50 (not created here).
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { OFFSITE_PREFIX, OffsiteBackups } from "./offsite-backups.ts";

export interface Ec2DockerHostArgs {
  instanceType: string;
  volumeGiB: number;
  swapMiB: number;
  sshUser: string;
  sshPublicKey: string;
  adminCidr: string | null;
  vpcCidr: string;
  domain: string;
  zoneName: string;
  tags: Record<string, string>;
  /** Ship the dumps in this Docker volume to an S3 bucket (OffsiteBackups) every hour. */
  backupSync?: { volumeName: string; retentionDays: number } | undefined;
}

/** What the host's hourly backup shipping needs to know. */
export interface BackupSyncTarget {
  volumeName: string;
  bucket: string;
  region: string;
}

/** Graviton instance families (t4g, m7g, c7gn, r8g, a1, ...) run arm64. */
export function architectureOf(instanceType: string): "arm64" | "x86_64" {
  const family = instanceType.split(".")[0] ?? "";
  return /^a1$|^[a-z]+\d+[a-z]*g[a-z]*$/.test(family) ? "arm64" : "x86_64";
}

/** Memory of the burstable and common types we expect on this tier; undefined when unknown. */
export function instanceMemoryMiB(instanceType: string): number | undefined {
  const size = instanceType.split(".")[1] ?? "";
  const family = instanceType.split(".")[0] ?? "";
  if (!/^t[34]a?g?$/.test(family)) return undefined;
  return ({ nano: 512, micro: 1024, small: 2048, medium: 4096, large: 8192, xlarge: 16384, "2xlarge": 32768 } as Record<string, number>)[size];
}

/** The SSM public parameter naming the latest Amazon Linux 2023 AMI for an architecture. */
export function al2023AmiParameter(arch: "arm64" | "x86_64"): string {
  return `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${arch}`;
}

/** systemd units that `aws s3 sync` the backups volume to S3 every hour (the CLI ships with AL2023). */
function backupSyncFiles(t: BackupSyncTarget): string[] {
  const source = `/var/lib/docker/volumes/${t.volumeName}/_data`;
  return [
    "  - path: /etc/systemd/system/inferstack-backup-sync.service",
    "    content: |",
    "      [Unit]",
    "      Description=Ship InferStack database dumps to S3",
    "      After=docker.service network-online.target",
    "      Wants=network-online.target",
    `      ConditionPathIsDirectory=${source}`,
    "      [Service]",
    "      Type=oneshot",
    `      ExecStart=/usr/bin/aws s3 sync ${source} s3://${t.bucket}/${OFFSITE_PREFIX} --region ${t.region} --exclude *.partial --only-show-errors`,
    "  - path: /etc/systemd/system/inferstack-backup-sync.timer",
    "    content: |",
    "      [Unit]",
    "      Description=Ship InferStack database dumps to S3 every hour",
    "      [Timer]",
    "      OnCalendar=hourly",
    "      RandomizedDelaySec=300",
    "      Persistent=true",
    "      [Install]",
    "      WantedBy=timers.target",
  ];
}

/** cloud-init user data: Docker, swap, SSH key, log rotation, off-host backups, readiness marker. */
export function renderCloudInit(a: { sshUser: string; sshPublicKey: string; swapMiB: number; backupSync?: BackupSyncTarget | undefined }): string {
  const swap = a.swapMiB > 0
    ? [
        `  - [sh, -c, "test -f /swapfile || (dd if=/dev/zero of=/swapfile bs=1M count=${a.swapMiB} status=none && chmod 600 /swapfile && mkswap /swapfile)"]`,
        "  - [sh, -c, \"swapon /swapfile || true\"]",
        "  - [sh, -c, \"grep -q '^/swapfile' /etc/fstab || echo '/swapfile none swap sw 0 0' >> /etc/fstab\"]",
        "  - [sysctl, -w, vm.swappiness=10]",
      ]
    : [];
  return [
    "#cloud-config",
    "package_update: true",
    "packages:",
    "  - docker",
    // The AMI's default user gets the key directly; another name becomes an extra sudo user.
    ...(a.sshUser === "ec2-user"
      ? ["ssh_authorized_keys:", `  - ${a.sshPublicKey}`]
      : ["users:", "  - default", `  - name: ${a.sshUser}`, "    sudo: ALL=(ALL) NOPASSWD:ALL", "    ssh_authorized_keys:", `      - ${a.sshPublicKey}`]),
    "write_files:",
    "  - path: /etc/docker/daemon.json",
    "    permissions: '0644'",
    "    content: |",
    '      {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}, "live-restore": true}',
    "  - path: /etc/sysctl.d/90-inferstack.conf",
    "    content: |",
    "      vm.swappiness=10",
    ...(a.backupSync ? backupSyncFiles(a.backupSync) : []),
    "runcmd:",
    ...swap,
    `  - [usermod, -aG, docker, ${a.sshUser}]`,
    "  - [systemctl, enable, --now, docker]",
    ...(a.backupSync ? ["  - [systemctl, daemon-reload]", "  - [systemctl, enable, --now, inferstack-backup-sync.timer]"] : []),
    "  - [sh, -c, \"until docker info >/dev/null 2>&1; do sleep 2; done; touch /var/lib/cloud/inferstack-docker-ready\"]",
    "",
  ].join("\n");
}

export class Ec2DockerHost extends pulumi.ComponentResource {
  readonly instance: aws.ec2.Instance;
  readonly eip: aws.ec2.Eip;
  readonly record: aws.route53.Record;
  readonly securityGroup: aws.ec2.SecurityGroup;
  readonly publicIp: pulumi.Output<string>;
  readonly instanceId: pulumi.Output<string>;
  /** The S3 bucket the dumps are shipped to, when `backupSync` is set. */
  readonly backupBucket: pulumi.Output<string> | undefined;

  constructor(name: string, args: Ec2DockerHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:aws:Ec2DockerHost", name, {}, opts);
    const child = { parent: this };
    const tags = (n: string) => ({ ...args.tags, Name: `${name}-${n}` });

    const vpc = new aws.ec2.Vpc(`${name}-vpc`, { cidrBlock: args.vpcCidr, enableDnsHostnames: true, enableDnsSupport: true, tags: tags("vpc") }, child);
    const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: tags("igw") }, child);
    const az = aws.getAvailabilityZonesOutput({ state: "available" }, child).names.apply((n) => n[0]!);
    const [a, b] = args.vpcCidr.split(".");
    const subnet = new aws.ec2.Subnet(`${name}-public`, { vpcId: vpc.id, cidrBlock: `${a}.${b}.1.0/24`, availabilityZone: az, mapPublicIpOnLaunch: false, tags: tags("public") }, child);
    const routes = new aws.ec2.RouteTable(`${name}-public`, { vpcId: vpc.id, routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }], tags: tags("public") }, child);
    new aws.ec2.RouteTableAssociation(`${name}-public`, { subnetId: subnet.id, routeTableId: routes.id }, child);

    this.securityGroup = new aws.ec2.SecurityGroup(
      `${name}-sg`,
      {
        vpcId: vpc.id,
        description: "inferstack free tier: HTTP/HTTPS from anywhere, SSH from the admin CIDR only",
        ingress: [
          { description: "HTTP (ACME challenge, redirect to HTTPS)", protocol: "tcp", fromPort: 80, toPort: 80, cidrBlocks: ["0.0.0.0/0"] },
          { description: "HTTPS", protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"] },
          { description: "HTTP/3", protocol: "udp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"] },
          ...(args.adminCidr ? [{ description: "SSH from the admin network", protocol: "tcp", fromPort: 22, toPort: 22, cidrBlocks: [args.adminCidr] }] : []),
        ],
        egress: [{ description: "package installs, image pulls, ACME, alert receivers", protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
        tags: tags("sg"),
      },
      child,
    );

    const role = new aws.iam.Role(
      `${name}-role`,
      {
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
        tags: args.tags,
      },
      child,
    );
    const ssm = new aws.iam.RolePolicyAttachment(`${name}-ssm`, { role: role.name, policyArn: "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore" }, child);
    const profile = new aws.iam.InstanceProfile(`${name}-profile`, { role: role.name, tags: args.tags }, child);
    const offsite = args.backupSync
      ? new OffsiteBackups(`${name}-backups`, { role: role.name, retentionDays: args.backupSync.retentionDays, tags: args.tags }, child)
      : undefined;
    this.backupBucket = offsite?.bucketName;
    const region = aws.getRegionOutput({}, child).region;
    const userData = offsite
      ? pulumi.all([offsite.bucketName, region]).apply(([bucket, r]) =>
          renderCloudInit({ ...args, backupSync: { volumeName: args.backupSync!.volumeName, bucket, region: r } }),
        )
      : pulumi.output(renderCloudInit({ ...args, backupSync: undefined }));

    const arch = architectureOf(args.instanceType);
    const ami = aws.ssm.getParameterOutput({ name: al2023AmiParameter(arch) }, child).value;
    const burstable = /^t\d/.test(args.instanceType);

    this.instance = new aws.ec2.Instance(
      `${name}-instance`,
      {
        ami,
        instanceType: args.instanceType,
        subnetId: subnet.id,
        vpcSecurityGroupIds: [this.securityGroup.id],
        iamInstanceProfile: profile.name,
        userData,
        userDataReplaceOnChange: false,
        metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1, instanceMetadataTags: "disabled" },
        rootBlockDevice: { volumeType: "gp3", volumeSize: args.volumeGiB, encrypted: true, deleteOnTermination: true, tags: tags("root") },
        ...(burstable ? { creditSpecification: { cpuCredits: "standard" } } : {}),
        monitoring: false,
        tags: tags("host"),
      },
      { ...child, dependsOn: [ssm], ignoreChanges: ["ami"] },
    );

    this.eip = new aws.ec2.Eip(`${name}-eip`, { domain: "vpc", instance: this.instance.id, tags: tags("eip") }, { ...child, dependsOn: [igw] });
    const zone = aws.route53.getZoneOutput({ name: args.zoneName, privateZone: false }, child);
    this.record = new aws.route53.Record(
      `${name}-dns`,
      { zoneId: zone.zoneId, name: args.domain, type: "A", ttl: 300, records: [this.eip.publicIp], allowOverwrite: false },
      child,
    );
    this.publicIp = this.eip.publicIp;
    this.instanceId = this.instance.id;
    this.registerOutputs({ publicIp: this.publicIp, instanceId: this.instanceId });
  }
}
