/**
 * Reference parity: a model's `reference.json` holds held-out rows with its training framework's
 * own predictions (for the bundled models, scikit-learn's, written by models/build/). Used by the
 * tests in models/test/ and by `npm run models:check`.
 */

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";

export const MODELS_DIR = path.dirname(fileURLToPath(import.meta.url));
/** The models this repository ships; each must have a reference.json. */
export const SHIPPED = ["diabetes-regressor", "iris-classifier", "wine-classifier"];
/** Every model in the repository with a reference.json: yours get parity-tested by dropping one in. */
export const BUNDLED: string[] = modelsWithReference(MODELS_DIR);

export function modelsWithReference(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(dir, d.name, "reference.json")))
    .map((d) => d.name)
    .sort();
}
export type BundledModel = string;

export interface Tolerance {
  relative: number;
  absolute: number;
}

interface ReferenceBase {
  model: string;
  version: number;
  tolerance: Tolerance;
  input: string;
  features: string[];
}

export interface RegressionReference extends ReferenceBase {
  kind: "regression";
  output: string;
  cases: { instance: Record<string, number>; prediction: number; target: number }[];
}

export interface ClassificationReference extends ReferenceBase {
  kind: "classification";
  labelOutput: string;
  probabilitiesOutput: string;
  labels: string[];
  cases: ClassificationCase[];
  /** Tree models: rows exactly on either side of split thresholds (see the model card). */
  edgeCases?: { about: string; cases: ClassificationCase[] };
}

export interface ClassificationCase {
  instance: Record<string, number>;
  labelIndex: number;
  label: string;
  probabilities: number[];
}

export type Reference = RegressionReference | ClassificationReference;

export function loadReference(model: BundledModel, modelsDir = MODELS_DIR): Reference {
  return JSON.parse(readFileSync(path.join(modelsDir, model, "reference.json"), "utf8")) as Reference;
}

export function modelPath(model: BundledModel, version = 1, modelsDir = MODELS_DIR): string {
  return path.join(modelsDir, model, String(version), "model.onnx");
}

/** Rows of the reference as plain arrays, columns in the model's input order. */
export function rows(ref: Reference, cases: { instance: Record<string, number> }[] = ref.cases): number[][] {
  return cases.map((c) =>
    ref.features.map((f) => {
      const v = c.instance[f];
      assert.equal(typeof v, "number", `reference instance lacks feature ${f}`);
      return v as number;
    }),
  );
}

/** |actual - expected| <= absolute + relative * |expected|, with a message naming where it failed. */
export function assertClose(actual: number, expected: number, tol: Tolerance, where: string): void {
  assert.ok(Number.isFinite(actual), `${where}: got ${actual}, expected ${expected}`);
  const bound = tol.absolute + tol.relative * Math.abs(expected);
  const diff = Math.abs(actual - expected);
  assert.ok(
    diff <= bound,
    `${where}: got ${actual}, expected ${expected} (|Δ| ${diff.toExponential(2)} > ${bound.toExponential(2)})`,
  );
}

/** Largest |Δ| / |expected| seen, reported by the tests as a measured figure. */
export class WorstError {
  relative = 0;
  note(actual: number, expected: number): void {
    const denom = Math.max(Math.abs(expected), 1e-12);
    this.relative = Math.max(this.relative, Math.abs(actual - expected) / denom);
  }
}

export interface Outputs {
  /** Regression: one value per row. */
  predictions?: number[];
  /** Classification. */
  labels?: number[];
  probabilities?: number[][];
}

/** Checks outputs for every reference case, in order. */
export function assertMatchesReference(ref: Reference, out: Outputs, source: string): WorstError {
  const worst = new WorstError();
  if (ref.kind === "regression") {
    assert.equal(out.predictions?.length, ref.cases.length, `${source}: one prediction per reference row`);
    ref.cases.forEach((c, i) => {
      const got = out.predictions![i]!;
      worst.note(got, c.prediction);
      assertClose(got, c.prediction, ref.tolerance, `${source} ${ref.model} row ${i}`);
    });
    return worst;
  }
  assert.equal(out.labels?.length, ref.cases.length, `${source}: one label per reference row`);
  assert.equal(out.probabilities?.length, ref.cases.length, `${source}: one probability row per reference row`);
  ref.cases.forEach((c, i) => {
    assert.equal(out.labels![i], c.labelIndex, `${source} ${ref.model} row ${i}: label`);
    const probs = out.probabilities![i]!;
    assert.equal(probs.length, ref.labels.length, `${source} ${ref.model} row ${i}: one probability per class`);
    probs.forEach((p, k) => {
      worst.note(p, c.probabilities[k]!);
      assertClose(p, c.probabilities[k]!, ref.tolerance, `${source} ${ref.model} row ${i} class ${ref.labels[k]}`);
    });
  });
  return worst;
}

/** Runs the ONNX file directly with onnxruntime-node on the given rows, as one batch. */
export async function runOnnx(session: ort.InferenceSession, ref: Reference, batch: number[][]): Promise<Outputs> {
  const width = ref.features.length;
  const input = new ort.Tensor("float32", Float32Array.from(batch.flat()), [batch.length, width]);
  const result = await session.run({ [ref.input]: input });
  if (ref.kind === "regression") {
    const out = result[ref.output];
    assert.ok(out, `no output ${ref.output}`);
    assert.deepEqual(out.dims, [batch.length, 1]);
    return { predictions: Array.from(out.data as Float32Array) };
  }
  const label = result[ref.labelOutput];
  const probs = result[ref.probabilitiesOutput];
  assert.ok(label && probs, "classifier outputs present");
  assert.equal(label.type, "int64");
  assert.deepEqual(label.dims, [batch.length]);
  assert.deepEqual(probs.dims, [batch.length, ref.labels.length]);
  const classes = ref.labels.length;
  const flat = Array.from(probs.data as Float32Array);
  return {
    labels: Array.from(label.data as BigInt64Array, Number),
    probabilities: batch.map((_, i) => flat.slice(i * classes, (i + 1) * classes)),
  };
}
