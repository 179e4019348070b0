/**
 * The client's IP address for per-IP rate limits and logs. Behind trusted proxies it is the address
 * the outermost trusted proxy saw: X-Forwarded-For is read from the right (proxy-addr, as Express
 * does), skipping only the hops the deployment has, so a client cannot choose it by writing the
 * header itself.
 */
import type { Context } from "hono";
import proxyAddr from "proxy-addr";
import type { AppConfig } from "../config.ts";
import { nodeRequest } from "./node-adapter.ts";

export type ClientIp = (c: Context) => string;

export function clientIpResolver(
  config: Pick<AppConfig, "TRUST_PROXY" | "TRUST_PROXY_HOPS" | "TRUST_PROXY_CIDRS">,
): ClientIp {
  const hops = config.TRUST_PROXY_HOPS;
  // proxy-addr numbers the socket's peer 0 and X-Forwarded-For entries 1.. from the right.
  const trust = !config.TRUST_PROXY
    ? undefined
    : config.TRUST_PROXY_CIDRS.length > 0
      ? proxyAddr.compile(config.TRUST_PROXY_CIDRS)
      : (_addr: string, i: number) => i < hops;
  return (c) => {
    const incoming = nodeRequest(c);
    if (!incoming) return "unknown"; // app.request() in tests: no socket
    if (!trust) return incoming.socket.remoteAddress ?? "unknown";
    return proxyAddr(incoming, trust) ?? "unknown";
  };
}

const resolvers = new WeakMap<object, ClientIp>();

/** The client IP under this configuration; the resolver is built once per configuration. */
export function clientIp(
  c: Context,
  config: Pick<AppConfig, "TRUST_PROXY" | "TRUST_PROXY_HOPS" | "TRUST_PROXY_CIDRS">,
): string {
  let resolve = resolvers.get(config);
  if (!resolve) {
    resolve = clientIpResolver(config);
    resolvers.set(config, resolve);
  }
  return resolve(c);
}
