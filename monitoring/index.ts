/**
 * Monitoring as code: the one TypeScript source of every Prometheus, Alertmanager and Grafana
 * file, per tier. The Pulumi components call `monitoringBundle()` and mount (Docker tiers) or
 * ship (ECS) the files it returns; `render.ts` writes the same files, with default names and
 * no secrets, under monitoring/generated/ where promtool and amtool check them.
 */
import type { TierName } from "../infra/config.ts";
import { images } from "../infra/images.ts";
import { presets } from "../infra/presets.ts";
import { renderAlertmanagerConfig, alertmanagerTemplate, type AlertReceivers } from "./src/alertmanager.ts";
import { dashboards } from "./src/dashboards.ts";
import {
  grafanaDashboardsDir, grafanaEnvironment, grafanaProvisioningDir, renderGrafanaDashboardProvider, renderGrafanaDatasources,
} from "./src/grafana.ts";
import { prometheusFlags, renderPrometheusConfig } from "./src/prometheus.ts";
import { renderAlertRules, renderRecordingRules, type AlertRuleOptions } from "./src/rules.ts";
import { defaultScrapeTargets, type ScrapeTargets } from "./src/targets.ts";

export { renderPrometheusConfig, prometheusFlags, appJob, scrapeIntervalSeconds } from "./src/prometheus.ts";
export { renderAlertRules, renderRecordingRules, alertRules, recordingRules, runbookAnchor, defaultRunbookBaseUrl } from "./src/rules.ts";
export type { AlertRule, AlertRuleOptions, RecordingRule, Severity } from "./src/rules.ts";
export { renderAlertmanagerConfig, alertmanagerTemplate } from "./src/alertmanager.ts";
export type { AlertReceivers, EmailReceiver, SlackReceiver, WebhookReceiver } from "./src/alertmanager.ts";
export {
  renderGrafanaDatasources, renderGrafanaDashboardProvider, grafanaEnvironment, prometheusDatasourceUid,
  grafanaDashboardsDir, grafanaProvisioningDir,
} from "./src/grafana.ts";
export { dashboards } from "./src/dashboards.ts";
export { defaultScrapeTargets, appPort } from "./src/targets.ts";
export type { ScrapeTargets, AppDiscovery } from "./src/targets.ts";

/**
 * The images the bundle is deployed with: the pinned table of infra/images.ts, so there is one
 * source of versions. The configs use only syntax that both these (Prometheus 3.x, Alertmanager
 * 0.28) and the Debian binaries the tests run (Prometheus 2.42, Alertmanager 0.25) accept.
 */
export const monitoringImages = {
  prometheus: images.prometheus.tag,
  alertmanager: images.alertmanager.tag,
  grafana: images.grafana.tag,
  postgresExporter: images.postgresExporter.tag,
  redisExporter: images.redisExporter.tag,
  nodeExporter: images.nodeExporter.tag,
  cadvisor: images.cadvisor.tag,
  blackboxExporter: images.blackboxExporter.tag,
} as const;

/** Where each container expects its directory (the keys of `files` are relative to these). */
export const mountPoints = {
  prometheus: "/etc/prometheus",
  alertmanager: "/etc/alertmanager",
  grafanaProvisioning: grafanaProvisioningDir,
  grafanaDashboards: grafanaDashboardsDir,
} as const;

/** What a tier needs from its stack config; `StackConfig` satisfies it. */
export interface MonitoringStackInput {
  tier: TierName;
  domain?: string;
  app: { memoryMiB: number };
  monitoring: {
    prometheusRetentionDays: number;
    latencyObjectiveMs: number;
    /** Docker tiers: whether these exporters run (presets); a target that never exists only pages as down. */
    nodeExporter?: boolean;
    cadvisor?: boolean;
  };
}

export interface MonitoringBundleOptions {
  /** Override discovery names (e.g. the real Cloud Map service name on AWS). */
  targets?: Partial<ScrapeTargets>;
  /** Disk for the TSDB; defaults per tier (see `defaultPrometheusStorageGiB`). */
  prometheusStorageGiB?: number;
  externalLabels?: Record<string, string>;
  runbookBaseUrl?: string;
  /** Receivers from stack secrets; omitted: alerts are routed but delivered nowhere. */
  receivers?: AlertReceivers;
  /** File inside the grafana container holding the admin password. */
  grafanaAdminPasswordFile?: string;
  grafanaRootUrl?: string;
}

/** TSDB disk per tier: a slice of the free host's 30 GiB volume; an EFS/ephemeral volume on ECS. */
export const defaultPrometheusStorageGiB: Record<TierName, number> = { local: 4, free: 3, small: 20, medium: 50 };

export interface MonitoringBundle {
  prometheus: { files: Record<string, string>; args: string[] };
  alertmanager: { files: Record<string, string>; args: string[] };
  grafana: { provisioningFiles: Record<string, string>; dashboardFiles: Record<string, string>; env: Record<string, string> };
}

export function monitoringBundle(cfg: MonitoringStackInput, opts: MonitoringBundleOptions = {}): MonitoringBundle {
  const defaults = defaultScrapeTargets(cfg.tier, cfg.domain);
  if (cfg.monitoring.nodeExporter === false) defaults.nodeExporter = null;
  if (cfg.monitoring.cadvisor === false) defaults.cadvisor = null;
  const targets: ScrapeTargets = { ...defaults, ...opts.targets };
  const ruleOpts: AlertRuleOptions = {
    latencyObjectiveMs: cfg.monitoring.latencyObjectiveMs,
    appMemoryMiB: cfg.app.memoryMiB,
    ...(opts.runbookBaseUrl ? { runbookBaseUrl: opts.runbookBaseUrl } : {}),
  };
  const prometheusHost = cfg.tier === "local" || cfg.tier === "free" ? "prometheus:9090" : targets.prometheus;
  return {
    prometheus: {
      files: {
        "prometheus.yml": renderPrometheusConfig(cfg.tier, { targets, ...(opts.externalLabels ? { externalLabels: opts.externalLabels } : {}) }),
        "rules/recording.yml": renderRecordingRules(),
        "rules/alerts.yml": renderAlertRules(ruleOpts),
      },
      args: prometheusFlags({
        retentionDays: cfg.monitoring.prometheusRetentionDays,
        storageGiB: opts.prometheusStorageGiB ?? defaultPrometheusStorageGiB[cfg.tier],
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
        Object.entries(dashboards(cfg.monitoring.latencyObjectiveMs)).map(([name, d]) => [name, `${JSON.stringify(d, null, 2)}\n`]),
      ),
      env: grafanaEnvironment({
        adminPasswordFile: opts.grafanaAdminPasswordFile ?? "/run/secrets/grafana-admin-password",
        ...(opts.grafanaRootUrl ? { rootUrl: opts.grafanaRootUrl } : {}),
      }),
    },
  };
}

/** The bundle of a tier with its preset values, as committed under monitoring/generated/<tier>/. */
export function presetBundle(tier: TierName): MonitoringBundle {
  const p = presets[tier];
  return monitoringBundle({ tier, domain: p.domain, app: p.app, monitoring: p.monitoring });
}
