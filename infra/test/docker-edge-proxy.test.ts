// The edge proxy's generated Caddyfile, run by a real Caddy (Debian's caddy package) in front of
// real HTTP upstreams: TLS from the internal CA, health-checked balancing, routes and redirects.

import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import { request as httpsRequest } from "node:https";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { renderCaddyfile } from "../components/edge-proxy.ts";

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

let dir: string;
let caddy: ChildProcess;
let caddyLog = "";
const servers: Server[] = [];
const ports = { http: 0, https: 0, metrics: 0 };
let ca: Buffer;

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** An upstream answering `name` on every path, with the given /health/ready status. */
async function upstream(name: string, readyStatus: number): Promise<string> {
  const server = createServer((req, res) => {
    if (req.url === "/health/ready") res.writeHead(readyStatus).end();
    else
      res
        .writeHead(200, { "content-type": "text/plain", server: "node" })
        .end(`${name} ${req.url} ${req.headers["x-request-id"] ? "id" : "no-id"}`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  servers.push(server);
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function get(url: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const secure = url.startsWith("https:");
    const req = (secure ? httpsRequest : httpRequest)(url, secure ? { ca, servername: "localhost" } : {}, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.setTimeout(5000, () => req.destroy(new Error(`timeout: ${url}`)));
    req.end();
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, seconds = 30): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`${what} within ${seconds}s; caddy said:\n${caddyLog.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "inferstack-edge-"));
  ports.http = await freePort();
  ports.https = await freePort();
  ports.metrics = await freePort();
  const healthy = await upstream("A", 200);
  const unready = await upstream("B", 503);
  const grafana = await upstream("G", 200);
  const caddyfile = renderCaddyfile({
    domain: "localhost",
    httpPort: ports.http,
    httpsPort: ports.https,
    tls: "internal",
    upstreams: [healthy, unready],
    grafanaUpstream: grafana,
    metricsPort: ports.metrics,
  });
  writeFileSync(join(dir, "Caddyfile"), caddyfile);
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, "data"), XDG_CONFIG_HOME: join(dir, "config") };
  execFileSync("caddy", ["validate", "--config", join(dir, "Caddyfile"), "--adapter", "caddyfile"], {
    env,
    stdio: "pipe",
  });
  caddy = spawn("caddy", ["run", "--config", join(dir, "Caddyfile"), "--adapter", "caddyfile"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  caddy.stdout!.on("data", (d) => (caddyLog += d));
  caddy.stderr!.on("data", (d) => (caddyLog += d));
  const root = join(dir, "data", "caddy", "pki", "authorities", "local", "root.crt");
  await until("caddy's internal CA", async () => (existsSync(root) ? true : undefined));
  ca = readFileSync(root);
  await until("https to answer", async () =>
    (await get(`https://localhost:${ports.https}/`)).status > 0 ? true : undefined,
  );
});

after(async () => {
  if (caddy && caddy.exitCode === null) {
    caddy.kill("SIGTERM");
    await new Promise((r) => caddy.once("exit", r));
  }
  for (const s of servers) await new Promise((r) => s.close(r));
  rmSync(dir, { recursive: true, force: true });
});

test("TLS is served with a certificate from the proxy's internal CA, verified by clients that trust it", async () => {
  const reply = await get(`https://localhost:${ports.https}/`);
  assert.equal(reply.status, 200);
  await assert.rejects(
    new Promise((resolve, reject) =>
      httpsRequest(`https://localhost:${ports.https}/`, (r) => resolve(r.statusCode))
        .on("error", reject)
        .end(),
    ),
    /self[- ]signed|unable to (get|verify)/i,
    "a client without the CA must refuse the certificate",
  );
});

test("traffic goes only to replicas whose /health/ready passes", async () => {
  // Wait until the health checker has taken B out, then every request must land on A.
  await until("B to be marked unhealthy", async () => {
    const bodies = await Promise.all(
      Array.from({ length: 10 }, () => get(`https://localhost:${ports.https}/v1/models`)),
    );
    return bodies.every((b) => b.body.startsWith("A ")) ? true : undefined;
  });
  for (let i = 0; i < 20; i++) {
    const reply = await get(`https://localhost:${ports.https}/v2/health/ready`);
    assert.equal(reply.status, 200);
    assert.match(reply.body, /^A \/v2\/health\/ready id$/, "proxied to A with a request id");
  }
});

test("the app's /metrics is not exposed; Grafana is routed under /grafana/", async () => {
  assert.equal((await get(`https://localhost:${ports.https}/metrics`)).status, 404);
  assert.equal((await get(`https://localhost:${ports.https}/metrics/anything`)).status, 404);
  const grafana = await get(`https://localhost:${ports.https}/grafana/api/health`);
  assert.equal(grafana.body, "G /grafana/api/health no-id");
  const bare = await get(`https://localhost:${ports.https}/grafana`);
  assert.equal(bare.status, 308);
  assert.equal(bare.headers.location, "/grafana/");
});

test("plain HTTP redirects to HTTPS on the configured port", async () => {
  const reply = await get(`http://localhost:${ports.http}/v1/models`);
  assert.equal(reply.status, 308);
  assert.equal(reply.headers.location, `https://localhost:${ports.https}/v1/models`);
});

test("security headers are set and the upstream's Server header is dropped", async () => {
  const reply = await get(`https://localhost:${ports.https}/`);
  assert.equal(reply.headers["x-content-type-options"], "nosniff");
  assert.equal(reply.headers["referrer-policy"], "no-referrer");
  assert.equal(reply.headers.server, undefined);
});

test("the private endpoint serves the healthcheck and Prometheus metrics", async () => {
  assert.equal((await get(`http://127.0.0.1:${ports.metrics}/healthz`)).status, 200);
  const metrics = await get(`http://127.0.0.1:${ports.metrics}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /caddy_http_requests_total|caddy_http_request_duration_seconds/);
  assert.match(metrics.body, /caddy_reverse_proxy_upstreams_healthy/);
});

test("the free tier's Let's Encrypt Caddyfile is valid too", () => {
  const file = join(dir, "Caddyfile.free");
  writeFileSync(
    file,
    renderCaddyfile({
      domain: "dev.example.com",
      httpPort: 80,
      httpsPort: 443,
      tls: "letsencrypt",
      acmeEmail: "ops@example.com",
      upstreams: ["app-1:8080"],
      grafanaUpstream: "grafana:3000",
    }),
  );
  const env = {
    ...process.env,
    HOME: dir,
    XDG_DATA_HOME: join(dir, "data-free"),
    XDG_CONFIG_HOME: join(dir, "config-free"),
  };
  const out = execFileSync("caddy", ["adapt", "--config", file, "--adapter", "caddyfile", "--validate"], {
    env,
    stdio: "pipe",
  }).toString();
  const json = JSON.parse(out) as {
    apps: { tls?: { automation?: { policies?: { issuers?: { module: string; email?: string }[] }[] } } };
  };
  const issuers = json.apps.tls?.automation?.policies?.flatMap((p) => p.issuers ?? []) ?? [];
  assert.ok(
    issuers.some((i) => i.module === "acme" && i.email === "ops@example.com"),
    JSON.stringify(issuers),
  );
});
