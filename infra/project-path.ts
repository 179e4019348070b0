/**
 * Paths into the repository for resource inputs. The Pulumi CLI runs the program, and every
 * provider plugin, in the program directory (`main: infra/`; pulumi/pulumi pkg/engine/project.go
 * getPwdMain, run.js `process.chdir(pwd)`, plugin.go `cmd.Dir = ctx.Pwd`), not the repository root.
 * Paths stay relative to that directory, so inputs do not differ between machines.
 */
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export const projectRoot = fileURLToPath(new URL("..", import.meta.url));

/** `p` (relative to the repository root) as seen from the current working directory. */
export function projectPath(p: string): string {
  return relative(process.cwd(), join(projectRoot, p)) || ".";
}
