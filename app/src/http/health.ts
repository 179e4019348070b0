/** Kubernetes/ECS-style probes and Prometheus metrics. */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppDeps, AppEnv } from "./context.ts";
import { HealthSchema } from "./schemas.ts";

export function registerHealth(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const reg = app.openAPIRegistry;
  const tags = ["Probes"];
  const health = { content: { "application/json": { schema: HealthSchema } } };
  reg.registerPath({
    method: "get",
    path: "/health/live",
    tags,
    summary: "Liveness: the process answers (no dependency checked)",
    responses: { 200: { description: "Live", ...health } },
  });
  app.get("/health/live", (c) =>
    c.json({ status: "ok", uptimeSeconds: Math.round((Date.now() - deps.health.startedAt) / 1000) }),
  );

  reg.registerPath({
    method: "get",
    path: "/health/startup",
    tags,
    summary: "Startup: the initial model load has finished",
    responses: { 200: { description: "Started", ...health }, 503: { description: "Still loading", ...health } },
  });
  app.get("/health/startup", (c) =>
    deps.health.started() ? c.json({ status: "ok" }) : c.json({ status: "starting" }, 503),
  );

  reg.registerPath({
    method: "get",
    path: "/health/ready",
    tags,
    summary: "Readiness: models serving; Postgres/Redis reported (a down dependency answers 200 with status degraded)",
    responses: {
      200: { description: "Ready (ok or degraded)", ...health },
      503: { description: "Not ready", ...health },
    },
  });
  app.get("/health/ready", async (c) => {
    const r = await deps.health.readiness();
    return c.json(r, r.ready ? 200 : 503);
  });

  reg.registerPath({
    method: "get",
    path: "/metrics",
    tags: ["Observability"],
    summary: "Prometheus metrics (text exposition format)",
    responses: { 200: { description: "Metrics", content: { "text/plain": { schema: { type: "string" } } } } },
  });
  app.get("/metrics", async (c) => {
    const body = await deps.metrics.registry.metrics();
    return c.body(body, 200, { "content-type": deps.metrics.registry.contentType });
  });
}
