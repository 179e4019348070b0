import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import {
  al2023AmiParameter,
  architectureOf,
  dataVolumeDevice,
  instanceMemoryMiB,
  ROOT_VOLUME_GIB,
  renderCloudInit,
} from "../components/ec2-docker-host.ts";
import { mockPasswordFor } from "../offline/cloud-mocks.ts";
import { type MockedResource, type MockedStack, runUnderMocks, unwrapSecrets } from "../offline/run-under-mocks.ts";
import { main } from "../program.ts";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com";
let stack: MockedStack;
/** Resource options as registered, by resource name (the mocks only see inputs). */
const options = new Map<string, pulumi.CustomResourceOptions>();
const byType = (type: string) => stack.resources.filter((r) => r.type === type);
const one = (type: string): MockedResource => {
  const found = byType(type);
  assert.equal(found.length, 1, `expected one ${type}, got ${found.length}`);
  return found[0]!;
};
const containers = () => byType("docker:index/container:Container");
const roleOf = (c: MockedResource) => c.name.replace(/^inferstack-(monitoring-)?/, "");
const container = (role: string) => containers().find((c) => roleOf(c) === role)!;

before(async () => {
  // Pulumi.dev.yaml plus the key every user sets before the first `up`.
  const config = {
    "aws:region": "us-east-1",
    "inferstack:tier": "free",
    "inferstack:host": JSON.stringify({ instanceType: "t3.micro", sshPublicKey: KEY }),
  };
  stack = await runUnderMocks("dev", config, () => {
    pulumi.runtime.registerStackTransformation((args) => {
      options.set(args.name, args.opts as pulumi.CustomResourceOptions);
      return undefined;
    });
    return main();
  });
});

test("the dev stack is one EC2 host plus the same containers as local, minus cAdvisor", () => {
  assert.equal(one("aws:ec2/instance:Instance").inputs.instanceType, "t3.micro");
  const roles = containers().map(roleOf).sort();
  assert.deepEqual(roles, [
    "alertmanager",
    "app-1",
    "backups",
    "edge",
    "grafana",
    "node-exporter",
    "postgres",
    "postgres-exporter",
    "prometheus",
    "redis",
    "redis-exporter",
  ]);
  assert.equal(
    byType("aws:rds/instance:Instance").length +
      byType("aws:ecs/service:Service").length +
      byType("aws:ec2/natGateway:NatGateway").length,
    0,
  );
});

test("the container memory limits fit the 1 GiB free-tier host", () => {
  const total = containers().reduce((sum, c) => sum + Number(c.inputs.memory), 0);
  assert.ok(total <= 1024, `containers sum to ${total} MiB`);
  assert.ok(containers().every((c) => Number(c.inputs.memory) > 0));
});

test("the host is hardened: IMDSv2 only, encrypted gp3, standard credits, AL2023 from SSM", () => {
  const host = one("aws:ec2/instance:Instance").inputs;
  assert.deepEqual(host.metadataOptions, {
    httpEndpoint: "enabled",
    httpTokens: "required",
    httpPutResponseHopLimit: 1,
    instanceMetadataTags: "disabled",
  });
  assert.equal(host.rootBlockDevice.volumeType, "gp3");
  assert.equal(host.rootBlockDevice.encrypted, true);
  assert.equal(host.rootBlockDevice.volumeSize, ROOT_VOLUME_GIB);
  // The preset's 30 GiB (the free tier's EBS allowance): 16 GiB root, the rest a separate data volume.
  const data = one("aws:ebs/volume:Volume").inputs;
  assert.deepEqual([data.size, data.type, data.encrypted], [30 - ROOT_VOLUME_GIB, "gp3", true]);
  assert.deepEqual(host.creditSpecification, { cpuCredits: "standard" });
  assert.equal(host.ami, "ami-0abcdef1234567890");
  assert.equal(
    al2023AmiParameter(architectureOf("t3.micro")),
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
  );
  assert.equal(architectureOf("t4g.micro"), "arm64");
  assert.equal(architectureOf("c7gn.large"), "arm64");
  assert.equal(architectureOf("t3a.micro"), "x86_64");
  assert.equal(instanceMemoryMiB("t4g.micro"), 1024);
  assert.equal(instanceMemoryMiB("m5.large"), undefined);
});

test("cloud-init installs Docker, a swap file and the operator's key", () => {
  const userData = String(one("aws:ec2/instance:Instance").inputs.userData);
  const backupSync = {
    volumeName: "inferstack-dev-backups",
    bucket: "host-backups-20261123abcdef",
    region: "us-east-1",
  };
  const dataDevice = dataVolumeDevice(`${one("aws:ebs/volume:Volume").name}-id`);
  assert.equal(
    userData,
    renderCloudInit({ sshUser: "ec2-user", sshPublicKey: KEY, swapMiB: 2048, backupSync, dataDevice }),
  );
  assert.match(userData, /^#cloud-config\n/);
  assert.match(userData, /packages:\n {2}- docker/);
  assert.match(userData, /count=2048/);
  assert.match(userData, /swapon \/swapfile/);
  assert.ok(userData.includes(`ssh_authorized_keys:\n  - ${KEY}`));
  assert.match(userData, /systemctl, enable, --now, docker/);
  assert.match(userData, /"max-size": "10m"/);
});

test("the user data is well-formed cloud-config (as checked by cloud-init 22.4's schema by hand)", () => {
  for (const sshUser of ["ec2-user", "deploy"]) {
    const backupSync = { volumeName: "inferstack-dev-backups", bucket: "b", region: "eu-west-1" };
    const doc = parse(renderCloudInit({ sshUser, sshPublicKey: KEY, swapMiB: 1024, backupSync })) as {
      write_files: { path: string; content: string }[];
      runcmd: unknown[];
      users: [string, { ssh_authorized_keys: string[] }];
      ssh_authorized_keys: string[];
    };
    const timer = (doc.write_files as { path: string; content: string }[]).find((f) =>
      f.path.endsWith("inferstack-backup-sync.timer"),
    )!;
    assert.match(timer.content, /^\[Timer\]\nOnCalendar=hourly$/m);
    const known = ["package_update", "packages", "ssh_authorized_keys", "users", "write_files", "runcmd"];
    assert.deepEqual(
      Object.keys(doc).filter((k) => !known.includes(k)),
      [],
    );
    assert.ok(
      (doc.runcmd as unknown[]).every((c) => Array.isArray(c) && c.every((a) => typeof a === "string")),
      "runcmd entries are argv lists",
    );
    const daemon = (doc.write_files as { path: string; content: string }[]).find(
      (f) => f.path === "/etc/docker/daemon.json",
    )!;
    assert.deepEqual(JSON.parse(daemon.content)["log-opts"], { "max-size": "10m", "max-file": "3" });
    assert.equal(JSON.parse(daemon.content)["log-driver"], "json-file");
    if (sshUser === "deploy") {
      assert.deepEqual(doc.users[0], "default");
      assert.deepEqual(doc.users[1].ssh_authorized_keys, [KEY]);
    } else assert.deepEqual(doc.ssh_authorized_keys, [KEY]);
  }
});

test("the dumps are shipped hourly from the backups volume to a locked-down, versioned bucket", () => {
  const userData = String(one("aws:ec2/instance:Instance").inputs.userData);
  const volume = byType("docker:index/volume:Volume").find((v) => v.inputs.name === "inferstack-dev-backups");
  assert.ok(volume, "the backups container's volume");
  assert.match(
    userData,
    /aws s3 sync \/var\/lib\/docker\/volumes\/inferstack-dev-backups\/_data s3:\/\/host-backups-20261123abcdef\/backups\/ --region us-east-1 --exclude \*\.partial/,
  );
  assert.match(userData, /OnCalendar=hourly/);
  assert.match(userData, /systemctl, enable, --now, inferstack-backup-sync\.timer/);
  assert.equal(one("aws:s3/bucket:Bucket").inputs.forceDestroy, false);
  assert.deepEqual(
    (({ blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets }) => ({
      blockPublicAcls,
      blockPublicPolicy,
      ignorePublicAcls,
      restrictPublicBuckets,
    }))(one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs),
    { blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
  );
  assert.equal(one("aws:s3/bucketVersioning:BucketVersioning").inputs.versioningConfiguration.status, "Enabled");
  assert.equal(
    one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs.rules[0]
      .applyServerSideEncryptionByDefault.sseAlgorithm,
    "AES256",
  );
  const lifecycle = one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs.rules[0];
  assert.equal(lifecycle.expiration.days, 7, "backups.retentionDays");
  assert.equal(lifecycle.filter.prefix, "backups/");
  const policy = JSON.parse(one("aws:s3/bucketPolicy:BucketPolicy").inputs.policy);
  assert.deepEqual(policy.Statement[0].Condition, { Bool: { "aws:SecureTransport": "false" } });
  assert.equal(stack.outputs.backupBucket, "host-backups-20261123abcdef");
});

test("the security group opens 80/443 to the world and no SSH without an admin CIDR", () => {
  const ingress = one("aws:ec2/securityGroup:SecurityGroup").inputs.ingress as {
    fromPort: number;
    toPort: number;
    protocol: string;
    cidrBlocks: string[];
  }[];
  assert.deepEqual(ingress.map((r) => `${r.protocol}/${r.fromPort}-${r.toPort}`).sort(), [
    "tcp/443-443",
    "tcp/80-80",
    "udp/443-443",
  ]);
  assert.ok(ingress.every((r) => r.fromPort !== 22));
});

test("the instance profile grants SSM Session Manager and shipping dumps, nothing else", () => {
  const attachments = byType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((a) => a.inputs.policyArn);
  assert.deepEqual(attachments, ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]);
  const inline = JSON.parse(one("aws:iam/rolePolicy:RolePolicy").inputs.policy) as {
    Statement: { Action: string; Resource: string }[];
  };
  const bucketArn = one("aws:s3/bucket:Bucket").name;
  assert.deepEqual(
    inline.Statement.map((st) => st.Action).sort(),
    ["s3:ListBucket", "s3:PutObject"],
    "no read, no delete",
  );
  assert.ok(inline.Statement.every((st) => String(st.Resource).includes(bucketArn)));
  assert.match(inline.Statement.find((st) => st.Action === "s3:PutObject")!.Resource, /\/backups\/\*$/);
  const trust = JSON.parse(one("aws:iam/role:Role").inputs.assumeRolePolicy);
  assert.deepEqual(trust.Statement[0].Principal, { Service: "ec2.amazonaws.com" });
});

test("an Elastic IP and a Route 53 record point the domain at the host", () => {
  assert.equal(one("aws:ec2/eip:Eip").inputs.domain, "vpc");
  const record = one("aws:route53/record:Record").inputs;
  assert.equal(record.name, "dev.example.com");
  assert.equal(record.type, "A");
  assert.deepEqual(record.records, ["203.0.113.10"]);
  assert.equal(record.zoneId, "Z0123456789ABCDEFGHIJ");
});

test("Docker is driven over SSH tunnelled through SSM, after the host's engine answers", () => {
  const providers = byType("pulumi:providers:docker");
  assert.equal(providers.length, 1);
  const p = providers[0]!.inputs;
  assert.equal(p.host, "ssh://ec2-user@host-instance-id");
  // Provider configuration reaches the engine JSON-encoded.
  const opts = (typeof p.sshOpts === "string" ? JSON.parse(p.sshOpts) : p.sshOpts) as string[];
  assert.ok(
    opts.some((o) =>
      o.startsWith(
        "ProxyCommand=aws ssm start-session --region us-east-1 --target %h --document-name AWS-StartSSHSession",
      ),
    ),
  );
  assert.ok(opts.includes("HostKeyAlias=host-instance-id"));
  assert.ok(opts.includes("StrictHostKeyChecking=accept-new"));
  const ready = stack.resources.find((r) => r.name === "host-docker-ready");
  assert.ok(ready, "the readiness wait exists");
  assert.deepEqual(ready.inputs.sshOpts, opts);
  assert.equal(ready.inputs.host, "host-instance-id");
  // The serialized wait runs `docker info` over ssh; no TypeScript syntax may survive into it.
  assert.match(String(ready.inputs.__provider), /"docker", "info"/);
  assert.doesNotMatch(String(ready.inputs.__provider), /: ReadyInputs|: string\)/);
  for (const r of stack.resources.filter((r) => r.custom && r.type.startsWith("docker:"))) {
    assert.match(r.provider ?? "", /host-engine/, `${r.name} must go to the EC2 host's engine`);
  }
});

test("the edge proxy gets a Let's Encrypt certificate for the domain on 80/443", () => {
  const caddyfile = (unwrapSecrets(container("edge").inputs.uploads) as { file: string; content: string }[])[0]!
    .content;
  assert.match(caddyfile, /^dev\.example\.com \{$/m);
  assert.doesNotMatch(caddyfile, /tls internal/);
  assert.match(caddyfile, /Strict-Transport-Security/);
  assert.match(caddyfile, /reverse_proxy app-1:8080 \{/);
  const ports = container("edge").inputs.ports as { ip: string; external: number; protocol: string }[];
  assert.deepEqual(ports.map((x) => `${x.ip}:${x.external}/${x.protocol}`).sort(), [
    "0.0.0.0:443/tcp",
    "0.0.0.0:443/udp",
    "0.0.0.0:80/tcp",
  ]);
});

test("outputs: url, grafanaUrl, tier, how to get in, and a cost", () => {
  assert.equal(stack.outputs.tier, "free");
  assert.equal(stack.outputs.url, "https://dev.example.com");
  assert.equal(stack.outputs.grafanaUrl, "https://dev.example.com/grafana/");
  assert.equal(stack.outputs.sshCommand, "aws ssm start-session --region us-east-1 --target host-instance-id");
  assert.equal(stack.outputs.publicIp, "203.0.113.10");
  assert.equal(typeof stack.outputs.estimatedMonthlyCost, "number");
  assert.ok(
    (stack.outputs.estimatedMonthlyCost as number) > 0,
    "the EC2 host and its public IPv4 address cost money after the free tier",
  );
});

test("no secret appears in a plain resource input", async () => {
  const secrets = ["postgres", "redis", "grafana"].map((n) => mockPasswordFor(`inferstack-${n}-password`));
  assert.deepEqual(await stack.plainSecrets(secrets), []);
});

test("the host is on the internet from its first boot: its address exists before it does", () => {
  const nic = one("aws:ec2/networkInterface:NetworkInterface");
  const instance = one("aws:ec2/instance:Instance");
  const association = one("aws:ec2/eipAssociation:EipAssociation");
  // The instance boots on a network interface that already holds the Elastic IP...
  assert.equal(instance.inputs.primaryNetworkInterface.networkInterfaceId, `${nic.name}-id`);
  assert.equal(instance.inputs.subnetId, undefined);
  assert.equal(association.inputs.networkInterfaceId, `${nic.name}-id`);
  assert.equal(association.inputs.allocationId, "eipalloc-0abc123", "the Elastic IP's allocation (cloud-mocks.ts)");
  assert.equal(one("aws:ec2/eip:Eip").inputs.instance, undefined, "the address is not tied to one instance");
  assert.deepEqual(nic.inputs.securityGroups, [`${one("aws:ec2/securityGroup:SecurityGroup").name}-id`]);
  // ...and only once the address and the default route are in place.
  const dependsOn = ([] as unknown[]).concat(options.get(instance.name)?.dependsOn ?? []) as pulumi.Resource[];
  const names = new Set(dependsOn.map((r) => (r as unknown as { __name?: string }).__name));
  assert.ok(names.has(association.name), "the instance waits for the EIP association");
  assert.ok(
    names.has(one("aws:ec2/routeTableAssociation:RouteTableAssociation").name),
    "the instance waits for the public route",
  );
});

test("a changed user data replaces the host, keeping its address and its data", () => {
  const instance = one("aws:ec2/instance:Instance");
  // cloud-init's per-instance modules (the SSH key, write_files) only run on a first boot.
  assert.equal(instance.inputs.userDataReplaceOnChange, true);
  // Delete first: the network interface and the data volume attach to one instance at a time.
  assert.equal(options.get(instance.name)?.deleteBeforeReplace, true);
  const attachment = one("aws:ec2/volumeAttachment:VolumeAttachment");
  assert.equal(attachment.inputs.volumeId, `${one("aws:ebs/volume:Volume").name}-id`);
  assert.equal(attachment.inputs.instanceId, `${instance.name}-id`);
  assert.equal(attachment.inputs.stopInstanceBeforeDetaching, true, "a clean unmount before the volume moves");
  assert.equal(options.get(attachment.name)?.deleteBeforeReplace, true);
  assert.equal(
    instance.inputs.rootBlockDevice.deleteOnTermination,
    true,
    "only the root volume goes with the instance",
  );
});

test("cloud-init mounts the data volume at Docker's volumes directory before Docker starts", () => {
  const doc = parse(String(one("aws:ec2/instance:Instance").inputs.userData)) as { runcmd: string[][] };
  const steps = doc.runcmd.map((c) => c.join(" "));
  const device = dataVolumeDevice(`${one("aws:ebs/volume:Volume").name}-id`);
  const waitFor = steps.findIndex((c) => c.includes(`test -b ${device}`));
  const mount = steps.findIndex((c) => c.includes("mount /var/lib/docker/volumes"));
  const docker = steps.indexOf("systemctl enable --now docker");
  assert.ok(waitFor >= 0 && waitFor < mount && mount < docker, steps.join("\n"));
  // A filesystem is made only on a blank volume: an existing one (after a replacement) is kept.
  assert.ok(steps.some((c) => c.includes(`blkid ${device} || mkfs.xfs`)));
  // mkfs.xfs refuses a label over 12 characters (xfsprogs 6.1: "maximum 12 characters").
  const label = steps.join("\n").match(/mkfs\.xfs -L (\S+) /)?.[1] ?? "";
  assert.ok(label.length > 0 && label.length <= 12, `XFS label ${label}`);
  assert.ok(steps.some((c) => c.includes("defaults,nofail 0 2") && c.includes("/etc/fstab")));
});
