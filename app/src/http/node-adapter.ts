/**
 * The one module that reaches past Hono into the Node objects @hono/node-server binds to each
 * request (`c.env.incoming`, `c.env.outgoing`; not a documented API of node-server, so it is
 * confined here). The prediction path uses them because the portable route costs more than the
 * work itself: reading the body through the web stream that node-server builds over the request,
 * and setting response headers through a Headers object that validates and sorts them a second
 * time (about 1.5 µs per header per request). Under `app.request()` (tests, no Node server) both
 * are absent and every caller falls back to Hono's own API.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "hono";

interface NodeBindings {
  incoming?: IncomingMessage;
  outgoing?: ServerResponse;
}

/** Node's request, when the app runs on a Node server. */
export function nodeRequest(c: Context): IncomingMessage | undefined {
  return (c.env as NodeBindings | undefined)?.incoming;
}

/** Node's response, when the app runs on a Node server. */
export function nodeResponse(c: Context): ServerResponse | undefined {
  return (c.env as NodeBindings | undefined)?.outgoing;
}

/**
 * Sets a response header on Node's ServerResponse (node:http merges it into the response Hono
 * writes), else through Hono. Once headers went out (the request timed out and got its 503),
 * there is nothing left to set.
 */
export function setResponseHeader(c: Context, name: string, value: string): void {
  const outgoing = nodeResponse(c);
  if (!outgoing) c.header(name, value);
  else if (!outgoing.headersSent) outgoing.setHeader(name, value);
}
