import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  configDrift,
  decideRollback,
  identifyUpdates,
  RollbackRefused,
  rollbackMessage,
  type UpdateRecord,
} from "../lib/rollback-decision.ts";

const load = (name: string) =>
  JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")) as UpdateRecord[];
const cloud = load("history-cloud.json");
const file = load("history-file.json");
const all = (_sha: string) => true;
const B = "9fceb02d0ae598e95dc970b74767f19372d61af8";
const C = "e83c5163316f89bfbde7d9ab23ca2e25604af290";

test("Pulumi Cloud history: versions are the refs; the default target is the last success before the current update", () => {
  assert.deepEqual(
    identifyUpdates(cloud).map((u) => u.ref),
    ["14", "13", "12", "11", "10"],
  );
  const d = decideRollback(cloud, undefined, all);
  assert.equal(d.current.ref, "14");
  assert.equal(d.target.ref, "13", "the refresh (12) is not an update and is skipped");
  assert.equal(d.target.commit, C);
  assert.equal(d.target.imageDigest, `sha256:${"2".repeat(64)}`);
  assert.ok(d.warnings.some((w) => /current update 14 failed/.test(w)));
  assert.equal(
    rollbackMessage("prod", d),
    `rollback of prod to update 13 (commit ${C.slice(0, 12)}) from update 14 (commit 1f7a7a472abf) image sha256:${"2".repeat(64)}`,
  );
});

test("--to accepts a version, a commit prefix or a start time", () => {
  assert.equal(decideRollback(cloud, "11", all).target.commit, B);
  assert.equal(decideRollback(cloud, B.slice(0, 7), all).target.ref, "11");
  assert.equal(decideRollback(cloud, "2026-11-19T11", all).target.ref, "11");
});

test("refuses an unknown target, a failed one, the current one, and a missing commit", () => {
  assert.throws(
    () => decideRollback(cloud, "99", all),
    (e: Error) =>
      e instanceof RollbackRefused && /no such update/.test(e.message) && /13 \(update, succeeded/.test(e.message),
  );
  assert.throws(() => decideRollback(cloud, "10", all), /did not succeed/);
  assert.throws(() => decideRollback(cloud, "14", all), /is the current update/);
  assert.throws(
    () => decideRollback(cloud, undefined, (sha) => sha !== C),
    (e: Error) =>
      e instanceof RollbackRefused && e.message.includes(`commit ${C} of update 13 is not in this repository`),
  );
});

test("refuses an update that recorded no git commit, or while an update runs", () => {
  const noGit = structuredClone(cloud);
  delete noGit[1]!.environment!["git.head"];
  assert.throws(() => decideRollback(noGit, "13", all), /recorded no git commit/);
  const running = structuredClone(cloud);
  running[0]!.result = "in-progress";
  assert.throws(() => decideRollback(running, undefined, all), /still in progress/);
  assert.throws(() => decideRollback([], undefined, all), /no updates/);
});

test("file backend: every version is 0, so updates are told apart by start time", () => {
  const ids = identifyUpdates(file);
  assert.deepEqual(
    ids.map((u) => u.ref),
    [
      "2026-11-21T09:02:11Z",
      "2026-11-21T08:30:00Z",
      "2026-11-20T17:40:05Z#2",
      "2026-11-20T17:40:05Z",
      "2026-11-19T11:00:00Z",
    ],
  );
  const d = decideRollback(file, undefined, all);
  assert.equal(d.target.ref, "2026-11-21T08:30:00Z", "the newest success of another commit");
  assert.match(d.target.record.message ?? "", /redeploy c/);
  assert.throws(() => decideRollback(file, "0", all), /version 0.*file backend/);
});

test("file backend: same-second updates resolve to the right one, and a dirty tree is flagged", () => {
  assert.throws(() => decideRollback(file, "2026-11-20T17:40:05Z", all), /did not succeed/);
  const d = decideRollback(file, "2026-11-20T17:40:05Z#2", all);
  assert.equal(d.target.record.result, "succeeded");
  assert.ok(d.warnings.some((w) => /uncommitted changes/.test(w)));
  assert.throws(() => decideRollback(file, "2026-11-20", all), /matches 2 updates/);
  // A commit deployed several times: its newest successful update.
  assert.equal(decideRollback(file, C.slice(0, 10), all).target.ref, "2026-11-21T08:30:00Z");
});

test("skips a success of the current commit (it would change nothing) unless asked for", () => {
  const h = structuredClone(cloud).slice(1); // current = 13 at commit C, succeeded
  h.unshift({ ...structuredClone(h[0]!), version: 15, startTime: "2026-11-22T10:00:00Z", message: "re-run" });
  const d = decideRollback(h, undefined, all);
  assert.equal(d.target.ref, "11");
  assert.equal(decideRollback(h, "13", all).target.commit, C);
});

test("config drift compares structured values by content, not spacing", () => {
  const target = {
    "inferstack:app": { value: '{"replicas":3}' },
    "inferstack:tier": { value: "medium" },
    "aws:region": { value: "us-east-1" },
  };
  const fromFile = { "inferstack:app": { value: '{ "replicas": 3 }' }, "inferstack:tier": { value: "small" } };
  assert.deepEqual(configDrift(target, fromFile), ["aws:region", "inferstack:tier"]);
});
