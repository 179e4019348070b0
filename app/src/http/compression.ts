/**
 * gzip for responses over a threshold. Hono's compress() cannot tell the size of a JSON response
 * (no content-length), so it would gzip even tiny prediction bodies; this one measures first and
 * only for clients that accept gzip.
 */

import { promisify } from "node:util";
import { gzip } from "node:zlib";
import type { MiddlewareHandler } from "hono";

const gzipAsync = promisify(gzip);
const COMPRESSIBLE = /json|text\/|javascript|xml|svg/;

export function compression(threshold: number): MiddlewareHandler {
  return async (c, next) => {
    // Decided before the handler runs: a client that takes no gzip costs no wrapping of its response.
    if (!/\bgzip\b/i.test(c.req.header("accept-encoding") ?? "") || c.req.method === "HEAD") return next();
    await next();
    const res = c.res;
    if (!res.body || res.headers.has("content-encoding") || !COMPRESSIBLE.test(res.headers.get("content-type") ?? ""))
      return;
    const body = Buffer.from(await res.arrayBuffer());
    const headers = new Headers(res.headers);
    headers.append("vary", "accept-encoding");
    if (body.length < threshold) {
      c.res = new Response(body, { status: res.status, headers });
      return;
    }
    headers.set("content-encoding", "gzip");
    headers.delete("content-length");
    c.res = new Response(await gzipAsync(body, { level: 6 }), { status: res.status, headers });
  };
}
