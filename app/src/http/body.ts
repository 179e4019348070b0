/**
 * Reads a JSON request body under a size limit and a nesting limit, with errors that say what was
 * wrong: missing or wrong content type (415), too large (413), malformed or too deep (400).
 */
import type { IncomingMessage } from "node:http";
import type { Context } from "hono";
import { ApiError } from "./errors.ts";

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

/** The parsed body and its text exactly as received. */
export async function readJsonBody(c: Context, limits: BodyLimits): Promise<{ value: unknown; text: string }> {
  const type = c.req.header("content-type");
  if (!type) throw new ApiError(415, "content-type: missing; send application/json");
  const mime = type.split(";")[0]!.trim().toLowerCase();
  if (mime !== "application/json" && !mime.endsWith("+json")) {
    throw new ApiError(415, `content-type: expected application/json, got ${mime}`);
  }
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > limits.maxBytes) {
    throw new ApiError(413, `body: ${declared} bytes exceed the limit of ${limits.maxBytes}`);
  }
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  const text = incoming ? await readIncoming(incoming, limits.maxBytes) : await readLimited(c.req.raw, limits.maxBytes);
  if (text.length === 0 || text.trim() === "") throw new ApiError(400, "body: empty; expected a JSON object");
  if (jsonDepthExceeds(text, limits.maxDepth)) {
    throw new ApiError(400, `body: JSON nested deeper than ${limits.maxDepth} levels`);
  }
  try {
    return { value: JSON.parse(text), text };
  } catch (err) {
    const hint = /\b(NaN|-?Infinity)\b/.test(text) ? " (NaN and Infinity are not JSON numbers)" : "";
    throw new ApiError(400, `body: malformed JSON: ${(err as Error).message}${hint}`);
  }
}

async function readLimited(req: Request, maxBytes: number): Promise<string> {
  if (!req.body) return "";
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
  return Buffer.concat(chunks, total).toString("utf8");
}

/** Reads the Node request stream directly: avoids the web-stream layer on the hot path. */
function readIncoming(incoming: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > maxBytes) {
        cleanup();
        incoming.resume(); // discard the rest so the connection can carry the 413
        reject(new ApiError(413, `body: more than ${maxBytes} bytes (the limit)`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks, total).toString("utf8"));
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
    if (incoming.readableEnded) return resolve("");
    incoming.on("data", onData);
    incoming.on("end", onEnd);
    incoming.on("error", onError);
    incoming.on("close", onClose);
    // Once the response went out (e.g. a timeout), Node dumps the request and its events stop;
    // the socket's close still tells us.
    incoming.socket?.once("close", onClose);
  });
}
