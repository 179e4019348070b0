// The dev stack with direct SSH from an admin network and a Graviton (arm64) host.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { runUnderMocks, type MockedStack } from "../testing/run-under-mocks.ts";
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
      "inferstack:host": JSON.stringify({ instanceType: "t4g.micro", adminCidr: "198.51.100.7/32", sshPublicKey: KEY, swapMiB: 0 }),
    },
    main,
  );
});

test("SSH is open to the admin CIDR only, next to 80/443 for everyone", () => {
  const sg = stack.resources.find((r) => r.type === "aws:ec2/securityGroup:SecurityGroup")!;
  const ssh = (sg.inputs.ingress as { fromPort: number; cidrBlocks: string[] }[]).filter((r) => r.fromPort === 22);
  assert.deepEqual(ssh.map((r) => r.cidrBlocks), [["198.51.100.7/32"]]);
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
  assert.equal(instance.instanceType, "t4g.micro");
  assert.doesNotMatch(String(instance.userData), /swapfile/, "swapMiB 0 means no swap file");
  const edge = stack.resources.find((r) => r.name === "inferstack-edge" && r.type === "docker:index/container:Container")!;
  const uploads = edge.inputs.uploads as { content: string }[];
  assert.match(uploads[0]!.content, /^\temail ops@example\.org$/m);
  assert.match(uploads[0]!.content, /^api\.dev\.example\.org \{$/m);
});
