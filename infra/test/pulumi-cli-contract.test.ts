// The contract between our files and the Pulumi CLI: for every stack, Pulumi.yaml and
// Pulumi.<stack>.yaml go through the CLI's own rules (infra/test/pulumi-cli.ts, ported from
// pulumi/pulumi's Go source), as committed and after exactly the `pulumi config set` lines our docs
// give; the merged config then runs the program the way the nodejs language host does
// (infra/test/language-host-run.ts: run.js's chdir, entry-point lookup and export rules).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  type ConfigSetCommand,
  configSet,
  loadProject,
  loadProjectStack,
  mergeConfig,
  type ProgramConfig,
  type Project,
  PulumiCliError,
  parseConfigSet,
  resolveEntryPoint,
  shellWords,
} from "./pulumi-cli.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const read = (p: string) => readFileSync(join(root, p), "utf8");
const stacks = ["local", "dev", "staging", "prod"] as const;
type Stack = (typeof stacks)[number];
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com";

const project = (): Project => loadProject(read("Pulumi.yaml"));

/** Runs the program in a child process as the language host would, with exactly `cfg`. */
function runProgram(stack: string, cfg: ProgramConfig): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(root, "infra/test/language-host-run.ts"), root, stack], {
      cwd: root,
      env: {
        ...process.env,
        PULUMI_CONFIG: JSON.stringify(cfg.config),
        PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(cfg.secretKeys),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", fail);
    child.on("close", (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}

interface Documented {
  source: string;
  command: ConfigSetCommand;
}

/** Lines of ```sh blocks and inline code spans that run `pulumi config set`, as argv. */
function configSetsIn(text: string, source: string): Documented[] {
  const found: Documented[] = [];
  let fenced = false;
  const substitute = (expr: string) => {
    if (expr === "cat ~/.ssh/id_ed25519.pub") return KEY;
    throw new Error(`${source}: no stand-in for $(${expr})`);
  };
  const add = (snippet: string) => {
    const normalized = snippet
      .trim()
      .replace(/^#\s*/, "")
      .replace(/^npm run -s pulumi --/, "pulumi")
      .replace(/^npx pulumi/, "pulumi");
    if (!/^pulumi config set /.test(normalized)) return;
    found.push({ source, command: parseConfigSet(shellWords(normalized, substitute)) });
  };
  for (const line of text.split("\n")) {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      continue;
    }
    if (fenced || /^#\s+(npx )?pulumi config set /.test(line)) add(line);
    else
      for (const m of line.matchAll(/`([^`]*pulumi[^`]* config set [^`]*(inferstack|aws):[^`]* [^`]+)`/g)) add(m[1]!);
  }
  return found;
}

function readmeDeploySection(): string {
  const readme = read("README.md");
  const start = readme.indexOf("## Deploy\n");
  return readme.slice(start, readme.indexOf("\n## ", start + 1));
}

/**
 * Each doc's steps, per stack they address: an explicit `--stack`, else the stack the passage is
 * about. A stack file's own header comment addresses that stack.
 */
function documentedSteps(): { doc: string; stack: Stack; commands: Documented[] }[] {
  const out: { doc: string; stack: Stack; commands: Documented[] }[] = [];
  const forStacks = (doc: string, cmds: Documented[], defaults: Stack[]) => {
    for (const stack of stacks) {
      const mine = cmds.filter((c) =>
        c.command.stack === undefined || c.command.stack === "$S"
          ? defaults.includes(stack)
          : c.command.stack === stack,
      );
      if (mine.length > 0) out.push({ doc, stack, commands: mine });
    }
  };
  for (const stack of stacks)
    forStacks(`Pulumi.${stack}.yaml`, configSetsIn(read(`Pulumi.${stack}.yaml`), `Pulumi.${stack}.yaml`), [stack]);
  forStacks("README.md#Deploy", configSetsIn(readmeDeploySection(), "README.md"), ["staging", "prod"]);
  forStacks("docs/deploy-docker.md", configSetsIn(read("docs/deploy-docker.md"), "docs/deploy-docker.md"), ["dev"]);
  forStacks("docs/architecture-aws.md", configSetsIn(read("docs/architecture-aws.md"), "docs/architecture-aws.md"), [
    "staging",
    "prod",
  ]);
  return out;
}

function applied(stack: Stack, commands: Documented[]): ProgramConfig {
  const p = project();
  const map = loadProjectStack(p, read(`Pulumi.${stack}.yaml`), `Pulumi.${stack}.yaml`);
  for (const { source, command } of commands) {
    try {
      configSet(p, map, command.key, command.value, command.opts);
    } catch (err) {
      throw new Error(`${source}: pulumi config set ${command.key}: ${(err as Error).message}`);
    }
  }
  return mergeConfig(stack, p, map);
}

test("Pulumi.yaml passes the CLI's project schema and Project.Validate, and the nodejs host's options", () => {
  const p = project();
  assert.equal(p.name, "inferstack");
  assert.equal(p.runtime.name, "nodejs");
  assert.equal(
    p.runtime.options.typescript,
    false,
    "Node's own type stripping runs the program, not the bundled ts-node",
  );
  // Every key keeps a description for readers of the file (`pulumi config` lists each with its value).
  for (const [key, t] of Object.entries(p.config))
    assert.ok(t.description && t.description.length > 20, `${key} has a description`);
});

test("every stack's committed file passes mergeConfig: no required key is missing, every type matches", () => {
  for (const stack of stacks) {
    const p = project();
    const cfg = mergeConfig(stack, p, loadProjectStack(p, read(`Pulumi.${stack}.yaml`), `Pulumi.${stack}.yaml`));
    // Project defaults reach the program for keys the stack leaves unset: `pulumi config` shows all of them.
    for (const key of Object.keys(p.config))
      assert.ok(`inferstack:${key}` in cfg.config, `${stack}: inferstack:${key} is handed to the program`);
  }
});

test("the CLI's rules as ported: a key declared without default or value is required in every stack", () => {
  const base = read("Pulumi.yaml");
  // The state this project was in before: description-only declarations.
  const descriptionOnly = loadProject(
    `${base}\n  extra:\n    description: "a key with only a description"\n`.replace(
      "\nconfig:\n",
      "\nconfig:\n  zone:\n    description: only a description\n",
    ),
  );
  const map = loadProjectStack(descriptionOnly, read("Pulumi.local.yaml"), "Pulumi.local.yaml");
  assert.throws(
    () => mergeConfig("local", descriptionOnly, map),
    (err: Error) =>
      err instanceof PulumiCliError &&
      err.message === "Stack 'local' is missing configuration values 'extra' and 'zone'",
  );
  // Type checks: an object key set to a top-level string (what `config set` without --path writes) fails.
  const p = project();
  const stackMap = loadProjectStack(p, "config:\n  inferstack:app: '{\"replicas\": 3}'\n", "Pulumi.x.yaml");
  assert.throws(() => mergeConfig("x", p, stackMap), /Stack 'x' with configuration key 'app' must be of type 'object'/);
  // `secret: true` on a key with a default is refused whenever the stack leaves it unset.
  const secretWithDefault = loadProject(
    base.replace(/( {2}grafanaAdminPassword:\n {4}type: string\n)/, "$1    secret: true\n"),
  );
  assert.equal(secretWithDefault.config.grafanaAdminPassword?.secret, true);
  assert.throws(
    () => mergeConfig("local", secretWithDefault, loadProjectStack(secretWithDefault, read("Pulumi.local.yaml"), "x")),
    /must be encrypted as it's secret/,
  );
  // Project schema: a declaration key the schema does not know fails the load.
  assert.throws(
    () => loadProject(base.replace("\nconfig:\n", "\nconfig:\n  zone:\n    required: true\n")),
    /#\/config\/zone: additionalProperties 'required' not allowed/,
  );
  assert.throws(
    () => loadProject(base.replace("    typescript: false", '    typescript: "false"')),
    /typescript option must be a boolean/,
  );
});

test("`pulumi config set --path` writes nested objects with coerced leaves; --secret writes a secure value", () => {
  const p = project();
  const map = loadProjectStack(p, read("Pulumi.dev.yaml"), "Pulumi.dev.yaml");
  configSet(p, map, "inferstack:app.replicas", "3", { path: true });
  configSet(p, map, "inferstack:monitoring.nodeExporter", "true", { path: true });
  configSet(p, map, "inferstack:app.cpu", "0.5", { path: true });
  configSet(p, map, "inferstack:host.sshPublicKey", KEY, { path: true });
  configSet(p, map, "inferstack:grafanaAdminPassword", "s3cret-pass", { secret: true });
  assert.deepEqual(JSON.parse(map.get("inferstack:app")!.value), { replicas: 3, cpu: "0.5" });
  assert.deepEqual(JSON.parse(map.get("inferstack:host")!.value), { instanceType: "t3.micro", sshPublicKey: KEY });
  assert.equal(map.get("inferstack:grafanaAdminPassword")!.secure, true);
  assert.throws(() => configSet(p, map, "inferstack:grafanaAdminPassword", "s3cret-pass"), /looks like a secret/);
  // docs/runbook.md: one receiver field as a secret: an object with a secure leaf, which only an
  // untyped declaration accepts (a typed key must match its type).
  configSet(p, map, "inferstack:alertReceivers.slack.webhookUrl", "https://hooks.slack.com/services/T0/B0/x", {
    path: true,
    secret: true,
  });
  assert.deepEqual(map.get("inferstack:alertReceivers")!, {
    value: JSON.stringify({
      slack: { webhookUrl: { secure: "v1:aHR0cHM6Ly9ob29rcy5zbGFjay5jb20vc2VydmljZXMvVDAvQjAveA==" } },
    }),
    secure: true,
    object: true,
  });
  const cfg = mergeConfig("dev", p, map);
  assert.equal(cfg.config["inferstack:grafanaAdminPassword"], "s3cret-pass");
  assert.deepEqual(JSON.parse(cfg.config["inferstack:alertReceivers"]!), {
    slack: { webhookUrl: "https://hooks.slack.com/services/T0/B0/x" },
  });
  assert.deepEqual(cfg.secretKeys, ["inferstack:alertReceivers", "inferstack:grafanaAdminPassword"]);
});

test("the nodejs language host finds infra/index.ts and a lone default export (run.js)", async () => {
  const pkg = JSON.parse(read("package.json")) as { type?: string; main?: string; exports?: unknown };
  const p = project();
  const { pwd, entry } = resolveEntryPoint(p.main, pkg, (rel) => existsSync(join(root, rel)));
  assert.equal(pwd, "infra");
  assert.equal(entry, "infra/index.ts");
  const mod = (await import("../index.ts")) as Record<string, unknown>;
  assert.deepEqual(Object.keys(mod), ["default"]);
  assert.equal(typeof mod.default, "function");
});

test("the docs' `pulumi config set` steps parse and address known stacks", () => {
  const steps = documentedSteps();
  const covered = new Set(steps.map((s) => s.stack));
  for (const stack of ["dev", "staging", "prod"] as const)
    assert.ok(covered.has(stack), `docs give config steps for ${stack}`);
  for (const { doc, stack, commands } of steps) {
    for (const { command } of commands)
      assert.match(command.key, /^(inferstack|aws):/, `${doc} (${stack}): ${command.key}`);
  }
});

/** Runs each case's program, two at a time (two cores). */
async function runAll(cases: { label: string; stack: Stack; cfg: ProgramConfig }[]) {
  const results = new Map<string, Awaited<ReturnType<typeof runProgram>>>();
  const queue = [...cases];
  await Promise.all(
    [0, 1].map(async () => {
      for (let c = queue.shift(); c; c = queue.shift()) results.set(c.label, await runProgram(c.stack, c.cfg));
    }),
  );
  return results;
}

test("each stack as committed runs under the language host's rules; dev stops only for the operator's SSH key", async () => {
  const cases = stacks.map((stack) => ({ label: stack, stack, cfg: applied(stack, []) }));
  const results = await runAll(cases);
  for (const { label, stack } of cases) {
    const r = results.get(label)!;
    if (stack === "dev") {
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /inferstack:host\.sshPublicKey/, r.stderr.slice(-2000));
      continue;
    }
    assert.equal(r.code, 0, `${label}:\n${r.stderr.slice(-3000)}`);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { cwd: string; outputs: Record<string, unknown> };
    assert.equal(out.cwd, join(root, "infra"), "the program runs in the directory run.js changes to");
    assert.equal(typeof out.outputs.url, "string");
    assert.ok(Number(out.outputs.estimatedMonthlyCost) >= 0);
    // The secret keys' default "" means unset: a generated password, never an empty one.
    if (stack === "local") assert.match(String(out.outputs.grafanaAdminPassword), /^\S{16,}$/);
  }
});

test("after exactly the documented `pulumi config set` steps, every stack passes the CLI and runs", async () => {
  const cases = documentedSteps().map(({ doc, stack, commands }) => ({
    label: `${doc} → ${stack}`,
    stack,
    cfg: applied(stack, commands),
  }));
  assert.ok(cases.length >= 5);
  const results = await runAll(cases);
  for (const { label, stack } of cases) {
    const r = results.get(label)!;
    assert.equal(r.code, 0, `${label}:\n${r.stderr.slice(-3000)}`);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
      outputs: Record<string, unknown>;
      resources: { type: string; inputs: Record<string, unknown> }[];
    };
    assert.equal(out.outputs.tier, { local: "local", dev: "free", staging: "small", prod: "medium" }[stack], label);
    assert.match(String(out.outputs.url), /^https:\/\//, label);
  }
});

test("paths handed to providers resolve from the program directory the CLI runs in", async () => {
  const results = await runAll(
    (["local", "staging"] as const).map((stack) => ({ label: stack, stack, cfg: applied(stack, []) })),
  );
  for (const [label, r] of results) {
    assert.equal(r.code, 0, `${label}: ${r.stderr.slice(-3000)}`);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
      cwd: string;
      resources: { type: string; name: string; inputs: { build?: { context: string; dockerfile?: string } } }[];
    };
    const images = out.resources.filter((x) => x.type === "docker:index/image:Image" && x.inputs.build);
    assert.ok(images.length > 0, label);
    for (const image of images) {
      const build = image.inputs.build!;
      // The Docker provider plugin's cwd is the program directory too (plugin.go: cmd.Dir = ctx.Pwd).
      const context = resolve(out.cwd, build.context);
      const dockerfile = resolve(out.cwd, build.dockerfile ?? join(build.context, "Dockerfile"));
      assert.ok(existsSync(dockerfile), `${image.name}: ${build.dockerfile} does not exist from ${out.cwd}`);
      assert.ok(existsSync(context), `${image.name}: build context ${context}`);
    }
  }
});
