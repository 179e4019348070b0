#!/usr/bin/env node
// `npx pulumi` would otherwise miss a CLI installed outside npm's bin folders and fetch an
// unrelated npm package. This bin finds the real Pulumi CLI (PATH outside node_modules, then
// the installer's ~/.pulumi/bin) and runs it with node_modules/.bin first on PATH, so Pulumi's
// nodejs language host uses the project's pinned Node 24.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join, sep } from "node:path";

const exe = process.platform === "win32" ? "pulumi.exe" : "pulumi";
const dirs = (process.env.PATH ?? "").split(delimiter).filter((d) => d && !d.includes(`${sep}node_modules${sep}`));
const candidates = [
  process.env.PULUMI_CLI,
  ...dirs.map((d) => join(d, exe)),
  join(process.env.PULUMI_HOME ?? join(homedir(), ".pulumi"), "bin", exe),
].filter(Boolean);
const cli = candidates.find((c) => existsSync(c));
if (!cli) {
  console.error(
    "pulumi: the Pulumi CLI is not installed.\n" +
      "Install it (https://www.pulumi.com/docs/install/), or point PULUMI_CLI at the binary, then run again.",
  );
  process.exit(127);
}
const child = spawn(cli, process.argv.slice(2), { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => (signal ? process.kill(process.pid, signal) : process.exit(code ?? 1)));
