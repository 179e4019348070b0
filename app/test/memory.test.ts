/**
 * Memory bounded by the container: the real process entry (app/src/main.ts) in a memory cgroup at
 * the free tier's limit (288 MiB, no swap), its heap sized as the docker tiers size it, takes
 * 5,000 held connections: the ones past its cap are refused, nothing is OOM-killed, and it serves
 * again once they go.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import { after, test } from "node:test";
import { deleteRedisPrefix, REDIS_URL, redisPrefix, sleep, spawnMain, waitFor } from "./data/support.ts";

const LIMIT_MIB = 288; // the free tier's app container (infra/presets.ts)
const CONNECTIONS = 5_000;

interface Cgroup {
  dir: string;
  procs: string;
  peakBytes(): number;
  oomKills(): number;
  remove(): void;
}

/** A memory cgroup with a hard limit and no swap: v2 if this host has it writable, else v1. */
function memoryCgroup(limitBytes: number): Cgroup {
  const name = `inferstack-test-${randomBytes(4).toString("hex")}`;
  const v2 = "/sys/fs/cgroup";
  if (existsSync(`${v2}/cgroup.controllers`) && readFileSync(`${v2}/cgroup.controllers`, "utf8").includes("memory")) {
    const dir = `${v2}/${name}`;
    mkdirSync(dir);
    writeFileSync(`${dir}/memory.max`, String(limitBytes));
    if (existsSync(`${dir}/memory.swap.max`)) writeFileSync(`${dir}/memory.swap.max`, "0");
    return {
      dir,
      procs: `${dir}/cgroup.procs`,
      peakBytes: () => Number(readFileSync(`${dir}/memory.peak`, "utf8")),
      oomKills: () => Number(/^oom_kill (\d+)/m.exec(readFileSync(`${dir}/memory.events`, "utf8"))?.[1] ?? 0),
      remove: () => rmdirSync(dir),
    };
  }
  const v1 = "/sys/fs/cgroup/memory";
  const dir = `${v1}/${name}`;
  mkdirSync(dir); // no writable memory cgroup (v2 or v1): this fails, naming the path
  writeFileSync(`${dir}/memory.limit_in_bytes`, String(limitBytes));
  if (existsSync(`${dir}/memory.memsw.limit_in_bytes`))
    writeFileSync(`${dir}/memory.memsw.limit_in_bytes`, String(limitBytes));
  return {
    dir,
    procs: `${dir}/cgroup.procs`,
    peakBytes: () => Number(readFileSync(`${dir}/memory.max_usage_in_bytes`, "utf8")),
    oomKills: () => Number(/^oom_kill (\d+)/m.exec(readFileSync(`${dir}/memory.oom_control`, "utf8"))?.[1] ?? 0),
    remove: () => rmdirSync(dir),
  };
}

const prefix = redisPrefix();
after(async () => {
  await deleteRedisPrefix(prefix);
});

test(`${CONNECTIONS} held connections under a ${LIMIT_MIB} MiB memory limit: refused past the cap, not OOM-killed`, async () => {
  const cgroup = memoryCgroup(LIMIT_MIB * 2 ** 20);
  const child = spawnMain(
    {
      NODE_OPTIONS: "--max-old-space-size-percentage=50", // as infra/components/docker-app.ts sets it
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      DATABASE_URL: "",
      RATE_LIMIT_PLANS: '{"load": 100000000}',
      RATE_LIMIT_ANON_PLAN: "load",
    },
    cgroup.procs,
  );
  let out = "";
  child.stdout!.on("data", (d) => {
    out += d;
  });
  child.stderr!.on("data", (d) => {
    out += d;
  });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) =>
    child.on("exit", (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );
  const held: net.Socket[] = [];
  try {
    const url = await waitFor(
      "server url",
      () => {
        if (exit) throw new Error(`server exited: ${JSON.stringify(exit)}\n${out}`);
        return /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)?.[1];
      },
      30_000,
    );
    const started = JSON.parse(out.split("\n").find((l) => l.includes('"url"'))!) as {
      maxConnections: number;
      memoryLimitMiB: number;
      heapLimitMiB: number;
    };
    assert.equal(started.memoryLimitMiB, LIMIT_MIB, "the app sees the cgroup's limit");
    assert.ok(started.heapLimitMiB <= LIMIT_MIB * 0.55, `heap ${started.heapLimitMiB} MiB`);
    const predict = () =>
      fetch(`${url}/v1/models/iris-classifier:predict`, {
        method: "POST",
        headers: { "content-type": "application/json", connection: "close" },
        body: JSON.stringify({ instances: [[5.1, 3.5, 1.4, 0.2]] }),
      }).then(
        (r) => r.status,
        () => 0,
      );
    await waitFor("models loaded", async () => (await predict()) === 200, 60_000, 200);

    const { port } = new URL(url);
    let closedByServer = 0;
    for (let i = 0; i < CONNECTIONS; i++) {
      const socket = net.connect(Number(port), "127.0.0.1");
      socket.on("error", () => undefined);
      socket.on("close", () => {
        closedByServer++;
      });
      // Headers sent slowly, never finished: each connection holds a parser and buffers.
      socket.on("connect", () =>
        socket.write(`POST /v1/models/iris-classifier:predict HTTP/1.1\r\nHost: t\r\nX-Pad: ${"x".repeat(512)}\r\n`),
      );
      held.push(socket);
      if (i % 250 === 249) await sleep(20);
    }
    await sleep(3000);
    const alive = exit === undefined;
    const peakMiB = cgroup.peakBytes() / 2 ** 20;
    const oomKills = cgroup.oomKills();
    console.log(
      `# ${CONNECTIONS} connections under ${LIMIT_MIB} MiB: cap ${started.maxConnections}, heap limit ${started.heapLimitMiB} MiB, ${closedByServer} refused, ${CONNECTIONS - closedByServer} held; peak ${peakMiB.toFixed(0)} MiB of ${LIMIT_MIB}; OOM kills ${oomKills}; alive ${alive}`,
    );
    assert.ok(alive, `the server died: ${JSON.stringify(exit)}\n${out.slice(-2000)}`);
    assert.equal(oomKills, 0);
    assert.ok(
      closedByServer >= CONNECTIONS - started.maxConnections,
      `${closedByServer} refused with a cap of ${started.maxConnections}`,
    );
    assert.ok(peakMiB < LIMIT_MIB, `peak ${peakMiB} MiB`);

    for (const s of held) s.destroy();
    await sleep(500);
    assert.equal(await predict(), 200, "serves again once the connections are gone");
  } finally {
    for (const s of held) s.destroy();
    if (!exit) {
      child.kill("SIGTERM");
      await exited;
    }
    await sleep(200);
    cgroup.remove();
  }
});
