import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const shim = resolve("node_modules/.bin/pulumi");

// `npx pulumi up --stack local` is the README's main job: the shim must reach a CLI installed
// outside npm (here a stand-in script in ~/.pulumi/bin) and hand it this project's Node.
test("npx pulumi runs the installed CLI with the project's Node first on PATH", async () => {
  const home = await mkdtemp(join(tmpdir(), "pulumi-shim-"));
  try {
    await mkdir(join(home, ".pulumi", "bin"), { recursive: true });
    const fake = join(home, ".pulumi", "bin", "pulumi");
    await writeFile(fake, '#!/bin/sh\necho "args=$* node=$(node --version)"\nexit 3\n');
    await chmod(fake, 0o755);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: home,
      PATH: `${resolve("node_modules/.bin")}:/usr/bin:/bin`,
    };
    delete env.PULUMI_HOME;
    const err = await run(shim, ["up", "--stack", "local"], { env }).catch((e) => e);
    assert.equal(err.code, 3, "the CLI's exit code is passed through");
    assert.match(err.stdout, /^args=up --stack local node=v2[2-9]\./);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test("without a CLI the shim says how to install one", async () => {
  const home = await mkdtemp(join(tmpdir(), "pulumi-shim-"));
  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: home,
      PATH: `${resolve("node_modules/.bin")}:/usr/bin:/bin`,
    };
    delete env.PULUMI_HOME;
    const err = await run(shim, ["up"], { env }).catch((e) => e);
    assert.equal(err.code, 127);
    assert.equal(
      err.stderr,
      "pulumi: the Pulumi CLI is not installed: install it (https://www.pulumi.com/docs/install/) or point PULUMI_CLI at the binary\n",
    );
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
