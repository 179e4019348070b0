/**
 * The canonical hash of a request's validated inputs: the response cache's key and the prediction
 * log's `input_hash`. Same tensors => same hash, whatever the JSON spelling.
 */
import { hash } from "node:crypto";
import type { NumericArray } from "../inference/tensor.ts";
import type { PreparedInputs } from "../inference/validation.ts";

/** Hash inputs up to this size are assembled in one reused buffer (hashing is synchronous). */
const SCRATCH_MAX_BYTES = 1 << 20;
let scratch = Buffer.allocUnsafeSlow(4096);

/**
 * sha256 over `protocol`, then per input (by name) `\0name\0datatype\0shape\0` and its data bytes,
 * then `\0outputs\0` and the requested output names, if any. Digests are stable across versions:
 * cache entries and logged hashes from before an upgrade still match.
 */
export function hashInputs(protocol: string, prepared: PreparedInputs): string {
  const names = Object.keys(prepared.inputs);
  if (names.length > 1) names.sort();
  const outputs = prepared.outputs ? `\0outputs\0${[...prepared.outputs].sort().join(",")}` : "";
  // An upper bound: 3 UTF-8 bytes per UTF-16 unit, 16 digits and a comma per dimension, 8 bytes of alignment.
  let size = (protocol.length + outputs.length) * 3;
  for (const name of names) {
    const t = prepared.inputs[name]!;
    size += (name.length + t.datatype.length) * 3 + t.shape.length * 17 + 4 + t.data.byteLength + 8;
  }
  if (size > scratch.length && size <= SCRATCH_MAX_BYTES) scratch = Buffer.allocUnsafeSlow(Math.max(size, scratch.length * 2));
  const buf = size <= scratch.length ? scratch : Buffer.allocUnsafeSlow(size);
  let n = buf.write(protocol, 0);
  for (const name of names) {
    const t = prepared.inputs[name]!;
    n += buf.write(`\0${name}\0${t.datatype}\0${t.shape.join(",")}\0`, n);
    n = appendBytes(buf, n, t.data);
  }
  n += buf.write(outputs, n);
  return hash("sha256", buf.subarray(0, n), "hex");
}

/**
 * Copies a typed array's bytes into `buf` at `at` through a view of the same type. Reading `.buffer`
 * instead would make V8 move a small typed array (kept inside the JS heap) to a new off-heap
 * ArrayBuffer, about 5 µs per request in the data-plane bench once its GC cost is counted.
 */
function appendBytes(buf: Buffer, at: number, data: NumericArray): number {
  const start = buf.byteOffset + at;
  const aligned = (start + 7) & ~7; // a view must start at a multiple of its element size
  const View = data.constructor as new (buffer: ArrayBufferLike, byteOffset: number, length: number) => NumericArray;
  (new View(buf.buffer, aligned, data.length) as Uint8Array).set(data as Uint8Array);
  if (aligned !== start) buf.copyWithin(at, aligned - buf.byteOffset, aligned - buf.byteOffset + data.byteLength);
  return at + data.byteLength;
}
