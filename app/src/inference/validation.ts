/**
 * Request validation generated from a model's signature (manifest + ONNX metadata): zod schemas
 * for KServe V1 instances (also published in the OpenAPI document) and the checks of Open
 * Inference Protocol tensors. Every failure names the field or tensor and the reason.
 */
import { z } from "zod";
import type { TensorMap } from "./batcher.ts";
import type { Datatype, Feature } from "./manifest.ts";
import type { ModelSignature, TensorSignature } from "./signature.ts";
import { byteWidth, codecOf, fromBytes, INEXACT_INTEGER, isSupported, sizeOf, type HostTensor, type TensorData } from "./tensor.ts";

/** Absolute cap on rows per request for models whose own limit is unbounded. */
export const MAX_INSTANCES_UNBATCHED = 4096;

export interface ValidationIssue {
  /** Where, e.g. `instances[3].age` or `inputs[0].data[5]` (tensor "x"). */
  field: string;
  message: string;
}

export class RequestValidationError extends Error {
  readonly status: number;
  readonly issues: ValidationIssue[];
  constructor(issues: ValidationIssue[], status = 400) {
    super(issues.map((i) => `${i.field}: ${i.message}`).join("; "));
    this.issues = issues;
    this.status = status;
  }
}

export interface PreparedInputs {
  inputs: TensorMap;
  rows: number;
  /** V2 only: the outputs the caller asked for (all when absent). */
  outputs?: string[];
}

const INT_RANGE: Partial<Record<Datatype, [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
};

function scalarSchema(datatype: Datatype, feature?: Feature): z.ZodType {
  if (datatype === "BYTES") return z.string();
  if (datatype === "BOOL" || feature?.type === "boolean") {
    let s: z.ZodType = z.boolean();
    if (feature?.description) s = s.describe(feature.description);
    return s;
  }
  const intRange = INT_RANGE[datatype];
  let s = intRange || feature?.type === "integer" ? z.number().int() : z.number();
  if (intRange) s = s.min(intRange[0]).max(intRange[1]);
  if (datatype === "FP32") s = s.min(-3.4028234663852886e38).max(3.4028234663852886e38);
  if (feature?.min !== undefined) s = s.min(feature.min);
  if (feature?.max !== undefined) s = s.max(feature.max);
  let out: z.ZodType = feature?.enum ? z.literal(feature.enum as [number, ...number[]]) : s;
  if (feature?.description) out = out.describe(feature.description);
  return out;
}

/** Nested arrays for the non-batch dimensions of a tensor. */
function nestedSchema(datatype: Datatype, dims: number[]): z.ZodType {
  if (dims.length === 0) return scalarSchema(datatype);
  const [d, ...rest] = dims;
  const arr = z.array(nestedSchema(datatype, rest));
  return d === -1 ? arr.min(1) : arr.length(d!);
}

export function maxInstances(sig: ModelSignature): number {
  if (sig.batching.maxBatchSize > 0) return sig.batching.maxBatchSize;
  const first = sig.inputs[0]?.shape[0];
  return first !== undefined && first > 0 ? first : MAX_INSTANCES_UNBATCHED;
}

interface V1Plan {
  /** One schema per instance form: object keyed by feature/input name, or a plain array. */
  object: z.ZodType | null;
  array: z.ZodType | null;
  requestSchema: z.ZodType;
}

const plans = new WeakMap<ModelSignature, V1Plan>();

export function v1Plan(sig: ModelSignature): V1Plan {
  let plan = plans.get(sig);
  if (plan) return plan;
  let object: z.ZodType | null = null;
  let array: z.ZodType | null = null;
  if (sig.inputs.length === 1) {
    const input = sig.inputs[0]!;
    const inner = input.shape.slice(1);
    if (input.features) {
      const fields: Record<string, z.ZodType> = {};
      for (const f of input.features) fields[f.name] = scalarSchema(input.datatype, f);
      object = z.object(fields).strict();
      array = z.tuple(input.features.map((f) => scalarSchema(input.datatype, f)) as [z.ZodType, ...z.ZodType[]]);
    } else {
      array = nestedSchema(input.datatype, inner);
    }
  } else {
    const fields: Record<string, z.ZodType> = {};
    for (const input of sig.inputs) fields[input.name] = nestedSchema(input.datatype, input.shape.slice(1));
    object = z.object(fields).strict();
  }
  const forms = [object, array].filter((s): s is z.ZodType => s !== null);
  const instance = forms.length === 1 ? forms[0]! : z.union(forms as [z.ZodType, z.ZodType]);
  const requestSchema = z
    .object({ instances: z.array(instance).min(1).max(maxInstances(sig)) })
    .describe("KServe V1 predict request");
  plan = { object, array, requestSchema };
  plans.set(sig, plan);
  return plan;
}

function pathString(base: string, path: ReadonlyArray<PropertyKey>): string {
  let s = base;
  for (const p of path) s += typeof p === "number" ? `[${p}]` : `.${String(p)}`;
  return s;
}

function zodIssues(base: string, err: z.ZodError, unknownKey = "feature"): ValidationIssue[] {
  return err.issues.slice(0, 10).map((i) => {
    const keys = i.code === "unrecognized_keys" ? (i as { keys: string[] }).keys : null;
    return {
      field: pathString(base, keys ? [...i.path, keys[0]!] : i.path),
      message: keys ? `unknown ${unknownKey}${keys.length > 1 ? "s" : ""} ${keys.map((k) => `"${k}"`).join(", ")}` : i.message,
    };
  });
}

/** Validates a V1 body and builds the input tensors. */
export function prepareV1(sig: ModelSignature, body: unknown): PreparedInputs {
  const unsupported = sig.inputs.find((t) => !isSupported(t.datatype));
  if (unsupported) {
    throw new RequestValidationError([{ field: `inputs.${unsupported.name}`, message: `datatype ${unsupported.datatype} is not supported by this server` }]);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new RequestValidationError([{ field: "body", message: 'expected a JSON object {"instances": [...]}' }]);
  }
  const extra = Object.keys(body).filter((k) => k !== "instances" && k !== "parameters");
  if (extra.length) throw new RequestValidationError([{ field: extra[0]!, message: 'unknown field; V1 predict takes "instances"' }]);
  const instances = (body as { instances?: unknown }).instances;
  if (!Array.isArray(instances)) {
    throw new RequestValidationError([{ field: "instances", message: instances === undefined ? "required" : "expected an array" }]);
  }
  if (instances.length === 0) throw new RequestValidationError([{ field: "instances", message: "must hold at least one instance" }]);
  const limit = maxInstances(sig);
  if (instances.length > limit) {
    throw new RequestValidationError([{ field: "instances", message: `${instances.length} instances exceed this model's limit of ${limit} per request` }], 413);
  }
  const fast = fastTabular(sig, instances);
  if (fast) return fast;
  const plan = v1Plan(sig);
  const issues: ValidationIssue[] = [];
  for (let i = 0; i < instances.length && issues.length < 10; i++) {
    const inst = instances[i];
    // A rank-1 input takes one scalar per instance.
    const schema = Array.isArray(inst) || (plan.object === null && sig.inputs[0]!.shape.length === 1) ? plan.array : plan.object;
    if (!schema) {
      issues.push({
        field: `instances[${i}]`,
        message: Array.isArray(inst) ? "expected an object keyed by input name" : "expected an array",
      });
      continue;
    }
    const r = schema.safeParse(inst);
    if (!r.success) {
      const features = sig.inputs.length === 1 && Array.isArray(inst) ? sig.inputs[0]!.features : undefined;
      for (const issue of zodIssues(`instances[${i}]`, r.error)) {
        // Name the feature behind a column index: instances[0][2] (bmi).
        const col = features ? /^instances\[\d+\]\[(\d+)\]$/.exec(issue.field)?.[1] : undefined;
        const name = col !== undefined ? features![Number(col)]?.name : undefined;
        issues.push(name ? { ...issue, field: `${issue.field} (${name})` } : issue);
      }
    }
  }
  if (issues.length) throw new RequestValidationError(issues);

  const rows = instances.length;
  const inputs: TensorMap = {};
  for (const input of sig.inputs) {
    const single = sig.inputs.length === 1;
    const values: unknown[] = [];
    let inner: number[] | null = null;
    for (let i = 0; i < rows; i++) {
      const inst = instances[i] as unknown;
      let row: unknown;
      if (single) row = !Array.isArray(inst) && input.features ? input.features.map((f) => (inst as Record<string, unknown>)[f.name]) : inst;
      else row = (inst as Record<string, unknown>)[input.name];
      const shape = shapeOf(row);
      if (inner === null) inner = shape;
      else if (shape.join(",") !== inner.join(",")) {
        throw new RequestValidationError([
          { field: single ? `instances[${i}]` : `instances[${i}].${input.name}`, message: `shape [${shape}] differs from instances[0] [${inner}]` },
        ]);
      }
      flattenInto(row, values);
    }
    const shape = [rows, ...(inner ?? [])];
    if (input.shape.length !== shape.length) {
      throw new RequestValidationError([{ field: `instances`, message: `input "${input.name}" needs rank ${input.shape.length}, got [${shape}]` }]);
    }
    inputs[input.name] = toTensor(input, shape, values);
  }
  return { inputs, rows };
}

/**
 * The common case (one 2-D float input, rows as feature objects or arrays), checked and written
 * straight into the tensor without intermediate objects: about half the allocation of the zod
 * path under load. Conservative: anything unusual returns null and the zod schema decides (and
 * words the errors), so both accept exactly the same requests.
 */
function fastTabular(sig: ModelSignature, instances: unknown[]): PreparedInputs | null {
  if (sig.inputs.length !== 1) return null;
  const input = sig.inputs[0]!;
  if (input.shape.length !== 2 || (input.datatype !== "FP32" && input.datatype !== "FP64")) return null;
  const features = input.features;
  const cols = features ? features.length : input.shape[1]!;
  if (cols <= 0) return null;
  const fp32 = input.datatype === "FP32";
  const data = fp32 ? new Float32Array(instances.length * cols) : new Float64Array(instances.length * cols);
  const ok = (v: unknown, f: Feature | undefined): number | null => {
    if (f?.type === "boolean") return typeof v === "boolean" ? (v ? 1 : 0) : null;
    if (typeof v !== "number" || !Number.isFinite(v)) return null;
    if (fp32 && Math.abs(v) > 3.4028234663852886e38) return null;
    if (f) {
      if (f.type === "integer" && !Number.isSafeInteger(v)) return null;
      if (f.min !== undefined && v < f.min) return null;
      if (f.max !== undefined && v > f.max) return null;
      if (f.enum && !f.enum.includes(v)) return null;
    }
    return v;
  };
  for (let r = 0; r < instances.length; r++) {
    const inst = instances[r];
    const base = r * cols;
    if (Array.isArray(inst)) {
      if (inst.length !== cols) return null;
      for (let j = 0; j < cols; j++) {
        const v = ok(inst[j], features?.[j]);
        if (v === null) return null;
        data[base + j] = v;
      }
    } else if (features && typeof inst === "object" && inst !== null) {
      let keys = 0;
      for (const k in inst) if (Object.hasOwn(inst, k)) keys++;
      if (keys !== cols) return null;
      for (let j = 0; j < cols; j++) {
        const f = features[j]!;
        if (!Object.hasOwn(inst, f.name)) return null;
        const v = ok((inst as Record<string, unknown>)[f.name], f);
        if (v === null) return null;
        data[base + j] = v;
      }
    } else {
      return null;
    }
  }
  return { inputs: { [input.name]: { datatype: input.datatype, shape: [instances.length, cols], data } }, rows: instances.length };
}

function shapeOf(v: unknown): number[] {
  const shape: number[] = [];
  let cur = v;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
  }
  return shape;
}

function flattenInto(v: unknown, out: unknown[]): void {
  if (Array.isArray(v)) for (const x of v) flattenInto(x, out);
  else out.push(v);
}

function toTensor(sig: TensorSignature, shape: number[], values: unknown[]): HostTensor {
  const codec = codecOf(sig.datatype);
  const data = codec.alloc(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    codec.put(data, i, typeof v === "boolean" && sig.datatype !== "BOOL" ? (v ? 1 : 0) : v);
  }
  return { datatype: sig.datatype, shape, data };
}

// ---------------------------------------------------------------- V2 (Open Inference Protocol)

const Parameters = z.record(z.string(), z.unknown());

export const V2InputSchema = z
  .object({
    name: z.string().min(1),
    shape: z.array(z.number().int().min(0)).max(16),
    datatype: z.string(),
    parameters: Parameters.optional().describe("binary_data_size: this tensor's bytes follow the JSON (binary tensor data extension)"),
    data: z.array(z.unknown()).optional().describe("Row-major elements, flat or nested; absent when the tensor is sent as binary data"),
  })
  .strict();

// Not strict: clients send members of their own (KServe: model_name), which Triton and KServe ignore.
export const V2RequestSchema = z
  .object({
    id: z.string().max(256).optional(),
    parameters: Parameters.optional().describe("binary_data_output: return every output as binary tensor data"),
    inputs: z.array(V2InputSchema).min(1),
    outputs: z
      .array(
        z
          .object({ name: z.string().min(1), parameters: Parameters.optional().describe("binary_data: return this output as binary tensor data") })
          .strict(),
      )
      .optional(),
  })
  .describe("Open Inference Protocol inference request");
export type V2Request = z.infer<typeof V2RequestSchema>;

export interface PreparedV2 extends PreparedInputs {
  id?: string;
  /** Outputs to return as binary tensor data, in response order. */
  binaryOutputs?: Set<string>;
}

/** What the HTTP layer read besides the parsed JSON: its text and the bytes that follow it. */
export interface V2Source {
  text?: string;
  binary?: Uint8Array;
}

function featureIssue(f: Feature, v: number): string | null {
  if (f.type === "integer" && !Number.isInteger(v)) return `feature "${f.name}" expects an integer`;
  if (f.min !== undefined && v < f.min) return `feature "${f.name}" must be >= ${f.min}`;
  if (f.max !== undefined && v > f.max) return `feature "${f.name}" must be <= ${f.max}`;
  if (f.enum && !f.enum.includes(v)) return `feature "${f.name}" must be one of ${f.enum.join(", ")}`;
  return null;
}

/** A JSON integer a double cannot hold exactly, in a 64-bit integer tensor: re-read the text exactly. */
class InexactInteger extends Error {}

/** JSON.parse reviver: integer literals beyond ±2^53 become exact BigInts (from their source text). */
function exactIntegers(this: unknown, _key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value === "number" && !Number.isSafeInteger(value) && context?.source && /^-?[0-9]+$/.test(context.source)) return BigInt(context.source);
  return value;
}

const fail = (field: string, message: string): never => {
  throw new RequestValidationError([{ field, message }]);
};

/**
 * Validates a V2 infer body and builds the input tensors. Inputs come as JSON `data` or, with the
 * binary tensor data extension, as `parameters.binary_data_size` bytes each, in input order, from
 * `source.binary`: the sizes must add up to those bytes exactly. A body the HTTP layer found to be
 * raw binary (Inference-Header-Content-Length: 0) is the single input's bytes.
 */
export function prepareV2(sig: ModelSignature, body: unknown, source: V2Source = {}): PreparedV2 {
  if (body === undefined && source.binary) body = rawBinaryRequest(sig, source.binary.byteLength);
  try {
    return prepareV2Body(sig, body, source.binary, false);
  } catch (err) {
    // Parsed again only when a 64-bit tensor needs it: the common float path never pays for it.
    if (err instanceof InexactInteger && source.text) {
      return prepareV2Body(sig, JSON.parse(source.text, exactIntegers as (k: string, v: unknown) => unknown), source.binary, true);
    }
    throw err;
  }
}

/** Triton's raw binary request: one input, its shape deduced from the byte count, outputs in binary. */
function rawBinaryRequest(sig: ModelSignature, bytes: number): unknown {
  const where = "body (raw binary request, Inference-Header-Content-Length: 0)";
  if (sig.inputs.length !== 1) fail(where, `needs a model with exactly one input; this one takes ${sig.inputs.length}`);
  const input = sig.inputs[0]!;
  // A batched model takes it as a batch of one, as Triton does.
  const shape = input.shape.map((d, i) => (i === 0 && sig.batchable && d === -1 ? 1 : d));
  const request = (full: number[]) => ({
    inputs: [{ name: input.name, datatype: input.datatype, shape: full, parameters: { binary_data_size: bytes } }],
    parameters: { binary_data_output: true },
  });
  if (input.datatype === "BYTES") {
    // Elements carry their own lengths, so only a single element is unambiguous (Triton's rule).
    const one = shape.map((d) => (d === -1 ? 1 : d));
    if (sizeOf(one) !== 1) fail(where, `a BYTES input must hold one element; "${input.name}" is [${input.shape}]`);
    return request(one);
  }
  const variable = shape.filter((d) => d === -1).length;
  if (variable > 1) fail(where, `input "${input.name}" [${input.shape}] has more than one variable dimension; send a JSON header with its shape`);
  if (!isSupported(input.datatype)) fail(where, `datatype ${input.datatype} is not supported by this server`);
  const fixed = sizeOf(shape.filter((d) => d !== -1));
  const elements = bytes / byteWidth(input.datatype);
  if (!Number.isInteger(elements) || (variable === 0 ? elements !== fixed : fixed === 0 || elements % fixed !== 0)) {
    fail(where, `${bytes} bytes do not make a whole ${input.datatype} tensor of shape [${shape}]`);
  }
  return request(shape.map((d) => (d === -1 ? elements / fixed : d)));
}

function binarySize(where: string, value: unknown): number {
  if (typeof value === "bigint" && value >= 0n) return Number(value); // more than any body holds: refused as such below
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    return fail(`${where}.parameters.binary_data_size`, `expected a non-negative integer byte count, got ${typeof value === "bigint" ? String(value) : JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

function booleanParameter(field: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") fail(field, `expected a boolean, got ${JSON.stringify(value)}`);
  return value as boolean;
}

function prepareV2Body(sig: ModelSignature, body: unknown, binary: Uint8Array | undefined, exact: boolean): PreparedV2 {
  const parsed = V2RequestSchema.safeParse(body);
  if (!parsed.success) throw new RequestValidationError(zodIssues("", parsed.error, "member").map((i) => ({ ...i, field: i.field.replace(/^\./, "") || "body" })));
  const req = parsed.data;
  const byName = new Map(sig.inputs.map((t) => [t.name, t]));
  const seen = new Set<string>();
  const inputs: TensorMap = {};
  let rows: number | null = null;
  let offset = 0; // into `binary`
  let lastBinary: string | undefined;
  req.inputs.forEach((inp, idx) => {
    const where = `inputs[${idx}] ("${inp.name}")`;
    const spec = byName.get(inp.name) ?? fail(where, `unknown input; the model takes ${[...byName.keys()].join(", ")}`);
    if (seen.has(inp.name)) fail(where, "input given twice");
    seen.add(inp.name);
    if (inp.datatype !== spec.datatype) fail(`${where}.datatype`, `expected ${spec.datatype}, got ${inp.datatype}`);
    if (!isSupported(spec.datatype)) fail(`${where}.datatype`, `datatype ${spec.datatype} is not supported by this server`);
    if (inp.shape.length !== spec.shape.length) fail(`${where}.shape`, `expected rank ${spec.shape.length} [${spec.shape}], got [${inp.shape}]`);
    spec.shape.forEach((d, i) => {
      if (d !== -1 && inp.shape[i] !== d) fail(`${where}.shape[${i}]`, `expected ${d}, got ${inp.shape[i]}`);
    });
    const expected = sizeOf(inp.shape);
    const params = inp.parameters ?? {};
    if (params.shared_memory_region !== undefined) fail(`${where}.parameters.shared_memory_region`, "shared memory is not supported by this server; send data or binary data");
    let tensor: HostTensor;
    if (params.binary_data_size !== undefined) {
      const size = binarySize(where, params.binary_data_size);
      if (inp.data !== undefined) fail(where, "has both data and parameters.binary_data_size; send one");
      if (binary === undefined) {
        fail(`${where}.parameters.binary_data_size`, "binary tensor data needs the Inference-Header-Content-Length header (the JSON's length in bytes)");
      }
      const remaining = binary!.byteLength - offset;
      if (size > remaining) {
        fail(`${where}.parameters.binary_data_size`, `${size} bytes, but only ${remaining} remain after the JSON header${offset ? " and the binary inputs before it" : ""}`);
      }
      const data = fromBytes(spec.datatype, binary!.subarray(offset, offset + size), expected);
      if (typeof data === "string") fail(`${where}.parameters.binary_data_size`, data);
      offset += size;
      lastBinary = where;
      const cols = spec.features?.length ?? 0;
      if (cols && !Array.isArray(data)) {
        for (let i = 0; i < data.length; i++) {
          const why = featureIssue(spec.features![i % cols]!, Number(data[i]));
          if (why) fail(`${where}.data[${i}]`, why);
        }
      }
      tensor = { datatype: spec.datatype, shape: inp.shape, data: data as TensorData };
    } else {
      if (inp.data === undefined) fail(`inputs[${idx}].data`, "required (or parameters.binary_data_size with binary tensor data)");
      const values: unknown[] = [];
      flattenInto(inp.data, values);
      if (values.length !== expected) fail(`${where}.data`, `has ${values.length} elements but shape [${inp.shape}] needs ${expected}`);
      const codec = codecOf(spec.datatype);
      const cols = spec.features?.length ?? 0;
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        let why = codec.check(v) ?? (cols && typeof v === "number" ? featureIssue(spec.features![i % cols]!, v) : null);
        if (why === INEXACT_INTEGER) {
          if (!exact) throw new InexactInteger();
          why += " (write it as an integer literal, e.g. 9223372036854775807)";
        }
        if (why) fail(`${where}.data[${i}]`, why);
      }
      tensor = toTensor(spec, inp.shape, values);
    }
    const r = spec.shape.length ? inp.shape[0]! : 1;
    // Only a batched model reads a shared first dimension; others take each input as declared.
    if (sig.batching.maxBatchSize > 0 && rows !== null && r !== rows) {
      fail(`${where}.shape[0]`, `batch size ${r} differs from the other inputs' ${rows}`);
    }
    rows = r;
    inputs[inp.name] = tensor;
  });
  if (binary !== undefined && offset !== binary.byteLength) {
    const extra = binary.byteLength - offset;
    if (lastBinary) fail(`${lastBinary}.parameters.binary_data_size`, `the binary inputs' sizes add up to ${offset} bytes, but ${binary.byteLength} follow the JSON header (${extra} too many)`);
    fail("Inference-Header-Content-Length", `${extra} bytes follow the JSON header, but no input declares parameters.binary_data_size`);
  }
  const missing = sig.inputs.filter((t) => !seen.has(t.name)).map((t) => t.name);
  if (missing.length) fail("inputs", `missing input ${missing.map((m) => `"${m}"`).join(", ")}`);
  const limit = maxInstances(sig);
  if (sig.batchable && rows! > limit) {
    throw new RequestValidationError([{ field: "inputs[0].shape[0]", message: `batch of ${rows} exceeds this model's limit of ${limit}` }], 413);
  }
  if (rows === 0) fail("inputs[0].shape[0]", "batch must not be empty");
  const allBinary = booleanParameter("parameters.binary_data_output", req.parameters?.binary_data_output) ?? false;
  let outputs: string[] | undefined;
  const binaryOutputs = new Set<string>();
  if (req.outputs) {
    const served = new Set(sig.outputs.map((o) => o.name));
    req.outputs.forEach((o, i) => {
      if (!served.has(o.name)) fail(`outputs[${i}] ("${o.name}")`, `unknown output; the model serves ${[...served].join(", ")}`);
      if (booleanParameter(`outputs[${i}] ("${o.name}").parameters.binary_data`, o.parameters?.binary_data) ?? allBinary) binaryOutputs.add(o.name);
    });
    outputs = req.outputs.map((o) => o.name);
  } else if (allBinary) {
    for (const o of sig.outputs) binaryOutputs.add(o.name);
  }
  const out: PreparedV2 = { inputs, rows: sig.batchable ? rows! : 1 };
  if (outputs) out.outputs = outputs;
  if (binaryOutputs.size) out.binaryOutputs = binaryOutputs;
  if (req.id !== undefined) out.id = req.id;
  return out;
}
