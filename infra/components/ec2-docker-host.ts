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
 * - a network interface holding the Elastic IP before the instance exists, so the instance is on
 *   the internet from its first boot (cloud-init's package installs need it), and the address
 *   outlives any one instance;
 * - an encrypted gp3 data volume for Docker's named volumes (Postgres, Prometheus, Grafana, the
 *   dumps), formatted on first use and mounted at /var/lib/docker/volumes before Docker starts;
 * - the instance: Amazon Linux 2023 from the public SSM parameter (arm64 for Graviton types such as
 *   t4g, x86_64 otherwise), IMDSv2 required with hop limit 1 (containers cannot reach instance
 *   credentials), encrypted gp3 root volume, standard (not unlimited) CPU credits so a busy month
 *   cannot bill CPU surplus, cloud-init that installs Docker, a swap file, the operator's SSH key,
 *   Docker's log rotation defaults, mounts the data volume, then signals readiness;
 * - a Route 53 A record for `domain` in `zoneName`.
 * A change to the user data (a rotated SSH key, a new backup target) replaces the instance:
 * cloud-init applies its per-instance modules (users, keys, files) only on an instance's first
 * boot, so the stop/start an in-place update does would leave the old key in place. The
 * replacement is delete-then-create (the interface and the data volume attach to one instance at
 * a time); the Elastic IP, the data and the backups bucket survive it.
 * - with `backupSync`: OffsiteBackups (an S3 bucket the role may only list and put into) and a
 *   systemd timer that ships the backups volume there every hour.
 * The AMI is read at create time and then ignored (`ignoreChanges`), so a new AMI release never
 * replaces the host and its volumes; roll it deliberately with `pulumi up --replace <urn>`.
 *
 * Inputs (from the preset's `host`, `network`, `domain`, `dns`):
 * - `instanceType`, `swapMiB`, `sshUser`, `sshPublicKey`, `adminCidr`.
 * - `volumeGiB`: EBS in total: a ROOT_VOLUME_GIB root volume (OS, images, swap), the rest data.
 * - `vpcCidr`: the VPC range; the subnet is its first /24.
 * - `domain`, `zoneName`: the public name and its hosted zone.
 * - `tags`: added to every resource.
 * - `backupSync`: `{ volumeName, retentionDays }` of the dumps to ship off the host.
 *
 * Cost: t3.micro / t4g.micro are free-tier eligible (750 h/month for 12 months), then about
 * $7.6 / $6.1 a month; 30 GiB gp3 (root + data) is inside the 30 GB free tier, then $2.40; the public IPv4
 * address $3.65 a month after the free tier's 750 h; Route 53 hosted zone $0.50 (not created here).
 */

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
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

/** Root volume: AL2023 (~2 GiB), the images Docker pulls and builds, and the swap file. */
export const ROOT_VOLUME_GIB = 16;
/** Where Docker keeps named volumes: the data volume is mounted here. */
const DOCKER_VOLUMES_DIR = "/var/lib/docker/volumes";

/** The data volume as the instance sees it (Nitro NVMe: the volume id, without its dash, is the serial). */
export function dataVolumeDevice(volumeId: string): string {
  return `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volumeId.replace("-", "")}`;
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
  return (
    { nano: 512, micro: 1024, small: 2048, medium: 4096, large: 8192, xlarge: 16384, "2xlarge": 32768 } as Record<
      string,
      number
    >
  )[size];
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

/**
 * runcmd steps that mount the data volume at Docker's volumes directory before Docker starts: wait
 * for the attachment (made once the instance runs), make a filesystem only on a blank volume, and
 * mount it by UUID from fstab (`nofail`: a missing volume never blocks a boot).
 */
function dataVolumeSteps(device: string): string[] {
  return [
    `  - [sh, -c, "for i in $(seq 1 120); do test -b ${device} && break; sleep 5; done; test -b ${device}"]`,
    `  - [sh, -c, "blkid ${device} || mkfs.xfs -L inferstack ${device}"]`,
    `  - [sh, -c, "grep -q ' ${DOCKER_VOLUMES_DIR} ' /etc/fstab || echo \\"UUID=$(blkid -s UUID -o value ${device}) ${DOCKER_VOLUMES_DIR} xfs defaults,nofail 0 2\\" >> /etc/fstab"]`,
    `  - [sh, -c, "mkdir -p ${DOCKER_VOLUMES_DIR} && mount ${DOCKER_VOLUMES_DIR} || mountpoint -q ${DOCKER_VOLUMES_DIR}"]`,
  ];
}

/** cloud-init user data: Docker, swap, SSH key, log rotation, data volume, off-host backups, readiness marker. */
export function renderCloudInit(a: {
  sshUser: string;
  sshPublicKey: string;
  swapMiB: number;
  backupSync?: BackupSyncTarget | undefined;
  /** The data volume's device path (`dataVolumeDevice`); omitted: Docker volumes stay on the root volume. */
  dataDevice?: string | undefined;
}): string {
  const swap =
    a.swapMiB > 0
      ? [
          `  - [sh, -c, "test -f /swapfile || (dd if=/dev/zero of=/swapfile bs=1M count=${a.swapMiB} status=none && chmod 600 /swapfile && mkswap /swapfile)"]`,
          '  - [sh, -c, "swapon /swapfile || true"]',
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
      : [
          "users:",
          "  - default",
          `  - name: ${a.sshUser}`,
          "    sudo: ALL=(ALL) NOPASSWD:ALL",
          "    ssh_authorized_keys:",
          `      - ${a.sshPublicKey}`,
        ]),
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
    ...(a.dataDevice ? dataVolumeSteps(a.dataDevice) : []),
    `  - [usermod, -aG, docker, ${a.sshUser}]`,
    "  - [systemctl, enable, --now, docker]",
    ...(a.backupSync
      ? ["  - [systemctl, daemon-reload]", "  - [systemctl, enable, --now, inferstack-backup-sync.timer]"]
      : []),
    '  - [sh, -c, "until docker info >/dev/null 2>&1; do sleep 2; done; touch /var/lib/cloud/inferstack-docker-ready"]',
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

    const vpc = new aws.ec2.Vpc(
      `${name}-vpc`,
      { cidrBlock: args.vpcCidr, enableDnsHostnames: true, enableDnsSupport: true, tags: tags("vpc") },
      child,
    );
    const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: tags("igw") }, child);
    const az = aws.getAvailabilityZonesOutput({ state: "available" }, child).names.apply((n) => n[0]!);
    const [a, b] = args.vpcCidr.split(".");
    const subnet = new aws.ec2.Subnet(
      `${name}-public`,
      {
        vpcId: vpc.id,
        cidrBlock: `${a}.${b}.1.0/24`,
        availabilityZone: az,
        mapPublicIpOnLaunch: false,
        tags: tags("public"),
      },
      child,
    );
    const routes = new aws.ec2.RouteTable(
      `${name}-public`,
      { vpcId: vpc.id, routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }], tags: tags("public") },
      child,
    );
    const routeAssociation = new aws.ec2.RouteTableAssociation(
      `${name}-public`,
      { subnetId: subnet.id, routeTableId: routes.id },
      child,
    );

    this.securityGroup = new aws.ec2.SecurityGroup(
      `${name}-sg`,
      {
        vpcId: vpc.id,
        description: "inferstack free tier: HTTP/HTTPS from anywhere, SSH from the admin CIDR only",
        ingress: [
          {
            description: "HTTP (ACME challenge, redirect to HTTPS)",
            protocol: "tcp",
            fromPort: 80,
            toPort: 80,
            cidrBlocks: ["0.0.0.0/0"],
          },
          { description: "HTTPS", protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"] },
          { description: "HTTP/3", protocol: "udp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"] },
          ...(args.adminCidr
            ? [
                {
                  description: "SSH from the admin network",
                  protocol: "tcp",
                  fromPort: 22,
                  toPort: 22,
                  cidrBlocks: [args.adminCidr],
                },
              ]
            : []),
        ],
        egress: [
          {
            description: "package installs, image pulls, ACME, alert receivers",
            protocol: "-1",
            fromPort: 0,
            toPort: 0,
            cidrBlocks: ["0.0.0.0/0"],
          },
        ],
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
    const ssm = new aws.iam.RolePolicyAttachment(
      `${name}-ssm`,
      { role: role.name, policyArn: "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore" },
      child,
    );
    const profile = new aws.iam.InstanceProfile(`${name}-profile`, { role: role.name, tags: args.tags }, child);
    const offsite = args.backupSync
      ? new OffsiteBackups(
          `${name}-backups`,
          { role: role.name, retentionDays: args.backupSync.retentionDays, tags: args.tags },
          child,
        )
      : undefined;
    this.backupBucket = offsite?.bucketName;
    const region = aws.getRegionOutput({}, child).region;

    // Created before the instance: the address is the instance's from its first boot, and stays
    // when the instance is replaced.
    const nic = new aws.ec2.NetworkInterface(
      `${name}-nic`,
      { subnetId: subnet.id, securityGroups: [this.securityGroup.id], tags: tags("nic") },
      child,
    );
    this.eip = new aws.ec2.Eip(`${name}-eip`, { domain: "vpc", tags: tags("eip") }, { ...child, dependsOn: [igw] });
    const eipAssociation = new aws.ec2.EipAssociation(
      `${name}-eip`,
      { allocationId: this.eip.allocationId, networkInterfaceId: nic.id },
      { ...child, dependsOn: [igw] },
    );
    const dataVolume = new aws.ebs.Volume(
      `${name}-data`,
      {
        availabilityZone: az,
        size: Math.max(1, args.volumeGiB - ROOT_VOLUME_GIB),
        type: "gp3",
        encrypted: true,
        tags: tags("data"),
      },
      child,
    );

    const userData = pulumi.all([offsite?.bucketName, region, dataVolume.id]).apply(([bucket, r, volumeId]) =>
      renderCloudInit({
        ...args,
        backupSync:
          args.backupSync && bucket ? { volumeName: args.backupSync.volumeName, bucket, region: r } : undefined,
        dataDevice: dataVolumeDevice(volumeId),
      }),
    );

    const arch = architectureOf(args.instanceType);
    const ami = aws.ssm.getParameterOutput({ name: al2023AmiParameter(arch) }, child).value;
    const burstable = /^t\d/.test(args.instanceType);

    this.instance = new aws.ec2.Instance(
      `${name}-instance`,
      {
        ami,
        instanceType: args.instanceType,
        primaryNetworkInterface: { networkInterfaceId: nic.id },
        iamInstanceProfile: profile.name,
        userData,
        userDataReplaceOnChange: true,
        metadataOptions: {
          httpEndpoint: "enabled",
          httpTokens: "required",
          httpPutResponseHopLimit: 1,
          instanceMetadataTags: "disabled",
        },
        rootBlockDevice: {
          volumeType: "gp3",
          volumeSize: Math.min(args.volumeGiB, ROOT_VOLUME_GIB),
          encrypted: true,
          deleteOnTermination: true,
          tags: tags("root"),
        },
        ...(burstable ? { creditSpecification: { cpuCredits: "standard" } } : {}),
        monitoring: false,
        tags: tags("host"),
      },
      // The route and the address must exist before boot; the interface and the data volume move
      // to a replacement only once the old instance is gone.
      {
        ...child,
        dependsOn: [ssm, eipAssociation, routeAssociation],
        ignoreChanges: ["ami"],
        deleteBeforeReplace: true,
      },
    );
    // Stopping first lets the filesystem unmount cleanly when the attachment moves.
    new aws.ec2.VolumeAttachment(
      `${name}-data`,
      {
        deviceName: "/dev/sdf",
        volumeId: dataVolume.id,
        instanceId: this.instance.id,
        stopInstanceBeforeDetaching: true,
      },
      { ...child, deleteBeforeReplace: true },
    );
    const zone = aws.route53.getZoneOutput({ name: args.zoneName, privateZone: false }, child);
    this.record = new aws.route53.Record(
      `${name}-dns`,
      {
        zoneId: zone.zoneId,
        name: args.domain,
        type: "A",
        ttl: 300,
        records: [this.eip.publicIp],
        allowOverwrite: false,
      },
      child,
    );
    this.publicIp = this.eip.publicIp;
    this.instanceId = this.instance.id;
    this.registerOutputs({ publicIp: this.publicIp, instanceId: this.instanceId });
  }
}
