/** Shared CLI plumbing: argument parsing with clear errors, and a main wrapper with exit codes. */
import { type ParseArgsConfig, parseArgs } from "node:util";

export class UsageError extends Error {}

export function parseCli<T extends NonNullable<ParseArgsConfig["options"]>>(
  usage: string,
  options: T,
  argv = process.argv.slice(2),
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${usage}`);
  }
}

/** Exits once stdout and stderr are flushed: to a pipe they are asynchronous, and a large plan is cut short otherwise. */
function exitAfterFlush(code: number): void {
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

/** Runs a CLI: usage errors exit 2, other failures exit 1, both with a message and no stack dump. */
export function runCli(main: () => Promise<number | undefined> | Promise<void>): void {
  main().then(
    (code) => exitAfterFlush(code ?? 0),
    (err: unknown) => {
      const e = err as Error;
      process.stderr.write(`${e instanceof UsageError ? "usage error: " : "error: "}${e.message ?? String(err)}\n`);
      if (process.env.DEBUG && e.stack) process.stderr.write(`${e.stack}\n`);
      exitAfterFlush(e instanceof UsageError ? 2 : 1);
    },
  );
}
