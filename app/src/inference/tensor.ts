/**
 * Tensor datatypes: V2 names <-> ONNX Runtime types, and conversion of JSON values and of the
 * binary tensor extension's bytes to the typed arrays (strings for BYTES) ONNX Runtime takes.
 */
import type { Datatype } from "./manifest.ts";

export type OrtType =
  | "float32"
  | "float64"
  | "float16"
  | "int8"
  | "int16"
  | "int32"
  | "int64"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "bool"
  | "string";

const ORT_TO_V2: Record<string, Datatype> = {
  float32: "FP32",
  float64: "FP64",
  float16: "FP16",
  int8: "INT8",
  int16: "INT16",
  int32: "INT32",
  int64: "INT64",
  uint8: "UINT8",
  uint16: "UINT16",
  uint32: "UINT32",
  uint64: "UINT64",
  bool: "BOOL",
  string: "BYTES",
};

export function v2FromOrt(type: string): Datatype | undefined {
  return ORT_TO_V2[type];
}

export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** Element storage of a tensor: a typed array, or strings for BYTES (ONNX Runtime's string tensors). */
export type TensorData = NumericArray | string[];

/**
 * Node's Float16Array (ONNX Runtime's own storage for float16), typed as the Uint16Array it matches
 * byte for byte: TypeScript's ES2023 lib does not declare it.
 */
const Float16 = (globalThis as unknown as { Float16Array?: new (n: number | ArrayLike<number>) => Uint16Array })
  .Float16Array;
const F16_MAX = 65504;

/** JSON text of a number, emitted as is by JSON.stringify: 64-bit integers beyond 2^53 stay exact. */
const rawJSON = (JSON as unknown as { rawJSON?: (text: string) => unknown }).rawJSON;

interface Codec {
  ort: OrtType;
  /** Bytes per element in the binary tensor extension; 0 for BYTES (length-prefixed). */
  width: number;
  /** Checks one JSON value; returns the reason it is refused, or null. */
  check(v: unknown): string | null;
  alloc(n: number): TensorData;
  put(arr: TensorData, i: number, v: unknown): void;
}

const finite = (v: unknown): string | null => {
  if (typeof v === "bigint") return null; // an integer literal too long for a double, in a float tensor
  return typeof v !== "number" ? "expected a number" : Number.isFinite(v) ? null : "NaN and Infinity are not allowed";
};

function intCodec(ort: OrtType, width: number, min: number, max: number, make: (n: number) => NumericArray): Codec {
  return {
    ort,
    width,
    check: (v) => {
      if (typeof v === "bigint") return `out of range for ${ort} [${min}, ${max}]`;
      if (typeof v !== "number") return "expected an integer";
      if (!Number.isInteger(v)) return "expected an integer";
      if (v < min || v > max) return `out of range for ${ort} [${min}, ${max}]`;
      return null;
    },
    alloc: make,
    put: (a, i, v) => {
      (a as Int32Array)[i] = v as number;
    },
  };
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Marks a JSON integer that a double cannot hold exactly: the caller re-reads the body exactly. */
export const INEXACT_INTEGER = "integer outside the exactly representable range ±2^53";

function bigCodec(ort: OrtType, signed: boolean): Codec {
  const [min, max] = signed ? [INT64_MIN, INT64_MAX] : [0n, UINT64_MAX];
  const range = `out of range for ${ort} [${min}, ${max}]`;
  return {
    ort,
    width: 8,
    check: (v) => {
      if (typeof v === "bigint") return v < min || v > max ? range : null;
      if (typeof v !== "number" || !Number.isInteger(v)) return "expected an integer";
      if (!Number.isSafeInteger(v)) return INEXACT_INTEGER;
      if (!signed && v < 0) return range;
      return null;
    },
    alloc: (n) => (signed ? new BigInt64Array(n) : new BigUint64Array(n)),
    put: (a, i, v) => {
      (a as BigInt64Array)[i] = typeof v === "bigint" ? v : BigInt(v as number);
    },
  };
}

const CODECS: Partial<Record<Datatype, Codec>> = {
  FP32: {
    ort: "float32",
    width: 4,
    check: (v) => {
      const r = finite(v);
      if (r) return r;
      return Math.abs(Number(v)) > 3.4028234663852886e38 ? "out of range for FP32" : null;
    },
    alloc: (n) => new Float32Array(n),
    put: (a, i, v) => {
      (a as Float32Array)[i] = Number(v);
    },
  },
  FP64: {
    ort: "float64",
    width: 8,
    check: finite,
    alloc: (n) => new Float64Array(n),
    put: (a, i, v) => {
      (a as Float64Array)[i] = Number(v);
    },
  },
  ...(Float16
    ? {
        FP16: {
          ort: "float16",
          width: 2,
          check: (v: unknown) => {
            const r = finite(v);
            if (r) return r;
            return Math.abs(Number(v)) > F16_MAX ? `out of range for FP16 [-${F16_MAX}, ${F16_MAX}]` : null;
          },
          alloc: (n: number) => new Float16(n),
          put: (a: TensorData, i: number, v: unknown) => {
            (a as Uint16Array)[i] = Number(v); // a Float16Array: rounds to the nearest half
          },
        } satisfies Codec,
      }
    : {}),
  INT8: intCodec("int8", 1, -128, 127, (n) => new Int8Array(n)),
  INT16: intCodec("int16", 2, -32768, 32767, (n) => new Int16Array(n)),
  INT32: intCodec("int32", 4, -2147483648, 2147483647, (n) => new Int32Array(n)),
  UINT8: intCodec("uint8", 1, 0, 255, (n) => new Uint8Array(n)),
  UINT16: intCodec("uint16", 2, 0, 65535, (n) => new Uint16Array(n)),
  UINT32: intCodec("uint32", 4, 0, 4294967295, (n) => new Uint32Array(n)),
  INT64: bigCodec("int64", true),
  UINT64: bigCodec("uint64", false),
  BOOL: {
    ort: "bool",
    width: 1,
    check: (v) => (typeof v === "boolean" || v === 0 || v === 1 ? null : "expected a boolean"),
    alloc: (n) => new Uint8Array(n),
    put: (a, i, v) => {
      (a as Uint8Array)[i] = v === true || v === 1 ? 1 : 0;
    },
  },
  BYTES: {
    ort: "string",
    width: 0,
    check: (v) => (typeof v === "string" ? null : "expected a string"),
    alloc: (n) => new Array<string>(n),
    put: (a, i, v) => {
      (a as string[])[i] = v as string;
    },
  },
};

export function isSupported(dt: Datatype): boolean {
  return CODECS[dt] !== undefined;
}

/** Bytes per element in binary tensor data; 0 for BYTES, whose elements carry their own length. */
export function byteWidth(dt: Datatype): number {
  return codecOf(dt).width;
}

export function codecOf(dt: Datatype): Codec {
  const c = CODECS[dt];
  if (!c) throw new Error(`datatype ${dt} is not supported`);
  return c;
}

/** A tensor ready for ONNX Runtime: flat typed data (strings for BYTES), row-major. */
export interface HostTensor {
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Output data -> JSON values: bool -> boolean, 64-bit integers -> numbers, or exact JSON text
 * (JSON.rawJSON) beyond ±2^53, where a double would round them.
 */
export function toJsonArray(datatype: Datatype, data: ArrayLike<unknown>): unknown[] {
  const out = new Array<unknown>(data.length);
  if (datatype === "BOOL") for (let i = 0; i < data.length; i++) out[i] = data[i] === 1 || data[i] === true;
  else if (datatype === "INT64" || datatype === "UINT64") {
    for (let i = 0; i < data.length; i++) {
      const v = data[i] as bigint;
      const n = Number(v);
      out[i] = Number.isSafeInteger(n) || !rawJSON ? n : rawJSON(String(v));
    }
  } else for (let i = 0; i < data.length; i++) out[i] = data[i];
  return out;
}

export function concatTyped(parts: TensorData[], total: number): TensorData {
  const first = parts[0]!;
  if (parts.length === 1) return first;
  if (Array.isArray(first)) return ([] as string[]).concat(...(parts as string[][]));
  const Ctor = first.constructor as new (n: number) => NumericArray;
  const out = new Ctor(total);
  let off = 0;
  for (const p of parts) {
    (out as Float32Array).set(p as Float32Array, off);
    off += p.length;
  }
  return out;
}

/** Elements [start, end) without copying typed data. */
export function sliceData(data: TensorData, start: number, end: number): TensorData {
  return Array.isArray(data) ? data.slice(start, end) : data.subarray(start, end);
}

// ------------------------------------------------ binary tensor data (little-endian, row-major)

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes `count` elements of `datatype` from their binary form: native little-endian values
 * packed without padding, BOOL one byte 0 or 1, BYTES a 4-byte little-endian length before each
 * element. Returns the data, or the reason the bytes do not fit (the caller names the tensor).
 */
export function fromBytes(datatype: Datatype, bytes: Uint8Array, count: number): TensorData | string {
  const codec = CODECS[datatype];
  if (!codec) return `datatype ${datatype} is not supported by this server`;
  if (codec.width === 0) return bytesFromBinary(bytes, count);
  const needed = count * codec.width;
  if (bytes.byteLength !== needed) {
    return `${bytes.byteLength} bytes do not match the shape: ${count} element${count === 1 ? "" : "s"} of ${datatype} take ${needed} bytes`;
  }
  const data = codec.alloc(count) as NumericArray;
  // A copy, not a view: the body's bytes are not aligned for the element type.
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(bytes);
  if (datatype === "BOOL") {
    const i = (data as Uint8Array).findIndex((b) => b > 1);
    if (i >= 0) return `element ${i} is byte ${(data as Uint8Array)[i]}; BOOL takes 0 or 1`;
  }
  return data;
}

function bytesFromBinary(bytes: Uint8Array, count: number): string[] | string {
  // Every element takes at least its 4-byte length: refuse a shape the bytes cannot hold before allocating for it.
  if (count * 4 > bytes.byteLength)
    return `${bytes.byteLength} bytes cannot hold the ${count} elements of the shape (each BYTES element is a 4-byte length and its bytes)`;
  const out = new Array<string>(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes.byteLength)
      return `binary data ends at element ${i} of ${count} (each BYTES element is a 4-byte length and its bytes)`;
    const len = view.getUint32(at, true);
    at += 4;
    if (len > bytes.byteLength - at)
      return `element ${i} declares ${len} bytes but only ${bytes.byteLength - at} remain`;
    try {
      out[i] = utf8.decode(bytes.subarray(at, at + len));
    } catch {
      return `element ${i} is not valid UTF-8 (ONNX Runtime string tensors hold text)`;
    }
    at += len;
  }
  if (at !== bytes.byteLength) return `${bytes.byteLength - at} bytes left after the ${count} elements the shape holds`;
  return out;
}

/** The binary form of one tensor's JSON values (as toJsonArray makes them). */
export function toBytes(datatype: Datatype, values: readonly unknown[]): Uint8Array {
  if (datatype === "BYTES") {
    const parts: Buffer[] = [];
    for (const v of values) {
      const b = Buffer.from(String(v), "utf8");
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32LE(b.length, 0);
      parts.push(len, b);
    }
    const all = Buffer.concat(parts);
    return new Uint8Array(all.buffer, all.byteOffset, all.byteLength); // a plain view: callers rebuild views from its constructor
  }
  const codec = codecOf(datatype);
  const data = codec.alloc(values.length) as NumericArray;
  const big = datatype === "INT64" || datatype === "UINT64";
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (big)
      (data as BigInt64Array)[i] =
        typeof v === "object" && v !== null ? BigInt((v as { rawJSON: string }).rawJSON) : BigInt(v as number);
    else codec.put(data, i, v);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
