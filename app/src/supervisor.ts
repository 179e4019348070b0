/**
 * The primary process when several serve (node:cluster): forks one worker per slot, restarts a
 * worker that exits with exponential backoff (p-retry), and gives up when a slot's workers keep
 * failing before they listen: the primary then exits non-zero with the workers' own error, so
 * Docker's restart policy or ECS sees the failure instead of a respawn loop.
 */
import cluster, { type Worker } from "node:cluster";
import pRetry, { AbortError } from "p-retry";
import type { Logger } from "pino";

/** What a worker sends the primary before it exits because it could not start. */
export interface StartFailedMessage {
  type: "inferstack:start-failed";
  error: string;
}

export function isStartFailedMessage(m: unknown): m is StartFailedMessage {
  return typeof m === "object" && m !== null && (m as { type?: unknown }).type === "inferstack:start-failed";
}

export interface SupervisorOptions {
  processes: number;
  logger: Logger;
  /** Bound on the workers' drain after SIGTERM (they enforce their own; this is the backstop). */
  shutdownTimeoutMs: number;
  /** Worker starts in a row that may fail (exit before listening) before the primary gives up. */
  startAttempts?: number;
  /** First restart delay; doubles per failure in a row, up to maxRestartDelayMs. */
  minRestartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** A worker that served this long before exiting is restarted at once, its backoff reset. */
  stableAfterMs?: number;
}

class WorkerExit extends Error {
  readonly atStart: boolean;
  readonly exitCode: number;
  constructor(message: string, atStart: boolean, exitCode: number) {
    super(message);
    this.atStart = atStart;
    this.exitCode = exitCode;
  }
}

export function supervise(opts: SupervisorOptions): void {
  const { processes, logger } = opts;
  const startAttempts = opts.startAttempts ?? 5;
  const stableAfterMs = opts.stableAfterMs ?? 60_000;
  const stopping = new AbortController();
  let exitCode = 0;

  /** One worker's life: rejects when it exits unasked, resolves after a stable run or at stop. */
  const runWorker = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const worker: Worker = cluster.fork();
      let listeningAt: number | undefined;
      let cause: string | undefined;
      worker.once("listening", () => {
        listeningAt = performance.now();
      });
      worker.on("message", (m: unknown) => {
        if (isStartFailedMessage(m)) cause = m.error;
      });
      worker.once("exit", (code, signal) => {
        if (stopping.signal.aborted) return resolve();
        const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
        const workerPid = worker.process.pid;
        if (listeningAt === undefined) {
          const message = cause ? `worker could not start: ${cause}` : `worker ${how} before listening`;
          logger.error({ workerPid, code, signal }, message);
          return reject(new WorkerExit(message, true, code || 1));
        }
        const servedMs = performance.now() - listeningAt;
        logger.error(
          { workerPid, code, signal, servedMs: Math.round(servedMs) },
          `worker ${how}; starting a replacement`,
        );
        if (servedMs >= stableAfterMs) resolve();
        else reject(new WorkerExit(`worker ${how} after ${Math.round(servedMs)} ms`, false, code || 1));
      });
    });

  const runSlot = async (slot: number): Promise<void> => {
    let startFailures = 0;
    while (!stopping.signal.aborted) {
      await pRetry(
        async () => {
          try {
            await runWorker();
            startFailures = 0;
          } catch (err) {
            startFailures = err instanceof WorkerExit && err.atStart ? startFailures + 1 : 0;
            if (startFailures >= startAttempts) throw new AbortError(err as Error);
            throw err;
          }
        },
        {
          retries: Infinity,
          factor: 2,
          minTimeout: opts.minRestartDelayMs ?? 250,
          maxTimeout: opts.maxRestartDelayMs ?? 30_000,
          randomize: true,
          signal: stopping.signal,
          onFailedAttempt: ({ attemptNumber }) => {
            if (!stopping.signal.aborted)
              logger.warn({ slot, failuresInARow: attemptNumber }, "restarting the worker after a backoff");
          },
        },
      ).catch((err: unknown) => {
        if (stopping.signal.aborted) return;
        const failure = err instanceof WorkerExit ? err : ((err as AbortError).originalError ?? err);
        giveUp(failure as Error);
      });
    }
  };

  const giveUp = (err: Error) => {
    if (stopping.signal.aborted) return;
    exitCode = err instanceof WorkerExit ? err.exitCode : 1;
    logger.fatal(
      { attempts: startAttempts, cause: err.message, exitCode },
      `workers keep failing at start; exiting: ${err.message}`,
    );
    stop();
  };

  const stop = () => {
    if (stopping.signal.aborted) return;
    stopping.abort(new Error("stopping"));
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    if (workers.length === 0) process.exit(exitCode);
    for (const w of workers) w.process.kill("SIGTERM");
    setTimeout(() => process.exit(exitCode || 1), opts.shutdownTimeoutMs + 5_000).unref();
  };

  cluster.on("exit", () => {
    if (stopping.signal.aborted && Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode);
  });
  process.on("SIGHUP", () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGHUP");
  });
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, "stopping workers");
    stop();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  for (let slot = 0; slot < processes; slot++) void runSlot(slot);
}
