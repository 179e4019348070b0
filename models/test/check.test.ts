/**
 * `npm run models:check`: passes on the bundled repository, and names each fault planted in a
 * scratch copy (manifest/ONNX mismatches, broken files, policies, version folders, parity).
 */

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { checkRepository, type ModelReport } from "../check.ts";
import { MODELS_DIR } from "../reference.ts";

const CHECK = path.join(MODELS_DIR, "check.ts");
let scratch = "";
let reports = new Map<string, ModelReport>();
let skipped: string[] = [];

/** The manifest fields the cases below break; the rest is written back as read. */
interface ManifestEdits {
  outputs: { datatype: string }[];
  labels: string[];
  batching: Record<string, unknown>;
  versionPolicy: unknown;
}

function copyModel(from: string, to: string, edit?: (manifest: ManifestEdits) => void): string {
  const dest = path.join(scratch, to);
  cpSync(path.join(MODELS_DIR, from), dest, { recursive: true });
  if (edit) {
    const file = path.join(dest, "model.json");
    const manifest = JSON.parse(readFileSync(file, "utf8")) as ManifestEdits;
    edit(manifest);
    writeFileSync(file, JSON.stringify(manifest));
  }
  return dest;
}

before(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), "inferstack-check-"));
  copyModel("iris-classifier", "good-iris");
  copyModel("iris-classifier", "wrong-datatype", (m) => (m.outputs[1]!.datatype = "FP64"));
  copyModel("iris-classifier", "wrong-labels", (m) => (m.labels = ["a", "b"]));
  copyModel("iris-classifier", "unknown-key", (m) => (m.batching.maxBatchSze = 8));
  copyModel("iris-classifier", "missing-pinned", (m) => (m.versionPolicy = { specific: { versions: [3] } }));
  const padded = copyModel("iris-classifier", "padded-version");
  cpSync(path.join(padded, "1"), path.join(padded, "02"), { recursive: true });
  const drifted = copyModel("diabetes-regressor", "drifted-reference");
  const refFile = path.join(drifted, "reference.json");
  const ref = JSON.parse(readFileSync(refFile, "utf8"));
  ref.cases[3].prediction += 1;
  writeFileSync(refFile, JSON.stringify(ref));
  const bare = copyModel("diabetes-regressor", "no-manifest");
  rmSync(path.join(bare, "model.json"));
  rmSync(path.join(bare, "reference.json"));
  const broken = copyModel("diabetes-regressor", "broken-onnx");
  rmSync(path.join(broken, "reference.json"));
  writeFileSync(path.join(broken, "1", "model.onnx"), "this is not a protobuf");
  mkdirSync(path.join(scratch, "tooling", "scripts"), { recursive: true });
  const result = await checkRepository(scratch);
  reports = new Map(result.reports.map((r) => [r.name, r]));
  skipped = result.skipped;
});

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function only(name: string): ModelReport {
  const r = reports.get(name);
  assert.ok(r, `${name} was checked`);
  return r;
}

const has = (list: string[], pattern: RegExp, what: string) =>
  assert.ok(
    list.some((m) => pattern.test(m)),
    `${what}: expected ${pattern} in ${JSON.stringify(list)}`,
  );

test("the bundled repository passes, with reference parity for every model", () => {
  const run = spawnSync(process.execPath, [CHECK, MODELS_DIR], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stdout + run.stderr);
  for (const model of ["diabetes-regressor", "iris-classifier", "wine-classifier"]) {
    assert.match(run.stdout, new RegExp(`✔ ${model}\\n(.+\\n)*?\\s+reference parity: \\d+ rows within tolerance`));
  }
  assert.match(run.stdout, /skipped: build, test/);
});

test("a faithful copy passes and folders that are not models are skipped", () => {
  const good = only("good-iris");
  assert.deepEqual(good.errors, []);
  has(good.notes, /reference parity: 45 rows/, "parity note");
  assert.deepEqual(skipped, ["tooling"]);
});

test("manifest disagreements with the ONNX file are errors naming the tensor", () => {
  has(
    only("wrong-datatype").errors,
    /output "probabilities": datatype FP64 but the ONNX file declares FP32/,
    "datatype",
  );
  has(only("wrong-labels").errors, /2 labels for 3 classes/, "labels");
  has(only("unknown-key").errors, /batching/, "unknown key");
});

test("version folders and policies: padded names warned, missing pinned version is an error", () => {
  has(only("padded-version").warnings, /02\/ is ignored/, "padded version");
  assert.deepEqual(only("padded-version").errors, []);
  has(only("missing-pinned").errors, /selects no available version/, "policy");
  has(only("missing-pinned").warnings, /missing version\(s\) 3/, "policy warning");
});

test("a reference the model no longer reproduces fails, naming the row", () => {
  has(only("drifted-reference").errors, /reference parity: .*row 3/, "parity");
});

test("no manifest is fine; an unreadable ONNX file is an error", () => {
  assert.deepEqual(only("no-manifest").errors, []);
  has(only("no-manifest").notes, /no model.json/, "note");
  has(only("broken-onnx").errors, /version 1: ONNX Runtime cannot load model.onnx/, "broken onnx");
});

test("the CLI exits 1 when any model has an error", () => {
  let status = 0;
  try {
    execFileSync(process.execPath, [CHECK, scratch], { encoding: "utf8", stdio: "pipe" });
  } catch (err) {
    status = (err as { status: number }).status;
  }
  assert.equal(status, 1);
});
