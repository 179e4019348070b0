/**
 * A model version's serving signature: what the ONNX file declares, overlaid and checked against
 * the manifest. Everything downstream (validation, batching, metadata, OpenAPI) reads only this.
 */
import type { Batching, Datatype, Feature, Manifest, TensorSpec, VersionPolicy } from "./manifest.ts";
import { isSupported, v2FromOrt } from "./tensor.ts";

export interface TensorSignature {
  name: string;
  datatype: Datatype;
  /** -1 marks a variable (symbolic) dimension. */
  shape: number[];
  features?: Feature[];
  description?: string;
}

export interface ModelSignature {
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  /**
   * True when every input and output has a variable first (batch) dimension. Otherwise (e.g. a
   * recurrent state [layers, batch, hidden] beside tokens [seq, batch]) the model is served
   * unbatched, each input with its shape as declared.
   */
  batchable: boolean;
  batching: Batching;
  versionPolicy?: VersionPolicy;
  labels?: string[];
  classification?: { probabilitiesOutput: string; labelOutput?: string };
  cacheTtlSeconds?: number;
  description?: string;
}

/** The subset of onnxruntime-node's session metadata used here. */
export interface OrtValueMetadata {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: ReadonlyArray<number | string>;
}

export class SignatureError extends Error {}

function fromOrt(meta: OrtValueMetadata, kind: string): TensorSignature | null {
  if (!meta.isTensor) return null; // e.g. ZipMap's sequence<map>: not servable as a tensor
  const datatype = v2FromOrt(meta.type ?? "");
  if (!datatype)
    throw new SignatureError(`${kind} "${meta.name}" has ONNX type ${meta.type}, which has no V2 datatype`);
  const shape = (meta.shape ?? []).map((d) => (typeof d === "number" && d >= 0 ? d : -1));
  return { name: meta.name, datatype, shape };
}

function overlay(kind: string, onnx: TensorSignature, spec: TensorSpec): TensorSignature {
  if (spec.datatype !== onnx.datatype) {
    throw new SignatureError(
      `model.json ${kind} "${spec.name}": datatype ${spec.datatype} but the ONNX file declares ${onnx.datatype}`,
    );
  }
  if (onnx.shape.length !== spec.shape.length) {
    throw new SignatureError(
      `model.json ${kind} "${spec.name}": shape [${spec.shape}] has rank ${spec.shape.length} but the ONNX file declares [${onnx.shape}]`,
    );
  }
  const shape = onnx.shape.map((d, i) => {
    const m = spec.shape[i]!;
    if (d !== -1 && m !== -1 && d !== m) {
      throw new SignatureError(
        `model.json ${kind} "${spec.name}": dimension ${i} is ${m} but the ONNX file declares ${d}`,
      );
    }
    return d === -1 ? m : d;
  });
  const sig: TensorSignature = { name: onnx.name, datatype: onnx.datatype, shape };
  if (spec.features) {
    const cols = shape[1];
    if (cols !== undefined && cols !== -1 && cols !== spec.features.length) {
      throw new SignatureError(
        `model.json ${kind} "${spec.name}": ${spec.features.length} features for ${cols} columns`,
      );
    }
    sig.features = spec.features;
  }
  if (spec.description) sig.description = spec.description;
  return sig;
}

function merge(
  kind: string,
  onnx: TensorSignature[],
  specs: TensorSpec[] | undefined,
  requireAll: boolean,
): TensorSignature[] {
  if (!specs) return onnx;
  const byName = new Map(onnx.map((t) => [t.name, t]));
  for (const s of specs) {
    if (!byName.has(s.name)) {
      throw new SignatureError(
        `model.json ${kind} "${s.name}" is not in the ONNX file (it has: ${[...byName.keys()].join(", ")})`,
      );
    }
  }
  if (requireAll) {
    const declared = new Set(specs.map((s) => s.name));
    const missing = onnx.filter((t) => !declared.has(t.name)).map((t) => t.name);
    if (missing.length)
      throw new SignatureError(`model.json ${kind}s omit ${missing.join(", ")}, which the ONNX file requires`);
  }
  // Outputs may be narrowed by the manifest: only the declared ones are served.
  return specs.map((s) => overlay(kind, byName.get(s.name)!, s));
}

export const DEFAULT_BATCHING: Batching = { maxBatchSize: 64, maxQueueDelayMicros: 0, eager: true };

export function buildSignature(
  inputMeta: readonly OrtValueMetadata[],
  outputMeta: readonly OrtValueMetadata[],
  manifest: Manifest | undefined,
): ModelSignature {
  const onnxInputs = inputMeta.map((m) => fromOrt(m, "input"));
  const nonTensorInput = inputMeta.find((_, i) => onnxInputs[i] === null);
  if (nonTensorInput)
    throw new SignatureError(`input "${nonTensorInput.name}" is not a tensor; only tensor inputs can be served`);
  const onnxOutputs = outputMeta.map((m) => fromOrt(m, "output")).filter((t): t is TensorSignature => t !== null);
  if (onnxOutputs.length === 0)
    throw new SignatureError("the model has no tensor output (export classifiers with zipmap=False)");

  const inputs = merge("input", onnxInputs as TensorSignature[], manifest?.inputs, true);
  const outputs = merge("output", onnxOutputs, manifest?.outputs, false);
  const all = [...inputs, ...outputs];
  const batchable = all.every((t) => t.shape.length >= 1 && t.shape[0] === -1);

  let batching: Batching;
  if (manifest?.batching) {
    if (manifest.batching.maxBatchSize > 0 && !batchable) {
      const fixed = all.filter((t) => t.shape.length === 0 || t.shape[0] !== -1).map((t) => `"${t.name}" [${t.shape}]`);
      throw new SignatureError(
        `model.json batching: every input and output needs a variable first dimension to batch; ${fixed.join(", ")} ${fixed.length > 1 ? "have" : "has"} none`,
      );
    }
    batching = manifest.batching;
  } else {
    batching = batchable ? DEFAULT_BATCHING : { maxBatchSize: 0, maxQueueDelayMicros: 0, eager: true };
  }

  const sig: ModelSignature = { inputs, outputs, batchable, batching };
  if (manifest?.classification) {
    const names = new Set(outputs.map((o) => o.name));
    const { probabilitiesOutput, labelOutput } = manifest.classification;
    for (const out of [probabilitiesOutput, labelOutput]) {
      if (out !== undefined && !names.has(out))
        throw new SignatureError(`model.json classification names output "${out}", which is not served`);
    }
    const probs = outputs.find((o) => o.name === probabilitiesOutput)!;
    const classes = probs.shape[probs.shape.length - 1];
    if (manifest.labels && classes !== undefined && classes !== -1 && classes !== manifest.labels.length) {
      throw new SignatureError(
        `model.json labels: ${manifest.labels.length} labels for ${classes} classes in "${probabilitiesOutput}"`,
      );
    }
    sig.classification = manifest.classification;
  }
  if (manifest?.labels) sig.labels = manifest.labels;
  if (manifest?.versionPolicy) sig.versionPolicy = manifest.versionPolicy;
  if (manifest?.cache) sig.cacheTtlSeconds = manifest.cache.ttlSeconds;
  if (manifest?.description) sig.description = manifest.description;
  return sig;
}

/** Inputs whose datatype the server cannot feed (e.g. BYTES): the model loads, infer is refused. */
export function unsupportedInputs(sig: ModelSignature): TensorSignature[] {
  return sig.inputs.filter((t) => !isSupported(t.datatype));
}

/** Absolute cap on rows per request for models whose own limit is unbounded. */
export const MAX_INSTANCES_UNBATCHED = 4096;

/** Rows one request may carry: the batch limit, else a fixed first dimension, else the cap. */
export function maxInstances(sig: ModelSignature): number {
  if (sig.batching.maxBatchSize > 0) return sig.batching.maxBatchSize;
  const first = sig.inputs[0]?.shape[0];
  return first !== undefined && first > 0 ? first : MAX_INSTANCES_UNBATCHED;
}
