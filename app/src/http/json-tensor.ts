/** JSON values of the protocols' nested arrays -> the flat typed tensors the inference core takes. */
import type { TensorSignature } from "../inference/signature.ts";
import { codecOf, type HostTensor } from "../inference/tensor.ts";

/** The dimensions of a nested array, read along its first elements. */
export function shapeOf(v: unknown): number[] {
  const shape: number[] = [];
  let cur = v;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
  }
  return shape;
}

/** Row-major leaves of a nested array (the body's depth was bounded before this recursion). */
export function flattenInto(v: unknown, out: unknown[]): void {
  if (Array.isArray(v)) for (const x of v) flattenInto(x, out);
  else out.push(v);
}

/** Checked values -> a tensor of the signature's datatype; booleans count 1/0 in numeric tensors. */
export function toTensor(sig: TensorSignature, shape: number[], values: unknown[]): HostTensor {
  const codec = codecOf(sig.datatype);
  const data = codec.alloc(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    codec.put(data, i, typeof v === "boolean" && sig.datatype !== "BOOL" ? (v ? 1 : 0) : v);
  }
  return { datatype: sig.datatype, shape, data };
}
