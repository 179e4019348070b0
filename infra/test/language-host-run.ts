/**
 * Runs the Pulumi program the way the nodejs language host does (@pulumi/pulumi/cmd/run/run.js),
 * under mocks, in its own process: config from PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS (set by
 * the host, pulumi-language-nodejs/main.go execRuntime), `process.chdir` to the program directory
 * (`--pwd`), the entry point resolved from Pulumi.yaml `main` and package.json, loaded with a
 * dynamic import, a default export required to stand alone, and called when it is a function.
 *
 * Usage: node infra/test/language-host-run.ts <projectRoot> <stack>
 * Prints one JSON line: { outputs, resources: [{ type, name, inputs }] } (secrets unwrapped).
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { runUnderMocks, unwrapSecrets } from "../offline/run-under-mocks.ts";
import { loadProject, resolveEntryPoint } from "./pulumi-cli.ts";

const [root = ".", stackName = "dev"] = process.argv.slice(2);
const projectRoot = resolve(root);
const project = loadProject(readFileSync(join(projectRoot, "Pulumi.yaml"), "utf8"));
const packageJson = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as {
  type?: string;
  main?: string;
  exports?: unknown;
};
const { pwd, entry } = resolveEntryPoint(project.main, packageJson, (p) => existsSync(join(projectRoot, p)));
const config = JSON.parse(process.env.PULUMI_CONFIG ?? "{}") as Record<string, string>;

// run.js: `if (pwd) process.chdir(pwd)` — every relative path the program or a provider sees starts here.
process.chdir(join(projectRoot, pwd));

const stack = await runUnderMocks(
  stackName,
  config,
  async () => {
    const mod = (await import(pathToFileURL(join(projectRoot, entry)).href)) as Record<string, unknown>;
    let programExport: unknown = mod;
    if (Object.getOwnPropertyDescriptor(mod, "default") !== undefined) {
      if (Object.keys(mod).length !== 1)
        throw new Error("expected entrypoint module to have either a default export or named exports but not both");
      programExport = mod.default;
    }
    const result = programExport instanceof Function ? await programExport() : programExport;
    return result as Record<string, unknown>;
  },
  { project: project.name },
);

process.stdout.write(
  `${JSON.stringify({
    cwd: process.cwd(),
    outputs: unwrapSecrets(stack.outputs),
    resources: stack.resources.map((r) => ({ type: r.type, name: r.name, inputs: unwrapSecrets(r.inputs) })),
  })}\n`,
);
