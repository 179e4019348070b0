/**
 * Process entry: reads the environment, serves, reloads models on SIGHUP and shuts down
 * gracefully on SIGTERM/SIGINT (stop accepting, finish in-flight requests, exit within a bound).
 * WEB_CONCURRENCY > 1 forks that many processes sharing the port (node:cluster); see
 * docs/benchmarks.md for why processes and not worker threads.
 */
import cluster from "node:cluster";
import { availableParallelism } from "node:os";
import { ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./logger.ts";
import { containerMemoryLimit } from "./memory.ts";
import { startServer } from "./server.ts";

function fail(message: string): never {
  process.stderr.write(`${JSON.stringify({ level: "fatal", service: "inferstack", msg: message })}\n`);
  process.exit(78); // EX_CONFIG
}

let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) fail(err.message);
  throw err;
}

const processes = config.WEB_CONCURRENCY === 0 ? availableParallelism() : config.WEB_CONCURRENCY;

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
  logger.info({ processes, memoryLimitMiB: memoryLimit === undefined ? null : Math.round(memoryLimit / 2 ** 20) }, "starting worker processes");
  let stopping = false;
  for (let i = 0; i < processes; i++) cluster.fork();
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    logger.error({ pid: worker.process.pid, code, signal }, "worker exited; starting a replacement");
    cluster.fork();
  });
  process.on("SIGHUP", () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGHUP");
  });
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping workers");
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
    setTimeout(() => process.exit(1), config.SHUTDOWN_TIMEOUT_MS + 5_000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else {
  const logger = createLogger(config.LOG_LEVEL, { sync: false });
  const server = await startServer({ modelsDir: config.MODELS_DIR, logger }).catch((err: unknown) => {
    logger.fatal({ err }, "cannot start");
    logger.flush();
    process.exit(1);
  });
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
