/** V1 predictions from output tensors: classifier label + probabilities, regressor numbers. */
import type { TensorMap } from "../inference/batcher.ts";
import type { ModelSignature } from "../inference/signature.ts";
import { type HostTensor, sizeOf, sliceData, toJsonArray } from "../inference/tensor.ts";

function rowValue(t: HostTensor, row: number): unknown {
  const inner = t.shape.slice(1);
  const per = sizeOf(inner);
  const flat = toJsonArray(t.datatype, sliceData(t.data, row * per, (row + 1) * per));
  if (inner.length === 0 || (inner.length === 1 && inner[0] === 1)) return flat[0];
  return nest(flat, inner);
}

/** One value per row (a [rows] or [rows, 1] output): the JSON values of the tensor itself, no slicing. */
function perRowScalar(t: HostTensor, rows: number): unknown[] | null {
  const s = t.shape;
  if (!(s.length === 1 || (s.length === 2 && s[1] === 1)) || t.data.length !== rows) return null;
  return toJsonArray(t.datatype, t.data);
}

function nest(flat: unknown[], dims: number[]): unknown[] {
  if (dims.length <= 1) return flat;
  const [d, ...rest] = dims;
  const per = sizeOf(rest);
  return Array.from({ length: d! }, (_, i) => nest(flat.slice(i * per, (i + 1) * per), rest));
}

export function renderV1(sig: ModelSignature, outputs: TensorMap, rows: number): unknown[] {
  const predictions = new Array<unknown>(rows);
  if (sig.classification && sig.labels) {
    const labels = sig.labels;
    const probs = outputs[sig.classification.probabilitiesOutput]!;
    const labelOut = sig.classification.labelOutput ? outputs[sig.classification.labelOutput] : undefined;
    const k = probs.shape[probs.shape.length - 1] ?? labels.length;
    for (let r = 0; r < rows; r++) {
      const p: Record<string, number> = {};
      let best = 0;
      for (let j = 0; j < k; j++) {
        const v = Number(probs.data[r * k + j]);
        p[labels[j] ?? String(j)] = v;
        if (v > Number(probs.data[r * k + best])) best = j;
      }
      const idx = labelOut ? Number(labelOut.data[r]) : best;
      predictions[r] = { label: labels[idx] ?? String(idx), probabilities: p };
    }
    return predictions;
  }
  const names = sig.outputs.map((o) => o.name);
  if (names.length === 1) {
    const scalars = perRowScalar(outputs[names[0]!]!, rows);
    if (scalars) return scalars;
  }
  for (let r = 0; r < rows; r++) {
    if (names.length === 1) predictions[r] = rowValue(outputs[names[0]!]!, r);
    else {
      const obj: Record<string, unknown> = {};
      for (const n of names) obj[n] = rowValue(outputs[n]!, r);
      predictions[r] = obj;
    }
  }
  return predictions;
}
