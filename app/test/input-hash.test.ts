import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { hashInputs } from "../src/http/input-hash.ts";
import type { PreparedInputs } from "../src/inference/batcher.ts";
import type { NumericArray } from "../src/inference/tensor.ts";

/** The definition, spelled out the slow way: digests must never change (cache keys, logged hashes). */
function reference(protocol: string, prepared: PreparedInputs): string {
  const h = createHash("sha256").update(protocol);
  for (const name of Object.keys(prepared.inputs).sort()) {
    const t = prepared.inputs[name]! as { datatype: string; shape: number[]; data: Float32Array };
    h.update(`\0${name}\0${t.datatype}\0${t.shape.join(",")}\0`).update(
      new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    );
  }
  if (prepared.outputs) h.update(`\0outputs\0${[...prepared.outputs].sort().join(",")}`);
  return h.digest("hex");
}

const tensor = (datatype: string, data: NumericArray, shape = [1, data.length]) => ({ datatype, shape, data });
const prepared = (inputs: Record<string, ReturnType<typeof tensor>>, outputs?: string[]) =>
  ({ inputs, rows: 1, outputs }) as unknown as PreparedInputs;

test("hashInputs matches its definition for every element type, alignment and size", () => {
  const cases: Array<[string, PreparedInputs]> = [
    ["small FP32", prepared({ x: tensor("FP32", new Float32Array([50, 1, 25.3, 90])) })],
    ["FP64 after an odd-length header", prepared({ abc: tensor("FP64", new Float64Array([Math.PI, -0, 1e300])) })],
    ["INT64", prepared({ ids: tensor("INT64", new BigInt64Array([1n, -2n, 2n ** 62n])) })],
    [
      "UINT8, odd byte counts",
      prepared({ b: tensor("UINT8", new Uint8Array([1, 2, 3])), a: tensor("INT16", new Int16Array([-7, 7, 300])) }),
    ],
    ["a view into a larger array", prepared({ v: tensor("FP32", new Float32Array(64).fill(2).subarray(5, 9)) })],
    ["requested outputs", prepared({ x: tensor("FP32", new Float32Array([1])) }, ["probabilities", "label"])],
    ["non-ASCII input name", prepared({ "größe ✓": tensor("FP32", new Float32Array([1, 2])) })],
    [
      "larger than the scratch buffer",
      prepared({
        big: tensor(
          "FP32",
          new Float32Array(5000).map((_, i) => i / 7),
        ),
      }),
    ],
    [
      "larger than the scratch buffer may grow",
      prepared({
        huge: tensor(
          "FP64",
          new Float64Array(200_000).map((_, i) => i),
        ),
      }),
    ],
  ];
  // Twice: the second pass runs on the grown scratch buffer and its cached views and slices.
  for (const pass of [1, 2]) {
    for (const [what, p] of cases) {
      for (const protocol of ["v1", "v2"])
        assert.equal(hashInputs(protocol, p), reference(protocol, p), `${what} (pass ${pass})`);
    }
  }
});

test("hashInputs: same tensors, same hash; any difference in name, type, shape, data or outputs, another", () => {
  const base = () => prepared({ x: tensor("FP32", new Float32Array([1, 2, 3, 4]), [2, 2]) });
  const h = hashInputs("v1", base());
  assert.equal(hashInputs("v1", base()), h);
  assert.notEqual(hashInputs("v2", base()), h);
  assert.notEqual(hashInputs("v1", prepared({ y: tensor("FP32", new Float32Array([1, 2, 3, 4]), [2, 2]) })), h);
  assert.notEqual(hashInputs("v1", prepared({ x: tensor("FP32", new Float32Array([1, 2, 3, 4]), [1, 4]) })), h);
  assert.notEqual(hashInputs("v1", prepared({ x: tensor("INT32", new Int32Array([1, 2, 3, 4]), [2, 2]) })), h);
  assert.notEqual(hashInputs("v1", prepared({ x: tensor("FP32", new Float32Array([1, 2, 3, 5]), [2, 2]) })), h);
  assert.notEqual(hashInputs("v1", prepared({ x: tensor("FP32", new Float32Array([1, 2, 3, 4]), [2, 2]) }, ["y"])), h);
});
