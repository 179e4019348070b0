/**
 * Tensor datatypes: V2 names <-> ONNX Runtime types, and conversion between JSON numbers and the
 * typed arrays ONNX Runtime takes.
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

interface Codec {
  ort: OrtType;
  /** Checks one JSON value; returns the reason it is refused, or null. */
  check(v: unknown): string | null;
  alloc(n: number): NumericArray;
  put(arr: NumericArray, i: number, v: unknown): void;
}

const finite = (v: unknown): string | null =>
  typeof v !== "number" ? "expected a number" : Number.isFinite(v) ? null : "NaN and Infinity are not allowed";

function intCodec(ort: OrtType, min: number, max: number, make: (n: number) => NumericArray): Codec {
  return {
    ort,
    check: (v) => {
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

function bigCodec(ort: OrtType, signed: boolean): Codec {
  return {
    ort,
    check: (v) => {
      if (typeof v !== "number" || !Number.isInteger(v)) return "expected an integer";
      if (!Number.isSafeInteger(v)) return "integer outside the exactly representable range ±2^53";
      if (!signed && v < 0) return `out of range for ${ort}`;
      return null;
    },
    alloc: (n) => (signed ? new BigInt64Array(n) : new BigUint64Array(n)),
    put: (a, i, v) => {
      (a as BigInt64Array)[i] = BigInt(v as number);
    },
  };
}

const CODECS: Partial<Record<Datatype, Codec>> = {
  FP32: {
    ort: "float32",
    check: (v) => {
      const r = finite(v);
      if (r) return r;
      return Math.abs(v as number) > 3.4028234663852886e38 ? "out of range for FP32" : null;
    },
    alloc: (n) => new Float32Array(n),
    put: (a, i, v) => {
      (a as Float32Array)[i] = v as number;
    },
  },
  FP64: {
    ort: "float64",
    check: finite,
    alloc: (n) => new Float64Array(n),
    put: (a, i, v) => {
      (a as Float64Array)[i] = v as number;
    },
  },
  INT8: intCodec("int8", -128, 127, (n) => new Int8Array(n)),
  INT16: intCodec("int16", -32768, 32767, (n) => new Int16Array(n)),
  INT32: intCodec("int32", -2147483648, 2147483647, (n) => new Int32Array(n)),
  UINT8: intCodec("uint8", 0, 255, (n) => new Uint8Array(n)),
  UINT16: intCodec("uint16", 0, 65535, (n) => new Uint16Array(n)),
  UINT32: intCodec("uint32", 0, 4294967295, (n) => new Uint32Array(n)),
  INT64: bigCodec("int64", true),
  UINT64: bigCodec("uint64", false),
  BOOL: {
    ort: "bool",
    check: (v) => (typeof v === "boolean" || v === 0 || v === 1 ? null : "expected a boolean"),
    alloc: (n) => new Uint8Array(n),
    put: (a, i, v) => {
      (a as Uint8Array)[i] = v === true || v === 1 ? 1 : 0;
    },
  },
};

export function isSupported(dt: Datatype): boolean {
  return CODECS[dt] !== undefined;
}

export const SUPPORTED_DATATYPES = Object.keys(CODECS) as Datatype[];

export function codecOf(dt: Datatype): Codec {
  const c = CODECS[dt];
  if (!c) throw new Error(`datatype ${dt} is not supported`);
  return c;
}

/** A tensor ready for ONNX Runtime: flat typed data, row-major. */
export interface HostTensor {
  datatype: Datatype;
  shape: number[];
  data: NumericArray;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Output typed data -> JSON values (BigInt -> number, bool -> boolean). */
export function toJsonArray(datatype: Datatype, data: ArrayLike<unknown>): unknown[] {
  const out = new Array<unknown>(data.length);
  if (datatype === "BOOL") for (let i = 0; i < data.length; i++) out[i] = data[i] === 1 || data[i] === true;
  else if (datatype === "INT64" || datatype === "UINT64") for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  else for (let i = 0; i < data.length; i++) out[i] = data[i];
  return out;
}

export function concatTyped(parts: NumericArray[], total: number): NumericArray {
  const first = parts[0]!;
  if (parts.length === 1) return first;
  const Ctor = first.constructor as new (n: number) => NumericArray;
  const out = new Ctor(total);
  let off = 0;
  for (const p of parts) {
    (out as Float32Array).set(p as Float32Array, off);
    off += p.length;
  }
  return out;
}
