/**
 * Grafana provisioning: the Prometheus (and Alertmanager) data sources, the dashboard provider,
 * and the settings that keep Grafana closed: admin password read from a secret file, anonymous
 * access and sign-up off. Grafana reads every setting from GF_* variables, so ECS needs no file.
 */
import { stringify } from "yaml";

export const prometheusDatasourceUid = "inferstack-prometheus";
export const grafanaDashboardsDir = "/var/lib/grafana/dashboards";
export const grafanaProvisioningDir = "/etc/grafana/provisioning";

export interface GrafanaDatasourceOptions {
  prometheusUrl: string;
  alertmanagerUrl?: string;
}

export function renderGrafanaDatasources(opts: GrafanaDatasourceOptions): string {
  const datasources: Record<string, unknown>[] = [
    {
      name: "Prometheus",
      uid: prometheusDatasourceUid,
      type: "prometheus",
      access: "proxy",
      url: opts.prometheusUrl,
      isDefault: true,
      editable: false,
      // Matches the scrape interval so $__rate_interval never drops below 4 samples.
      jsonData: { timeInterval: "15s", httpMethod: "POST" },
    },
  ];
  if (opts.alertmanagerUrl) {
    datasources.push({
      name: "Alertmanager",
      uid: "inferstack-alertmanager",
      type: "alertmanager",
      access: "proxy",
      url: opts.alertmanagerUrl,
      editable: false,
      jsonData: { implementation: "prometheus", handleGrafanaManagedAlerts: false },
    });
  }
  return stringify({ apiVersion: 1, deleteDatasources: [], datasources }, { lineWidth: 0 });
}

export function renderGrafanaDashboardProvider(dashboardsDir = grafanaDashboardsDir): string {
  return stringify(
    {
      apiVersion: 1,
      providers: [
        {
          name: "inferstack",
          folder: "InferStack",
          type: "file",
          // Dashboards are code: edits in the UI would be lost at the next deploy, so forbid them.
          disableDeletion: true,
          allowUiUpdates: false,
          updateIntervalSeconds: 60,
          options: { path: dashboardsDir, foldersFromFilesStructure: false },
        },
      ],
    },
    { lineWidth: 0 },
  );
}

export interface GrafanaEnvOptions {
  /** File holding the admin password (Docker secret / mounted file); never the password itself. */
  adminPasswordFile: string;
  /** Public URL of Grafana, e.g. https://dev.example.com/grafana/ . */
  rootUrl?: string;
  /** Serve from a sub-path of rootUrl (behind the edge proxy). */
  serveFromSubPath?: boolean;
}

/** Environment of the grafana container. */
export function grafanaEnvironment(opts: GrafanaEnvOptions): Record<string, string> {
  const https = opts.rootUrl?.startsWith("https://") ?? false;
  return {
    GF_PATHS_PROVISIONING: grafanaProvisioningDir,
    GF_SECURITY_ADMIN_USER: "admin",
    // Grafana reads any setting from a file when the variable name ends in __FILE.
    GF_SECURITY_ADMIN_PASSWORD__FILE: opts.adminPasswordFile,
    GF_SECURITY_DISABLE_INITIAL_ADMIN_CREATION: "false",
    GF_SECURITY_COOKIE_SECURE: String(https),
    GF_SECURITY_DISABLE_GRAVATAR: "true",
    GF_AUTH_ANONYMOUS_ENABLED: "false",
    GF_AUTH_BASIC_ENABLED: "true",
    GF_USERS_ALLOW_SIGN_UP: "false",
    GF_USERS_ALLOW_ORG_CREATE: "false",
    GF_ANALYTICS_REPORTING_ENABLED: "false",
    GF_ANALYTICS_CHECK_FOR_UPDATES: "false",
    GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: `${grafanaDashboardsDir}/api-overview.json`,
    ...(opts.rootUrl ? { GF_SERVER_ROOT_URL: opts.rootUrl } : {}),
    ...(opts.serveFromSubPath ? { GF_SERVER_SERVE_FROM_SUB_PATH: "true" } : {}),
  };
}
