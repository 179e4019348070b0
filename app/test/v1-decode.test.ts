/**
 * V1's tabular plan (the compiled fast path) against the zod schemas that word every refusal and
 * are published in the OpenAPI document: property by property, both accept exactly the same
 * bodies and build the same tensors, for the bundled models' manifests and for one that uses every
 * kind of feature rule.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import fc from "fast-check";
import { ApiError } from "../src/http/errors.ts";
import { decodeV1, prepareV1, tabularTensors } from "../src/http/v1-decode.ts";
import type { PreparedInputs } from "../src/inference/batcher.ts";
import { type Feature, type Manifest, parseManifest } from "../src/inference/manifest.ts";
import { buildSignature, type ModelSignature } from "../src/inference/signature.ts";

function signature(inputs: Manifest["inputs"] & object, manifest?: Manifest): ModelSignature {
  const meta = (t: { name: string; datatype: string; shape: number[] }) => ({
    name: t.name,
    isTensor: true,
    type: t.datatype === "FP64" ? "float64" : t.datatype === "INT64" ? "int64" : "float32",
    shape: t.shape.map((d) => (d === -1 ? "N" : d)),
  });
  const outputs = manifest?.outputs ?? [{ name: "y", datatype: "FP32" as const, shape: [-1, 1] }];
  return buildSignature(inputs.map(meta), outputs.map(meta), manifest ?? ({ inputs } as Manifest));
}

function bundled(name: string): ModelSignature {
  const parsed = parseManifest(readFileSync(new URL(`../../models/${name}/model.json`, import.meta.url), "utf8"));
  assert.ok(parsed.ok, name);
  return signature(parsed.manifest.inputs!, parsed.manifest);
}

const EVERY_RULE: Feature[] = [
  { name: "plain", type: "number" },
  { name: "bounded", type: "number", min: -1.5, max: 2.5 },
  { name: "count", type: "integer", min: 0 },
  { name: "code", type: "integer", enum: [1, 2, 5] },
  { name: "flag", type: "boolean" },
  { name: "ratio", type: "number", enum: [0, 0.5, 1] },
] as Feature[];

const SIGNATURES: Record<string, ModelSignature> = {
  "diabetes-regressor": bundled("diabetes-regressor"),
  "iris-classifier": bundled("iris-classifier"),
  "wine-classifier": bundled("wine-classifier"),
  "every rule (FP32)": signature([
    { name: "x", datatype: "FP32", shape: [-1, EVERY_RULE.length], features: EVERY_RULE },
  ]),
  "every rule (FP64)": signature([
    { name: "x", datatype: "FP64", shape: [-1, EVERY_RULE.length], features: EVERY_RULE },
  ]),
  "no features (FP32, 3 columns)": signature([{ name: "x", datatype: "FP32", shape: [-1, 3] }]),
};

/** One column's values: mostly ones its rules accept, then values at and just past its edges, then any JSON type. */
function cell(f: Feature | undefined, fp32: boolean): fc.Arbitrary<unknown> {
  const edges = new Set<number>([
    0,
    -0,
    1,
    -1,
    0.5,
    2 ** 53,
    2 ** 53 - 1,
    3.4028234663852886e38,
    3.4028235677973366e38,
    -3.5e38,
    Number.MAX_VALUE,
  ]);
  for (const v of [f?.min, f?.max, ...(f?.enum ?? [])]) {
    if (v === undefined) continue;
    for (const d of [0, 1e-9, -1e-9, 0.25, -0.25, 1, -1]) edges.add(v + d);
  }
  const bound = fp32 ? 3.4028234663852886e38 : Number.MAX_VALUE;
  const valid: fc.Arbitrary<unknown> =
    f?.type === "boolean"
      ? fc.boolean()
      : f?.enum
        ? fc.constantFrom(...f.enum)
        : f?.type === "integer"
          ? fc.integer({ min: Math.max(f.min ?? -1e6, -1e6), max: Math.min(f.max ?? 1e6, 1e6) })
          : fc.double({ min: f?.min ?? -bound, max: f?.max ?? bound, noNaN: true });
  return fc.oneof(
    { weight: 300, arbitrary: valid },
    { weight: 2, arbitrary: fc.constantFrom(...edges) },
    // Integers a double holds only approximately: zod's int() stops at 2^53 - 1.
    { weight: f?.type === "integer" ? 3 : 0, arbitrary: fc.constantFrom(2 ** 53 - 1, 2 ** 53, -(2 ** 53), 2 ** 60) },
    { weight: 1, arbitrary: fc.double() },
    {
      weight: 1,
      arbitrary: fc.constantFrom<unknown>(true, false, null, "1", "", [], {}, [1], Infinity, -Infinity, NaN),
    },
  );
}

function instance(sig: ModelSignature): fc.Arbitrary<unknown> {
  const input = sig.inputs[0]!;
  const features = input.features;
  const cols = features?.length ?? input.shape[1]!;
  const fp32 = input.datatype === "FP32";
  const cells = fc.tuple(...Array.from({ length: cols }, (_, j) => cell(features?.[j], fp32)));
  const array = fc.oneof(
    { weight: 20, arbitrary: cells },
    { weight: 1, arbitrary: cells.map((vs) => vs.slice(1)) },
    { weight: 1, arbitrary: cells.map((vs) => [...vs, 0]) },
  );
  if (!features)
    return fc.oneof(
      { weight: 10, arbitrary: array },
      { weight: 1, arbitrary: fc.record({ a: cell(undefined, fp32) }) },
    );
  const names = features.map((f) => f.name);
  const object = fc
    .tuple(
      cells,
      fc.option(fc.constantFrom(...names), { freq: 40 }),
      fc.option(fc.constantFrom("extra", names[0]!.toUpperCase(), "constructor"), { freq: 40 }),
    )
    .map(([vs, dropped, extra]) => {
      const o: Record<string, unknown> = {};
      names.forEach((n, j) => {
        if (n !== dropped) o[n] = vs[j];
      });
      if (extra !== null) o[extra] = 1;
      return o;
    });
  return fc.oneof(
    { weight: 10, arbitrary: object },
    { weight: 5, arbitrary: array },
    { weight: 1, arbitrary: cell(undefined, fp32) },
  );
}

function body(sig: ModelSignature): fc.Arbitrary<unknown> {
  const instances = fc.oneof(
    { weight: 20, arbitrary: fc.array(instance(sig), { minLength: 1, maxLength: 3 }) },
    { weight: 1, arbitrary: fc.constant([]) },
  );
  return fc.oneof(
    { weight: 8, arbitrary: instances.map((i) => ({ instances: i })) },
    { weight: 1, arbitrary: instances.map((i) => ({ instances: i, parameters: {} })) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<unknown>(
        null,
        [],
        {},
        { instances: {} },
        { inputs: [] },
        { instances: Array(65).fill([1, 1, 1]) },
      ),
    },
  );
}

type Outcome = { ok: true; prepared: PreparedInputs } | { ok: false; status: number; error: string };
function outcome(decode: () => PreparedInputs): Outcome {
  try {
    return { ok: true, prepared: decode() };
  } catch (err) {
    assert.ok(err instanceof ApiError, String(err));
    return { ok: false, status: err.status, error: err.message };
  }
}

for (const [name, sig] of Object.entries(SIGNATURES)) {
  test(`tabular plan and zod schemas agree: ${name}`, () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(body(sig), (b) => {
        const fast = tabularTensors(sig, b);
        const full = outcome(() => decodeV1(sig, b));
        const onlyInstances = typeof b === "object" && b !== null && !Array.isArray(b) && Object.keys(b).length === 1;
        if (onlyInstances)
          assert.equal(
            fast !== null,
            full.ok,
            `tabular ${fast ? "accepts" : "refuses"} what zod ${full.ok ? "accepts" : "refuses"}`,
          );
        else assert.equal(fast, null);
        if (fast && full.ok) assert.deepStrictEqual(fast, full.prepared);
        if (full.ok) accepted++;
        else refused++;
        // And the served path answers as the schemas do.
        assert.deepStrictEqual(
          outcome(() => prepareV1(sig, b)),
          full,
        );
      }),
      { numRuns: 3000, seed: 20261203 },
    );
    // Both sides of the property are exercised, not only refusals.
    assert.ok(accepted > 200 && refused > 200, `accepted ${accepted}, refused ${refused}`);
  });
}

test("every bundled and rule-testing signature has a tabular plan (the property is not vacuous)", () => {
  for (const [name, sig] of Object.entries(SIGNATURES)) {
    const input = sig.inputs[0]!;
    const cols = input.features?.length ?? input.shape[1]!;
    const row = input.features
      ? input.features.map((f) => (f.type === "boolean" ? true : (f.enum?.[0] ?? f.min ?? 0)))
      : Array(cols).fill(0);
    assert.notEqual(tabularTensors(sig, { instances: [row] }), null, name);
  }
});
