#!/usr/bin/env node
// `npx pulumi` would otherwise miss a CLI installed outside npm's bin folders and fetch an
// unrelated npm package. This bin finds the real Pulumi CLI (find-cli.mjs) and runs it with
// node_modules/.bin first on PATH, so Pulumi's nodejs language host uses the project's pinned Node 24.
import { spawn } from "node:child_process";
import { findPulumiCli, missingCliMessage } from "./find-cli.mjs";

const cli = findPulumiCli();
if (!cli) {
  console.error(`pulumi: ${missingCliMessage}`);
  process.exit(127);
}
const child = spawn(cli, process.argv.slice(2), { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => (signal ? process.kill(process.pid, signal) : process.exit(code ?? 1)));
