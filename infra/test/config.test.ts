import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { ConfigError, type DockerStackConfig, parseStackConfig } from "../config.ts";
import { containerMemoryBudget, deployDockerTier } from "../platforms/docker.ts";
import { presets, tierNames } from "../presets.ts";
import { main } from "../program.ts";
import { presetSchema, settingsByPlatform } from "../schema.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com";

/** The issues of the ConfigError `fn` throws (fails the test when it does not throw one). */
function issuesOf(fn: () => unknown): { key: string; message: string }[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.match(error.message, /Invalid stack configuration/);
    return error.issues;
  }
  assert.fail("expected a ConfigError");
}

/** The config of a Docker tier (fails the test for an AWS one). */
function dockerConfig(raw: Record<string, string>): DockerStackConfig {
  const cfg = parseStackConfig(raw);
  assert.equal(cfg.platform, "docker");
  return cfg;
}

/** Flattens a Pulumi.<stack>.yaml `config:` block into what `pulumi.runtime.allConfig()` returns. */
function stackConfig(file: string): Record<string, string> {
  const doc = parse(readFileSync(`${root}${file}`, "utf8")) as { config?: Record<string, unknown> };
  return Object.fromEntries(
    Object.entries(doc.config ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
}

test("every tier preset is valid on its own", () => {
  for (const tier of tierNames) {
    const cfg = parseStackConfig({ "inferstack:tier": tier });
    assert.equal(cfg.tier, tier);
    const { tier: _tier, ...values } = cfg;
    assert.deepEqual(values, presetSchema.parse(presets[tier]));
  }
});

test("the tier defaults to local and keys of other namespaces are ignored", () => {
  const cfg = parseStackConfig({ "aws:region": "eu-west-1", "docker:host": "unix:///var/run/docker.sock" });
  assert.equal(cfg.tier, "local");
  assert.equal(cfg.platform, "docker");
  assert.equal(cfg.domain, "localhost");
});

test("structured overrides deep-merge onto the preset and keep the other values", () => {
  const cfg = dockerConfig({
    "inferstack:tier": "local",
    "inferstack:app": JSON.stringify({ replicas: 3, logLevel: "debug" }),
    "inferstack:edge": JSON.stringify({ httpsPort: 9443 }),
  });
  assert.equal(cfg.app.replicas, 3);
  assert.equal(cfg.app.logLevel, "debug");
  assert.equal(cfg.app.memoryMiB, presets.local.app.memoryMiB);
  assert.equal(cfg.edge.httpsPort, 9443);
  assert.equal(cfg.edge.tls, "internal");
});

test("a plain string override replaces a string value", () => {
  assert.equal(
    parseStackConfig({ "inferstack:tier": "free", "inferstack:domain": "api.example.com" }).domain,
    "api.example.com",
  );
});

test("an unknown tier fails naming inferstack:tier and the allowed values", () => {
  const issues = issuesOf(() => parseStackConfig({ "inferstack:tier": "huge" }));
  assert.equal(issues[0]?.key, "inferstack:tier");
  assert.match(issues[0]!.message, /local, free, small, medium/);
  assert.match(issues[0]!.message, /"huge"/);
});

test("a value breaking a rule fails naming the full key, the rule and the value", () => {
  const issues = issuesOf(() =>
    parseStackConfig({ "inferstack:tier": "local", "inferstack:app": JSON.stringify({ replicas: 0 }) }),
  );
  assert.deepEqual(
    issues.map((i) => i.key),
    ["inferstack:app.replicas"],
  );
  assert.match(issues[0]!.message, /(>=|≥|too small).*1|at least 1/i);
  assert.match(issues[0]!.message, /got 0/);
});

test("a wrongly typed value fails naming the key", () => {
  const issues = issuesOf(() =>
    parseStackConfig({ "inferstack:tier": "local", "inferstack:postgres": JSON.stringify({ memoryMiB: "lots" }) }),
  );
  assert.deepEqual(
    issues.map((i) => i.key),
    ["inferstack:postgres.memoryMiB"],
  );
});

test("every issue is reported at once, not just the first", () => {
  const issues = issuesOf(() =>
    parseStackConfig({
      "inferstack:tier": "local",
      "inferstack:app": JSON.stringify({ replicas: -1, logLevel: "loud" }),
      "inferstack:backups": JSON.stringify({ schedule: "nightly" }),
    }),
  );
  assert.deepEqual(issues.map((i) => i.key).sort(), [
    "inferstack:app.logLevel",
    "inferstack:app.replicas",
    "inferstack:backups.schedule",
  ]);
  assert.match(issues.find((i) => i.key === "inferstack:backups.schedule")!.message, /cron/);
});

test("typos in top-level and nested keys fail instead of being ignored", () => {
  assert.deepEqual(
    issuesOf(() => parseStackConfig({ "inferstack:replicas": "3" })).map((i) => i.key),
    ["inferstack:replicas"],
  );
  const nested = issuesOf(() => parseStackConfig({ "inferstack:app": JSON.stringify({ replica: 3 }) }));
  assert.deepEqual(
    nested.map((i) => i.key),
    ["inferstack:app.replica"],
  );
  assert.match(nested[0]!.message, /not a known setting/);
});

test("each platform takes only its own settings, and says which platform a misplaced one belongs to", () => {
  const onDocker = issuesOf(() =>
    parseStackConfig({ "inferstack:tier": "local", "inferstack:autoscaling": JSON.stringify({ enabled: true }) }),
  );
  assert.deepEqual(
    onDocker.map((i) => i.key),
    ["inferstack:autoscaling"],
  );
  assert.match(onDocker[0]!.message, /not a known setting on docker tiers \(it configures aws tiers\)/);
  const onAws = issuesOf(() =>
    parseStackConfig({ "inferstack:tier": "small", "inferstack:host": JSON.stringify({ instanceType: "t3.micro" }) }),
  );
  assert.deepEqual(
    onAws.map((i) => i.key),
    ["inferstack:host"],
  );
  assert.deepEqual(
    issuesOf(() =>
      parseStackConfig({ "inferstack:tier": "small", "inferstack:postgres": JSON.stringify({ memoryMiB: 256 }) }),
    ).map((i) => i.key),
    ["inferstack:postgres.memoryMiB"],
  );
  assert.deepEqual(
    issuesOf(() => parseStackConfig({ "inferstack:tier": "local", "inferstack:platform": "aws" })).map((i) => i.key),
    ["inferstack:platform"],
  );
});

test("optional settings are known without being in a preset", () => {
  const cfg = dockerConfig({
    "inferstack:tier": "free",
    "inferstack:edge": JSON.stringify({ acmeEmail: "ops@example.com" }),
  });
  assert.equal(cfg.edge.acmeEmail, "ops@example.com");
  assert.deepEqual(
    issuesOf(() =>
      parseStackConfig({
        "inferstack:tier": "free",
        "inferstack:edge": JSON.stringify({ acmeEmail: "not an address" }),
      }),
    ).map((i) => i.key),
    ["inferstack:edge.acmeEmail"],
  );
  assert.deepEqual(
    issuesOf(() =>
      parseStackConfig({
        "inferstack:tier": "medium",
        "inferstack:edge": JSON.stringify({ acmeEmail: "ops@example.com" }),
      }),
    ).map((i) => i.key),
    ["inferstack:edge.acmeEmail"],
  );
});

test("cross-field rules name the key to change", () => {
  assert.deepEqual(
    issuesOf(() =>
      parseStackConfig({ "inferstack:tier": "small", "inferstack:autoscaling": JSON.stringify({ min: 5, max: 2 }) }),
    ).map((i) => i.key),
    ["inferstack:autoscaling.min"],
  );
  assert.deepEqual(
    issuesOf(() => parseStackConfig({ "inferstack:tier": "free", "inferstack:domain": "api.other.org" })).map(
      (i) => i.key,
    ),
    ["inferstack:domain"],
  );
  assert.deepEqual(
    issuesOf(() =>
      parseStackConfig({ "inferstack:tier": "local", "inferstack:edge": JSON.stringify({ tls: "letsencrypt" }) }),
    ).map((i) => i.key),
    ["inferstack:edge.tls"],
  );
});

test("host.sshPublicKey accepts OpenSSH public keys only", () => {
  const ok = dockerConfig({ "inferstack:tier": "free", "inferstack:host": JSON.stringify({ sshPublicKey: KEY }) });
  assert.equal(ok.host?.sshPublicKey, KEY);
  assert.equal(ok.host?.instanceType, "t3.micro");
  const issues = issuesOf(() =>
    parseStackConfig({
      "inferstack:tier": "free",
      "inferstack:host": JSON.stringify({ sshPublicKey: "-----BEGIN OPENSSH PRIVATE KEY-----" }),
    }),
  );
  assert.deepEqual(
    issues.map((i) => i.key),
    ["inferstack:host.sshPublicKey"],
  );
  assert.match(issues[0]!.message, /OpenSSH public key/);
  assert.deepEqual(
    issuesOf(() =>
      parseStackConfig({ "inferstack:tier": "free", "inferstack:host": JSON.stringify({ adminCidr: "0.0.0.0" }) }),
    ).map((i) => i.key),
    ["inferstack:host.adminCidr"],
  );
});

test("keys the stack leaves unset arrive as Pulumi.yaml's defaults and change nothing, whatever the platform", () => {
  for (const tier of tierNames) {
    const defaults = Object.fromEntries(
      [...settingsByPlatform.docker, ...settingsByPlatform.aws].map((k) => [
        `inferstack:${k}`,
        k === "domain" || k === "platform" ? "" : "{}",
      ]),
    );
    const { tier: _tier, ...values } = parseStackConfig({ ...defaults, "inferstack:tier": tier });
    assert.deepEqual(values, presetSchema.parse(presets[tier]), tier);
  }
});

test("secret settings are not part of the validated config", () => {
  const cfg = parseStackConfig({
    "inferstack:tier": "local",
    "inferstack:alertReceivers": "{}",
    "inferstack:grafanaAdminPassword": "x",
  });
  assert.equal((cfg as unknown as Record<string, unknown>).alertReceivers, undefined);
});

test("the Docker tiers reject what they cannot run, naming the key, before declaring anything", () => {
  const free = (overrides: Record<string, unknown>) =>
    dockerConfig({
      "inferstack:tier": "free",
      ...Object.fromEntries(Object.entries(overrides).map(([k, v]) => [`inferstack:${k}`, JSON.stringify(v)])),
    });
  assert.deepEqual(
    issuesOf(() => deployDockerTier(free({}))).map((i) => i.key),
    ["inferstack:host.sshPublicKey"],
  );
  // A second 288 MiB replica does not fit the 1 GiB host beside the other containers.
  const tooBig = issuesOf(() => deployDockerTier(free({ host: { sshPublicKey: KEY }, app: { replicas: 2 } })));
  assert.deepEqual(
    tooBig.map((i) => i.key),
    ["inferstack:app.memoryMiB"],
  );
  assert.match(tooBig[0]!.message, /1024 MiB of t3\.micro/);
  assert.deepEqual(
    issuesOf(() => deployDockerTier(free({ host: { sshPublicKey: KEY }, redis: { memoryMiB: 0 } }))).map((i) => i.key),
    ["inferstack:redis.memoryMiB"],
  );
  assert.deepEqual(
    issuesOf(() =>
      deployDockerTier(dockerConfig({ "inferstack:tier": "local", "inferstack:edge": JSON.stringify({ tls: "acm" }) })),
    ).map((i) => i.key),
    ["inferstack:edge.tls"],
  );
});

test("the free preset's container limits fit the 1 GiB host", () => {
  const budget = containerMemoryBudget(dockerConfig({ "inferstack:tier": "free" }));
  const total = Object.values(budget).reduce((a, b) => a + b, 0);
  assert.ok(total <= 1024, `free tier containers sum to ${total} MiB: ${JSON.stringify(budget)}`);
});

test("every stack file validates and selects the documented tier", () => {
  const expected: Record<string, string> = { local: "local", dev: "free", staging: "small", prod: "medium" };
  for (const [stack, tier] of Object.entries(expected)) {
    const raw = stackConfig(`Pulumi.${stack}.yaml`);
    assert.equal(raw["inferstack:tier"], tier, `Pulumi.${stack}.yaml`);
    assert.equal(parseStackConfig(raw).tier, tier);
    // No secrets in stack files: they are set with `pulumi config set --secret`.
    for (const key of Object.keys(raw))
      assert.ok(!/password|secret|token|receivers/i.test(key), `${key} in Pulumi.${stack}.yaml`);
  }
});

test("Pulumi.yaml runs infra/ with Node's type stripping and documents every setting", () => {
  const project = parse(readFileSync(`${root}Pulumi.yaml`, "utf8")) as {
    name: string;
    main: string;
    runtime: { name: string; options: Record<string, unknown> };
    config: Record<string, { description?: string }>;
  };
  assert.equal(project.name, "inferstack");
  assert.equal(project.main, "infra/");
  assert.deepEqual(project.runtime, { name: "nodejs", options: { typescript: false, packagemanager: "npm" } });
  const settings = new Set([...settingsByPlatform.docker, ...settingsByPlatform.aws]);
  for (const key of ["tier", ...settings, "alertReceivers", "grafanaAdminPassword"]) {
    assert.ok((project.config[key]?.description ?? "").length > 20, `Pulumi.yaml config.${key} needs a description`);
  }
});

test("Pulumi's nodejs runtime finds the program where Pulumi.yaml says", async () => {
  // For an ES module package Pulumi loads <main>/index.js, else index.mjs, else index.ts.
  assert.equal(JSON.parse(readFileSync(`${root}package.json`, "utf8")).type, "module");
  assert.ok(
    !existsSync(`${root}infra/index.js`) && !existsSync(`${root}infra/index.mjs`),
    "a JS index would shadow index.ts",
  );
  const entry = (await import("../index.ts")) as Record<string, unknown>;
  assert.deepEqual(Object.keys(entry), ["default"], "only a default export: Pulumi rejects default plus named exports");
  assert.equal(entry.default, main);
});
