// `inferstack:app.image`: deploy an image already in ECR (exact rollback, promotion) instead of
// building app/Dockerfile. One stack per process.

import assert from "node:assert/strict";
import { test } from "node:test";
import { parseEcrImageRef } from "../components/aws-image.ts";
import { ConfigError, parseStackConfig } from "../config.ts";
import { MOCK_DIGEST } from "../offline/cloud-mocks.ts";
import { type MockedStack, runUnderMocks, unwrapSecrets } from "../offline/run-under-mocks.ts";
import { main } from "../program.ts";

const stagingImage = `210987654321.dkr.ecr.us-east-1.amazonaws.com/inferstack-staging/app@sha256:${"ab12".repeat(16)}`;

test("a bad image reference fails naming inferstack:app.image", () => {
  for (const bad of [
    "nginx:latest",
    "210987654321.dkr.ecr.us-east-1.amazonaws.com/app:v1",
    stagingImage.replace("sha256:", "sha256:zz"),
  ]) {
    assert.throws(
      () => parseStackConfig({ "inferstack:tier": "medium", "inferstack:app": JSON.stringify({ image: bad }) }),
      (e: Error) => e instanceof ConfigError && e.issues.some((i) => i.key === "inferstack:app.image"),
    );
  }
  assert.deepEqual(parseEcrImageRef(stagingImage), {
    account: "210987654321",
    region: "us-east-1",
    repository: "inferstack-staging/app",
    digest: `sha256:${"ab12".repeat(16)}`,
  });
});

test("prod promoted to the image staging tested: copied into prod's own repository, run and kept from there", async () => {
  const stack = await runUnderMocks(
    "prod",
    { "inferstack:tier": "medium", "inferstack:app": JSON.stringify({ image: stagingImage }) },
    main,
  );
  const of = (type: string) => stack.resources.filter((r) => r.type === type);
  const images = of("docker:index/image:Image").map((r) => r.name);
  assert.ok(!images.includes("inferstack-prod-app"), "the app image is not built");
  assert.ok(images.includes("inferstack-prod-monitoring-prometheus"), "monitoring images still are");
  // Pulled by the digest staging tested, for the task's platform, tagged into prod's repository, pushed.
  const [source] = of("docker:index/remoteImage:RemoteImage");
  assert.equal(source?.inputs.name, stagingImage);
  assert.equal(source?.inputs.platform, "linux/amd64");
  const prodRepo = "123456789012.dkr.ecr.us-east-1.amazonaws.com/inferstack-prod-app";
  const [tag] = of("docker:index/tag:Tag");
  assert.equal(tag?.inputs.sourceImage, MOCK_DIGEST, "the pulled image's id");
  assert.match(tag?.inputs.targetImage ?? "", new RegExp(`^${prodRepo}:p-ab12ab12ab12-[0-9a-f]{8}$`));
  assert.deepEqual(
    one(stack, "random:index/randomId:RandomId", "-promoted-tag").inputs.keepers,
    { digest: `sha256:${"ab12".repeat(16)}` },
    "a fresh tag per promotion (ECR tags are immutable)",
  );
  const [pushed] = of("docker:index/registryImage:RegistryImage");
  assert.equal(pushed?.inputs.name, tag?.inputs.targetImage);
  assert.equal(pushed?.inputs.keepRemotely, true, "the next promotion leaves this image for rollbacks");
  // The Docker provider doing the copy logs in to both registries with ECR tokens, kept secret.
  const dockerProvider = of("pulumi:providers:docker").find((p) => p.name === "inferstack-prod-app-promotion")!;
  const raw = unwrapSecrets(dockerProvider.inputs.registryAuth);
  const auth = typeof raw === "string" ? JSON.parse(raw) : raw;
  assert.notEqual(raw, dockerProvider.inputs.registryAuth, "the registry credentials reach the provider as a secret");
  assert.deepEqual(auth.map((a: { address: string }) => a.address).sort(), [
    "123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "210987654321.dkr.ecr.us-east-1.amazonaws.com",
  ]);
  for (const r of [source, tag, pushed])
    assert.match(String(r?.provider), /pulumi:providers:docker::inferstack-prod-app-promotion::/);
  // The task runs the copy, from prod's repository, by digest; the execution role pulls from prod's repository only.
  const copied = `${prodRepo}@${MOCK_DIGEST}`;
  assert.equal(stack.outputs.appImage, copied);
  const task = of("aws:ecs/taskDefinition:TaskDefinition").find((r) => r.name === "inferstack-prod-app")!;
  assert.equal(JSON.parse(task.inputs.containerDefinitions)[0].image, copied);
  const policy = JSON.parse(
    of("aws:iam/rolePolicy:RolePolicy").find((r) => r.name === "inferstack-prod-app-execution")!.inputs.policy,
  );
  const pull = policy.Statement.find((s: { Sid?: string }) => s.Sid === "EcrPull");
  assert.deepEqual(
    pull.Resource,
    ["arn:aws:repository:us-east-1:123456789012:inferstack-prod-app"],
    "nothing of staging's repository is needed at run time",
  );
});

function one(stack: MockedStack, type: string, nameEnds: string) {
  const found = stack.resources.filter((r) => r.type === type && r.name.endsWith(nameEnds));
  assert.equal(found.length, 1, `one ${type} *${nameEnds}`);
  return found[0]!;
}
