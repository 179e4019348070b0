/**
 * KServe V1 predict bodies -> input tensors, with the rules of the model's signature (manifest +
 * ONNX metadata). Each model's rules are compiled once into two forms of the same checks:
 *
 * - `v1Plan`: zod schemas, published per model in the OpenAPI document; every refusal is worded
 *   from them, naming the instance, the feature and the reason.
 * - a tabular plan (one 2-D float input, the common case): per-column bounds checked while the
 *   values are written straight into a Float32Array/Float64Array, with no intermediate objects.
 *   It only ever accepts: on anything it would refuse it steps aside and the zod path decides and
 *   words the error. app/test/v1-decode.test.ts checks, property by property, that both accept
 *   exactly the same instances and build the same tensors.
 */
import { z } from "zod";
import type { PreparedInputs, TensorMap } from "../inference/batcher.ts";
import type { Datatype, Feature } from "../inference/manifest.ts";
import { type ModelSignature, maxInstances } from "../inference/signature.ts";
import { isSupported } from "../inference/tensor.ts";
import { checkDepth, type RequestBody } from "./body.ts";
import { RequestValidationError, type ValidationIssue, zodIssues } from "./errors.ts";
import { flattenInto, shapeOf, toTensor } from "./json-tensor.ts";

const FP32_MAX = 3.4028234663852886e38;

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
  if (datatype === "FP32") s = s.min(-FP32_MAX).max(FP32_MAX);
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

interface V1Plan {
  /** One schema per instance form: object keyed by feature/input name, or a plain array. */
  object: z.ZodType | null;
  array: z.ZodType | null;
  requestSchema: z.ZodType;
}

const plans = new WeakMap<ModelSignature, V1Plan>();

/** The model's V1 request as zod schemas: the OpenAPI document's, and the wording of every refusal. */
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

// ------------------------------------------------------------------------- the tabular plan

const NUMBER = 0;
const INTEGER = 1;
const BOOLEAN = 2;
const ENUM = 3;

/** One column's rules, as scalarSchema states them for a float input. */
interface Column {
  kind: typeof NUMBER | typeof INTEGER | typeof BOOLEAN | typeof ENUM;
  /** Inclusive bounds (the datatype's range within the feature's); finite, so they refuse ±Infinity and NaN. */
  min: number;
  max: number;
  allowed: ReadonlySet<number> | null;
}

interface Tabular {
  input: string;
  datatype: "FP32" | "FP64";
  cols: number;
  /** Feature names in column order; null when instances can only be arrays. */
  names: string[] | null;
  columns: Column[];
  limit: number;
}

function column(f: Feature | undefined, bound: number): Column {
  if (f?.type === "boolean") return { kind: BOOLEAN, min: 0, max: 1, allowed: null };
  if (f?.enum) return { kind: ENUM, min: 0, max: 0, allowed: new Set(f.enum) };
  const min = f?.min !== undefined ? Math.max(-bound, f.min) : -bound;
  const max = f?.max !== undefined ? Math.min(bound, f.max) : bound;
  return { kind: f?.type === "integer" ? INTEGER : NUMBER, min, max, allowed: null };
}

function compileTabular(sig: ModelSignature): Tabular | null {
  if (sig.inputs.length !== 1) return null;
  const input = sig.inputs[0]!;
  if (input.shape.length !== 2 || (input.datatype !== "FP32" && input.datatype !== "FP64")) return null;
  const features = input.features;
  const cols = features ? features.length : input.shape[1]!;
  if (cols <= 0) return null;
  const bound = input.datatype === "FP32" ? FP32_MAX : Number.MAX_VALUE;
  const columns = Array.from({ length: cols }, (_, j) => column(features?.[j], bound));
  return {
    input: input.name,
    datatype: input.datatype,
    cols,
    names: features ? features.map((f) => f.name) : null,
    columns,
    limit: maxInstances(sig),
  };
}

/** The value as the tensor holds it, or NaN when the column's rules refuse it. */
function accept(c: Column, v: unknown): number {
  if (c.kind === BOOLEAN) return v === true ? 1 : v === false ? 0 : NaN;
  if (typeof v !== "number") return NaN;
  if (c.kind === ENUM) return c.allowed!.has(v) ? v : NaN;
  if (!(v >= c.min && v <= c.max)) return NaN;
  return c.kind === INTEGER && !Number.isSafeInteger(v) ? NaN : v;
}

/** A body the tabular plan accepts, as tensors; null for anything else (the zod path decides). */
function acceptTabular(t: Tabular, body: unknown): PreparedInputs | null {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return null;
  let members = 0;
  for (const _ in body) members++;
  const instances = (body as { instances?: unknown }).instances;
  if (members !== 1 || !Array.isArray(instances)) return null;
  const rows = instances.length;
  if (rows === 0 || rows > t.limit) return null;
  const { cols, columns, names } = t;
  const data = t.datatype === "FP32" ? new Float32Array(rows * cols) : new Float64Array(rows * cols);
  for (let r = 0, at = 0; r < rows; r++) {
    const inst: unknown = instances[r];
    if (Array.isArray(inst)) {
      if (inst.length !== cols) return null;
      for (let j = 0; j < cols; j++, at++) {
        const v = accept(columns[j]!, inst[j]);
        if (Number.isNaN(v)) return null;
        data[at] = v;
      }
    } else if (names !== null && typeof inst === "object" && inst !== null) {
      // Each name read must find a value the column accepts, so equal counts leave no unknown key.
      let keys = 0;
      for (const _ in inst) keys++;
      if (keys !== cols) return null;
      for (let j = 0; j < cols; j++, at++) {
        const v = accept(columns[j]!, (inst as Record<string, unknown>)[names[j]!]);
        if (Number.isNaN(v)) return null;
        data[at] = v;
      }
    } else {
      return null;
    }
  }
  return { inputs: { [t.input]: { datatype: t.datatype, shape: [rows, cols], data } }, rows };
}

const tabulars = new WeakMap<ModelSignature, Tabular | null>();

/** What the tabular plan alone makes of a body: tensors, or null (no plan for this model, or it steps aside). */
export function tabularTensors(sig: ModelSignature, body: unknown): PreparedInputs | null {
  const t = tabularOf(sig);
  return t && acceptTabular(t, body);
}

function tabularOf(sig: ModelSignature): Tabular | null {
  let t = tabulars.get(sig);
  if (t === undefined) {
    t = compileTabular(sig);
    tabulars.set(sig, t);
  }
  return t;
}

/** Depth of `{"instances": [{...}]}`: the tabular plan accepts nothing deeper. */
const TABULAR_DEPTH = 3;

/**
 * Validates a V1 body and builds the input tensors. `request` is the body as read, when its depth
 * check was left to this decoder: the tabular plan bounds a body's depth itself, every other path
 * checks it first.
 */
export function prepareV1(sig: ModelSignature, body: unknown, request?: RequestBody): PreparedInputs {
  const tabular = tabularOf(sig);
  if (tabular && (request?.depthLimit === undefined || request.depthLimit >= TABULAR_DEPTH)) {
    const accepted = acceptTabular(tabular, body);
    if (accepted) return accepted;
  }
  if (request) checkDepth(request);
  return decodeV1(sig, body);
}

/** Every rule, with the errors worded from the zod schemas (the path for all but tabular models' valid bodies). */
export function decodeV1(sig: ModelSignature, body: unknown): PreparedInputs {
  const unsupported = sig.inputs.find((t) => !isSupported(t.datatype));
  if (unsupported) {
    throw new RequestValidationError([
      {
        field: `inputs.${unsupported.name}`,
        message: `datatype ${unsupported.datatype} is not supported by this server`,
      },
    ]);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new RequestValidationError([{ field: "body", message: 'expected a JSON object {"instances": [...]}' }]);
  }
  const extra = Object.keys(body).filter((k) => k !== "instances" && k !== "parameters");
  if (extra.length)
    throw new RequestValidationError([{ field: extra[0]!, message: 'unknown field; V1 predict takes "instances"' }]);
  const instances = (body as { instances?: unknown }).instances;
  if (!Array.isArray(instances)) {
    throw new RequestValidationError([
      { field: "instances", message: instances === undefined ? "required" : "expected an array" },
    ]);
  }
  if (instances.length === 0)
    throw new RequestValidationError([{ field: "instances", message: "must hold at least one instance" }]);
  const limit = maxInstances(sig);
  if (instances.length > limit) {
    throw new RequestValidationError(
      [
        {
          field: "instances",
          message: `${instances.length} instances exceed this model's limit of ${limit} per request`,
        },
      ],
      413,
    );
  }
  const plan = v1Plan(sig);
  const issues: ValidationIssue[] = [];
  for (let i = 0; i < instances.length && issues.length < 10; i++) {
    const inst = instances[i];
    // A rank-1 input takes one scalar per instance.
    const schema =
      Array.isArray(inst) || (plan.object === null && sig.inputs[0]!.shape.length === 1) ? plan.array : plan.object;
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
      if (single)
        row =
          !Array.isArray(inst) && input.features
            ? input.features.map((f) => (inst as Record<string, unknown>)[f.name])
            : inst;
      else row = (inst as Record<string, unknown>)[input.name];
      const shape = shapeOf(row);
      if (inner === null) inner = shape;
      else if (shape.join(",") !== inner.join(",")) {
        throw new RequestValidationError([
          {
            field: single ? `instances[${i}]` : `instances[${i}].${input.name}`,
            message: `shape [${shape}] differs from instances[0] [${inner}]`,
          },
        ]);
      }
      flattenInto(row, values);
    }
    const shape = [rows, ...(inner ?? [])];
    if (input.shape.length !== shape.length) {
      throw new RequestValidationError([
        { field: `instances`, message: `input "${input.name}" needs rank ${input.shape.length}, got [${shape}]` },
      ]);
    }
    inputs[input.name] = toTensor(input, shape, values);
  }
  return { inputs, rows };
}
