/**
 * Grafana dashboards as code: API overview, dependencies, containers and host. Each is plain
 * dashboard JSON (schemaVersion 39) built from a few helpers so every panel gets the provisioned
 * data source uid, a grid position and a unit.
 */
import { prometheusDatasourceUid } from "./grafana.ts";
import { appJob } from "./prometheus.ts";

export interface Query {
  expr: string;
  legend: string;
}

interface PanelSpec {
  title: string;
  queries: Query[];
  unit?: string;
  kind?: "timeseries" | "stat";
  width?: number;
  height?: number;
  description?: string;
  /** Red line / colour step at this value. */
  threshold?: number;
  min?: number;
  max?: number;
  stack?: boolean;
}

type Row = { row: string };
type Item = PanelSpec | Row;

const ds = { type: "prometheus", uid: prometheusDatasourceUid };

function panelJson(p: PanelSpec, id: number, x: number, y: number): Record<string, unknown> {
  const kind = p.kind ?? "timeseries";
  const thresholds = {
    mode: "absolute",
    steps: [
      { color: "green", value: null },
      ...(p.threshold !== undefined ? [{ color: "red", value: p.threshold }] : []),
    ],
  };
  const custom =
    kind === "timeseries"
      ? {
          drawStyle: "line",
          lineWidth: 1,
          fillOpacity: p.stack ? 30 : 10,
          showPoints: "never",
          spanNulls: true,
          stacking: { mode: p.stack ? "normal" : "none", group: "A" },
          thresholdsStyle: { mode: p.threshold !== undefined ? "line" : "off" },
        }
      : {};
  return {
    id,
    type: kind,
    title: p.title,
    ...(p.description ? { description: p.description } : {}),
    datasource: ds,
    gridPos: { x, y, w: p.width ?? 12, h: p.height ?? (kind === "stat" ? 4 : 8) },
    fieldConfig: {
      defaults: {
        unit: p.unit ?? "short",
        ...(p.min !== undefined ? { min: p.min } : {}),
        ...(p.max !== undefined ? { max: p.max } : {}),
        thresholds,
        color: { mode: kind === "stat" ? "thresholds" : "palette-classic" },
        custom,
      },
      overrides: [],
    },
    options:
      kind === "stat"
        ? {
            reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false },
            colorMode: "background",
            graphMode: "area",
            textMode: "auto",
          }
        : {
            legend: { displayMode: "table", placement: "bottom", calcs: ["mean", "max", "lastNotNull"] },
            tooltip: { mode: "multi", sort: "desc" },
          },
    targets: p.queries.map((qr, i) => ({
      datasource: ds,
      refId: String.fromCharCode(65 + i),
      expr: qr.expr,
      legendFormat: qr.legend,
      range: true,
    })),
  };
}

function layout(items: Item[]): Record<string, unknown>[] {
  const panels: Record<string, unknown>[] = [];
  let id = 1;
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  for (const item of items) {
    if ("row" in item) {
      if (x > 0) y += rowHeight;
      panels.push({
        id: id++,
        type: "row",
        title: item.row,
        collapsed: false,
        gridPos: { x: 0, y, w: 24, h: 1 },
        panels: [],
      });
      y += 1;
      x = 0;
      rowHeight = 0;
      continue;
    }
    const w = item.width ?? 12;
    const h = item.height ?? ((item.kind ?? "timeseries") === "stat" ? 4 : 8);
    if (x + w > 24) {
      y += rowHeight;
      x = 0;
      rowHeight = 0;
    }
    panels.push(panelJson(item, id++, x, y));
    x += w;
    rowHeight = Math.max(rowHeight, h);
  }
  return panels;
}

interface Variable {
  name: string;
  label: string;
  query: string;
}

function dashboard(
  uid: string,
  title: string,
  tags: string[],
  vars: Variable[],
  items: Item[],
): Record<string, unknown> {
  return {
    uid,
    title,
    tags: ["inferstack", ...tags],
    timezone: "utc",
    editable: false,
    graphTooltip: 1,
    refresh: "30s",
    schemaVersion: 39,
    version: 1,
    time: { from: "now-3h", to: "now" },
    templating: {
      list: vars.map((v) => ({
        name: v.name,
        label: v.label,
        type: "query",
        datasource: ds,
        query: { query: v.query, refId: `${v.name}-var` },
        definition: v.query,
        refresh: 2,
        includeAll: true,
        multi: true,
        allValue: ".*",
        current: { selected: true, text: ["All"], value: ["$__all"] },
        sort: 1,
      })),
    },
    annotations: { list: [] },
    links: [{ title: "InferStack", type: "dashboards", tags: ["inferstack"], asDropdown: true }],
    panels: layout(items),
  };
}

const app = `job="${appJob}"`;
const notApi = `route!~"/metrics|/health/.*|/v2/health/.*"`;
const model = `model=~"$model"`;

export function apiOverviewDashboard(latencyObjectiveMs: number): Record<string, unknown> {
  return dashboard(
    "inferstack-api",
    "InferStack / API overview",
    ["api"],
    [{ name: "model", label: "Model", query: `label_values(inferstack_models_loaded{${app}}, model)` }],
    [
      { row: "Health" },
      { title: "Replicas up", kind: "stat", width: 4, queries: [{ expr: `sum(up{${app}})`, legend: "up" }] },
      {
        title: "Replicas ready",
        kind: "stat",
        width: 4,
        queries: [{ expr: `sum(inferstack_ready{${app}})`, legend: "ready" }],
      },
      {
        title: "Degraded replicas",
        kind: "stat",
        width: 4,
        threshold: 1,
        queries: [{ expr: `sum(inferstack_degraded{${app}})`, legend: "degraded" }],
      },
      {
        title: "Requests / s",
        kind: "stat",
        width: 4,
        unit: "reqps",
        queries: [{ expr: `sum(job:inferstack_api_requests:rate5m{${app}})`, legend: "rps" }],
      },
      {
        title: "Error %",
        kind: "stat",
        width: 4,
        unit: "percentunit",
        threshold: 0.01,
        queries: [{ expr: `max(job:inferstack_api_error_ratio:rate5m{${app}})`, legend: "errors" }],
      },
      {
        title: "p95 latency",
        kind: "stat",
        width: 4,
        unit: "s",
        threshold: latencyObjectiveMs / 1000,
        queries: [{ expr: `max(job:inferstack_http_request_duration_seconds:p95_5m{${app}})`, legend: "p95" }],
      },
      { row: "Traffic (RED)" },
      {
        title: "Requests / s by route",
        unit: "reqps",
        stack: true,
        queries: [
          {
            expr: `sum by (route) (rate(inferstack_http_requests_total{${app}}[$__rate_interval]))`,
            legend: "{{route}}",
          },
        ],
      },
      {
        title: "Responses / s by status",
        unit: "reqps",
        stack: true,
        queries: [
          {
            expr: `sum by (status) (rate(inferstack_http_requests_total{${app},${notApi}}[$__rate_interval]))`,
            legend: "{{status}}",
          },
        ],
      },
      {
        title: "Error % (5xx) by route",
        unit: "percentunit",
        threshold: 0.01,
        min: 0,
        queries: [{ expr: `job_route:inferstack_http_error_ratio:rate5m{${app},${notApi}}`, legend: "{{route}}" }],
      },
      {
        title: "API latency p50 / p95 / p99",
        unit: "s",
        threshold: latencyObjectiveMs / 1000,
        description: `The red line is the tier's p95 objective (${latencyObjectiveMs} ms).`,
        queries: [
          { expr: `job:inferstack_http_request_duration_seconds:p50_5m{${app}}`, legend: "p50" },
          { expr: `job:inferstack_http_request_duration_seconds:p95_5m{${app}}`, legend: "p95" },
          { expr: `job:inferstack_http_request_duration_seconds:p99_5m{${app}}`, legend: "p99" },
        ],
      },
      {
        title: "p95 latency by route",
        unit: "s",
        width: 24,
        threshold: latencyObjectiveMs / 1000,
        queries: [
          { expr: `job_route:inferstack_http_request_duration_seconds:p95_5m{${app},${notApi}}`, legend: "{{route}}" },
        ],
      },
      { row: "Inference per model" },
      {
        title: "Inference requests / s by model and outcome",
        unit: "reqps",
        stack: true,
        queries: [
          {
            expr: `sum by (model, version, outcome) (rate(inferstack_inference_requests_total{${app},${model}}[$__rate_interval]))`,
            legend: "{{model}} v{{version}} {{outcome}}",
          },
        ],
      },
      {
        title: "Models loaded",
        unit: "short",
        queries: [
          {
            expr: `sum by (model, version) (inferstack_models_loaded{${app},${model}})`,
            legend: "{{model}} v{{version}}",
          },
        ],
      },
      {
        title: "Inference time (session.run) p50 / p95 / p99",
        unit: "s",
        queries: [
          {
            expr: `job_model_version:inferstack_inference_duration_seconds:p50_5m{${app},${model}}`,
            legend: "{{model}} v{{version}} p50",
          },
          {
            expr: `job_model_version:inferstack_inference_duration_seconds:p95_5m{${app},${model}}`,
            legend: "{{model}} v{{version}} p95",
          },
          {
            expr: `job_model_version:inferstack_inference_duration_seconds:p99_5m{${app},${model}}`,
            legend: "{{model}} v{{version}} p99",
          },
        ],
      },
      {
        title: "Queue time in the batcher p50 / p95",
        unit: "s",
        queries: [
          {
            expr: `job_model_version:inferstack_inference_queue_duration_seconds:p50_5m{${app},${model}}`,
            legend: "{{model}} v{{version}} p50",
          },
          {
            expr: `job_model_version:inferstack_inference_queue_duration_seconds:p95_5m{${app},${model}}`,
            legend: "{{model}} v{{version}} p95",
          },
        ],
      },
      {
        title: "Batch size (mean)",
        unit: "short",
        queries: [
          {
            expr: `job_model_version:inferstack_inference_batch_size:mean5m{${app},${model}}`,
            legend: "{{model}} v{{version}}",
          },
        ],
      },
      {
        title: "Model load failures",
        unit: "short",
        queries: [
          {
            expr: `sum by (model) (increase(inferstack_model_load_failures_total{${app}}[$__range]))`,
            legend: "{{model}}",
          },
        ],
      },
      { row: "Cache, limits and auth" },
      {
        title: "Cache hit ratio by model",
        unit: "percentunit",
        min: 0,
        max: 1,
        width: 8,
        queries: [{ expr: `job_model:inferstack_cache_hit_ratio:rate5m{${app},${model}}`, legend: "{{model}}" }],
      },
      {
        title: "Rate-limited (429) / s by plan",
        unit: "reqps",
        width: 8,
        stack: true,
        queries: [{ expr: `job_plan:inferstack_rate_limited:rate5m{${app}}`, legend: "{{plan}}" }],
      },
      {
        title: "Auth failures / s by reason",
        unit: "reqps",
        width: 8,
        stack: true,
        queries: [
          {
            expr: `sum by (reason) (rate(inferstack_auth_failures_total{${app}}[$__rate_interval]))`,
            legend: "{{reason}}",
          },
        ],
      },
      { row: "Prediction log" },
      {
        title: "Queue depth (in memory)",
        unit: "short",
        width: 8,
        queries: [{ expr: `inferstack_prediction_log_queue_depth{${app}}`, legend: "{{instance}}" }],
      },
      {
        title: "Records / s: written, spilled, replayed",
        unit: "short",
        width: 8,
        queries: [
          { expr: `sum(rate(inferstack_prediction_log_written_total{${app}}[$__rate_interval]))`, legend: "written" },
          { expr: `sum(rate(inferstack_prediction_log_spilled_total{${app}}[$__rate_interval]))`, legend: "spilled" },
          { expr: `sum(rate(inferstack_prediction_log_replayed_total{${app}}[$__rate_interval]))`, legend: "replayed" },
        ],
      },
      {
        title: "Spill file size",
        unit: "bytes",
        width: 8,
        queries: [{ expr: `inferstack_prediction_log_spill_bytes{${app}}`, legend: "{{instance}}" }],
      },
    ],
  );
}

export function dependenciesDashboard(): Record<string, unknown> {
  return dashboard(
    "inferstack-dependencies",
    "InferStack / Dependencies",
    ["postgres", "redis"],
    [],
    [
      { row: "As the API sees them" },
      {
        title: "Dependency reachable (per replica)",
        unit: "short",
        min: 0,
        max: 1,
        queries: [{ expr: `inferstack_dependency_up{${app}}`, legend: "{{dependency}} {{instance}}" }],
      },
      {
        title: "Rate limiter fallback (per process limits)",
        unit: "short",
        min: 0,
        max: 1,
        queries: [{ expr: `inferstack_rate_limiter_fallback{${app}}`, legend: "{{instance}}" }],
      },
      { row: "Postgres (postgres-exporter)" },
      { title: "Postgres up", kind: "stat", width: 6, queries: [{ expr: "min(pg_up)", legend: "up" }] },
      {
        title: "Connections used",
        kind: "stat",
        width: 6,
        unit: "percentunit",
        threshold: 0.8,
        queries: [{ expr: "sum(pg_stat_database_numbackends) / max(pg_settings_max_connections)", legend: "used" }],
      },
      {
        title: "Database size",
        kind: "stat",
        width: 12,
        unit: "bytes",
        queries: [{ expr: `max by (datname) (pg_database_size_bytes{datname!~"template.*"})`, legend: "{{datname}}" }],
      },
      {
        title: "Transactions / s",
        unit: "ops",
        queries: [
          { expr: "sum(rate(pg_stat_database_xact_commit[$__rate_interval]))", legend: "commit" },
          { expr: "sum(rate(pg_stat_database_xact_rollback[$__rate_interval]))", legend: "rollback" },
        ],
      },
      {
        title: "Connections by database",
        unit: "short",
        queries: [{ expr: "sum by (datname) (pg_stat_database_numbackends)", legend: "{{datname}}" }],
      },
      { row: "Redis (redis-exporter)" },
      { title: "Redis up", kind: "stat", width: 6, queries: [{ expr: "min(redis_up)", legend: "up" }] },
      {
        title: "Connected clients",
        kind: "stat",
        width: 6,
        queries: [{ expr: "sum(redis_connected_clients)", legend: "clients" }],
      },
      {
        title: "Memory used / maxmemory",
        kind: "stat",
        width: 12,
        unit: "percentunit",
        threshold: 0.9,
        queries: [{ expr: "max(redis_memory_used_bytes / (redis_memory_max_bytes > 0))", legend: "used" }],
      },
      {
        title: "Commands / s",
        unit: "ops",
        queries: [{ expr: "sum(rate(redis_commands_processed_total[$__rate_interval]))", legend: "commands" }],
      },
      {
        title: "Keyspace hit ratio and evictions",
        unit: "percentunit",
        queries: [
          {
            expr: "sum(rate(redis_keyspace_hits_total[$__rate_interval])) / (sum(rate(redis_keyspace_hits_total[$__rate_interval])) + sum(rate(redis_keyspace_misses_total[$__rate_interval])))",
            legend: "hit ratio",
          },
          { expr: "sum(rate(redis_evicted_keys_total[$__rate_interval]))", legend: "evictions / s" },
        ],
      },
    ],
  );
}

const fs = `fstype!~"tmpfs|overlay|squashfs|nsfs",mountpoint!~"/run.*|/var/lib/docker/.+"`;

export function containersHostDashboard(): Record<string, unknown> {
  return dashboard(
    "inferstack-containers-host",
    "InferStack / Containers and host",
    ["containers", "host"],
    [],
    [
      { row: "App processes (every tier)" },
      {
        title: "Resident memory per replica",
        unit: "bytes",
        queries: [{ expr: `process_resident_memory_bytes{${app}}`, legend: "{{instance}}" }],
      },
      {
        title: "CPU per replica",
        unit: "percentunit",
        queries: [{ expr: `rate(process_cpu_seconds_total{${app}}[$__rate_interval])`, legend: "{{instance}}" }],
      },
      {
        title: "Event-loop lag p99",
        unit: "s",
        queries: [{ expr: `nodejs_eventloop_lag_p99_seconds{${app}}`, legend: "{{instance}}" }],
      },
      {
        title: "V8 heap used",
        unit: "bytes",
        queries: [{ expr: `nodejs_heap_size_used_bytes{${app}}`, legend: "{{instance}}" }],
      },
      { row: "Containers (cAdvisor, Docker tiers)" },
      {
        title: "Memory working set / limit",
        unit: "percentunit",
        threshold: 0.9,
        min: 0,
        queries: [
          {
            expr: `container_memory_working_set_bytes{name!=""} / (container_spec_memory_limit_bytes{name!=""} > 0)`,
            legend: "{{name}}",
          },
        ],
      },
      {
        title: "CPU by container",
        unit: "percentunit",
        queries: [
          {
            expr: `sum by (name) (rate(container_cpu_usage_seconds_total{name!=""}[$__rate_interval]))`,
            legend: "{{name}}",
          },
        ],
      },
      {
        title: "Network by container",
        unit: "Bps",
        width: 24,
        queries: [
          {
            expr: `sum by (name) (rate(container_network_receive_bytes_total{name!=""}[$__rate_interval]))`,
            legend: "{{name}} rx",
          },
          {
            expr: `sum by (name) (rate(container_network_transmit_bytes_total{name!=""}[$__rate_interval]))`,
            legend: "{{name}} tx",
          },
        ],
      },
      { row: "Host (node-exporter, Docker tiers)" },
      {
        title: "CPU busy",
        unit: "percentunit",
        width: 8,
        max: 1,
        queries: [{ expr: `1 - avg(rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval]))`, legend: "busy" }],
      },
      {
        title: "Memory and swap used",
        unit: "percentunit",
        width: 8,
        max: 1,
        queries: [
          { expr: "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", legend: "memory" },
          { expr: "1 - node_memory_SwapFree_bytes / (node_memory_SwapTotal_bytes > 0)", legend: "swap" },
        ],
      },
      { title: "Load (1 m)", unit: "short", width: 8, queries: [{ expr: "node_load1", legend: "{{instance}}" }] },
      {
        title: "Disk free and 24 h forecast",
        unit: "bytes",
        width: 24,
        queries: [
          { expr: `node_filesystem_avail_bytes{${fs}}`, legend: "{{mountpoint}} free" },
          {
            expr: `predict_linear(node_filesystem_avail_bytes{${fs}}[6h], 24 * 3600)`,
            legend: "{{mountpoint}} in 24 h",
          },
        ],
      },
      { row: "Edge (blackbox exporter)" },
      {
        title: "Days until the TLS certificate expires",
        unit: "d",
        queries: [{ expr: "(probe_ssl_earliest_cert_expiry - time()) / 86400", legend: "{{instance}}" }],
      },
      {
        title: "HTTPS probe success and duration",
        unit: "s",
        queries: [
          { expr: "probe_success", legend: "{{instance}} success" },
          { expr: "probe_duration_seconds", legend: "{{instance}} duration" },
        ],
      },
    ],
  );
}

/** File name → dashboard JSON. */
export function dashboards(latencyObjectiveMs: number): Record<string, Record<string, unknown>> {
  return {
    "api-overview.json": apiOverviewDashboard(latencyObjectiveMs),
    "dependencies.json": dependenciesDashboard(),
    "containers-host.json": containersHostDashboard(),
  };
}
