/**
 * Re-running the build scripts (Debian's python3-sklearn + python3-onnx) into a scratch directory
 * reproduces the committed models: same split, same manifests and cards, and an ONNX file whose
 * predictions match the committed reference. Catches a script edited without `npm run models:build`.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import * as ort from "onnxruntime-node";
import {
  assertClose,
  assertMatchesReference,
  loadReference,
  MODELS_DIR,
  modelPath,
  rows,
  runOnnx,
  SHIPPED,
} from "../reference.ts";

const PYTHON = "/usr/bin/python3";
let scratch = "";

before(() => {
  scratch = mkdtempSync(path.join(tmpdir(), "inferstack-models-"));
  execFileSync(PYTHON, [path.join(MODELS_DIR, "build", "build_all.py"), "--out", scratch], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
  });
});

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const readJson = (dir: string, ...parts: string[]): unknown =>
  JSON.parse(readFileSync(path.join(dir, ...parts), "utf8"));
// The provenance line names library versions, which may legitimately differ on another machine.
const cardBody = (dir: string, model: string) =>
  readFileSync(path.join(dir, model, "README.md"), "utf8")
    .split("\n")
    .filter((l) => !l.startsWith("Built with"))
    .join("\n");

// Only the models models/build/ makes; models dropped in by users have their own builds.
for (const model of SHIPPED) {
  test(`${model}: rebuilt manifest and model card equal the committed ones`, () => {
    assert.deepEqual(readJson(scratch, model, "model.json"), readJson(MODELS_DIR, model, "model.json"));
    assert.equal(cardBody(scratch, model), cardBody(MODELS_DIR, model));
  });

  test(`${model}: rebuilt reference has the same held-out rows and predictions`, () => {
    const committed = loadReference(model);
    const rebuilt = loadReference(model, scratch);
    assert.equal(rebuilt.cases.length, committed.cases.length);
    committed.cases.forEach((c, i) => {
      const r = rebuilt.cases[i]!;
      assert.deepEqual(r.instance, c.instance, `row ${i}: the split is reproducible`);
      if (committed.kind === "regression" && "prediction" in r) {
        assertClose(r.prediction, (c as (typeof committed.cases)[number]).prediction, committed.tolerance, `row ${i}`);
      } else if (committed.kind === "classification" && "probabilities" in r) {
        const cc = c as (typeof committed.cases)[number];
        assert.equal(r.labelIndex, cc.labelIndex, `row ${i}: label`);
        for (const [k, p] of r.probabilities.entries())
          assertClose(p, cc.probabilities[k]!, committed.tolerance, `row ${i} class ${k}`);
      } else {
        assert.fail(`row ${i}: rebuilt reference is of another kind`);
      }
    });
  });

  test(`${model}: rebuilt ONNX file reproduces the committed reference`, async (t) => {
    const ref = loadReference(model);
    const session = await ort.InferenceSession.create(modelPath(model, 1, scratch));
    try {
      assertMatchesReference(ref, await runOnnx(session, ref, rows(ref)), "rebuilt onnx");
    } finally {
      await session.release();
    }
    const identical = readFileSync(modelPath(model, 1, scratch)).equals(readFileSync(modelPath(model)));
    t.diagnostic(
      identical ? "rebuilt model.onnx is byte-identical" : "rebuilt model.onnx differs in bytes (numerically equal)",
    );
  });
}

test("committed ONNX files stay within IR 8 / opset 17 / ai.onnx.ml 3 with a symbolic batch dimension", () => {
  const script = `
import json, sys, onnx
out = {}
for path in sys.argv[1:]:
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    out[path] = {
        "ir": m.ir_version,
        "opsets": {o.domain or "ai.onnx": o.version for o in m.opset_import},
        "batch": [v.type.tensor_type.shape.dim[0].dim_param for v in list(m.graph.input) + list(m.graph.output)],
    }
print(json.dumps(out))`;
  const files = SHIPPED.map((m) => modelPath(m));
  const report = JSON.parse(
    execFileSync(PYTHON, ["-c", script, ...files], {
      encoding: "utf8",
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
    }),
  ) as Record<string, { ir: number; opsets: Record<string, number>; batch: string[] }>;
  for (const file of files) {
    const info = report[file]!;
    assert.ok(info.ir <= 8, `${file}: ir_version ${info.ir}`);
    assert.ok((info.opsets["ai.onnx"] ?? 0) <= 17, `${file}: opset ${info.opsets["ai.onnx"]}`);
    assert.ok((info.opsets["ai.onnx.ml"] ?? 0) <= 3, `${file}: ai.onnx.ml opset ${info.opsets["ai.onnx.ml"]}`);
    assert.ok(
      info.batch.every((d) => d === "batch"),
      `${file}: every input and output has a symbolic batch dim`,
    );
  }
});
