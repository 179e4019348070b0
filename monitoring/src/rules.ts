/**
 * Recording rules (RED per route and per model) and alert rules. The alerts read the recorded
 * series where one exists, so a dashboard and the alert that pages agree on the number.
 * Every alert carries `severity`, a `summary`, and a `runbook_url` into docs/runbook.md.
 */
import { stringify } from "yaml";
import { appJob } from "./prometheus.ts";

export type Severity = "critical" | "warning" | "none";

export interface RecordingRule {
  record: string;
  expr: string;
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  severity: Severity;
  /** Which part of the system; dashboards and routing can key on it. */
  component: string;
  summary: string;
  description: string;
}

export interface AlertRuleOptions {
  /** p95 latency objective of the tier (`monitoring.latencyObjectiveMs`). */
  latencyObjectiveMs: number;
  /** Memory limit of one app replica (`app.memoryMiB`): the Fargate stand-in for cAdvisor. */
  appMemoryMiB: number;
  /** Base URL of docs/runbook.md as rendered where on-call reads it; anchors are appended. */
  runbookBaseUrl?: string;
  /** p95 queue wait that counts as saturation; defaults to half the latency objective. */
  queueTimeObjectiveMs?: number;
  /** In-memory prediction-log records that count as a backlog. */
  predictionLogBacklog?: number;
}

export const defaultRunbookBaseUrl = "https://github.com/inferstack/inferstack/blob/main/docs/runbook.md";

// Probes and the scrape endpoint are not API traffic: a 503 from /health/ready is the probe working.
const notApi = `route!~"/metrics|/health/.*|/v2/health/.*"`;
const api = `job="${appJob}",${notApi}`;
const q = (n: number) => `histogram_quantile(${n}, `;

function quantiles(level: string, by: string, metric: string, selector = ""): RecordingRule[] {
  return (
    [
      ["p50", 0.5],
      ["p95", 0.95],
      ["p99", 0.99],
    ] as const
  ).map(([name, value]) => ({
    record: `${level}:${metric}:${name}_5m`,
    expr: `${q(value)}sum by (${by}, le) (rate(${metric}_bucket${selector}[5m])))`,
  }));
}

/** A ratio that is 0, not absent, when the numerator has no series yet. */
function ratio(num: string, den: string, by: string): string {
  return `(sum by (${by}) (${num}) or sum by (${by}) (${den}) * 0) / sum by (${by}) (${den})`;
}

export function recordingRules(): RecordingRule[] {
  const http = "inferstack_http_requests_total";
  const inf = "inferstack_inference_requests_total";
  const cache = "inferstack_cache_requests_total";
  return [
    // RED per route (every route, probes included: dashboards show them).
    { record: "job_route:inferstack_http_requests:rate5m", expr: `sum by (job, route) (rate(${http}[5m]))` },
    {
      record: "job_route_status:inferstack_http_requests:rate5m",
      expr: `sum by (job, route, status) (rate(${http}[5m]))`,
    },
    {
      record: "job_route:inferstack_http_error_ratio:rate5m",
      expr: ratio(`rate(${http}{status=~"5.."}[5m])`, `rate(${http}[5m])`, "job, route"),
    },
    ...quantiles("job_route", "job, route", "inferstack_http_request_duration_seconds"),
    // RED of the API as a whole, without probes and /metrics.
    { record: "job:inferstack_api_requests:rate5m", expr: `sum by (job) (rate(${http}{${notApi}}[5m]))` },
    {
      record: "job:inferstack_api_error_ratio:rate5m",
      expr: ratio(`rate(${http}{${notApi},status=~"5.."}[5m])`, `rate(${http}{${notApi}}[5m])`, "job"),
    },
    ...quantiles("job", "job", "inferstack_http_request_duration_seconds", `{${notApi}}`),
    // RED per model version.
    {
      record: "job_model_version:inferstack_inference_requests:rate5m",
      expr: `sum by (job, model, version) (rate(${inf}[5m]))`,
    },
    {
      record: "job_model_version:inferstack_inference_error_ratio:rate5m",
      expr: ratio(`rate(${inf}{outcome="error"}[5m])`, `rate(${inf}[5m])`, "job, model, version"),
    },
    ...quantiles("job_model_version", "job, model, version", "inferstack_inference_duration_seconds"),
    ...quantiles("job_model_version", "job, model, version", "inferstack_inference_queue_duration_seconds"),
    {
      record: "job_model_version:inferstack_inference_batch_size:mean5m",
      expr:
        "sum by (job, model, version) (rate(inferstack_inference_batch_size_sum[5m]))" +
        " / sum by (job, model, version) (rate(inferstack_inference_batch_size_count[5m]))",
    },
    {
      record: "job_model:inferstack_cache_hit_ratio:rate5m",
      expr: ratio(`rate(${cache}{result="hit"}[5m])`, `rate(${cache}{result=~"hit|miss"}[5m])`, "job, model"),
    },
    {
      record: "job_plan:inferstack_rate_limited:rate5m",
      expr: "sum by (job, plan) (rate(inferstack_rate_limited_total[5m]))",
    },
  ];
}

const fs = `fstype!~"tmpfs|overlay|squashfs|nsfs",mountpoint!~"/run.*|/var/lib/docker/.+"`;

export function alertRules(opts: AlertRuleOptions): AlertRule[] {
  const objective = opts.latencyObjectiveMs / 1000;
  const queueObjective = (opts.queueTimeObjectiveMs ?? opts.latencyObjectiveMs / 2) / 1000;
  const backlog = opts.predictionLogBacklog ?? 1000;
  const memLimit = opts.appMemoryMiB * 1024 * 1024;
  return [
    {
      alert: "Watchdog",
      expr: "vector(1)",
      severity: "none",
      component: "monitoring",
      summary: "Always firing: proves the alert pipeline works end to end",
      description: "If the heartbeat receiver stops getting this alert, Prometheus or Alertmanager is down.",
    },
    {
      alert: "TargetDown",
      expr: "up == 0",
      for: "3m",
      severity: "warning",
      component: "monitoring",
      summary: "Scrape target {{ $labels.job }}/{{ $labels.instance }} is down",
      description: "Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) for 3 minutes.",
    },
    {
      alert: "InferstackAppDown",
      expr: `sum by (job) (up{job="${appJob}"}) == 0 or absent(up{job="${appJob}"})`,
      for: "1m",
      severity: "critical",
      component: "app",
      summary: "No InferStack API replica is up",
      description: "Every app replica failed its scrape, or service discovery found none, for 1 minute.",
    },
    {
      alert: "InferstackNotReady",
      expr: `max by (job, instance) (inferstack_ready{job="${appJob}"}) == 0`,
      for: "5m",
      severity: "warning",
      component: "app",
      summary: "Replica {{ $labels.instance }} reports not ready",
      description:
        "/health/ready would answer 503 on {{ $labels.instance }} for 5 minutes; the load balancer sends it no traffic.",
    },
    ...(
      [
        ["warning", 0.01],
        ["critical", 0.05],
      ] as const
    ).map(
      ([severity, threshold]): AlertRule => ({
        alert: "HighErrorRatio",
        expr: `job:inferstack_api_error_ratio:rate5m{job="${appJob}"} > ${threshold} and job:inferstack_api_requests:rate5m{job="${appJob}"} > 0.1`,
        for: "5m",
        severity,
        component: "app",
        summary: `More than ${threshold * 100} % of API requests fail with 5xx`,
        description: "{{ $value | humanizePercentage }} of API requests answered 5xx over the last 5 minutes.",
      }),
    ),
    ...(
      [
        ["warning", 1],
        ["critical", 4],
      ] as const
    ).map(
      ([severity, factor]): AlertRule => ({
        alert: "HighLatencyP95",
        expr:
          `job_route:inferstack_http_request_duration_seconds:p95_5m{${api}} > ${round(objective * factor)}` +
          ` and job_route:inferstack_http_requests:rate5m{${api}} > 0.1`,
        for: "5m",
        severity,
        component: "app",
        summary: `p95 latency of {{ $labels.route }} above ${round(opts.latencyObjectiveMs * factor)} ms`,
        description: `p95 of {{ $labels.route }} is {{ $value | humanizeDuration }}; the tier's objective is ${opts.latencyObjectiveMs} ms.`,
      }),
    ),
    {
      alert: "InferenceQueueTimeHigh",
      expr: `job_model_version:inferstack_inference_queue_duration_seconds:p95_5m{job="${appJob}"} > ${round(queueObjective)}`,
      for: "5m",
      severity: "warning",
      component: "app",
      summary: "Requests for {{ $labels.model }} v{{ $labels.version }} wait too long in the batcher",
      description: `p95 queue wait is {{ $value | humanizeDuration }} (objective ${round(queueObjective * 1000)} ms): the replicas are saturated.`,
    },
    {
      alert: "ModelLoadFailures",
      // The second arm catches a failure counter born after the window began (increase() sees no rise).
      expr:
        `increase(inferstack_model_load_failures_total{job="${appJob}"}[15m]) > 0` +
        ` or (inferstack_model_load_failures_total{job="${appJob}"} > 0 unless inferstack_model_load_failures_total{job="${appJob}"} offset 15m)`,
      severity: "warning",
      component: "models",
      summary: "Model {{ $labels.model }} failed to load on {{ $labels.instance }}",
      description:
        "A model version or its manifest failed to load in the last 15 minutes; the previous version keeps serving if there is one.",
    },
    {
      alert: "NoModelsServing",
      expr: `sum by (job, instance) (inferstack_models_loaded{job="${appJob}"}) == 0`,
      for: "2m",
      severity: "critical",
      component: "models",
      summary: "Replica {{ $labels.instance }} serves no model",
      description: "No model version is loaded: every inference request to this replica fails.",
    },
    ...(
      [
        ["warning", "2m"],
        ["critical", "10m"],
      ] as const
    ).map(
      ([severity, after]): AlertRule => ({
        alert: "DependencyUnreachable",
        expr: `min by (job, dependency) (inferstack_dependency_up{job="${appJob}"}) == 0`,
        for: after,
        severity,
        component: "dependencies",
        summary: "The API cannot reach {{ $labels.dependency }}",
        description: `At least one replica has seen {{ $labels.dependency }} down for ${after}; the API is serving degraded.`,
      }),
    ),
    {
      alert: "InferstackDegraded",
      expr: `max by (job, instance) (inferstack_degraded{job="${appJob}"}) == 1`,
      for: "5m",
      severity: "warning",
      component: "dependencies",
      summary: "Replica {{ $labels.instance }} is serving degraded",
      description: "A configured dependency is down; predictions still flow, with in-process fallbacks.",
    },
    {
      alert: "RateLimiterFallback",
      expr: `max by (job, instance) (inferstack_rate_limiter_fallback{job="${appJob}"}) == 1`,
      for: "5m",
      severity: "warning",
      component: "dependencies",
      summary: "Rate limits counted per process on {{ $labels.instance }}",
      description:
        "Redis is unreachable, so each replica enforces limits alone: clients get up to N replicas times their plan.",
    },
    {
      alert: "PostgresDown",
      expr: `pg_up == 0`,
      for: "1m",
      severity: "critical",
      component: "dependencies",
      summary: "postgres-exporter cannot query Postgres",
      description: "The exporter at {{ $labels.instance }} has failed to connect to Postgres for 1 minute.",
    },
    {
      alert: "RedisDown",
      expr: `redis_up == 0`,
      for: "1m",
      severity: "critical",
      component: "dependencies",
      summary: "redis-exporter cannot reach Redis",
      description: "The exporter at {{ $labels.instance }} has failed to connect to Redis for 1 minute.",
    },
    {
      alert: "PredictionLogBacklog",
      expr: `max by (job, instance) (inferstack_prediction_log_queue_depth{job="${appJob}"}) > ${backlog}`,
      for: "10m",
      severity: "warning",
      component: "prediction-log",
      summary: "{{ $value }} prediction-log records waiting in memory on {{ $labels.instance }}",
      description: `More than ${backlog} records have waited for Postgres for 10 minutes; a restart now loses them unless they spill.`,
    },
    {
      alert: "PredictionLogSpilling",
      expr: `sum by (job, instance) (rate(inferstack_prediction_log_spilled_total{job="${appJob}"}[5m])) > 0`,
      for: "10m",
      severity: "warning",
      component: "prediction-log",
      summary: "Prediction-log records spill to disk on {{ $labels.instance }}",
      description: "Postgres is not taking writes fast enough; records go to the local spill file for later replay.",
    },
    {
      alert: "PredictionLogSpillGrowing",
      expr:
        `max by (job, instance) (deriv(inferstack_prediction_log_spill_bytes{job="${appJob}"}[30m])) > 0` +
        ` and max by (job, instance) (inferstack_prediction_log_spill_bytes{job="${appJob}"}) > 0`,
      for: "30m",
      severity: "warning",
      component: "prediction-log",
      summary: "Spill file on {{ $labels.instance }} keeps growing",
      description: "Replay is not draining the spill file: Postgres has been unavailable or too slow for 30 minutes.",
    },
    {
      alert: "PredictionLogSpillGrowing",
      expr: `max by (job, instance) (inferstack_prediction_log_spill_bytes{job="${appJob}"}) > 1073741824`,
      for: "5m",
      severity: "critical",
      component: "prediction-log",
      summary: "Spill file on {{ $labels.instance }} is over 1 GiB",
      description: "The spill file is {{ $value | humanize1024 }}B; the container disk fills next.",
    },
    {
      alert: "RateLimitRejectionsSpiking",
      expr:
        `sum by (job) (rate(inferstack_rate_limited_total{job="${appJob}"}[5m])) / sum by (job) (rate(inferstack_http_requests_total{${api}}[5m])) > 0.1` +
        ` and sum by (job) (rate(inferstack_rate_limited_total{job="${appJob}"}[5m])) > 0.5`,
      for: "10m",
      severity: "warning",
      component: "app",
      summary: "More than 10 % of requests are rate limited",
      description:
        "{{ $value | humanizePercentage }} of requests answered 429 for 10 minutes: a client is misbehaving or a plan is too small.",
    },
    {
      alert: "AppMemoryNearLimit",
      expr: `max by (job, instance) (process_resident_memory_bytes{job="${appJob}"}) / ${memLimit} > 0.9`,
      for: "10m",
      severity: "warning",
      component: "app",
      summary: "App replica {{ $labels.instance }} uses {{ $value | humanizePercentage }} of its memory limit",
      description: `Resident memory is above 90 % of the ${opts.appMemoryMiB} MiB limit; the kernel OOM-kills the replica at 100 %.`,
    },
    ...(
      [
        ["warning", 0.9, "5m"],
        ["critical", 0.97, "2m"],
      ] as const
    ).map(
      ([severity, share, after]): AlertRule => ({
        alert: "ContainerMemoryNearLimit",
        expr:
          `max by (job, instance, name) (container_memory_working_set_bytes{name!=""}` +
          ` / (container_spec_memory_limit_bytes{name!=""} > 0)) > ${share}`,
        for: after,
        severity,
        component: "host",
        summary: `Container {{ $labels.name }} above ${share * 100} % of its memory limit`,
        description: "Working set is {{ $value | humanizePercentage }} of the container's limit.",
      }),
    ),
    ...(
      [
        { severity: "warning", free: 0.25, trend: "6h", horizonH: 24, after: "30m", within: "a day" },
        { severity: "critical", free: 0.1, trend: "1h", horizonH: 4, after: "10m", within: "4 hours" },
      ] as const
    ).map(
      (d): AlertRule => ({
        alert: "DiskFilling",
        expr:
          `(node_filesystem_avail_bytes{${fs}} / node_filesystem_size_bytes{${fs}} < ${d.free})` +
          ` and predict_linear(node_filesystem_avail_bytes{${fs}}[${d.trend}], ${d.horizonH} * 3600) < 0` +
          ` and node_filesystem_readonly{${fs}} == 0`,
        for: d.after,
        severity: d.severity,
        component: "host",
        summary: `{{ $labels.mountpoint }} on {{ $labels.instance }} fills within ${d.horizonH} h`,
        description: `Less than ${d.free * 100} % free and the ${d.trend} trend reaches zero within ${d.within}.`,
      }),
    ),
    ...(
      [
        ["warning", 14, "1h"],
        ["critical", 3, "10m"],
      ] as const
    ).map(
      ([severity, days, after]): AlertRule => ({
        alert: "CertificateExpiringSoon",
        expr: `probe_ssl_earliest_cert_expiry - time() < ${days} * 86400`,
        for: after,
        severity,
        component: "edge",
        summary: `TLS certificate of {{ $labels.instance }} expires in less than ${days} days`,
        description: "The certificate expires in {{ $value | humanizeDuration }}; automatic renewal has not happened.",
      }),
    ),
    {
      alert: "EndpointProbeFailing",
      expr: "probe_success == 0",
      for: "5m",
      severity: "warning",
      component: "edge",
      summary: "HTTPS probe of {{ $labels.instance }} fails",
      description: "The blackbox exporter cannot complete an HTTPS request (DNS, TLS or HTTP status) for 5 minutes.",
    },
    {
      alert: "PrometheusRuleFailures",
      expr: "increase(prometheus_rule_evaluation_failures_total[5m]) > 0",
      severity: "warning",
      component: "monitoring",
      summary: "Prometheus fails to evaluate rules",
      description: "{{ $value }} rule evaluations failed in group {{ $labels.rule_group }}: alerts in it are blind.",
    },
    {
      alert: "AlertmanagerNotificationsFailing",
      expr: "sum by (job, instance, integration) (rate(alertmanager_notifications_failed_total[5m])) > 0",
      for: "10m",
      severity: "warning",
      component: "monitoring",
      summary: "Alertmanager cannot deliver to {{ $labels.integration }}",
      description:
        "Notifications through {{ $labels.integration }} have failed for 10 minutes: check the receiver secret.",
    },
  ];
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

/** GitHub's anchor for a `### Name` heading. */
export function runbookAnchor(alert: string): string {
  return alert.toLowerCase();
}

const header =
  "# Generated by scripts/monitoring-render.ts from monitoring/src/rules.ts: edit the TypeScript, then npm run monitoring:render.\n";

export function renderRecordingRules(): string {
  return (
    header +
    stringify({ groups: [{ name: "inferstack-red", interval: "15s", rules: recordingRules() }] }, { lineWidth: 0 })
  );
}

export function renderAlertRules(opts: AlertRuleOptions): string {
  const base = opts.runbookBaseUrl ?? defaultRunbookBaseUrl;
  const rules = alertRules(opts).map((r) => ({
    alert: r.alert,
    expr: r.expr,
    ...(r.for ? { for: r.for } : {}),
    labels: { severity: r.severity, component: r.component },
    annotations: { summary: r.summary, description: r.description, runbook_url: `${base}#${runbookAnchor(r.alert)}` },
  }));
  return header + stringify({ groups: [{ name: "inferstack-alerts", rules }] }, { lineWidth: 0 });
}
