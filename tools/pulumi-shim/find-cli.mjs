// Where the real Pulumi CLI is: $PULUMI_CLI, then PATH outside node_modules (npm puts this shim
// there), then the installer's ~/.pulumi/bin. Shared by the shim and scripts that drive Pulumi.
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join, sep } from "node:path";

/** The one line a user sees when no CLI is found. */
export const missingCliMessage =
  "the Pulumi CLI is not installed: install it (https://www.pulumi.com/docs/install/) or point PULUMI_CLI at the binary";

/**
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {string | undefined} the CLI's path, or undefined when there is none
 */
export function findPulumiCli(env = process.env) {
  const exe = process.platform === "win32" ? "pulumi.exe" : "pulumi";
  const dirs = (env.PATH ?? "").split(delimiter).filter((d) => d && !d.includes(`${sep}node_modules${sep}`));
  const candidates = [
    env.PULUMI_CLI,
    ...dirs.map((d) => join(d, exe)),
    join(env.PULUMI_HOME ?? join(env.HOME ?? homedir(), ".pulumi"), "bin", exe),
  ].filter((c) => typeof c === "string" && c !== "");
  return candidates.find((c) => existsSync(c));
}
