import { Counter, Gauge, type Registry } from "prom-client";

const queueDepthSources = new WeakMap<Gauge, () => number>();

/** Data-plane metrics (names fixed by docs/metrics.md), registered on the app's registry. */
export function createDataPlaneMetrics(registry: Registry) {
  const reuse = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    authFailures: reuse(
      "inferstack_auth_failures_total",
      () =>
        new Counter({
          name: "inferstack_auth_failures_total",
          help: "Rejected API keys",
          labelNames: ["reason"] as const,
          registers: [registry],
        }),
    ),
    rateLimited: reuse(
      "inferstack_rate_limited_total",
      () =>
        new Counter({
          name: "inferstack_rate_limited_total",
          help: "Requests answered 429",
          labelNames: ["plan"] as const,
          registers: [registry],
        }),
    ),
    rateLimiterFallback: reuse(
      "inferstack_rate_limiter_fallback",
      () =>
        new Gauge({
          name: "inferstack_rate_limiter_fallback",
          help: "1 while rate limits are counted per process (Redis down)",
          registers: [registry],
        }),
    ),
    queueDepth: reuse(
      "inferstack_prediction_log_queue_depth",
      () =>
        new Gauge({
          name: "inferstack_prediction_log_queue_depth",
          help: "Prediction records waiting in memory",
          registers: [registry],
          // Read at scrape time: setting it per record would be a measurable part of the request path.
          collect() {
            const read = queueDepthSources.get(this);
            if (read) this.set(read());
          },
        }),
    ),
    written: reuse(
      "inferstack_prediction_log_written_total",
      () =>
        new Counter({
          name: "inferstack_prediction_log_written_total",
          help: "Prediction records written to Postgres",
          registers: [registry],
        }),
    ),
    spilled: reuse(
      "inferstack_prediction_log_spilled_total",
      () =>
        new Counter({
          name: "inferstack_prediction_log_spilled_total",
          help: "Prediction records spilled to the local file",
          registers: [registry],
        }),
    ),
    replayed: reuse(
      "inferstack_prediction_log_replayed_total",
      () =>
        new Counter({
          name: "inferstack_prediction_log_replayed_total",
          help: "Spilled prediction records replayed into Postgres",
          registers: [registry],
        }),
    ),
    spillBytes: reuse(
      "inferstack_prediction_log_spill_bytes",
      () =>
        new Gauge({
          name: "inferstack_prediction_log_spill_bytes",
          help: "Size of the prediction log spill file",
          registers: [registry],
        }),
    ),
    rejected: reuse(
      "inferstack_prediction_log_rejected_total",
      () =>
        new Counter({
          name: "inferstack_prediction_log_rejected_total",
          help: "Prediction records Postgres refused as invalid (logged, not retried)",
          registers: [registry],
        }),
    ),
  };
}

export type DataPlaneMetrics = ReturnType<typeof createDataPlaneMetrics>;

/** Makes the queue-depth gauge report `read()` at each scrape. */
export function reportQueueDepth(metrics: DataPlaneMetrics, read: () => number): void {
  queueDepthSources.set(metrics.queueDepth, read);
}
