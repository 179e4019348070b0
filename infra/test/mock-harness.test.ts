import assert from "node:assert/strict";
import { test } from "node:test";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { mockPasswordFor } from "../offline/cloud-mocks.ts";
import { runUnderMocks } from "../offline/run-under-mocks.ts";

// The harness is what every infra test and `npm run plan` trust: check it sees resources,
// outputs, and tells a secret input from a leaked one.
test("runUnderMocks collects resources, outputs and plain-text secret leaks", async () => {
  const stack = await runUnderMocks("harness", { "inferstack:tier": "local" }, async () => {
    const password = new random.RandomPassword("db-password", { length: 24, special: false });
    new docker.Container("safe", {
      image: "postgres",
      envs: [pulumi.interpolate`POSTGRES_PASSWORD=${password.result}`],
    });
    new docker.Container("derived", {
      image: "postgres",
      envs: [password.result.apply((p) => `POSTGRES_PASSWORD=${p}`)],
    });
    const unsafe = pulumi.unsecret(password.result);
    new docker.Container("leaky2", { image: "postgres", envs: [pulumi.interpolate`PW=${unsafe}`] });
    return { url: pulumi.output("https://localhost:8443"), config: new pulumi.Config("inferstack").require("tier") };
  });
  assert.deepEqual(stack.outputs, { url: "https://localhost:8443", config: "local" });
  assert.deepEqual(
    stack.resources
      .filter((r) => r.custom)
      .map((r) => r.type)
      .sort(),
    [
      "docker:index/container:Container",
      "docker:index/container:Container",
      "docker:index/container:Container",
      "random:index/randomPassword:RandomPassword",
    ],
  );
  const leaks = await stack.plainSecrets([mockPasswordFor("db-password")]);
  assert.deepEqual(
    leaks.map((l) => l.resource),
    ["docker:index/container:Container::leaky2"],
  );
});
