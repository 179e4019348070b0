// `inferstack:app.image`: deploy an image already in ECR (exact rollback, promotion) instead of
// building app/Dockerfile. One stack per process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runUnderMocks } from "../testing/run-under-mocks.ts";
import { main } from "../program.ts";
import { ConfigError, parseStackConfig } from "../config.ts";
import { parseEcrImageRef } from "../components/aws-image.ts";

const stagingImage = "210987654321.dkr.ecr.us-east-1.amazonaws.com/inferstack-staging/app@sha256:" + "ab12".repeat(16);

test("a bad image reference fails naming inferstack:app.image", () => {
  for (const bad of ["nginx:latest", "210987654321.dkr.ecr.us-east-1.amazonaws.com/app:v1", stagingImage.replace("sha256:", "sha256:zz")]) {
    assert.throws(() => parseStackConfig({ "inferstack:tier": "medium", "inferstack:app": JSON.stringify({ image: bad }) }),
      (e: Error) => e instanceof ConfigError && e.issues.some((i) => i.key === "inferstack:app.image"));
  }
  assert.deepEqual(parseEcrImageRef(stagingImage), { account: "210987654321", region: "us-east-1", repository: "inferstack-staging/app", digest: "sha256:" + "ab12".repeat(16) });
});

test("prod promoted to the image staging tested: no build, the task runs that digest and may pull it", async () => {
  const stack = await runUnderMocks("prod", { "inferstack:tier": "medium", "inferstack:app": JSON.stringify({ image: stagingImage }) }, main);
  const images = stack.resources.filter((r) => r.type === "docker:index/image:Image").map((r) => r.name);
  assert.ok(!images.includes("inferstack-prod-app"), "the app image is not built");
  assert.ok(images.includes("inferstack-prod-monitoring-prometheus"), "monitoring images still are");
  assert.equal(stack.outputs.appImage, stagingImage);
  const task = stack.resources.find((r) => r.type === "aws:ecs/taskDefinition:TaskDefinition" && r.name === "inferstack-prod-app")!;
  assert.equal(JSON.parse(task.inputs.containerDefinitions)[0].image, stagingImage);
  const policy = JSON.parse(stack.resources.find((r) => r.name === "inferstack-prod-app-execution" && r.type === "aws:iam/rolePolicy:RolePolicy")!.inputs.policy);
  const pull = policy.Statement.find((s: any) => s.Sid === "EcrPull");
  assert.ok(pull.Resource.includes("arn:aws:ecr:us-east-1:210987654321:repository/inferstack-staging/app"));
  // The stack's own repository still exists (and stays pullable) for the next build.
  assert.ok(stack.resources.some((r) => r.type === "aws:ecr/repository:Repository" && r.name === "inferstack-prod-app"));
});
