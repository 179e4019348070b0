// The dev stack with direct SSH from an admin network, on a bigger Graviton (arm64) host that has
// room for two replicas and cAdvisor.

import assert from "node:assert/strict";
import { before, test } from "node:test";
import { type MockedStack, runUnderMocks } from "../offline/run-under-mocks.ts";
import { main } from "../program.ts";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com";
let stack: MockedStack;

before(async () => {
  stack = await runUnderMocks(
    "dev",
    {
      "aws:region": "eu-west-1",
      "inferstack:tier": "free",
      "inferstack:domain": "api.dev.example.org",
      "inferstack:dns": JSON.stringify({ zoneName: "example.org" }),
      "inferstack:edge": JSON.stringify({ acmeEmail: "ops@example.org" }),
      "inferstack:host": JSON.stringify({
        instanceType: "t4g.small",
        adminCidr: "198.51.100.7/32",
        sshPublicKey: KEY,
        swapMiB: 0,
      }),
      "inferstack:app": JSON.stringify({ replicas: 2, memoryMiB: 384 }),
      "inferstack:monitoring": JSON.stringify({ cadvisor: true }),
    },
    main,
  );
});

test("SSH is open to the admin CIDR only, next to 80/443 for everyone", () => {
  const sg = stack.resources.find((r) => r.type === "aws:ec2/securityGroup:SecurityGroup")!;
  const ssh = (sg.inputs.ingress as { fromPort: number; cidrBlocks: string[] }[]).filter((r) => r.fromPort === 22);
  assert.deepEqual(
    ssh.map((r) => r.cidrBlocks),
    [["198.51.100.7/32"]],
  );
});

test("the Docker provider connects straight to the Elastic IP, without an SSM proxy", () => {
  const provider = stack.resources.find((r) => r.type === "pulumi:providers:docker")!.inputs;
  assert.equal(provider.host, "ssh://ec2-user@203.0.113.10");
  const opts = JSON.parse(provider.sshOpts) as string[];
  assert.ok(!opts.some((o) => o.startsWith("ProxyCommand")));
  assert.equal(stack.outputs.sshCommand, "ssh ec2-user@203.0.113.10");
  assert.equal(stack.outputs.dockerHost, "ssh://ec2-user@203.0.113.10");
});

test("the configured domain, zone, ACME account and instance type are used", () => {
  assert.equal(stack.outputs.url, "https://api.dev.example.org");
  const record = stack.resources.find((r) => r.type === "aws:route53/record:Record")!.inputs;
  assert.equal(record.name, "api.dev.example.org");
  const instance = stack.resources.find((r) => r.type === "aws:ec2/instance:Instance")!.inputs;
  assert.equal(instance.instanceType, "t4g.small");
  assert.doesNotMatch(String(instance.userData), /swapfile/, "swapMiB 0 means no swap file");
  const edge = stack.resources.find(
    (r) => r.name === "inferstack-edge" && r.type === "docker:index/container:Container",
  )!;
  const uploads = edge.inputs.uploads as { content: string }[];
  assert.match(uploads[0]!.content, /^\temail ops@example\.org$/m);
  assert.match(uploads[0]!.content, /^api\.dev\.example\.org \{$/m);
});

test("a 2 GiB host runs two replicas and cAdvisor, and Prometheus scrapes it", () => {
  const containers = stack.resources.filter((r) => r.type === "docker:index/container:Container");
  const total = containers.reduce((sum, c) => sum + Number(c.inputs.memory), 0);
  assert.ok(total > 1024 && total <= 2048, `containers sum to ${total} MiB`);
  assert.ok(containers.some((c) => c.inputs.name === "inferstack-dev-cadvisor"));
  assert.ok(containers.some((c) => c.inputs.name === "inferstack-dev-node-exporter"));
  const prometheus = containers.find((c) => c.inputs.name === "inferstack-dev-prometheus")!;
  const config = (prometheus.inputs.uploads as { file: string; content: string }[]).find(
    (u) => u.file === "/etc/prometheus/prometheus.yml",
  )!.content;
  assert.match(config, /cadvisor:8080/);
  assert.match(config, /node-exporter:9100/);
  const edge = containers.find((c) => c.inputs.name === "inferstack-dev-edge")!;
  assert.match((edge.inputs.uploads as { content: string }[])[0]!.content, /reverse_proxy app-1:8080 app-2:8080 \{/);
});
