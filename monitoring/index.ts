/**
 * Monitoring as code: the one TypeScript source of every Prometheus, Alertmanager and Grafana
 * file. It knows nothing of stacks or tiers beyond `MonitoringStackInput`: the Pulumi program
 * (infra/) calls `monitoringBundle()` and mounts (Docker) or ships (ECS) the files it returns;
 * `npm run monitoring:render` writes each preset's files, with default names and no secrets,
 * under monitoring/generated/ where promtool and amtool check them.
 */
import { type AlertReceivers, alertmanagerTemplate, renderAlertmanagerConfig } from "./src/alertmanager.ts";
import { dashboards } from "./src/dashboards.ts";
import {
  grafanaDashboardsDir,
  grafanaEnvironment,
  grafanaProvisioningDir,
  renderGrafanaDashboardProvider,
  renderGrafanaDatasources,
} from "./src/grafana.ts";
import { prometheusFlags, renderPrometheusConfig } from "./src/prometheus.ts";
import { type AlertRuleOptions, renderAlertRules, renderRecordingRules } from "./src/rules.ts";
import { defaultScrapeTargets, type Platform, prometheusForGrafana, type ScrapeTargets } from "./src/targets.ts";

export type { AlertReceivers, EmailReceiver, SlackReceiver, WebhookReceiver } from "./src/alertmanager.ts";
export { alertmanagerTemplate, renderAlertmanagerConfig } from "./src/alertmanager.ts";
export { dashboards } from "./src/dashboards.ts";
export {
  grafanaDashboardsDir,
  grafanaEnvironment,
  grafanaProvisioningDir,
  prometheusDatasourceUid,
  renderGrafanaDashboardProvider,
  renderGrafanaDatasources,
} from "./src/grafana.ts";
export { appJob, prometheusFlags, renderPrometheusConfig, scrapeIntervalSeconds } from "./src/prometheus.ts";
export type { AlertRule, AlertRuleOptions, RecordingRule, Severity } from "./src/rules.ts";
export {
  alertRules,
  defaultRunbookBaseUrl,
  recordingRules,
  renderAlertRules,
  renderRecordingRules,
  runbookAnchor,
} from "./src/rules.ts";
export type { AppDiscovery, Platform, ScrapeTargets } from "./src/targets.ts";
export { appPort, defaultScrapeTargets } from "./src/targets.ts";

/** Where each container expects its directory (the keys of `files` are relative to these). */
export const mountPoints = {
  prometheus: "/etc/prometheus",
  alertmanager: "/etc/alertmanager",
  grafanaProvisioning: grafanaProvisioningDir,
  grafanaDashboards: grafanaDashboardsDir,
} as const;

/** What the bundle needs from a stack's config; infra's `StackConfig` satisfies it. */
export interface MonitoringStackInput {
  /** The `tier` external label on every series and alert. */
  tier: string;
  /** Where the services run, which decides how Prometheus reaches them (`targets.ts`). */
  platform: Platform;
  /** Public host name; the blackbox exporter watches its certificate. */
  domain: string;
  app: { memoryMiB: number };
  monitoring: {
    prometheusRetentionDays: number;
    prometheusStorageGiB: number;
    latencyObjectiveMs: number;
    /** Docker: whether these exporters run; a target that never exists only pages as down. */
    nodeExporter?: boolean;
    cadvisor?: boolean;
  };
}

export interface MonitoringBundleOptions {
  /** Override discovery names (e.g. the real Cloud Map service name on AWS). */
  targets?: Partial<ScrapeTargets>;
  externalLabels?: Record<string, string>;
  runbookBaseUrl?: string;
  /** Receivers from stack secrets; omitted: alerts are routed but delivered nowhere. */
  receivers?: AlertReceivers;
  /** File inside the grafana container holding the admin password. */
  grafanaAdminPasswordFile?: string;
  grafanaRootUrl?: string;
}

export interface MonitoringBundle {
  prometheus: { files: Record<string, string>; args: string[] };
  alertmanager: { files: Record<string, string>; args: string[] };
  grafana: {
    provisioningFiles: Record<string, string>;
    dashboardFiles: Record<string, string>;
    env: Record<string, string>;
  };
}

export function monitoringBundle(cfg: MonitoringStackInput, opts: MonitoringBundleOptions = {}): MonitoringBundle {
  const defaults = defaultScrapeTargets(cfg.platform, cfg.domain);
  if (cfg.monitoring.nodeExporter === false) defaults.nodeExporter = null;
  if (cfg.monitoring.cadvisor === false) defaults.cadvisor = null;
  const targets: ScrapeTargets = { ...defaults, ...opts.targets };
  const ruleOpts: AlertRuleOptions = {
    latencyObjectiveMs: cfg.monitoring.latencyObjectiveMs,
    appMemoryMiB: cfg.app.memoryMiB,
    ...(opts.runbookBaseUrl ? { runbookBaseUrl: opts.runbookBaseUrl } : {}),
  };
  const prometheusHost = prometheusForGrafana(cfg.platform, targets);
  return {
    prometheus: {
      files: {
        "prometheus.yml": renderPrometheusConfig(cfg.tier, {
          targets,
          ...(opts.externalLabels ? { externalLabels: opts.externalLabels } : {}),
        }),
        "rules/recording.yml": renderRecordingRules(),
        "rules/alerts.yml": renderAlertRules(ruleOpts),
      },
      args: prometheusFlags({
        retentionDays: cfg.monitoring.prometheusRetentionDays,
        storageGiB: cfg.monitoring.prometheusStorageGiB,
      }),
    },
    alertmanager: {
      files: {
        "alertmanager.yml": renderAlertmanagerConfig(opts.receivers ?? {}),
        "templates/inferstack.tmpl": alertmanagerTemplate,
      },
      args: ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"],
    },
    grafana: {
      provisioningFiles: {
        "datasources/inferstack.yml": renderGrafanaDatasources({
          prometheusUrl: `http://${prometheusHost}`,
          alertmanagerUrl: `http://${targets.alertmanager}`,
        }),
        "dashboards/inferstack.yml": renderGrafanaDashboardProvider(),
      },
      dashboardFiles: Object.fromEntries(
        Object.entries(dashboards(cfg.monitoring.latencyObjectiveMs)).map(([name, d]) => [
          name,
          `${JSON.stringify(d, null, 2)}\n`,
        ]),
      ),
      env: grafanaEnvironment({
        adminPasswordFile: opts.grafanaAdminPasswordFile ?? "/run/secrets/grafana-admin-password",
        ...(opts.grafanaRootUrl ? { rootUrl: opts.grafanaRootUrl } : {}),
      }),
    },
  };
}
