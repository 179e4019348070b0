/**
 * The API under abuse, over real HTTP with real Redis (and real Caddy as the edge proxy): client IPs
 * a client cannot forge, oversize bodies cut off, drains without resets, bounded error bodies.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pino } from "pino";
import { type RunningServer, startServer } from "../src/server.ts";
import { deleteRedisPrefix, REDIS_URL, redisPrefix, waitFor } from "./data/support.ts";

const MODELS = new URL("../../models/", import.meta.url).pathname;
const IRIS = JSON.stringify({ instances: [[5.1, 3.5, 1.4, 0.2]] });
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "inferstack-abuse-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** One request on a fresh connection from `localAddress` (any 127.0.0.0/8 address is this host). */
function request(
  url: string,
  opts: { method?: string; path: string; headers?: Record<string, string>; body?: string; localAddress?: string },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}${opts.path}`,
      { method: opts.method ?? "GET", headers: opts.headers, localAddress: opts.localAddress, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode!, body, headers: res.headers }));
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** A proxy that appends its peer to X-Forwarded-For and keeps what came before, as an AWS ALB does. */
async function appendingProxy(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers };
    const peer = req.socket.remoteAddress!;
    headers["x-forwarded-for"] = headers["x-forwarded-for"] ? `${headers["x-forwarded-for"]}, ${peer}` : peer;
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent: false },
      (up) => {
        res.writeHead(up.statusCode!, up.headers);
        up.pipe(res);
      },
    );
    out.on("error", () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Real Caddy reverse-proxying to `target`, trusting X-Forwarded-For only from `trusted` (if any). */
async function caddy(target: string, trusted?: string): Promise<{ url: string; close(): Promise<void> }> {
  const port = await new Promise<number>((resolve) => {
    const probe = http.createServer().listen(0, "127.0.0.1", () => {
      const p = (probe.address() as AddressInfo).port;
      probe.close(() => resolve(p));
    });
  });
  const file = join(dir, `Caddyfile-${port}`);
  await writeFile(
    file,
    [
      "{",
      "\tadmin off",
      "\tauto_https off",
      "}",
      `http://127.0.0.1:${port} {`,
      `\treverse_proxy ${new URL(target).host} {`,
      ...(trusted ? [`\t\ttrusted_proxies ${trusted}`] : []),
      "\t}",
      "}",
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn("caddy", ["run", "--adapter", "caddyfile", "--config", file], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr!.on("data", (d) => {
    log += d;
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    `caddy on ${port}\n${log}`,
    () =>
      request(url, { path: "/health/live" }).then(
        (r) => r.status === 200,
        () => false,
      ),
    15_000,
    100,
  );
  return {
    url,
    close: () =>
      new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** A server with a per-IP limit of `limit` anonymous predictions per 10 minutes, its access log kept. */
async function limitedServer(env: Record<string, string>, limit: number, prefix: string) {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: "info" },
    {
      write: (s: string) => {
        lines.push(JSON.parse(s) as Record<string, unknown>);
      },
    },
  );
  const server = await startServer({
    port: 0,
    host: "127.0.0.1",
    modelsDir: MODELS,
    logger,
    env: {
      DATABASE_URL: "",
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      AUTH_MODE: "off",
      PREDICTION_LOG: "off",
      RATE_LIMIT_PLANS: JSON.stringify({ perip: { limit, windowSeconds: 600 } }),
      RATE_LIMIT_ANON_PLAN: "perip",
      RATE_LIMIT_LEASE_MS: "0",
      CACHE_TTL_SECONDS: "0",
      MODEL_WATCH: "false",
      TRUST_PROXY: "true",
      ...env,
    },
  });
  return { server, lines };
}

describe("client IP behind trusted proxies", () => {
  const LIMIT = 5;
  const ATTEMPTS = 40;
  const prefixes: string[] = [];
  after(async () => {
    for (const p of prefixes) await deleteRedisPrefix(p);
  });

  /** An attacker forging a fresh X-Forwarded-For per request, then an honest client from elsewhere. */
  async function forge(entry: string, server: RunningServer, lines: Record<string, unknown>[]) {
    let allowedForged = 0;
    for (let i = 0; i < ATTEMPTS; i++) {
      const r = await request(entry, {
        method: "POST",
        path: "/v1/models/iris-classifier:predict",
        localAddress: "127.0.0.5",
        body: IRIS,
        headers: { "content-type": "application/json", "x-forwarded-for": `203.0.113.${i}, 198.51.100.${i}` },
      });
      assert.ok(r.status === 200 || r.status === 429, `${r.status} ${r.body}`);
      if (r.status === 200) allowedForged++;
    }
    let allowedHonest = 0;
    for (let i = 0; i < LIMIT + 2; i++) {
      const r = await request(entry, {
        method: "POST",
        path: "/v1/models/iris-classifier:predict",
        localAddress: "127.0.0.6",
        body: IRIS,
        headers: { "content-type": "application/json" },
      });
      if (r.status === 200) allowedHonest++;
    }
    const ips = new Set(
      lines.filter((l) => l.msg === "request" && String(l.path).endsWith(":predict")).map((l) => l.ip),
    );
    await server.close();
    console.log(
      `# ${entry}: forged X-Forwarded-For allowed ${allowedForged}/${ATTEMPTS}, honest client allowed ${allowedHonest}/${LIMIT + 2}, logged ips ${[...ips].join(" ")}`,
    );
    return { allowedForged, allowedHonest, ips };
  }

  test("one appending hop (an ALB), TRUST_PROXY_HOPS=1: forged entries are ignored", async () => {
    const prefix = redisPrefix();
    prefixes.push(prefix);
    const { server, lines } = await limitedServer({ TRUST_PROXY_HOPS: "1" }, LIMIT, prefix);
    const alb = await appendingProxy(server.url);
    try {
      const r = await forge(alb.url, server, lines);
      assert.equal(r.allowedForged, LIMIT);
      assert.equal(r.allowedHonest, LIMIT);
      assert.deepEqual([...r.ips].sort(), ["127.0.0.5", "127.0.0.6"]);
    } finally {
      await alb.close();
    }
  });

  test("Caddy as the one hop (the docker tiers), TRUST_PROXY_HOPS=1", async () => {
    const prefix = redisPrefix();
    prefixes.push(prefix);
    const { server, lines } = await limitedServer({ TRUST_PROXY_HOPS: "1" }, LIMIT, prefix);
    const edge = await caddy(server.url);
    try {
      const r = await forge(edge.url, server, lines);
      assert.equal(r.allowedForged, LIMIT);
      assert.equal(r.allowedHonest, LIMIT);
      assert.deepEqual([...r.ips].sort(), ["127.0.0.5", "127.0.0.6"]);
    } finally {
      await edge.close();
    }
  });

  for (const [label, env] of [
    ["TRUST_PROXY_HOPS=2", { TRUST_PROXY_HOPS: "2" }],
    ["TRUST_PROXY_CIDRS=127.0.0.1/32", { TRUST_PROXY_CIDRS: "127.0.0.1/32" }],
  ] as const) {
    test(`two hops (an appending proxy, then Caddy trusting it), ${label}`, async () => {
      const prefix = redisPrefix();
      prefixes.push(prefix);
      const { server, lines } = await limitedServer(env, LIMIT, prefix);
      const inner = await caddy(server.url, "127.0.0.1/32");
      const outer = await appendingProxy(inner.url);
      try {
        const r = await forge(outer.url, server, lines);
        assert.equal(r.allowedForged, LIMIT);
        assert.equal(r.allowedHonest, LIMIT);
        assert.deepEqual([...r.ips].sort(), ["127.0.0.5", "127.0.0.6"]);
      } finally {
        await outer.close();
        await inner.close();
      }
    });
  }

  test("a bad TRUST_PROXY_CIDRS value fails the start naming the variable", async () => {
    const { loadConfig } = await import("../src/config.ts");
    assert.throws(() => loadConfig({ TRUST_PROXY: "true", TRUST_PROXY_CIDRS: "10.0.0.0/99" }), /TRUST_PROXY_CIDRS/);
    assert.deepEqual(loadConfig({ TRUST_PROXY_CIDRS: "loopback, 10.0.0.0/8" }).TRUST_PROXY_CIDRS, [
      "loopback",
      "10.0.0.0/8",
    ]);
  });
});

/**
 * Sends a body without end on a raw socket (declared `Content-Length` or chunked) and counts what
 * the client managed to hand to the server after the response arrived, until the server closed.
 */
async function uploadWithoutEnd(url: string, head: string, chunked: boolean, forMs = 5_000) {
  const { connect } = await import("node:net");
  const u = new URL(url);
  const socket = connect(Number(u.port), u.hostname);
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  let response = "";
  let sent = 0;
  let sentAtResponse = -1;
  let closedBy = "";
  socket.on("data", (d: Buffer) => {
    if (sentAtResponse < 0) sentAtResponse = sent;
    response += d.toString("latin1");
  });
  const ended = new Promise<void>((resolve) => {
    socket.once("error", (err: NodeJS.ErrnoException) => {
      closedBy ||= err.code ?? err.message;
      resolve();
    });
    socket.once("end", () => {
      closedBy ||= "FIN";
    });
    socket.once("close", () => resolve());
  });
  socket.write(head);
  const payload = Buffer.alloc(64 * 1024, 0x20);
  const frame = chunked
    ? Buffer.concat([Buffer.from(`${payload.length.toString(16)}\r\n`), payload, Buffer.from("\r\n")])
    : payload;
  const deadline = Date.now() + forMs;
  let open = true;
  void ended.then(() => {
    open = false;
  });
  while (open && Date.now() < deadline) {
    const ok = socket.write(frame, (err) => {
      if (!err) sent += payload.length;
    });
    if (!ok)
      await Promise.race([new Promise((r) => socket.once("drain", r)), ended, new Promise((r) => setTimeout(r, 200))]);
  }
  const timedOut = open;
  socket.destroy();
  await ended;
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0),
    response,
    sent,
    afterResponse: sentAtResponse < 0 ? -1 : sent - sentAtResponse,
    closedBy,
    timedOut,
  };
}

describe("oversize bodies", () => {
  let server: RunningServer;
  const LIMIT = 1024 * 1024;
  before(async () => {
    server = await startServer({
      port: 0,
      host: "127.0.0.1",
      modelsDir: MODELS,
      logger: pino({ level: "silent" }),
      env: { DATABASE_URL: "", REDIS_URL: "", MODEL_WATCH: "false", BODY_LIMIT_BYTES: String(LIMIT) },
    });
  });
  after(async () => {
    await server.close();
  });
  const PREDICT = "POST /v1/models/iris-classifier:predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n";
  const BOUND = 16 * 1024 * 1024; // socket buffers on both sides, far below the body

  test("a declared 1 GB body gets 413 before it is read, and the connection closes", async () => {
    const r = await uploadWithoutEnd(server.url, `${PREDICT}Content-Length: 1000000000\r\n\r\n`, false);
    console.log(
      `# declared 1 GB: ${r.status}, client sent ${r.sent} bytes in all, ${r.afterResponse} after the 413; closed by ${r.closedBy}`,
    );
    assert.equal(r.status, 413);
    assert.match(r.response, /connection: close/i);
    assert.match(r.response, /exceed the limit of 1048576/);
    assert.equal(r.timedOut, false, "the server closed the connection");
    assert.ok(r.afterResponse >= 0 && r.afterResponse < BOUND, `${r.afterResponse} bytes after the 413`);
  });

  test("with Expect: 100-continue the 413 comes before any byte of the body", async () => {
    const r = await request(server.url, {
      method: "POST",
      path: "/v1/models/iris-classifier:predict",
      headers: { "content-type": "application/json", "content-length": "1000000000", expect: "100-continue" },
    });
    assert.equal(r.status, 413);
    assert.equal(r.headers.connection, "close");
  });

  test("an endless chunked body is cut at the limit with 413 and the connection closes", async () => {
    const r = await uploadWithoutEnd(server.url, `${PREDICT}Transfer-Encoding: chunked\r\n\r\n`, true);
    console.log(
      `# endless chunked: ${r.status}, client sent ${r.sent} bytes in all, ${r.afterResponse} after the 413; closed by ${r.closedBy}`,
    );
    assert.equal(r.status, 413);
    assert.match(r.response, /more than 1048576 bytes/);
    assert.equal(r.timedOut, false, "the server closed the connection");
    assert.ok(r.afterResponse >= 0 && r.afterResponse < BOUND, `${r.afterResponse} bytes after the 413`);
  });

  test("an endless chunked body to a route that never reads it is not read either", async () => {
    const r = await uploadWithoutEnd(
      server.url,
      "POST /no/such/route HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
      true,
    );
    console.log(
      `# endless chunked to a 404: client sent ${r.sent} bytes, ${r.afterResponse} after the response; closed by ${r.closedBy}`,
    );
    assert.equal(r.status, 404);
    assert.equal(r.timedOut, false, "the server closed the connection");
    assert.ok(r.afterResponse >= 0 && r.afterResponse < BOUND, `${r.afterResponse} bytes after the 404`);
  });

  test("a 10,000-character model name is echoed bounded, 128 characters and an ellipsis", async () => {
    const name = "m".repeat(10_000);
    const sizes: number[] = [];
    for (const [method, path, body] of [
      ["GET", `/v1/models/${name}`],
      ["POST", `/v1/models/${name}:predict`, IRIS],
      ["GET", `/v2/models/${name}`],
      ["GET", `/v2/models/${name}/ready`],
      ["POST", `/v2/models/${name}/infer`, '{"inputs": []}'],
      ["GET", `/v2/models/${name}/versions/1/config`],
      ["GET", `/no/such/${name}`],
    ] as const) {
      const r = await request(server.url, {
        method,
        path,
        body,
        headers: body ? { "content-type": "application/json" } : {},
      });
      assert.ok(r.status === 404 || r.status === 400, `${method} ${path.slice(0, 30)}: ${r.status}`);
      const { error } = JSON.parse(r.body) as { error: string };
      sizes.push(r.body.length);
      assert.ok(r.body.length < 1200, `${method} ${path.slice(0, 30)}: ${r.body.length} bytes`);
      if (!path.startsWith("/no/")) assert.ok(error.includes(`"${"m".repeat(128)}…" (10000 characters)`), error);
    }
    console.log(`# 10,000-character model name: error bodies of ${sizes.join(", ")} bytes`);
  });

  test("the server still answers normally afterwards", async () => {
    const r = await request(server.url, {
      method: "POST",
      path: "/v1/models/iris-classifier:predict",
      headers: { "content-type": "application/json" },
      body: IRIS,
    });
    assert.equal(r.status, 200);
  });
});

describe("SIGTERM drain under keep-alive load", () => {
  test("requests already sent on kept-alive connections are answered, never reset", async () => {
    const { spawnServer } = await import("./data/support.ts");
    const prefix = redisPrefix();
    const server = await spawnServer({
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      DATABASE_URL: "",
      RATE_LIMIT_PLANS: '{"load": 100000000}',
      RATE_LIMIT_ANON_PLAN: "load",
      CACHE_TTL_SECONDS: "0",
      SHUTDOWN_TIMEOUT_MS: "10000",
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    const u = new URL(server.url);
    const counts = { ok: 0, refused: 0, failedAfterSend: 0, other: new Map<string, number>() };
    let stop = false;
    const once = () =>
      new Promise<void>((resolve) => {
        const req = http.request(
          {
            host: u.hostname,
            port: u.port,
            method: "POST",
            path: "/v1/models/iris-classifier:predict",
            agent,
            headers: { "content-type": "application/json", "content-length": IRIS.length },
          },
          (res) => {
            res.resume();
            res.on("end", () => {
              if (res.statusCode === 200) counts.ok++;
              else counts.other.set(String(res.statusCode), (counts.other.get(String(res.statusCode)) ?? 0) + 1);
              resolve();
            });
          },
        );
        req.on("error", (err: NodeJS.ErrnoException) => {
          // Refused: the listener is closed and nothing was sent, a clean signal to go elsewhere.
          if (err.code === "ECONNREFUSED") {
            counts.refused++;
            stop = true;
          } else {
            counts.failedAfterSend++;
            counts.other.set(`${err.code}: ${err.message}`, (counts.other.get(`${err.code}: ${err.message}`) ?? 0) + 1);
          }
          resolve();
        });
        req.end(IRIS);
      });
    const loops = Array.from({ length: 32 }, async () => {
      while (!stop) await once();
    });
    await new Promise((r) => setTimeout(r, 1500));
    const beforeSignal = counts.ok;
    const exited = server.stop("SIGTERM");
    await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 15_000))]);
    stop = true;
    await Promise.all(loops);
    const { code } = await exited;
    agent.destroy();
    await deleteRedisPrefix(prefix);
    console.log(
      `# drain: ${beforeSignal} ok before SIGTERM, ${counts.ok - beforeSignal} ok during the drain, ${counts.failedAfterSend} sent and failed (reset or closed), ${counts.refused} refused at connect; ${JSON.stringify([...counts.other])}`,
    );
    assert.equal(code, 0, server.output().slice(-2000));
    assert.ok(counts.ok - beforeSignal > 0, "requests kept being answered during the drain");
    assert.equal(counts.failedAfterSend, 0, JSON.stringify([...counts.other]));
  });
});
