/**
 * Open Inference Protocol (KServe V2 / Triton HTTP) infer bodies -> input tensors: the request
 * schema (also published in the OpenAPI document), each tensor checked against the model's
 * signature, JSON `data` or the binary tensor data extension's bytes. Every refusal names the
 * tensor or member and the reason.
 */
import { z } from "zod";
import type { PreparedInputs, TensorMap } from "../inference/batcher.ts";
import type { Feature } from "../inference/manifest.ts";
import { type ModelSignature, maxInstances } from "../inference/signature.ts";
import {
  byteWidth,
  codecOf,
  fromBytes,
  type HostTensor,
  INEXACT_INTEGER,
  isSupported,
  sizeOf,
  type TensorData,
} from "../inference/tensor.ts";
import { RequestValidationError, zodIssues } from "./errors.ts";
import { flattenInto, toTensor } from "./json-tensor.ts";

const Parameters = z.record(z.string(), z.unknown());

export const V2InputSchema = z
  .object({
    name: z.string().min(1),
    shape: z.array(z.number().int().min(0)).max(16),
    datatype: z.string(),
    parameters: Parameters.optional().describe(
      "binary_data_size: this tensor's bytes follow the JSON (binary tensor data extension)",
    ),
    data: z
      .array(z.unknown())
      .optional()
      .describe("Row-major elements, flat or nested; absent when the tensor is sent as binary data"),
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
          .object({
            name: z.string().min(1),
            parameters: Parameters.optional().describe("binary_data: return this output as binary tensor data"),
          })
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
  if (typeof value === "number" && !Number.isSafeInteger(value) && context?.source && /^-?[0-9]+$/.test(context.source))
    return BigInt(context.source);
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
      return prepareV2Body(
        sig,
        JSON.parse(source.text, exactIntegers as (k: string, v: unknown) => unknown),
        source.binary,
        true,
      );
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
  if (variable > 1)
    fail(
      where,
      `input "${input.name}" [${input.shape}] has more than one variable dimension; send a JSON header with its shape`,
    );
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
    return fail(
      `${where}.parameters.binary_data_size`,
      `expected a non-negative integer byte count, got ${typeof value === "bigint" ? String(value) : (JSON.stringify(value) ?? String(value))}`,
    );
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
  if (!parsed.success)
    throw new RequestValidationError(
      zodIssues("", parsed.error, "member").map((i) => ({ ...i, field: i.field.replace(/^\./, "") || "body" })),
    );
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
    if (!isSupported(spec.datatype))
      fail(`${where}.datatype`, `datatype ${spec.datatype} is not supported by this server`);
    if (inp.shape.length !== spec.shape.length)
      fail(`${where}.shape`, `expected rank ${spec.shape.length} [${spec.shape}], got [${inp.shape}]`);
    spec.shape.forEach((d, i) => {
      if (d !== -1 && inp.shape[i] !== d) fail(`${where}.shape[${i}]`, `expected ${d}, got ${inp.shape[i]}`);
    });
    const expected = sizeOf(inp.shape);
    const params = inp.parameters ?? {};
    if (params.shared_memory_region !== undefined)
      fail(
        `${where}.parameters.shared_memory_region`,
        "shared memory is not supported by this server; send data or binary data",
      );
    let tensor: HostTensor;
    if (params.binary_data_size !== undefined) {
      const size = binarySize(where, params.binary_data_size);
      if (inp.data !== undefined) fail(where, "has both data and parameters.binary_data_size; send one");
      if (binary === undefined) {
        fail(
          `${where}.parameters.binary_data_size`,
          "binary tensor data needs the Inference-Header-Content-Length header (the JSON's length in bytes)",
        );
      }
      const remaining = binary!.byteLength - offset;
      if (size > remaining) {
        fail(
          `${where}.parameters.binary_data_size`,
          `${size} bytes, but only ${remaining} remain after the JSON header${offset ? " and the binary inputs before it" : ""}`,
        );
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
      if (inp.data === undefined)
        fail(`inputs[${idx}].data`, "required (or parameters.binary_data_size with binary tensor data)");
      const values: unknown[] = [];
      flattenInto(inp.data, values);
      if (values.length !== expected)
        fail(`${where}.data`, `has ${values.length} elements but shape [${inp.shape}] needs ${expected}`);
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
    if (lastBinary)
      fail(
        `${lastBinary}.parameters.binary_data_size`,
        `the binary inputs' sizes add up to ${offset} bytes, but ${binary.byteLength} follow the JSON header (${extra} too many)`,
      );
    fail(
      "Inference-Header-Content-Length",
      `${extra} bytes follow the JSON header, but no input declares parameters.binary_data_size`,
    );
  }
  const missing = sig.inputs.filter((t) => !seen.has(t.name)).map((t) => t.name);
  if (missing.length) fail("inputs", `missing input ${missing.map((m) => `"${m}"`).join(", ")}`);
  const limit = maxInstances(sig);
  if (sig.batchable && rows! > limit) {
    throw new RequestValidationError(
      [{ field: "inputs[0].shape[0]", message: `batch of ${rows} exceeds this model's limit of ${limit}` }],
      413,
    );
  }
  if (rows === 0) fail("inputs[0].shape[0]", "batch must not be empty");
  const allBinary = booleanParameter("parameters.binary_data_output", req.parameters?.binary_data_output) ?? false;
  let outputs: string[] | undefined;
  const binaryOutputs = new Set<string>();
  if (req.outputs) {
    const served = new Set(sig.outputs.map((o) => o.name));
    req.outputs.forEach((o, i) => {
      if (!served.has(o.name))
        fail(`outputs[${i}] ("${o.name}")`, `unknown output; the model serves ${[...served].join(", ")}`);
      if (
        booleanParameter(`outputs[${i}] ("${o.name}").parameters.binary_data`, o.parameters?.binary_data) ??
        allBinary
      )
        binaryOutputs.add(o.name);
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
