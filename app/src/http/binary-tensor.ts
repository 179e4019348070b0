/**
 * The response half of the binary tensor data extension (Triton's and KServe's): outputs asked for
 * in binary leave the JSON with `parameters.binary_data_size` in place of `data`, and their bytes
 * follow the JSON in output order; Inference-Header-Content-Length gives the JSON's length.
 * (The request half: body.ts splits the body, v2-decode.ts slices and decodes each input.)
 */

import type { Datatype } from "../inference/manifest.ts";
import { toBytes } from "../inference/tensor.ts";

/** The header Triton's and KServe's clients read to find where the JSON ends. */
export const INFERENCE_HEADER_CONTENT_LENGTH = "Inference-Header-Content-Length";

interface JsonOutput {
  name: string;
  datatype: Datatype;
  shape: number[];
  data?: unknown[];
  parameters?: Record<string, unknown>;
}

export interface BinaryResponse {
  body: Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
  /** The response in its JSON form, for the prediction log. */
  logged: string;
}

/** The binary form of a V2 response whose `outputs` hold JSON data; `binary` names the outputs to send as bytes. */
export function encodeBinaryResponse(body: Record<string, unknown>, binary: ReadonlySet<string>): BinaryResponse {
  const chunks: Uint8Array[] = [];
  const outputs = (body.outputs as JsonOutput[]).map((o) => {
    if (!binary.has(o.name)) return o;
    const bytes = toBytes(o.datatype, o.data ?? []);
    chunks.push(bytes);
    return {
      name: o.name,
      datatype: o.datatype,
      shape: o.shape,
      parameters: { ...o.parameters, binary_data_size: bytes.byteLength },
    };
  });
  const header = Buffer.from(JSON.stringify({ ...body, outputs }), "utf8");
  return {
    body: Buffer.concat([header, ...chunks]),
    headers: {
      "Content-Type": "application/octet-stream",
      [INFERENCE_HEADER_CONTENT_LENGTH]: String(header.byteLength),
    },
    logged: JSON.stringify(body),
  };
}
