/**
 * Reads a request body under a size limit (applied to the decoded bytes when the body is gzip or
 * deflate encoded) and a JSON nesting limit, with errors that say what was wrong: wrong content
 * type or coding (415), too large (413), malformed or too deep (400). For V2 infer it also splits
 * the binary tensor data extension's body into its JSON header and tensor bytes.
 */
import type { IncomingMessage } from "node:http";
import { promisify } from "node:util";
import { gunzip, inflate, inflateRaw } from "node:zlib";
import type { Context } from "hono";
import { ApiError } from "./errors.ts";
import { nodeRequest } from "./node-adapter.ts";

export interface BodyLimits {
  maxBytes: number;
  maxDepth: number;
}

/** Nesting depth of a JSON text, ignoring brackets inside strings; stops early past `limit`. */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92 /* \ */) i++;
      else if (ch === 34 /* " */) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 91 || ch === 123) {
      if (++depth > limit) return true;
    } else if (ch === 93 || ch === 125) depth--;
  }
  return false;
}

export async function readJson(c: Context, limits: BodyLimits): Promise<unknown> {
  return (await readJsonBody(c, limits)).value;
}

export interface RequestBody {
  /** The parsed JSON (the inference header of a binary request); undefined for a raw binary request. */
  value: unknown;
  /** The JSON text as received, after any Content-Encoding was undone. */
  text: string;
  /** The bytes after the JSON header (binary tensor data extension); absent for a JSON-only body. */
  binary?: Uint8Array;
  /** The nesting limit, when its check was deferred to the decoder (see `checkDepth`). */
  depthLimit?: number;
}

/**
 * Refuses a body nested deeper than the limit, when readJsonBody left that check to the caller.
 * JSON.parse itself handles any depth (V8's parser keeps its own stack); the limit protects the
 * code that walks the value recursively, so a decoder that bounds the depth by construction
 * (V1's tabular plan) skips the scan, which otherwise costs about as much as the parse.
 */
export function checkDepth(request: RequestBody): void {
  if (request.depthLimit !== undefined && jsonDepthExceeds(request.text, request.depthLimit)) {
    throw new ApiError(400, `body: JSON nested deeper than ${request.depthLimit} levels`);
  }
}

export interface BodyOptions {
  /**
   * Open Inference Protocol infer: a missing Content-Type means JSON (Triton's client sends none),
   * and Inference-Header-Content-Length splits the body into a JSON header and binary tensor data.
   */
  binaryTensors?: boolean;
  /** Leave the nesting check to the decoder, which must call `checkDepth` before walking the value. */
  deferDepth?: boolean;
}

export const INFERENCE_HEADER_LENGTH = "inference-header-content-length";
const ACCEPTED_V2_TYPES = "application/json, or application/octet-stream with Inference-Header-Content-Length";
const CODINGS = "gzip, deflate or identity";

/** The parsed body and its text exactly as received (after Content-Encoding). */
export async function readJsonBody(c: Context, limits: BodyLimits, options: BodyOptions = {}): Promise<RequestBody> {
  const type = c.req.header("content-type");
  const mime = type === "application/json" ? type : (type ?? "").split(";")[0]!.trim().toLowerCase();
  if (options.binaryTensors) {
    if (mime && mime !== "application/json" && !mime.endsWith("+json") && mime !== "application/octet-stream") {
      throw new ApiError(415, `content-type: expected ${ACCEPTED_V2_TYPES}, got ${mime}`);
    }
  } else {
    if (!mime) throw new ApiError(415, "content-type: missing; send application/json");
    if (mime !== "application/json" && !mime.endsWith("+json")) {
      throw new ApiError(415, `content-type: expected application/json, got ${mime}`);
    }
  }
  const coding = (c.req.header("content-encoding") ?? "identity").trim().toLowerCase();
  if (coding !== "identity" && coding !== "gzip" && coding !== "x-gzip" && coding !== "deflate") {
    throw new ApiError(415, `content-encoding: expected ${CODINGS}, got ${coding}`, undefined, {
      "accept-encoding": "gzip, deflate",
    });
  }
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > limits.maxBytes) {
    throw new ApiError(413, `body: ${declared.slice(0, 20)} bytes exceed the limit of ${limits.maxBytes}`, undefined, {
      connection: "close",
    });
  }
  const incoming = nodeRequest(c);
  let bytes = incoming ? await readIncoming(incoming, limits.maxBytes) : await readLimited(c.req.raw, limits.maxBytes);
  if (coding !== "identity" && bytes.length > 0) bytes = await decompress(coding, bytes, limits.maxBytes);

  let text: string;
  let binary: Uint8Array | undefined;
  const headerLength = options.binaryTensors ? c.req.header(INFERENCE_HEADER_LENGTH) : undefined;
  if (headerLength !== undefined) {
    const length = parseHeaderLength(headerLength, bytes.length);
    if (length === 0) return { value: undefined, text: "", binary: bytes }; // a raw binary request: no JSON at all
    text = bytes.toString("utf8", 0, length);
    binary = bytes.subarray(length);
  } else {
    text = bytes.toString("utf8");
  }
  if (text.length === 0 || text.trim() === "") throw new ApiError(400, "body: empty; expected a JSON object");
  const deferred = options.deferDepth === true;
  if (!deferred) checkDepth({ value: undefined, text, depthLimit: limits.maxDepth });
  try {
    const value: unknown = JSON.parse(text);
    const request: RequestBody = { value, text };
    if (binary) request.binary = binary;
    if (deferred) request.depthLimit = limits.maxDepth;
    return request;
  } catch (err) {
    // Too deep is the first thing said about a body, malformed or not.
    if (deferred) checkDepth({ value: undefined, text, depthLimit: limits.maxDepth });
    let hint = /\b(NaN|-?Infinity)\b/.test(text) ? " (NaN and Infinity are not JSON numbers)" : "";
    if (options.binaryTensors) {
      if (headerLength === undefined) missingHeaderLength(text, (err as Error).message);
      else
        hint += ` (the first ${headerLength} bytes, per Inference-Header-Content-Length, must be the whole JSON object)`;
    }
    throw new ApiError(400, `body: malformed JSON: ${(err as Error).message}${hint}`);
  }
}

/**
 * Binary tensor data sent without Inference-Header-Content-Length: JSON.parse stops where the JSON
 * ends. When what precedes is a request with a binary input, the error names that tensor and the
 * header value that was missing.
 */
function missingHeaderLength(text: string, parseError: string): void {
  const at = /after JSON at position (\d+)/.exec(parseError)?.[1];
  if (at === undefined) return;
  let head: unknown;
  try {
    head = JSON.parse(text.slice(0, Number(at)));
  } catch {
    return;
  }
  const inputs = (head as { inputs?: unknown } | null)?.inputs;
  if (!Array.isArray(inputs)) return;
  const i = inputs.findIndex(
    (t) => (t as { parameters?: { binary_data_size?: unknown } } | null)?.parameters?.binary_data_size !== undefined,
  );
  if (i < 0) return;
  const name = String((inputs[i] as { name?: unknown }).name);
  throw new ApiError(
    400,
    `inputs[${i}] ("${name}").parameters.binary_data_size: binary tensor data needs the Inference-Header-Content-Length header (here ${Buffer.byteLength(text.slice(0, Number(at)))}, the JSON's length in bytes)`,
  );
}

/** Inference-Header-Content-Length: decimal digits, at most the body's length (Triton's rule). */
function parseHeaderLength(raw: string, bodyLength: number): number {
  const value = raw.trim();
  if (!/^[0-9]{1,15}$/.test(value)) {
    throw new ApiError(400, `Inference-Header-Content-Length: "${value.slice(0, 40)}" is not a non-negative integer`);
  }
  const length = Number(value);
  if (length > bodyLength) {
    throw new ApiError(400, `Inference-Header-Content-Length: ${length} exceeds the body's ${bodyLength} bytes`);
  }
  return length;
}

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);
const inflateRawAsync = promisify(inflateRaw);

/**
 * Undoes Content-Encoding with the body limit on the decoded bytes: zlib stops at maxOutputLength,
 * so a small bomb costs at most the limit. "deflate" is the zlib format per RFC 9110; raw deflate,
 * which some clients send instead, is accepted too.
 */
async function decompress(coding: string, bytes: Buffer, maxBytes: number): Promise<Buffer> {
  const options = { maxOutputLength: maxBytes };
  try {
    if (coding !== "deflate") return await gunzipAsync(bytes, options);
    // 0x78 is the zlib header's first byte (deflate, 32 KiB window or less).
    return await ((bytes[0]! & 0x0f) === 8 && ((bytes[0]! << 8) | bytes[1]!) % 31 === 0
      ? inflateAsync(bytes, options)
      : inflateRawAsync(bytes, options));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw new ApiError(413, `body: decompresses to more than ${maxBytes} bytes (the limit)`);
    }
    throw new ApiError(400, `body: ${coding} content could not be decompressed: ${(err as Error).message}`);
  }
}

async function readLimited(req: Request, maxBytes: number): Promise<Buffer> {
  if (!req.body) return Buffer.alloc(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new ApiError(413, `body: more than ${maxBytes} bytes (the limit)`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

/** Reads the Node request stream directly: avoids the web-stream layer on the hot path. */
function readIncoming(incoming: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > maxBytes) {
        cleanup();
        // Read no more: the 413 closes the connection (the server drops the socket after it).
        incoming.pause();
        reject(new ApiError(413, `body: more than ${maxBytes} bytes (the limit)`, undefined, { connection: "close" }));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new ApiError(400, `body: could not be read: ${err.message}`));
    };
    // A client that goes away mid-body emits neither 'end' nor always 'error': without this the
    // handler (and the model version it holds) would wait forever.
    const onClose = () => {
      cleanup();
      reject(new ApiError(400, "body: the client closed the connection before sending it all"));
    };
    const cleanup = () => {
      incoming.off("data", onData);
      incoming.off("end", onEnd);
      incoming.off("error", onError);
      incoming.off("close", onClose);
      incoming.socket?.off("close", onClose);
    };
    if (incoming.readableEnded) return resolve(Buffer.alloc(0));
    incoming.on("data", onData);
    incoming.on("end", onEnd);
    incoming.on("error", onError);
    incoming.on("close", onClose);
    // Once the response went out (e.g. a timeout), Node dumps the request and its events stop;
    // the socket's close still tells us.
    incoming.socket?.once("close", onClose);
  });
}
