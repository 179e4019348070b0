/**
 * The bundled ONNX files, run directly with onnxruntime-node, reproduce scikit-learn's own
 * held-out predictions (reference.json), and their manifests agree with the files and the API's
 * manifest schema.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import { formatIssues, type Manifest, ManifestSchema } from "../../app/src/inference/manifest.ts";
import {
  assertMatchesReference,
  BUNDLED,
  loadReference,
  MODELS_DIR,
  modelPath,
  rows,
  runOnnx,
  SHIPPED,
} from "../reference.ts";

const ORT_TYPE: Record<string, string> = {
  FP32: "float32",
  FP64: "float64",
  INT64: "int64",
  INT32: "int32",
  BOOL: "bool",
};

function loadManifest(model: string): Manifest {
  const parsed = ManifestSchema.safeParse(JSON.parse(readFileSync(path.join(MODELS_DIR, model, "model.json"), "utf8")));
  assert.ok(parsed.success, parsed.success ? "" : `${model}/model.json: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

test("every shipped model has a reference.json, so none escapes the parity tests", () => {
  for (const model of SHIPPED) assert.ok(BUNDLED.includes(model), `${model}/reference.json is missing`);
});

for (const model of BUNDLED) {
  test(`${model}: manifest is valid and agrees with the ONNX file`, async () => {
    const manifest = loadManifest(model);
    const ref = loadReference(model);
    const session = await ort.InferenceSession.create(modelPath(model, ref.version));
    try {
      const declared = (specs: readonly ort.InferenceSession.ValueMetadata[]) =>
        specs.map((s) => {
          assert.ok(s.isTensor, `${s.name} is a tensor`);
          return { name: s.name, type: s.type, shape: s.shape.map((d) => (typeof d === "string" ? -1 : d)) };
        });
      const fromManifest = (specs: Manifest["inputs"]) =>
        (specs ?? []).map((s) => ({ name: s.name, type: ORT_TYPE[s.datatype], shape: s.shape }));
      assert.deepEqual(declared(session.inputMetadata), fromManifest(manifest.inputs));
      assert.deepEqual(declared(session.outputMetadata), fromManifest(manifest.outputs));
      assert.deepEqual(
        manifest.inputs?.[0]?.features?.map((f) => f.name),
        ref.features,
      );
      if (ref.kind === "classification") assert.deepEqual(manifest.labels, ref.labels);
    } finally {
      await session.release();
    }
  });

  test(`${model}: every held-out row lies inside the manifest's feature domain`, () => {
    const features = loadManifest(model).inputs?.[0]?.features ?? [];
    const ref = loadReference(model);
    for (const [i, c] of ref.cases.entries()) {
      for (const f of features) {
        const v = c.instance[f.name]!;
        assert.ok(f.min === undefined || v >= f.min, `row ${i} ${f.name}=${v} below min ${f.min}`);
        assert.ok(f.max === undefined || v <= f.max, `row ${i} ${f.name}=${v} above max ${f.max}`);
        assert.ok(!f.enum || f.enum.includes(v), `row ${i} ${f.name}=${v} not in ${f.enum}`);
        if (f.type === "integer") assert.ok(Number.isInteger(v), `row ${i} ${f.name}=${v} is not an integer`);
      }
    }
  });

  test(`${model}: onnxruntime reproduces scikit-learn on the held-out rows`, async (t) => {
    const ref = loadReference(model);
    const batch = rows(ref);
    const session = await ort.InferenceSession.create(modelPath(model, ref.version));
    try {
      // The whole held-out set in one batch, then row by row: the batch dimension is symbolic.
      const worst = assertMatchesReference(ref, await runOnnx(session, ref, batch), "onnx batch");
      t.diagnostic(`${ref.cases.length} rows, worst relative error ${worst.relative.toExponential(2)}`);
      for (const [i, row] of batch.entries()) {
        const single = await runOnnx(session, ref, [row]);
        const one = { ...ref, cases: [ref.cases[i]!] } as typeof ref;
        assertMatchesReference(one, single, `onnx row ${i} alone`);
      }
      // A full batch at the manifest's maxBatchSize (64) gives each row the same answer as alone.
      const big = Array.from({ length: 64 }, (_, i) => batch[i % batch.length]!);
      const bigRef = { ...ref, cases: big.map((_, i) => ref.cases[i % ref.cases.length]!) } as typeof ref;
      assertMatchesReference(bigRef, await runOnnx(session, ref, big), "onnx batch of 64");
    } finally {
      await session.release();
    }
  });
}

test("wine-classifier: trees branch exactly like scikit-learn at float32 neighbours of every risky threshold", async (t) => {
  const ref = loadReference("wine-classifier");
  assert.ok(
    ref.kind === "classification" && ref.edgeCases && ref.edgeCases.cases.length >= 20,
    "reference has edge cases",
  );
  const edge = { ...ref, cases: ref.edgeCases.cases };
  const session = await ort.InferenceSession.create(modelPath("wine-classifier"));
  try {
    const worst = assertMatchesReference(edge, await runOnnx(session, ref, rows(ref, edge.cases)), "onnx edge cases");
    t.diagnostic(`${edge.cases.length} boundary rows, worst relative error ${worst.relative.toExponential(2)}`);
  } finally {
    await session.release();
  }
});

test("iris-classifier: probabilities are a distribution and the label is their argmax", async () => {
  const ref = loadReference("iris-classifier");
  const session = await ort.InferenceSession.create(modelPath("iris-classifier"));
  try {
    const out = await runOnnx(session, ref, rows(ref));
    out.probabilities!.forEach((p, i) => {
      const sum = p.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-5, `row ${i}: probabilities sum to ${sum}`);
      assert.ok(
        p.every((x) => x >= 0 && x <= 1),
        `row ${i}: probability outside [0, 1]`,
      );
      assert.equal(out.labels![i], p.indexOf(Math.max(...p)), `row ${i}: label is the most probable class`);
    });
    // The held-out set covers all three species, so a model stuck on one class cannot pass.
    assert.deepEqual(new Set(out.labels), new Set([0, 1, 2]));
  } finally {
    await session.release();
  }
});

test("diabetes-regressor: predictions move with the features the card says matter", async () => {
  const ref = loadReference("diabetes-regressor");
  const session = await ort.InferenceSession.create(modelPath("diabetes-regressor"));
  try {
    const base = ref.features.map((f) => ref.cases[0]!.instance[f]!);
    const bmi = ref.features.indexOf("bmi");
    const heavier = base.map((v, i) => (i === bmi ? v + 5 : v));
    const [low, high] = (await runOnnx(session, ref, [base, heavier])).predictions!;
    // Higher BMI means faster progression in this data (largest positive weight in the card).
    assert.ok(high! > low!, `bmi +5 should raise the prediction: ${low} -> ${high}`);
  } finally {
    await session.release();
  }
});
