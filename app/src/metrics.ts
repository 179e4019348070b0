/**
 * The API's metrics (names and labels fixed by docs/metrics.md) on a per-instance registry, so two
 * servers in one process never collide. The data plane registers its own metrics on the same one.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

export function createMetrics(version: string) {
  const registry = new Registry();
  let readyProbe: (() => boolean) | null = null;
  collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    httpRequests: new Counter({
      name: "inferstack_http_requests_total",
      help: "HTTP requests by route template, method and status",
      labelNames: ["route", "method", "status"] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "inferstack_http_request_duration_seconds",
      help: "HTTP request latency",
      labelNames: ["route", "method", "status"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    inferenceDuration: new Histogram({
      name: "inferstack_inference_duration_seconds",
      help: "Time in session.run per executed batch",
      labelNames: ["model", "version"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    queueDuration: new Histogram({
      name: "inferstack_inference_queue_duration_seconds",
      help: "Time a request waited in the dynamic batcher",
      labelNames: ["model", "version"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: "inferstack_inference_batch_size",
      help: "Instances per executed batch",
      labelNames: ["model", "version"] as const,
      buckets: BATCH_BUCKETS,
      registers: [registry],
    }),
    inferenceRequests: new Counter({
      name: "inferstack_inference_requests_total",
      help: "Inference requests by outcome (ok, client_error, error)",
      labelNames: ["model", "version", "protocol", "outcome"] as const,
      registers: [registry],
    }),
    modelsLoaded: new Gauge({
      name: "inferstack_models_loaded",
      help: "1 per loaded and serving model version",
      labelNames: ["model", "version"] as const,
      registers: [registry],
    }),
    loadFailures: new Counter({
      name: "inferstack_model_load_failures_total",
      help: "Failed loads of a model version or manifest",
      labelNames: ["model"] as const,
      registers: [registry],
    }),
    ready: new Gauge({
      name: "inferstack_ready",
      help: "1 when /health/ready answers 200",
      registers: [registry],
      // Scrapes see readiness as of now, not as of the last probe.
      collect() {
        if (readyProbe) this.set(readyProbe() ? 1 : 0);
      },
    }),
    dependencyUp: new Gauge({
      name: "inferstack_dependency_up",
      help: "1 when a configured dependency is reachable",
      labelNames: ["dependency"] as const,
      registers: [registry],
    }),
    degraded: new Gauge({
      name: "inferstack_degraded",
      help: "1 when serving with a configured dependency down",
      registers: [registry],
    }),
    cacheRequests: new Counter({
      name: "inferstack_cache_requests_total",
      help: "Response cache lookups (hit, miss, bypass, error)",
      labelNames: ["model", "result"] as const,
      registers: [registry],
    }),
    buildInfo: new Gauge({
      name: "inferstack_build_info",
      help: "Build information; always 1",
      labelNames: ["version", "node"] as const,
      registers: [registry],
    }),
  };
  const setReadyProbe = (fn: () => boolean) => {
    readyProbe = fn;
  };
  m.buildInfo.set({ version, node: process.versions.node }, 1);
  m.ready.set(0);
  m.degraded.set(0);
  return { ...m, setReadyProbe };
}
export type Metrics = ReturnType<typeof createMetrics>;
