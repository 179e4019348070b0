/**
 * Builds and starts one API instance: config -> logger -> metrics -> data plane -> model
 * repository -> HTTP. Used by main.ts and in-process by tests (several instances may share a
 * process: each has its own metrics registry).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type AddressInfo, Server as NetServer, type Socket } from "node:net";
import { getRequestListener } from "@hono/node-server";
import type { Logger } from "pino";
import { type AppConfig, loadConfig } from "./config.ts";
import { processCount } from "./cpu.ts";
import { createDataPlane } from "./data/index.ts";
import { createApp } from "./http/app.ts";
import { Health } from "./http/health-state.ts";
import { ModelRepository } from "./inference/repository.ts";
import { createLogger } from "./logger.ts";
import { containerMemoryLimit, heapLimitBytes, maxConnections } from "./memory.ts";
import { createMetrics } from "./metrics.ts";

const SECURITY_HEADERS: ReadonlyArray<[string, string]> = [
  ["strict-transport-security", "max-age=15552000; includeSubDomains"],
  ["x-content-type-options", "nosniff"],
  ["x-frame-options", "DENY"],
  ["referrer-policy", "no-referrer"],
  ["cross-origin-opener-policy", "same-origin"],
  ["cross-origin-resource-policy", "same-site"],
  ["origin-agent-cluster", "?1"],
  ["x-dns-prefetch-control", "off"],
  ["x-download-options", "noopen"],
  ["x-permitted-cross-domain-policies", "none"],
  ["x-xss-protection", "0"],
];

/**
 * 413 on the declared Content-Length, before reading any of the body, then the connection is
 * closed: Node would otherwise read and discard the whole body to keep the connection alive.
 */
function refuseOversize(
  req: IncomingMessage,
  res: ServerResponse,
  declared: string,
  limit: number,
  logger: Logger,
): void {
  const body = JSON.stringify({ error: `body: ${declared.slice(0, 20)} bytes exceed the limit of ${limit}` });
  logger.info(
    { method: req.method, path: req.url?.slice(0, 200), status: 413, declared: declared.slice(0, 20) },
    "request refused: body over the limit",
  );
  res.writeHead(413, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    connection: "close",
  });
  res.end(body, () => closeUnread(req));
}

function closeIfBodyUnread(this: ServerResponse): void {
  if (!this.req.complete) closeUnread(this.req);
}

/**
 * Closes a connection whose request body was not read, once the response is out: stop reading,
 * half-close so the client sees the response and a clean end, and drop the socket after a short
 * linger (a client still sending gets a reset then, not before it could read the answer).
 */
function closeUnread(req: IncomingMessage): void {
  const socket = req.socket;
  if (socket.destroyed) return;
  socket.pause();
  socket.end();
  setTimeout(() => socket.destroy(), UNREAD_LINGER_MS).unref();
}
const UNREAD_LINGER_MS = 1_000;

const netServerClose = NetServer.prototype.close;
/** How long a keep-alive connection idle at SIGTERM may still bring one more request. */
const DRAIN_IDLE_GRACE_MS = 1_000;

/**
 * During the drain, every response closes its connection. A connection still idle after the
 * grace gets a FIN (end, not destroy): a request crossing it on the wire then meets a clean close
 * the client can retry, never a reset; the socket is dropped once the client closes its side,
 * or after a last second.
 */
function closeIdleGracefully(sockets: Set<Socket>, graceMs: number): NodeJS.Timeout {
  const since = performance.now();
  const timer = setInterval(() => {
    if (performance.now() - since < graceMs) return;
    for (const socket of sockets) {
      // Node's own marker of a request in progress on this socket.
      if ((socket as Socket & { _httpMessage?: unknown })._httpMessage || socket.writableEnded) continue;
      socket.end();
      setTimeout(() => socket.destroy(), 1_000).unref();
    }
  }, 100);
  timer.unref();
  return timer;
}

export interface StartOptions {
  port?: number;
  host?: string;
  modelsDir: string;
  /** Overrides process.env for configuration (AUTH_MODE, DATABASE_URL, REDIS_URL, ...). */
  env?: Record<string, string | undefined>;
  logger?: Logger;
  /**
   * Listen only once the models are loaded. For a worker among several sharing the port: the
   * primary's round-robin hands connections only to listening workers, so none lands on a worker
   * still loading while the others serve (at start and when a crashed worker is replaced).
   */
  listenAfterLoad?: boolean;
}

export interface RunningServer {
  url: string;
  /** Stops accepting, lets in-flight requests finish (bounded), releases models, closes the data plane. */
  close(): Promise<void>;
  /** Rescans the model repository now (what SIGHUP does). */
  reload(): Promise<void>;
  config: AppConfig;
  logger: Logger;
}

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const env = { ...process.env, ...opts.env };
  const config = loadConfig(env);
  const logger = opts.logger ?? createLogger(config.LOG_LEVEL);
  const metrics = createMetrics(config.APP_VERSION);
  const dataPlane = await createDataPlane(config, { registry: metrics.registry, logger });

  const repo = new ModelRepository({
    dir: opts.modelsDir,
    logger,
    session: { intraOpThreads: config.ORT_INTRA_OP_THREADS },
    pollIntervalMs: config.MODEL_POLL_INTERVAL_MS,
    watch: config.MODEL_WATCH,
    hooks: {
      onBatch(model, version, s) {
        const labels = { model, version: String(version) };
        metrics.inferenceDuration.observe(labels, s.runSeconds);
        metrics.batchSize.observe(labels, s.rows);
        for (const q of s.queueSeconds) metrics.queueDuration.observe(labels, q);
      },
      onLoaded: (model, version) => metrics.modelsLoaded.set({ model, version: String(version) }, 1),
      onUnloaded: (model, version) => metrics.modelsLoaded.remove({ model, version: String(version) }),
      onLoadFailure: (model) => metrics.loadFailures.inc({ model }),
    },
  });
  const health = new Health(
    repo,
    metrics,
    dataPlane.dependencies ?? [],
    config.READY_CHECK_TIMEOUT_MS,
    config.READINESS,
  );
  const app = createApp({ config, logger, metrics, repo, dataPlane, health });

  const listener = getRequestListener(app.fetch, {
    errorHandler: (err) => {
      logger.error({ err }, "request failed before reaching the app");
      return new Response(JSON.stringify({ error: "bad request" }), {
        status: 400,
        headers: { "content-type": "application/json" },
      });
    },
  });
  const bodyLimit = config.BODY_LIMIT_BYTES;
  let draining = false;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    // Static security headers on the Node response: far cheaper than per-request Headers objects.
    for (const [name, value] of SECURITY_HEADERS) res.setHeader(name, value);
    // Draining: answer, then close; the client opens its next connection elsewhere.
    if (draining) res.setHeader("connection", "close");
    const declared = req.headers["content-length"];
    if (declared !== undefined && Number(declared) > bodyLimit)
      return refuseOversize(req, res, declared, bodyLimit, logger);
    // A chunked body the app answered without reading (401, 404, 429...) could be endless.
    if (req.headers["transfer-encoding"] !== undefined) res.once("finish", closeIfBodyUnread);
    void listener(req, res);
  };
  const server: Server = createServer(
    // Keep-alive outlives the load balancers' 60 s idle timeout so they never reuse a closed socket.
    {
      keepAliveTimeout: 65_000,
      headersTimeout: 15_000,
      requestTimeout: Math.max(config.REQUEST_TIMEOUT_MS + 5_000, 15_000),
    },
    handle,
  );
  // Expect: 100-continue: an oversize body is refused before the client sends any of it.
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    const declared = req.headers["content-length"];
    if (declared !== undefined && Number(declared) > bodyLimit)
      return refuseOversize(req, res, declared, bodyLimit, logger);
    res.writeContinue();
    handle(req, res);
  });
  const processes = processCount(config.WEB_CONCURRENCY);
  const memoryLimit = containerMemoryLimit();
  // Past it Node closes new connections at once: refused, not an OOM kill of every one held.
  server.maxConnections = maxConnections(config.MAX_CONNECTIONS, processes, memoryLimit);
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  const port = opts.port ?? config.PORT;
  const host = opts.host ?? config.HOST;
  await repo.discover(); // from the first request on, a model on disk is "loading", never "not found"
  const listen = async (): Promise<string> => {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    const shownHost =
      addr.family === "IPv6" ? `[${addr.address}]` : addr.address === "0.0.0.0" ? "127.0.0.1" : addr.address;
    return `http://${shownHost}:${addr.port}`;
  };
  const listening = (url: string, message: string) =>
    logger.info(
      {
        url,
        modelsDir: opts.modelsDir,
        maxConnections: server.maxConnections,
        memoryLimitMiB: memoryLimit === undefined ? null : Math.round(memoryLimit / 2 ** 20),
        heapLimitMiB: Math.round(heapLimitBytes() / 2 ** 20),
      },
      message,
    );

  let url: string | undefined;
  if (!opts.listenAfterLoad) {
    // Probes answer (startup: 503) while the models load.
    url = await listen();
    listening(url, "listening; loading models");
  }
  const loadStart = performance.now();
  await repo.start();
  logger.info({ models: repo.index(), ms: Math.round(performance.now() - loadStart) }, "model repository loaded");
  if (url === undefined) {
    url = await listen();
    listening(url, "listening");
  }

  void health.checkDependencies();
  const depTimer = setInterval(() => void health.checkDependencies(), 15_000);
  depTimer.unref();

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      health.shuttingDown = true;
      clearInterval(depTimer);
      logger.info({ connections: sockets.size }, "shutting down: draining in-flight requests");
      draining = true;
      // Stop accepting, but not through http.Server#close: it destroys idle keep-alive sockets at
      // once, and a request a client is sending on one that moment meets a reset.
      const drained = new Promise<void>((resolve) => netServerClose.call(server, () => resolve()));
      const idleCloser = closeIdleGracefully(sockets, Math.min(DRAIN_IDLE_GRACE_MS, config.SHUTDOWN_TIMEOUT_MS / 2));
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), config.SHUTDOWN_TIMEOUT_MS);
      });
      if ((await Promise.race([drained, bound])) === "timeout") {
        logger.warn(
          { ms: config.SHUTDOWN_TIMEOUT_MS, connections: sockets.size },
          "drain bound reached; closing remaining connections",
        );
        server.closeAllConnections();
        await drained;
      }
      clearInterval(idleCloser);
      clearTimeout(timer);
      await repo.close();
      try {
        await dataPlane.close?.();
      } catch (err) {
        logger.error({ err }, "data plane close failed");
      }
      logger.info("shutdown complete");
    })());

  return { url, close, reload: () => repo.reload(), config, logger };
}
