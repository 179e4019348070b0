/**
 * Process entry: reads the environment, serves, reloads models on SIGHUP and shuts down
 * gracefully on SIGTERM/SIGINT (stop accepting, finish in-flight requests, exit within a bound).
 * One process serves per CPU the container may use (cpu.ts; WEB_CONCURRENCY overrides): with more
 * than one, this process supervises workers sharing the port (node:cluster, supervisor.ts); see
 * docs/benchmarks.md for why processes and not worker threads.
 */
import cluster from "node:cluster";
import { type AppConfig, ConfigError, loadConfig } from "./config.ts";
import { processCount } from "./cpu.ts";
import { createLogger } from "./logger.ts";
import { containerMemoryLimit } from "./memory.ts";
import { type StartFailedMessage, supervise } from "./supervisor.ts";

const EX_CONFIG = 78;

function fail(message: string): never {
  process.stderr.write(`${JSON.stringify({ level: "fatal", service: "inferstack", msg: message })}\n`);
  process.exit(EX_CONFIG);
}

let config: AppConfig;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) fail(err.message);
  throw err;
}

const processes = processCount(config.WEB_CONCURRENCY);

if (processes > 1 && cluster.isPrimary) {
  const logger = createLogger(config.LOG_LEVEL);
  // Every worker would size its heap from the whole container limit: give each its share.
  const heapFlag = /--max-old-space-size/.test(`${process.execArgv.join(" ")} ${process.env.NODE_OPTIONS ?? ""}`);
  const memoryLimit = containerMemoryLimit();
  if (memoryLimit !== undefined) {
    const percent = Math.max(1, Math.floor(config.HEAP_PERCENT_OF_MEMORY / processes));
    if (!heapFlag || /--max-old-space-size-percentage/.test(process.env.NODE_OPTIONS ?? "")) {
      cluster.setupPrimary({ execArgv: [...process.execArgv, `--max-old-space-size-percentage=${percent}`] });
    }
  }
  logger.info(
    { processes, memoryLimitMiB: memoryLimit === undefined ? null : Math.round(memoryLimit / 2 ** 20) },
    "starting worker processes",
  );
  supervise({ processes, logger, shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS });
} else {
  const logger = createLogger(config.LOG_LEVEL, { sync: false });
  // Imported here: the supervisor never serves, so it does not load ONNX Runtime and the HTTP stack.
  const { startServer } = await import("./server.ts");
  const server = await startServer({ modelsDir: config.MODELS_DIR, logger, listenAfterLoad: cluster.isWorker }).catch(
    (err: unknown) => {
      logger.fatal({ err }, "cannot start");
      logger.flush();
      const code = err instanceof ConfigError ? EX_CONFIG : 1;
      // A worker tells the supervisor why, so the primary can exit with the cause.
      if (cluster.isWorker && process.send) {
        const message: StartFailedMessage = {
          type: "inferstack:start-failed",
          error: (err as Error).message ?? String(err),
        };
        process.send(message, () => process.exit(code));
        return new Promise<never>(() => undefined);
      }
      process.exit(code);
    },
  );
  process.on("SIGHUP", () => {
    logger.info("SIGHUP: reloading the model repository");
    void server.reload();
  });
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "signal received");
    // The drain is bounded inside close(); this guards against anything else hanging.
    setTimeout(() => {
      logger.error("shutdown exceeded its bound; exiting");
      logger.flush();
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS + 5_000).unref();
    server.close().then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
