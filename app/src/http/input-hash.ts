/**
 * The canonical hash of a request's validated inputs: the response cache's key and the prediction
 * log's `input_hash`. Same tensors => same hash, whatever the JSON spelling.
 */
import { hash } from "node:crypto";
import type { PreparedInputs } from "../inference/batcher.ts";
import { type NumericArray, type TensorData, toBytes } from "../inference/tensor.ts";

type View = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => NumericArray;

/** Hash inputs up to this size are assembled in one reused buffer (hashing is synchronous). */
const SCRATCH_MAX_BYTES = 1 << 20;
let scratch = Buffer.allocUnsafeSlow(4096);
/** Views of all of `scratch`, one per element type: making a view per request cost more than the copy. */
let scratchViews = new Map<View, NumericArray>();

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
  let size = (protocol.length + outputs.length) * 3 + 8;
  for (const name of names) {
    const t = prepared.inputs[name]!;
    size += (name.length + t.datatype.length) * 3 + t.shape.length * 17 + 4 + numeric(t.data).byteLength + 8;
  }
  if (size > scratch.length && size <= SCRATCH_MAX_BYTES) {
    scratch = Buffer.allocUnsafeSlow(Math.max(size, scratch.length * 2));
    scratchViews = new Map();
  }
  const buf = size <= scratch.length ? scratch : Buffer.allocUnsafeSlow(size);
  const header = names.length > 0 ? inputHeader(names[0]!, prepared) : "";
  // The message starts where the first input's data lands on an 8-byte boundary (exact for ASCII
  // names), so its bytes are copied once, straight into place.
  const start = (8 - ((protocol.length + header.length) & 7)) & 7;
  let n = start + buf.write(protocol + header, start);
  for (let i = 0; i < names.length; i++) {
    if (i > 0) n += buf.write(inputHeader(names[i]!, prepared), n);
    n = appendBytes(buf, n, numeric(prepared.inputs[names[i]!]!.data));
  }
  if (outputs) n += buf.write(outputs, n);
  return hash("sha256", buf.subarray(start, n), "hex");
}

/** BYTES elements hash as their binary tensor form: a 4-byte length before each. */
const binaryForms = new WeakMap<string[], Uint8Array>();
function numeric(data: TensorData): NumericArray {
  if (!Array.isArray(data)) return data;
  let bytes = binaryForms.get(data);
  if (!bytes) {
    bytes = toBytes("BYTES", data);
    binaryForms.set(data, bytes);
  }
  return bytes;
}

const inputHeader = (name: string, prepared: PreparedInputs) => {
  const t = prepared.inputs[name]!;
  return `\0${name}\0${t.datatype}\0${t.shape.join(",")}\0`;
};

/**
 * Copies a typed array's bytes into `buf` at `at` through a view of the same type. Reading `.buffer`
 * instead would make V8 move a small typed array (kept inside the JS heap) to a new off-heap
 * ArrayBuffer, about 5 µs per request in the data-plane bench once its GC cost is counted.
 */
function appendBytes(buf: Buffer, at: number, data: NumericArray): number {
  const Type = data.constructor as View;
  const width = data.BYTES_PER_ELEMENT;
  const start = buf.byteOffset + at;
  if (buf === scratch && start % width === 0) {
    let view = scratchViews.get(Type);
    if (!view) {
      view = new Type(buf.buffer, buf.byteOffset, Math.floor(buf.length / width));
      scratchViews.set(Type, view);
    }
    (view as Uint8Array).set(data as Uint8Array, start / width - buf.byteOffset / width);
    return at + data.byteLength;
  }
  const aligned = (start + 7) & ~7; // a view must start at a multiple of its element size
  (new Type(buf.buffer, aligned, data.length) as Uint8Array).set(data as Uint8Array);
  if (aligned !== start) buf.copyWithin(at, aligned - buf.byteOffset, aligned - buf.byteOffset + data.byteLength);
  return at + data.byteLength;
}
