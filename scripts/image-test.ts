/**
 * npm run image:test — app/Dockerfile built and run on a real Docker engine.
 *
 * Uses the engine that answers, else starts dockerd itself (root; vfs, no bridge, no iptables).
 * No registry image can be pulled on the machines this runs on, so the base is made locally
 * (scripts/lib/base-image.ts) and passed through the Dockerfile's NODE_IMAGE build argument.
 * Then the container runs on the host network and is checked: /health/ready, V1 and V2 answers
 * equal to the model's reference, a non-root process, the HEALTHCHECK turning healthy, and a
 * SIGTERM stop inside the grace period. Prints image size and build time; the last line is
 * "N passed, N failed" and any failure exits non-zero. Removes the container and stops only the
 * daemon it started. Cache (engine data, base rootfs): $INFERSTACK_IMAGE_CACHE, else
 * ~/.cache/inferstack/image-test.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { homedir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { assertMatchesReference, type ClassificationReference, loadReference, rows } from "../models/reference.ts";
import {
  type BaseImageSpec,
  baseImageTag,
  baseTarballPath,
  debianMirror,
  ensureBaseImage,
  nodeFromNpmPackage,
} from "./lib/base-image.ts";
import { buildKitCli, type Engine, ensureDebianTool, ensureEngine, run, tail, which } from "./lib/docker-engine.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CACHE =
  process.env.INFERSTACK_IMAGE_CACHE ??
  path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), ".cache"), "inferstack", "image-test");
const IMAGE = "inferstack-api:image-test";
/** Classifier: checks a label and every class probability, not just one number. */
const MODEL = "iris-classifier";
/** docker stop's grace before SIGKILL; the app bounds its own shutdown well inside it. */
const STOP_GRACE_S = 10;
/** Layer folders in the vfs data root of an engine started here past which unused build cache is pruned. */
const PRUNE_ABOVE_LAYERS = 24;

const started = Date.now();
const log = (line: string) => process.stdout.write(`# [${((Date.now() - started) / 1000).toFixed(1)} s] ${line}\n`);
const results: { name: string; ok: boolean; detail: string }[] = [];

async function check(name: string, fn: () => Promise<string | undefined>): Promise<boolean> {
  try {
    const detail = (await fn()) ?? "";
    results.push({ name, ok: true, detail });
    process.stdout.write(`ok - ${name}${detail ? ` (${detail})` : ""}\n`);
    return true;
  } catch (err) {
    const detail = (err as Error).message;
    results.push({ name, ok: false, detail });
    process.stdout.write(`not ok - ${name}\n${detail.replace(/^/gm, "  ")}\n`);
    return false;
  }
}

/** Debian suite and Node major of the Dockerfile's default base: the local base must stand in for that one. */
function dockerfileBase(): { suite: string; nodeMajor: string } {
  const dockerfile = readFileSync(path.join(ROOT, "app/Dockerfile"), "utf8");
  const m = dockerfile.match(/^ARG NODE_IMAGE=node:(\d+)-(\w+)(?:-slim)?@sha256:/m);
  if (!m) throw new Error("app/Dockerfile: no ARG NODE_IMAGE=node:<major>-<suite>[-slim]@sha256:<digest>");
  return { nodeMajor: m[1]!, suite: m[2]! };
}

/** From BuildKit's plain progress ("#8 [deps 4/4] RUN ...", "#8 DONE 79.6s"): the longest steps. */
function slowestSteps(progress: string, n: number): string {
  const names = new Map<string, string>();
  const took = new Map<string, number>();
  for (const line of progress.split("\n")) {
    const named = line.match(/^#(\d+) (\[[^\]]+\] .*)$/);
    if (named && !names.has(named[1]!)) names.set(named[1]!, named[2]!.slice(0, 60));
    const done = line.match(/^#(\d+) (?:DONE|CACHED) ?([\d.]+)?s?$/);
    if (done) took.set(done[1]!, Number(done[2] ?? 0));
  }
  const ran = [...took].filter(([id, s]) => names.has(id) && s >= 0.1);
  if (ran.length === 0) return "every step cached";
  return ran
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([id, s]) => `${names.get(id)} ${s.toFixed(1)} s`)
    .join("; ");
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "0.0.0.0", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function poll<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds(timeoutMs)}`);
    await sleep(250);
  }
}

async function post(base: string, url: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${base}${url}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `POST ${url}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function main(): Promise<void> {
  const cleanups: (() => Promise<unknown>)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const fn of cleanups.reverse()) await fn().catch((err: Error) => log(`cleanup: ${err.message}`));
    })());
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      log(`${signal}: cleaning up`);
      void cleanup().then(() => process.exit(130));
    });
  }

  try {
    await mkdir(CACHE, { recursive: true });
    let engine: Engine | undefined;
    let cli = "docker";
    const engineOk = await check("a Docker engine answers", async () => {
      // Debian's docker.io brings dockerd and the 20.10 CLI with BuildKit built in.
      if (!which("docker") && !which("dockerd")) await ensureDebianTool("dockerd", "docker.io", log);
      const picked = await buildKitCli();
      cli = picked.cli;
      engine = await ensureEngine(cli, CACHE, log);
      cleanups.push(() => engine!.stop());
      return `${engine.description}; CLI ${cli}, ${picked.how}`;
    });
    if (!engineOk || !engine) return;
    const env = engine.env;
    const docker = (args: string[], timeoutMs = 120_000) => run(cli, args, { env, check: false, timeoutMs });
    if (engine.startedHere) {
      // vfs stores every layer as a full copy (~300 MB here): unbounded, the cache grows by GBs per
      // changed build. Pruning is slow on vfs too (a minute or more), so only past a bound: records
      // this run did not use go (BuildKit's "until" compares last use), what it used stays warm.
      cleanups.push(async () => {
        const vfs = path.join(CACHE, "docker/vfs/dir");
        const layers = existsSync(vfs) ? readdirSync(vfs).length : 0;
        if (layers <= PRUNE_ABOVE_LAYERS) return;
        const until = `${Math.ceil((Date.now() - started) / 1000) + 60}s`;
        const pruned = await docker(["builder", "prune", "--force", "--filter", `until=${until}`]);
        log(
          `${layers} vfs layers: build cache records unused for ${until} pruned: ${pruned.stdout.trim().split("\n").at(-1) ?? ""}`,
        );
      });
    }

    const { suite, nodeMajor } = dockerfileBase();
    const node = nodeFromNpmPackage(ROOT);
    const spec: BaseImageSpec = {
      suite,
      mirror: debianMirror(),
      nodeVersion: node.version,
      npmVersion: node.npmVersion,
      nodeBinary: node.binary,
    };
    let baseTag = baseImageTag(spec);
    const baseOk = await check(`base image ${baseTag} (stands in for node:${nodeMajor}-${suite}-slim)`, async () => {
      assert.equal(
        spec.nodeVersion.split(".")[0],
        nodeMajor,
        `package.json pins node ${spec.nodeVersion}, the Dockerfile's base is node:${nodeMajor}`,
      );
      const t0 = Date.now();
      if (!existsSync(baseTarballPath(spec, CACHE))) await ensureDebianTool("debootstrap", "debootstrap", log);
      const base = await ensureBaseImage(docker, spec, CACHE, log);
      baseTag = base.tag;
      if (base.made === "engine cache") return `${base.made}, ${seconds(Date.now() - t0)}`;
      // The official image's contract that app/Dockerfile relies on: node and npm on PATH, user node 1000:1000.
      const user = await docker([
        "run",
        "--rm",
        "--network",
        "host",
        baseTag,
        "sh",
        "-c",
        "id node && node --version && npm --version",
      ]);
      assert.equal(user.code, 0, `base image cannot run id/node/npm: ${user.stdout}${user.stderr}`);
      assert.match(
        user.stdout,
        /^uid=1000\(node\) gid=1000\(node\)/m,
        "user node is uid/gid 1000 as in the official image",
      );
      return `${base.made}, ${seconds(Date.now() - t0)}; node ${user.stdout.trim().split("\n").slice(1).join(", npm ")}`;
    });
    if (!baseOk) return;

    const previous = (await docker(["image", "inspect", "--format", "{{.Id}}", IMAGE])).stdout.trim();
    let buildMs = 0;
    const buildOk = await check("app/Dockerfile builds with the local base (NODE_IMAGE build argument)", async () => {
      const t0 = Date.now();
      // No bridge on this engine: RUN steps (npm ci) reach the registry on the host's network.
      // This machine's own trust (it may sit behind a TLS-inspecting proxy) for npm ci, as a build secret.
      const ca = [process.env.NODE_EXTRA_CA_CERTS, "/etc/ssl/certs/ca-certificates.crt"].find(
        (f) => f && existsSync(f),
      );
      const build = await run(
        cli,
        [
          "build",
          "--network",
          "host",
          "--progress",
          "plain",
          "--build-arg",
          `NODE_IMAGE=${baseTag}`,
          ...(ca ? ["--secret", `id=npm-ca,src=${ca}`] : []),
          "-f",
          "app/Dockerfile",
          "-t",
          IMAGE,
          ".",
        ],
        { env, cwd: ROOT, check: false, timeoutMs: 15 * 60_000 },
      );
      buildMs = Date.now() - t0;
      assert.equal(build.code, 0, `docker build failed:\n${tail(build.stderr + build.stdout, 60)}`);
      return `build time ${seconds(buildMs)}; slowest steps: ${slowestSteps(build.stderr + build.stdout, 3)}`;
    });
    if (!buildOk) return;
    const id = (await docker(["image", "inspect", "--format", "{{.Id}}", IMAGE])).stdout.trim();
    if (previous && previous !== id) {
      log("removing the previous image");
      await docker(["image", "rm", previous]);
    }
    const size = Number((await docker(["image", "inspect", "--format", "{{.Size}}", IMAGE])).stdout.trim());
    const baseSize = Number((await docker(["image", "inspect", "--format", "{{.Size}}", baseTag])).stdout.trim());
    log(
      `image ${IMAGE}: ${(size / 1e6).toFixed(0)} MB (base ${(baseSize / 1e6).toFixed(0)} MB, app layers ${((size - baseSize) / 1e6).toFixed(0)} MB); build time ${seconds(buildMs)}`,
    );

    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const name = `inferstack-image-test-${process.pid}`;
    let container = "";
    const runOk = await check("the container starts", async () => {
      const res = await docker([
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--env",
        `PORT=${port}`,
        IMAGE,
      ]);
      assert.equal(res.code, 0, `docker run: ${res.stderr}`);
      container = res.stdout.trim();
      cleanups.push(() =>
        docker(["rm", "--force", container]).then(() => log(`container ${container.slice(0, 12)} removed`)),
      );
      return `${container.slice(0, 12)} on port ${port}`;
    });
    if (!runOk) return;
    const logsOnFailure = async () => tail((await run(cli, ["logs", container], { env, check: false })).stderr, 20);

    const readyOk = await check("GET /health/ready is 200", async () => {
      const t0 = Date.now();
      try {
        await poll("GET /health/ready 200", 60_000, async () =>
          (await fetch(`${base}/health/ready`)).status === 200 ? true : undefined,
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${await logsOnFailure()}`);
      }
      return `after ${seconds(Date.now() - t0)}`;
    });

    const ref = loadReference(MODEL) as ClassificationReference;
    const one = { ...ref, cases: ref.cases.slice(0, 1) };
    if (readyOk) {
      await check(`V1 predict on ${MODEL} equals the reference`, async () => {
        const body = (await post(base, `/v1/models/${MODEL}:predict`, { instances: [one.cases[0]!.instance] })) as {
          predictions: { label: string; probabilities: Record<string, number> }[];
        };
        const p = body.predictions[0]!;
        assertMatchesReference(
          one,
          { labels: [ref.labels.indexOf(p.label)], probabilities: [ref.labels.map((l) => p.probabilities[l]!)] },
          "V1 in the container",
        );
        return `${p.label}`;
      });
      await check(`V2 infer on ${MODEL} equals the reference`, async () => {
        const body = (await post(base, `/v2/models/${MODEL}/infer`, {
          inputs: [{ name: ref.input, datatype: "FP32", shape: [1, ref.features.length], data: rows(one).flat() }],
        })) as { outputs: { name: string; data: number[] }[] };
        const out = (n: string) => body.outputs.find((o) => o.name === n)?.data.flat() ?? [];
        assertMatchesReference(
          one,
          { labels: out(ref.labelOutput).map(Number), probabilities: [out(ref.probabilitiesOutput)] },
          "V2 in the container",
        );
        return `class ${ref.labels[Number(out(ref.labelOutput)[0])]}`;
      });
    }

    await check("the service process is not root", async () => {
      // docker top runs ps on the engine's host: the real process, not the image's configuration.
      const top = await docker(["top", container, "-o", "pid,uid,user,args"]);
      assert.equal(top.code, 0, `docker top: ${top.stderr}`);
      const processes = top.stdout
        .trim()
        .split("\n")
        .slice(1)
        .map((l) => l.trim().split(/\s+/));
      assert.ok(processes.length > 0, "docker top lists the container's processes");
      for (const p of processes) assert.notEqual(p[1], "0", `process runs as root: ${p.join(" ")}`);
      const execId = await docker(["exec", container, "id", "-u"]);
      assert.equal(execId.stdout.trim(), "1000", "docker exec id -u");
      return `uid ${processes.map((p) => p[1]).join(",")}: ${processes.map((p) => p.slice(3).join(" ")).join("; ")}`;
    });

    await check("the image holds what it serves, read-only for the service user", async () => {
      // What app/Dockerfile.dockerignore must keep out, and the code the service must not be able to change.
      const script = [
        "find /app -path /app/node_modules -prune -o \\( -name '*.test.ts' -o -name '*.py' -o -path /app/models/build -o -path /app/models/test \\) -print",
        'for f in /app/app/src/main.ts /app/models /app/node_modules; do test -w "$f" && echo "writable: $f"; done',
        "test -w /app/var/spill || echo 'not writable: /app/var/spill'",
        "test -e /app/node_modules/@pulumi && echo 'present: node_modules/@pulumi'",
        "true",
      ].join("; ");
      const res = await docker(["exec", container, "sh", "-c", script]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout.trim(), "", "unexpected content or permissions");
      const files = (
        await docker([
          "exec",
          container,
          "sh",
          "-c",
          "find /app -path /app/node_modules -prune -o -type f -print | wc -l",
        ])
      ).stdout.trim();
      return `${files} files outside node_modules`;
    });

    await check("the HEALTHCHECK turns healthy", async () => {
      const t0 = Date.now();
      let last = "";
      try {
        await poll("State.Health.Status healthy", 90_000, async () => {
          last = (await docker(["inspect", "--format", "{{json .State.Health}}", container])).stdout.trim();
          const health = JSON.parse(last) as { Status?: string } | null;
          assert.notEqual(health?.Status, "unhealthy", `unhealthy: ${last}`);
          return health?.Status === "healthy" ? true : undefined;
        });
      } catch (err) {
        throw new Error(`${(err as Error).message}; last State.Health: ${last}`);
      }
      return `healthy ${seconds(Date.now() - t0)} after ready`;
    });

    await check(`SIGTERM stops it within the ${STOP_GRACE_S} s grace period`, async () => {
      const signal = (await docker(["inspect", "--format", "{{.Config.StopSignal}}", container])).stdout.trim();
      assert.equal(signal, "SIGTERM", "the image's STOPSIGNAL");
      const t0 = Date.now();
      const stop = await docker(["stop", "--time", String(STOP_GRACE_S), container], (STOP_GRACE_S + 30) * 1000);
      const elapsed = Date.now() - t0;
      assert.equal(stop.code, 0, `docker stop failed: ${stop.stderr}`);
      const state = JSON.parse((await docker(["inspect", "--format", "{{json .State}}", container])).stdout) as {
        ExitCode: number;
        Running: boolean;
      };
      assert.equal(state.Running, false);
      assert.notEqual(
        state.ExitCode,
        137,
        `killed after the grace period (exit 137) in ${seconds(elapsed)}\n${await logsOnFailure()}`,
      );
      assert.ok(elapsed < STOP_GRACE_S * 1000, `took ${seconds(elapsed)}`);
      return `stopped in ${seconds(elapsed)}, exit code ${state.ExitCode}`;
    });
  } catch (err) {
    results.push({ name: "image test harness", ok: false, detail: (err as Error).message });
    process.stdout.write(`not ok - image test harness\n${(err as Error).message.replace(/^/gm, "  ")}\n`);
  } finally {
    log("cleaning up");
    await cleanup();
  }
}

function summary(): number {
  const failed = results.filter((r) => !r.ok).length;
  log(`wall time ${seconds(Date.now() - started)}`);
  process.stdout.write(`${results.length - failed} passed, ${failed} failed\n`);
  return failed ? 1 : 0;
}

main().then(
  () => {
    const code = summary();
    process.stdout.write("", () => process.exit(code));
  },
  (err: Error) => {
    process.stderr.write(`image test: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
