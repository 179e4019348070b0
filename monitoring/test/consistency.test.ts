/**
 * Every metric name the rules and dashboards read exists: app metrics in the real app's /metrics
 * (started here on real Postgres and Redis, after traffic that makes every labelled series
 * appear), recorded series in the recording rules, everything else in the exporter registry.
 * A renamed metric breaks this test, not the pager.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type RunningServer, startServer } from "../../app/src/server.ts";
import { alertRules, dashboards, recordingRules } from "../index.ts";
import { appMetricPrefixes, externalMetrics } from "../src/external-metrics.ts";
import { metricNames } from "../src/promql.ts";
import {
  deleteRedisPrefix,
  driveTraffic,
  freshDatabase,
  modelsWithABrokenOne,
  redisUrl,
  repoRoot,
  sampleNames,
  tempDir,
} from "./support.ts";

/** Where each referenced name is used, for failure messages. */
function referencedNames(): Map<string, string[]> {
  const uses = new Map<string, string[]>();
  const add = (expr: string, where: string) => {
    for (const n of metricNames(expr)) uses.set(n, [...(uses.get(n) ?? []), where]);
  };
  for (const r of recordingRules()) add(r.expr, `recording rule ${r.record}`);
  for (const r of alertRules({ latencyObjectiveMs: 50, appMemoryMiB: 384 })) add(r.expr, `alert ${r.alert}`);
  for (const [file, d] of Object.entries(dashboards(50))) {
    const panels = (d.panels as { title: string; targets?: { expr: string }[] }[]) ?? [];
    for (const p of panels) for (const t of p.targets ?? []) add(t.expr, `${file} panel "${p.title}"`);
    const vars = (d.templating as { list: { query: { query: string } }[] }).list ?? [];
    for (const v of vars) add(v.query.query.replace(/^label_values\((.*),\s*\w+\)$/, "$1"), `${file} variable`);
  }
  return uses;
}

const isAppMetric = (n: string) => appMetricPrefixes.some((p) => n.startsWith(p));

describe("metric names in rules and dashboards", () => {
  let exposition = "";
  const servers: RunningServer[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    const db = await freshDatabase();
    cleanups.push(db.drop);
    const prefix = `inferstack-montest:${randomBytes(5).toString("hex")}:`;
    cleanups.push(() => deleteRedisPrefix(prefix));
    const models = await modelsWithABrokenOne();
    cleanups.push(models.cleanup);
    const spill = await tempDir("spill");
    cleanups.push(spill.cleanup);
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      LOG_LEVEL: "silent",
      MODEL_WATCH: "false",
      MODEL_POLL_INTERVAL_MS: "0",
      PREDICTION_LOG_SPILL_PATH: join(spill.dir, "predictions.jsonl"),
      PREDICTION_LOG_FLUSH_MS: "50",
    };
    // Anonymous traffic on a 5-request plan: predictions, cache hits, then 429s.
    const open = await startServer({
      port: 0,
      host: "127.0.0.1",
      modelsDir: models.dir,
      env: { ...env, AUTH_MODE: "off", RATE_LIMIT_PLANS: '{"tiny": 5}', RATE_LIMIT_ANON_PLAN: "tiny" },
    });
    servers.push(open);
    // Keys required: a request without one counts as an auth failure.
    const closed = await startServer({
      port: 0,
      host: "127.0.0.1",
      modelsDir: models.dir,
      env: { ...env, AUTH_MODE: "required" },
    });
    servers.push(closed);

    const statuses = await driveTraffic(open.url, { expectRateLimit: true });
    assert.ok(
      Object.keys(statuses).some((k) => k.endsWith(" 429")),
      `no 429 in ${JSON.stringify(statuses)}`,
    );
    const denied = await driveTraffic(closed.url, { expectRateLimit: false });
    assert.ok(
      Object.keys(denied).some((k) => k.endsWith(" 401")),
      `no 401 in ${JSON.stringify(denied)}`,
    );
    // Let the prediction log flush to Postgres.
    await new Promise((r) => setTimeout(r, 500));
    for (const s of servers) exposition += `${await (await fetch(`${s.url}/metrics`)).text()}\n`;
    if (process.env.DEBUG_EXPOSITION) console.log(exposition);
  });

  after(async () => {
    for (const s of servers) await s.close();
    for (const c of cleanups.reverse()) await c();
  });

  it("finds every app metric the rules and dashboards use in the real /metrics output", () => {
    const exported = sampleNames(exposition);
    const missing = [...referencedNames()].filter(([n]) => isAppMetric(n) && !exported.has(n));
    assert.deepEqual(
      missing.map(([n, where]) => `${n} (used by ${[...new Set(where)].join("; ")})`),
      [],
      "these names are not in the app's /metrics output",
    );
  });

  it("knows the source of every other name (recorded here, or a listed exporter metric)", () => {
    const recorded = new Set(recordingRules().map((r) => r.record));
    const unknown = [...referencedNames()].filter(
      ([n]) => !isAppMetric(n) && !recorded.has(n) && !(n in externalMetrics),
    );
    assert.deepEqual(
      unknown.map(([n, where]) => `${n} (used by ${[...new Set(where)].join("; ")})`),
      [],
    );
  });

  it("exports every metric of the contract in docs/metrics.md", () => {
    const doc = readFileSync(join(repoRoot, "docs", "metrics.md"), "utf8");
    const contract = [...doc.matchAll(/^\| `(inferstack_\w+)` \| (\w+) \|/gm)].map((m) => ({
      name: m[1] ?? "",
      type: m[2] ?? "",
    }));
    assert.ok(contract.length >= 20, "docs/metrics.md lists the metrics");
    const exported = sampleNames(exposition);
    const missing = contract.filter(({ name, type }) => !exported.has(type === "histogram" ? `${name}_bucket` : name));
    assert.deepEqual(missing, []);
  });

  it("fails on a name the app does not export (the check can fail)", () => {
    assert.equal(sampleNames(exposition).has("inferstack_http_requests_totl"), false);
    assert.ok(metricNames("rate(inferstack_http_requests_totl[5m])").has("inferstack_http_requests_totl"));
  });
});
