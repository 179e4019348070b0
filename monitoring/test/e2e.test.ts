/**
 * End to end with the real binaries: Prometheus runs the local tier's config (its targets moved
 * to this test's ports) and rules, scrapes a running app, records RED series from real samples
 * and evaluates the alerts; Alertmanager runs the rendered config and delivers the Watchdog
 * heartbeat and a critical alert to a webhook here, while inhibiting the matching warning.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type RunningServer, startServer } from "../../app/src/server.ts";
import { presetBundle } from "../../scripts/monitoring-render.ts";
import {
  alertmanagerTemplate,
  defaultScrapeTargets,
  prometheusFlags,
  renderAlertmanagerConfig,
  renderPrometheusConfig,
} from "../index.ts";
import { externalMetrics } from "../src/external-metrics.ts";
import { eventually, freePort, repoRoot, sampleNames, tempDir, writeTree } from "./support.ts";

interface Delivery {
  path: string;
  body: {
    // Alertmanager's webhook payload
    receiver?: string;
    status?: string;
    alerts?: { labels: Record<string, string>; status: string }[];
    // Slack's incoming-webhook payload, rendered through templates/inferstack.tmpl
    channel?: string;
    attachments?: { title: string; text: string; color: string }[];
  };
}

function startDaemon(cmd: string, args: string[], log: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  const keep = (b: Buffer) => {
    log.push(b.toString());
    if (log.length > 200) log.shift();
  };
  // A missing binary must fail the waits with this message, not crash the test process.
  child.on("error", (err) =>
    log.push(`cannot start ${cmd}: ${err.message} (install the Debian package; see .ci/run)\n`),
  );
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return child;
}

async function stopDaemon(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.pid === undefined || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

describe("Prometheus and Alertmanager against a running app", () => {
  let app: RunningServer;
  let receiver: Server;
  let prometheus: ChildProcess | undefined;
  let alertmanager: ChildProcess | undefined;
  let traffic: NodeJS.Timeout | undefined;
  let promUrl = "";
  let amUrl = "";
  const deliveries: Delivery[] = [];
  const promLog: string[] = [];
  const amLog: string[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    app = await startServer({
      port: 0,
      host: "127.0.0.1",
      modelsDir: join(repoRoot, "models"),
      env: {
        DATABASE_URL: "",
        REDIS_URL: "",
        AUTH_MODE: "off",
        LOG_LEVEL: "silent",
        MODEL_WATCH: "false",
        MODEL_POLL_INTERVAL_MS: "0",
      },
    });
    const appHost = new URL(app.url).host;
    const predict = () =>
      fetch(`${app.url}/v1/models/iris-classifier:predict`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ instances: [[5.1, 3.5, 1.4, Math.random()]] }),
      }).then(
        (r) => r.arrayBuffer(),
        () => undefined,
      );
    await predict();
    traffic = setInterval(() => void predict(), 300);

    receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        try {
          deliveries.push({ path: req.url ?? "", body: JSON.parse(body) });
        } catch {
          // A malformed delivery fails the assertions that wait for it.
        }
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const addr = receiver.address();
    const receiverUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;

    const [promPort, amPort, deadPort] = [await freePort(), await freePort(), await freePort()];
    promUrl = `http://127.0.0.1:${promPort}`;
    amUrl = `http://127.0.0.1:${amPort}`;
    const work = await tempDir("e2e");
    cleanups.push(work.cleanup);

    // The local tier's config and rules; only the addresses change. Nothing listens on the
    // postgres-exporter port, so its target is down and TargetDown must go pending.
    const local = presetBundle("local");
    await writeTree(join(work.dir, "prometheus"), {
      ...local.prometheus.files,
      "prometheus.yml": renderPrometheusConfig("local", {
        targets: {
          ...defaultScrapeTargets("docker", "localhost"),
          app: { kind: "static", targets: [appHost] },
          prometheus: `127.0.0.1:${promPort}`,
          alertmanager: `127.0.0.1:${amPort}`,
          postgresExporter: `127.0.0.1:${deadPort}`,
          redisExporter: null,
          nodeExporter: null,
          cadvisor: null,
          blackbox: null,
        },
      }),
    });
    await writeTree(join(work.dir, "alertmanager"), {
      "alertmanager.yml": renderAlertmanagerConfig({
        webhook: { url: `${receiverUrl}/alerts` },
        heartbeat: { url: `${receiverUrl}/heartbeat` },
        slack: { webhookUrl: `${receiverUrl}/slack`, channel: "#inferstack", criticalChannel: "#inferstack-pager" },
      }),
      "templates/inferstack.tmpl": alertmanagerTemplate,
    });

    alertmanager = startDaemon(
      "prometheus-alertmanager",
      [
        `--config.file=${join(work.dir, "alertmanager", "alertmanager.yml")}`,
        `--storage.path=${join(work.dir, "alertmanager-data")}`,
        `--web.listen-address=127.0.0.1:${amPort}`,
        "--cluster.listen-address=",
      ],
      amLog,
    );
    // Alerts sent before Alertmanager listens wait for Prometheus' 1 m resend: start it first.
    await eventually("Alertmanager ready", 30_000, async () =>
      (await fetch(`${amUrl}/-/ready`)).ok ? true : undefined,
    ).catch((err: Error) => assert.fail(err.message + amLog.join("")));
    prometheus = startDaemon(
      "prometheus",
      [
        ...prometheusFlags({
          retentionDays: 7,
          storageGiB: 1,
          configPath: join(work.dir, "prometheus", "prometheus.yml"),
          dataPath: join(work.dir, "prometheus-data"),
        }),
        `--web.listen-address=127.0.0.1:${promPort}`,
      ],
      promLog,
    );
  });

  after(async () => {
    if (traffic) clearInterval(traffic);
    await stopDaemon(prometheus);
    await stopDaemon(alertmanager);
    await new Promise((r) => receiver?.close(r));
    await app?.close();
    for (const c of cleanups) await c();
  });

  const logs = () =>
    `\n--- prometheus ---\n${promLog.join("").slice(-3000)}\n--- alertmanager ---\n${amLog.join("").slice(-2000)}`;

  it("scrapes the app, itself and Alertmanager (targets up) and sees the dead exporter down", async () => {
    type Targets = { data: { activeTargets: { labels: { job: string }; health: string; lastError: string }[] } };
    const health = await eventually("all targets scraped once", 60_000, async () => {
      const t = await getJson<Targets>(`${promUrl}/api/v1/targets`);
      const byJob = Object.fromEntries(t.data.activeTargets.map((x) => [x.labels.job, x.health]));
      return ["inferstack-app", "prometheus", "alertmanager", "postgres"].every(
        (j) => byJob[j] && byJob[j] !== "unknown",
      )
        ? byJob
        : undefined;
    }).catch((err: Error) => assert.fail(err.message + logs()));
    assert.deepEqual(health, { "inferstack-app": "up", prometheus: "up", alertmanager: "up", postgres: "down" });
  });

  it("records RED series from real samples (recording rules evaluated)", async (t) => {
    type Vector = { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    const query = (q: string) => getJson<Vector>(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    const rps = await eventually("job_route:inferstack_http_requests:rate5m for predict", 90_000, async () => {
      const r = await query('job_route:inferstack_http_requests:rate5m{route="/v1/models/:name:predict"}');
      const v = Number(r.data.result[0]?.value[1]);
      return v > 0 ? v : undefined;
    }).catch((err: Error) => assert.fail(err.message + logs()));
    // Early in a 5 m window rate() sees few samples and reads low; the value only has to be real.
    assert.ok(rps > 0 && rps < 10, `predictions per second, got ${rps}`);
    const inference = await query("job_model_version:inferstack_inference_requests:rate5m");
    assert.equal(inference.data.result[0]?.metric.model, "iris-classifier");
    const ratio = await query("job:inferstack_api_error_ratio:rate5m");
    assert.equal(Number(ratio.data.result[0]?.value[1]), 0, "no 5xx: the ratio is 0, not absent");
    // Reported, not asserted: how long each rule group takes to evaluate on this machine.
    const cost = await query("prometheus_rule_group_last_duration_seconds");
    for (const r of cost.data.result)
      t.diagnostic(`rule group ${r.metric.rule_group}: ${(Number(r.value[1]) * 1000).toFixed(2)} ms`);
  });

  it("evaluates the alert rules: Watchdog firing, TargetDown pending for the dead exporter, the app not down", async () => {
    type Alerts = { data: { alerts: { labels: Record<string, string>; state: string }[] } };
    const alerts = await eventually("Watchdog firing and TargetDown pending", 60_000, async () => {
      const a = (await getJson<Alerts>(`${promUrl}/api/v1/alerts`)).data.alerts;
      const has = (name: string, state: string) => a.some((x) => x.labels.alertname === name && x.state === state);
      return has("Watchdog", "firing") && has("TargetDown", "pending") ? a : undefined;
    }).catch((err: Error) => assert.fail(err.message + logs()));
    const targetDown = alerts.find((x) => x.labels.alertname === "TargetDown");
    assert.equal(targetDown?.labels.job, "postgres");
    assert.equal(
      targetDown?.labels.tier,
      undefined,
      "external labels are added on the way to Alertmanager, not in rule state",
    );
    assert.ok(!alerts.some((x) => x.labels.alertname === "InferstackAppDown"), "the app is up");
  });

  it("delivers the Watchdog heartbeat through Alertmanager to the heartbeat receiver", async () => {
    // Usually seconds; up to Prometheus' 1 m resend when the first alert beat its discovery of Alertmanager.
    const beat = await eventually("a heartbeat delivery", 100_000, async () =>
      deliveries.find((d) => d.path === "/heartbeat" && d.body.alerts?.some((a) => a.labels.alertname === "Watchdog")),
    ).catch((err: Error) => assert.fail(err.message + logs()));
    assert.equal(beat.body.receiver, "heartbeat");
    assert.equal(beat.body.alerts?.[0]?.labels.tier, "local", "Prometheus' external labels reach Alertmanager");
  });

  it("exports the Prometheus and Alertmanager metrics our rules read from them", async () => {
    for (const [source, url] of [
      ["prometheus", promUrl],
      ["alertmanager", amUrl],
    ] as const) {
      const exported = sampleNames(await (await fetch(`${url}/metrics`)).text());
      const wanted = Object.entries(externalMetrics)
        .filter(([, from]) => from === source)
        .map(([name]) => name);
      assert.ok(wanted.length > 0);
      assert.deepEqual(
        wanted.filter((n) => !exported.has(n)),
        [],
        `${source} /metrics`,
      );
    }
  });

  it("sends a critical alert to the critical receiver and inhibits its matching warning", async () => {
    const labels = { alertname: "HighErrorRatio", job: "inferstack-app", tier: "local" };
    const res = await fetch(`${amUrl}/api/v2/alerts`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([
        {
          labels: { ...labels, severity: "critical" },
          annotations: {
            summary: "e2e critical",
            description: "9 % of requests fail",
            runbook_url: "https://runbook.example/#higherrorratio",
          },
        },
        { labels: { ...labels, severity: "warning" }, annotations: { summary: "e2e warning" } },
      ]),
    });
    assert.equal(res.status, 200);
    type AmAlert = { labels: Record<string, string>; status: { state: string; inhibitedBy: string[] } };
    const states = await eventually("the warning inhibited", 30_000, async () => {
      const list = await getJson<AmAlert[]>(
        `${amUrl}/api/v2/alerts?filter=${encodeURIComponent('alertname="HighErrorRatio"')}`,
      );
      const warning = list.find((a) => a.labels.severity === "warning");
      return warning && warning.status.state === "suppressed" ? list : undefined;
    });
    assert.equal(states.find((a) => a.labels.severity === "warning")?.status.inhibitedBy.length, 1);
    assert.equal(states.find((a) => a.labels.severity === "critical")?.status.state, "active");
    const delivered = await eventually("the critical delivery", 40_000, async () =>
      deliveries.find(
        (d) => d.path === "/alerts" && d.body.alerts?.some((a) => a.labels.alertname === "HighErrorRatio"),
      ),
    );
    assert.equal(delivered.body.receiver, "critical");
    assert.deepEqual(
      delivered.body.alerts?.map((a) => a.labels.severity),
      ["critical"],
    );
    // The same notification through Slack, rendered by our templates, to the pager channel.
    const slack = await eventually("the Slack delivery", 20_000, async () =>
      deliveries.find((d) => d.path === "/slack"),
    );
    assert.equal(slack.body.channel, "#inferstack-pager");
    const attachment = slack.body.attachments?.[0];
    assert.equal(attachment?.title, "[FIRING:1] HighErrorRatio (local)");
    assert.equal(attachment?.color, "danger");
    assert.match(
      attachment?.text ?? "",
      /\*critical\* e2e critical\n9 % of requests fail\nRunbook: https:\/\/runbook\.example\/#higherrorratio/,
    );
  });
});
