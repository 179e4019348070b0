/**
 * The generated files are what the TypeScript renders (no drift), Prometheus and Alertmanager
 * accept them (promtool, amtool), routing sends each severity where it should, the dashboards'
 * queries parse, the bundle API serves each tier, and the runbook has a section per alert.
 */

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { presets } from "../../infra/presets.ts";
import { generatedDir, generatedFiles, presetBundle } from "../../scripts/monitoring-render.ts";
import {
  type AlertReceivers,
  alertmanagerTemplate,
  alertRules,
  dashboards,
  defaultScrapeTargets,
  monitoringBundle,
  prometheusDatasourceUid,
  renderAlertmanagerConfig,
  renderPrometheusConfig,
} from "../index.ts";
import { repoRoot, run, tempDir, writeTree } from "./support.ts";

const tiers = ["local", "free", "small", "medium"] as const;

const fakeReceivers: AlertReceivers = {
  email: {
    to: "oncall@example.com",
    from: "alerts@example.com",
    smarthost: "smtp.example.com:587",
    authUsername: "alerts",
    authPassword: "not-a-real-password",
  },
  slack: {
    webhookUrl: "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
    channel: "#inferstack",
    criticalChannel: "#inferstack-pager",
  },
  webhook: { url: "https://hooks.example.com/alerts", bearerToken: "not-a-real-token" },
  heartbeat: { url: "https://hc-ping.example.com/abc" },
};

describe("generated monitoring files", () => {
  it("match what scripts/monitoring-render.ts renders (run npm run monitoring:render after a change)", async () => {
    for (const [rel, text] of generatedFiles()) {
      const committed = await readFile(join(generatedDir, rel), "utf8").catch(() => "(missing)");
      assert.equal(committed, text, `monitoring/generated/${rel} is stale`);
    }
  });

  it("pass promtool check config in every tier", async () => {
    for (const tier of tiers) {
      const r = await run("promtool", ["check", "config", join(generatedDir, tier, "prometheus", "prometheus.yml")]);
      assert.equal(r.code, 0, `${tier}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /2 rule files found/);
    }
  });

  it("scrape every 15 s, with Docker DNS in local/free and Cloud Map DNS in small/medium", async () => {
    for (const tier of tiers) {
      const cfg = parse(await readFile(join(generatedDir, tier, "prometheus", "prometheus.yml"), "utf8"));
      assert.equal(cfg.global.scrape_interval, "15s");
      const app = cfg.scrape_configs.find((s: { job_name: string }) => s.job_name === "inferstack-app");
      const dns = app.dns_sd_configs[0];
      assert.equal(dns.type, "A");
      assert.equal(dns.port, 8080);
      assert.equal(dns.names[0], tier === "local" || tier === "free" ? "app" : "app.inferstack.local");
      const jobs = cfg.scrape_configs.map((s: { job_name: string }) => s.job_name);
      for (const j of ["prometheus", "alertmanager", "postgres", "redis"])
        assert.ok(jobs.includes(j), `${tier} scrapes ${j}`);
      const m = presets[tier].monitoring;
      assert.equal(
        jobs.includes("node"),
        "nodeExporter" in m && m.nodeExporter,
        `${tier}: node-exporter as the preset says`,
      );
      assert.equal(jobs.includes("cadvisor"), "cadvisor" in m && m.cadvisor, `${tier}: cAdvisor as the preset says`);
      assert.equal(
        jobs.includes("blackbox-https"),
        tier === "small" || tier === "medium",
        `${tier}: TLS probe in the AWS monitoring task`,
      );
    }
  });

  it("pass amtool check-config, committed and rendered with every receiver", async () => {
    for (const tier of tiers) {
      const r = await run("amtool", ["check-config", join(generatedDir, tier, "alertmanager", "alertmanager.yml")]);
      assert.equal(r.code, 0, `${tier}: ${r.stdout}${r.stderr}`);
    }
    const t = await tempDir("am");
    try {
      await writeTree(t.dir, {
        "alertmanager.yml": renderAlertmanagerConfig(fakeReceivers),
        "templates/inferstack.tmpl": alertmanagerTemplate,
      });
      const r = await run("amtool", ["check-config", join(t.dir, "alertmanager.yml")]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /3 receivers/);
      assert.match(r.stdout, /1 templates/);
    } finally {
      await t.cleanup();
    }
  });

  it("keep receiver secrets out of the committed Alertmanager config", async () => {
    const committed = await readFile(join(generatedDir, "local", "alertmanager", "alertmanager.yml"), "utf8");
    assert.doesNotMatch(committed, /api_url|auth_password|credentials|hooks\.|smarthost/);
    const rendered = renderAlertmanagerConfig(fakeReceivers);
    assert.match(rendered, /not-a-real-password/);
  });

  it("route by severity: critical to the pager, warning to the team, Watchdog to the heartbeat", async () => {
    const t = await tempDir("am-routes");
    try {
      await writeTree(t.dir, {
        "alertmanager.yml": renderAlertmanagerConfig(fakeReceivers),
        "templates/inferstack.tmpl": alertmanagerTemplate,
      });
      const route = async (...labels: string[]) => {
        const r = await run("amtool", [
          "config",
          "routes",
          "test",
          `--config.file=${join(t.dir, "alertmanager.yml")}`,
          ...labels,
        ]);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.trim();
      };
      assert.equal(await route("alertname=HighErrorRatio", "severity=critical"), "critical");
      assert.equal(await route("alertname=HighErrorRatio", "severity=warning"), "warning");
      assert.equal(await route("alertname=Watchdog", "severity=none"), "heartbeat");
      assert.equal(await route("alertname=SomethingNew", "severity=info"), "warning");
    } finally {
      await t.cleanup();
    }
  });

  it("inhibit a warning with the critical of the same alert", () => {
    const cfg = parse(renderAlertmanagerConfig({}));
    const rule = cfg.inhibit_rules[0];
    assert.deepEqual(rule.source_matchers, ['severity="critical"']);
    assert.deepEqual(rule.target_matchers, ['severity="warning"']);
    assert.ok(rule.equal.includes("alertname") && rule.equal.includes("instance"));
  });
});

describe("Grafana provisioning", () => {
  it("provisions the Prometheus data source the dashboards use, and keeps Grafana closed", () => {
    const b = presetBundle("local");
    const ds = parse(b.grafana.provisioningFiles["datasources/inferstack.yml"] ?? "");
    const prom = ds.datasources.find((d: { type: string }) => d.type === "prometheus");
    assert.equal(prom.uid, prometheusDatasourceUid);
    assert.equal(prom.url, "http://prometheus:9090");
    assert.equal(b.grafana.env.GF_AUTH_ANONYMOUS_ENABLED, "false");
    assert.equal(b.grafana.env.GF_USERS_ALLOW_SIGN_UP, "false");
    assert.equal(b.grafana.env.GF_SECURITY_ADMIN_PASSWORD__FILE, "/run/secrets/grafana-admin-password");
    assert.equal(
      b.grafana.env.GF_SECURITY_ADMIN_PASSWORD,
      undefined,
      "the password itself is never in the environment",
    );
    const aws = presetBundle("small");
    const awsDs = parse(aws.grafana.provisioningFiles["datasources/inferstack.yml"] ?? "");
    assert.equal(awsDs.datasources[0].url, "http://localhost:9090", "ECS: Prometheus shares the task");
  });

  it("builds dashboards with unique panel ids, the provisioned data source, and every panel the operators rely on", () => {
    const all = dashboards(50);
    assert.deepEqual(Object.keys(all).sort(), ["api-overview.json", "containers-host.json", "dependencies.json"]);
    for (const [file, d] of Object.entries(all)) {
      const panels = d.panels as {
        id: number;
        type: string;
        title: string;
        datasource?: { uid: string };
        gridPos: { x: number; w: number };
      }[];
      assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, `${file}: unique ids`);
      for (const p of panels.filter((x) => x.type !== "row")) {
        assert.equal(p.datasource?.uid, prometheusDatasourceUid, `${file}: ${p.title}`);
        assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${file}: ${p.title} fits the grid`);
      }
    }
    const titles = (all["api-overview.json"]!.panels as { title: string }[])
      .map((p) => p.title.toLowerCase())
      .join(" | ");
    for (const needle of [
      "requests / s",
      "error %",
      "p50 / p95 / p99",
      "inference time",
      "queue time",
      "batch size",
      "cache hit ratio",
      "rate-limited",
      "queue depth",
      "spill",
    ]) {
      assert.ok(titles.includes(needle), `API overview has a "${needle}" panel`);
    }
  });

  it("uses only PromQL that Prometheus parses (checked with promtool)", async () => {
    const rules: { record: string; expr: string }[] = [];
    for (const [file, d] of Object.entries(dashboards(50))) {
      for (const p of d.panels as { targets?: { expr: string }[] }[]) {
        for (const tgt of p.targets ?? []) {
          // Grafana's variables, as Grafana would substitute them.
          const expr = tgt.expr
            .replaceAll("$__rate_interval", "1m")
            .replaceAll("$__range", "1h")
            .replaceAll("$model", ".*");
          rules.push({ record: `dashboard:${file.replace(/\W/g, "_")}:${rules.length}`, expr });
        }
      }
    }
    const t = await tempDir("dash-promql");
    try {
      const { stringify } = await import("yaml");
      await writeTree(t.dir, { "dashboards.yml": stringify({ groups: [{ name: "dashboards", rules }] }) });
      const r = await run("promtool", ["check", "rules", join(t.dir, "dashboards.yml")]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`${rules.length} rules found`));
    } finally {
      await t.cleanup();
    }
  });
});

describe("monitoringBundle", () => {
  it("renders Cloud Map discovery, retention and a tier's objective from the stack config", () => {
    const cfg = {
      tier: "medium",
      platform: "aws" as const,
      domain: "api.example.com",
      app: { memoryMiB: 2048 },
      monitoring: { prometheusRetentionDays: 30, prometheusStorageGiB: 100, latencyObjectiveMs: 75 },
    };
    const b = monitoringBundle(cfg, {
      targets: { app: { kind: "dns", name: "app.inferstack-prod.local", port: 8080 } },
    });
    const prom = parse(b.prometheus.files["prometheus.yml"] ?? "");
    assert.equal(
      prom.scrape_configs.find((s: { job_name: string }) => s.job_name === "inferstack-app").dns_sd_configs[0].names[0],
      "app.inferstack-prod.local",
    );
    assert.ok(b.prometheus.args.includes("--storage.tsdb.retention.time=30d"));
    assert.ok(b.prometheus.args.includes("--storage.tsdb.retention.size=81920MB"));
    assert.match(b.prometheus.files["rules/alerts.yml"] ?? "", /> 0\.075 and/);
    assert.match(b.prometheus.files["rules/alerts.yml"] ?? "", / \/ 2147483648 > 0\.9/);
  });

  it("uses each tier's preset retention and latency objective", () => {
    for (const tier of tiers) {
      const b = presetBundle(tier);
      assert.ok(
        b.prometheus.args.includes(
          `--storage.tsdb.retention.time=${presets[tier].monitoring.prometheusRetentionDays}d`,
        ),
      );
      const objective = presets[tier].monitoring.latencyObjectiveMs / 1000;
      assert.ok(
        (b.prometheus.files["rules/alerts.yml"] ?? "").includes(
          `p95_5m{job="inferstack-app",route!~"/metrics|/health/.*|/v2/health/.*"} > ${objective} and`,
        ),
        tier,
      );
    }
  });

  it("renders static targets for a Docker tier that names its replicas", async () => {
    const targets = {
      ...defaultScrapeTargets("docker", "localhost"),
      app: { kind: "static" as const, targets: ["app-0:8080", "app-1:8080"] },
    };
    const text = renderPrometheusConfig("local", { targets });
    const t = await tempDir("static");
    try {
      await writeTree(t.dir, {
        "prometheus.yml": text,
        "rules/recording.yml": presetBundle("local").prometheus.files["rules/recording.yml"] ?? "",
      });
      const r = await run("promtool", ["check", "config", join(t.dir, "prometheus.yml")]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(
        parse(text).scrape_configs.find((s: { job_name: string }) => s.job_name === "inferstack-app").static_configs[0]
          .targets,
        ["app-0:8080", "app-1:8080"],
      );
    } finally {
      await t.cleanup();
    }
  });
});

describe("docs/runbook.md", () => {
  it("has a section per alert with meaning, impact, diagnosis and fix", async () => {
    const runbook = await readFile(join(repoRoot, "docs", "runbook.md"), "utf8");
    const sections = new Map<string, string>();
    for (const part of runbook.split(/^### /m).slice(1)) {
      const [heading = "", ...body] = part.split("\n");
      sections.set(heading.trim(), body.join("\n").split(/^## /m)[0] ?? "");
    }
    for (const alert of new Set(alertRules({ latencyObjectiveMs: 50, appMemoryMiB: 384 }).map((r) => r.alert))) {
      const body = sections.get(alert);
      assert.ok(body, `docs/runbook.md has "### ${alert}"`);
      for (const part of ["Meaning", "Impact", "Diagnosis", "Fix"])
        assert.match(body, new RegExp(`\\*\\*${part}`), `${alert}: ${part}`);
    }
  });
});
