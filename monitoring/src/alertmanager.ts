/**
 * alertmanager.yml from the stack's receiver secrets. The rendered text embeds those secrets, so
 * the Pulumi components keep it inside a secret Output (`pulumi.secret(...).apply(render...)`);
 * the committed file under monitoring/generated/ is rendered with no receivers at all.
 */
import { stringify } from "yaml";

export interface EmailReceiver {
  to: string;
  from: string;
  /** host:port of the SMTP relay, e.g. email-smtp.eu-west-1.amazonaws.com:587. */
  smarthost: string;
  authUsername?: string;
  authPassword?: string;
  requireTls?: boolean;
}

export interface SlackReceiver {
  /** Incoming-webhook URL (a secret). */
  webhookUrl: string;
  channel?: string;
  /** Where critical alerts go; defaults to `channel`. */
  criticalChannel?: string;
}

export interface WebhookReceiver {
  url: string;
  /** Sent as `Authorization: Bearer …`. */
  bearerToken?: string;
}

export interface AlertReceivers {
  email?: EmailReceiver;
  slack?: SlackReceiver;
  webhook?: WebhookReceiver;
  /** Dead man's switch (e.g. healthchecks.io): receives the always-firing Watchdog. */
  heartbeat?: WebhookReceiver;
}

type Json = Record<string, unknown>;

function webhookConfig(w: WebhookReceiver, sendResolved: boolean): Json {
  return {
    url: w.url,
    send_resolved: sendResolved,
    ...(w.bearerToken ? { http_config: { authorization: { type: "Bearer", credentials: w.bearerToken } } } : {}),
  };
}

function channels(r: AlertReceivers, severity: "critical" | "warning"): Json {
  const out: Json = {};
  if (r.email) {
    out.email_configs = [
      {
        to: r.email.to,
        from: r.email.from,
        smarthost: r.email.smarthost,
        require_tls: r.email.requireTls ?? true,
        ...(r.email.authUsername ? { auth_username: r.email.authUsername } : {}),
        ...(r.email.authPassword ? { auth_password: r.email.authPassword } : {}),
        send_resolved: true,
        headers: { Subject: '{{ template "inferstack.email.subject" . }}' },
        html: '{{ template "inferstack.email.html" . }}',
      },
    ];
  }
  if (r.slack) {
    const channel = severity === "critical" ? (r.slack.criticalChannel ?? r.slack.channel) : r.slack.channel;
    out.slack_configs = [
      {
        api_url: r.slack.webhookUrl,
        ...(channel ? { channel } : {}),
        send_resolved: true,
        color: '{{ template "inferstack.slack.color" . }}',
        title: '{{ template "inferstack.slack.title" . }}',
        text: '{{ template "inferstack.slack.text" . }}',
      },
    ];
  }
  if (r.webhook) out.webhook_configs = [webhookConfig(r.webhook, true)];
  return out;
}

export function renderAlertmanagerConfig(receivers: AlertReceivers = {}): string {
  const config = {
    ...(receivers.email ? { global: { smtp_require_tls: receivers.email.requireTls ?? true } } : {}),
    templates: ["templates/*.tmpl"],
    route: {
      receiver: "warning",
      group_by: ["alertname", "job", "severity"],
      group_wait: "30s",
      group_interval: "5m",
      repeat_interval: "12h",
      routes: [
        // The heartbeat must arrive on a steady clock: its absence is the alert.
        {
          matchers: ['alertname="Watchdog"'],
          receiver: "heartbeat",
          group_wait: "0s",
          group_interval: "1m",
          repeat_interval: "1m",
        },
        {
          matchers: ['severity="critical"'],
          receiver: "critical",
          group_wait: "10s",
          group_interval: "5m",
          repeat_interval: "1h",
        },
        { matchers: ['severity="warning"'], receiver: "warning" },
        // Anything without a known severity is a bug in a rule; it still reaches people.
        { matchers: ['severity!~"critical|warning|none"'], receiver: "warning" },
      ],
    },
    inhibit_rules: [
      // A critical alert silences the warning of the same alert on the same thing.
      {
        source_matchers: ['severity="critical"'],
        target_matchers: ['severity="warning"'],
        equal: [
          "alertname",
          "tier",
          "job",
          "instance",
          "route",
          "model",
          "version",
          "dependency",
          "name",
          "mountpoint",
        ],
      },
      // All replicas down explains each replica's TargetDown and not-ready alerts.
      {
        source_matchers: ['alertname="InferstackAppDown"'],
        target_matchers: ['alertname=~"TargetDown|InferstackNotReady|HighErrorRatio|HighLatencyP95"'],
        equal: ["tier", "job"],
      },
      // A dependency that is down explains the degraded-mode alerts it causes.
      {
        source_matchers: ['alertname=~"PostgresDown|RedisDown|DependencyUnreachable"'],
        target_matchers: [
          'alertname=~"InferstackDegraded|RateLimiterFallback|PredictionLogSpilling|PredictionLogBacklog"',
        ],
        equal: ["tier"],
      },
    ],
    receivers: [
      { name: "critical", ...channels(receivers, "critical") },
      { name: "warning", ...channels(receivers, "warning") },
      {
        name: "heartbeat",
        ...(receivers.heartbeat ? { webhook_configs: [webhookConfig(receivers.heartbeat, false)] } : {}),
      },
    ],
  };
  return `# Generated by monitoring/src/alertmanager.ts. Rendered with secrets at deploy time; this copy has none.\n${stringify(config, { lineWidth: 0 })}`;
}

/** Notification templates; mounted next to alertmanager.yml as templates/inferstack.tmpl. */
export const alertmanagerTemplate = `{{ define "inferstack.slack.color" }}{{ if eq .Status "firing" }}{{ if eq .CommonLabels.severity "critical" }}danger{{ else }}warning{{ end }}{{ else }}good{{ end }}{{ end }}

{{ define "inferstack.title" }}[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }}{{ with .CommonLabels.tier }} ({{ . }}){{ end }}{{ end }}

{{ define "inferstack.slack.title" }}{{ template "inferstack.title" . }}{{ end }}

{{ define "inferstack.slack.text" }}{{ range .Alerts }}*{{ .Labels.severity }}* {{ .Annotations.summary }}
{{ .Annotations.description }}
{{ with .Annotations.runbook_url }}Runbook: {{ . }}{{ end }}
{{ end }}{{ end }}

{{ define "inferstack.email.subject" }}{{ template "inferstack.title" . }}{{ end }}

{{ define "inferstack.email.html" }}<h2>{{ template "inferstack.title" . }}</h2>
{{ range .Alerts }}<p><b>{{ .Labels.severity }}</b> {{ .Annotations.summary }}<br>{{ .Annotations.description }}<br>
{{ with .Annotations.runbook_url }}<a href="{{ . }}">Runbook</a>{{ end }}</p>
{{ end }}<p><a href="{{ .ExternalURL }}">Alertmanager</a></p>{{ end }}
`;
