/**
 * The Hono application: cross-cutting middleware (request id, access log, metrics, security
 * headers, CORS allow-list, compression, request timeout, JSON errors) around the protocol adapters.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { routePath } from "hono/route";
import { timeout } from "hono/timeout";
import { uuidv7 } from "../ids.ts";
import { clientIp } from "./client-ip.ts";
import { compression } from "./compression.ts";
import type { AppDeps, AppEnv } from "./context.ts";
import { ApiError, errorBody } from "./errors.ts";
import { registerHealth } from "./health.ts";
import { nodeResponse } from "./node-adapter.ts";
import { registerOpenApi } from "./openapi.ts";
import { registerV1 } from "./v1.ts";
import { registerV2 } from "./v2.ts";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function createApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const { config, logger, metrics } = deps;
  const app = new OpenAPIHono<AppEnv>();

  app.use("*", async (c, next) => {
    const started = performance.now();
    const incoming = c.req.header("x-request-id");
    const own = !(incoming && REQUEST_ID.test(incoming));
    const requestId = own ? uuidv7() : incoming; // time-ordered: cheap keys for the log's request_id index
    c.set("requestId", requestId);
    if (own) c.set("requestIdIsOwn", true);
    if (logger.isLevelEnabled("debug"))
      logger.debug({ reqId: requestId, method: c.req.method, path: c.req.path }, "request started");
    // On Node's response before the handler runs (node:http merges it into whatever is written):
    // set on c.res afterwards, it would turn the handler's plain header record into a Headers object.
    const outgoing = nodeResponse(c);
    outgoing?.setHeader("x-request-id", requestId);
    await next();
    if (!outgoing) c.res.headers.set("x-request-id", requestId);
    if (deps.health.shuttingDown) c.res.headers.set("connection", "close");
    const status = c.res.status;
    const matched = routePath(c, -1);
    const route =
      c.get("routeLabel") ?? (status === 404 && (matched === "*" || matched === "/*") ? "unmatched" : matched);
    const seconds = (performance.now() - started) / 1000;
    const labels = { route, method: c.req.method, status: String(status) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, seconds);
    // Probes and scrapes are frequent and uninteresting: log them at debug.
    const quiet = route.startsWith("/health") || route === "/metrics" || route.startsWith("/v2/health");
    const level = status >= 500 ? "error" : quiet ? "debug" : "info";
    if (logger.isLevelEnabled(level)) {
      const line: Record<string, unknown> = {
        reqId: requestId,
        ip: clientIp(c, config),
        method: c.req.method,
        path: c.req.path,
        route,
        status,
        ms: Math.round(seconds * 10000) / 10,
      };
      const failure = c.get("failure");
      if (failure) line.error = failure;
      logger[level](line, "request");
    }
  });

  if (config.CORS_ORIGINS.length) {
    const allowed = config.CORS_ORIGINS;
    app.use(
      "*",
      cors({
        origin: allowed.includes("*") ? "*" : (origin) => (allowed.includes(origin) ? origin : null),
        allowMethods: ["GET", "POST", "OPTIONS"],
        allowHeaders: ["content-type", "authorization", "x-api-key", "x-request-id", "cache-control"],
        exposeHeaders: [
          "x-request-id",
          "ratelimit-limit",
          "ratelimit-remaining",
          "ratelimit-reset",
          "retry-after",
          "x-cache",
        ],
        maxAge: 600,
      }),
    );
  }
  app.use("*", compression(1024));
  app.use(
    "*",
    timeout(
      config.REQUEST_TIMEOUT_MS,
      () =>
        new HTTPException(503, {
          // The request may be half-read: its connection cannot carry another one.
          res: new Response(JSON.stringify(errorBody(`request timed out after ${config.REQUEST_TIMEOUT_MS} ms`)), {
            status: 503,
            headers: { "content-type": "application/json", connection: "close" },
          }),
        }),
    ),
  );

  registerHealth(app, deps);
  registerV1(app, deps);
  registerV2(app, deps);
  registerOpenApi(app, deps);
  app.get("/", (c) =>
    c.json({
      name: "inferstack",
      version: config.APP_VERSION,
      docs: "/docs",
      openapi: "/openapi.json",
      models: "/v1/models",
    }),
  );

  app.notFound((c) => c.json(errorBody(`no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => {
    c.set("failure", err.message);
    if (err instanceof ApiError) {
      return c.json(errorBody(err.message, err.details), err.status, err.headers);
    }
    if (err instanceof HTTPException) {
      return err.res ?? c.json(errorBody(err.message || "request failed"), err.status);
    }
    logger.error({ reqId: c.get("requestId"), err }, "unhandled error");
    return c.json(errorBody("internal server error"), 500);
  });
  return app;
}
