/**
 * The committed rule files are valid (promtool check), every alert has a promtool unit test that
 * fires it and one where it must stay quiet, the tests pass, and they fail when a rule changes.
 */

import assert from "node:assert/strict";
import { cp, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { alertRules, renderAlertRules, renderRecordingRules } from "../index.ts";
import { monitoringDir, run, tempDir, writeTree } from "./support.ts";

const ruleTestsDir = join(monitoringDir, "rule-tests");
const tiers = ["local", "free", "small", "medium"] as const;

interface RuleTestFile {
  tests: { name?: string; alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

async function ruleTestFiles(): Promise<string[]> {
  return (await readdir(ruleTestsDir)).filter((f) => f.endsWith(".test.yml")).sort();
}

describe("alert and recording rules", () => {
  it("pass promtool check rules in every tier", async () => {
    for (const tier of tiers) {
      const dir = join(monitoringDir, "generated", tier, "prometheus", "rules");
      const r = await run("promtool", ["check", "rules", join(dir, "recording.yml"), join(dir, "alerts.yml")]);
      assert.equal(r.code, 0, `${tier}: ${r.stdout}${r.stderr}`);
    }
  });

  it("pass their promtool unit tests", async () => {
    const files = await ruleTestFiles();
    assert.ok(files.length >= 2);
    const r = await run("promtool", ["test", "rules", ...files], ruleTestsDir);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    assert.equal((r.stdout.match(/SUCCESS/g) ?? []).length, files.length);
  });

  it("give every alert a firing case and a must-not-fire case", async () => {
    const firing = new Set<string>();
    const quiet = new Set<string>();
    for (const f of await ruleTestFiles()) {
      const doc = parse(await readFile(join(ruleTestsDir, f), "utf8")) as RuleTestFile;
      for (const t of doc.tests) {
        for (const a of t.alert_rule_test ?? []) (a.exp_alerts?.length ? firing : quiet).add(a.alertname);
      }
    }
    const alerts = [...new Set(alertRules({ latencyObjectiveMs: 50, appMemoryMiB: 384 }).map((r) => r.alert))];
    assert.deepEqual(
      alerts.filter((a) => !firing.has(a)),
      [],
      "alerts with no firing test",
    );
    // Watchdog fires always, by design: it is the one alert with no quiet case.
    assert.deepEqual(
      alerts.filter((a) => a !== "Watchdog" && !quiet.has(a)),
      [],
      "alerts with no must-not-fire test",
    );
  });

  it("give every alert a severity, a summary and a runbook link", () => {
    const text = renderAlertRules({ latencyObjectiveMs: 50, appMemoryMiB: 384 });
    const doc = parse(text) as {
      groups: { rules: { alert: string; labels: Record<string, string>; annotations: Record<string, string> }[] }[];
    };
    for (const r of doc.groups.flatMap((g) => g.rules)) {
      assert.match(r.labels.severity ?? "", /^(critical|warning|none)$/, r.alert);
      assert.ok(r.annotations.summary, `${r.alert} has a summary`);
      assert.match(
        r.annotations.runbook_url ?? "",
        new RegExp(`/docs/runbook\\.md#${r.alert.toLowerCase()}$`),
        r.alert,
      );
    }
  });

  it("fail their unit tests when a threshold changes (the tests can fail)", async () => {
    const t = await tempDir("rules-mutant");
    try {
      // Same layout as the repository, with the local tier's objective raised from 50 to 500 ms.
      await cp(ruleTestsDir, join(t.dir, "rule-tests"), { recursive: true });
      await writeTree(join(t.dir, "generated", "local", "prometheus", "rules"), {
        "recording.yml": renderRecordingRules(),
        "alerts.yml": renderAlertRules({ latencyObjectiveMs: 500, appMemoryMiB: 384 }),
      });
      const r = await run("promtool", ["test", "rules", "alerts.test.yml"], join(t.dir, "rule-tests"));
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, /alertname: HighLatencyP95/);
    } finally {
      await t.cleanup();
    }
  });
});
