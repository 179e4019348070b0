/**
 * Raw in-process `session.run` on the bundled regressor, and the measurement behind the
 * concurrency design: how long one run blocks the event loop, and what the same run costs when
 * handed to a worker thread (postMessage there and back).
 */
import { Worker } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { DIABETES_FEATURES, DIABETES_MODEL } from "./lib.ts";

export interface SessionResult {
  /** Rows per second through `await session.run` back to back, by batch size. */
  runRowsPerSec: Record<number, number>;
  /** Mean µs per `await session.run`, by batch size. */
  runMicros: Record<number, number>;
  /** Mean µs the event loop is blocked inside one run (synchronous native call), batch of 1. */
  blockMicros: number;
  /** Mean µs per request through a worker thread, one at a time (latency), batch of 1. */
  workerRoundTripMicros: number;
  /** Requests per second through one worker thread with 64 outstanding, batch of 1. */
  workerRps: number;
  /** Same 64-outstanding load in-process. */
  inProcessRps: number;
}

const cols = DIABETES_FEATURES.length;
const feeds = (rows: number) => ({
  input: new ort.Tensor("float32", new Float32Array(rows * cols).fill(1), [rows, cols]),
});

async function timeLoop(seconds: number, body: () => Promise<unknown>): Promise<{ n: number; secs: number }> {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < end) {
    await body();
    n++;
  }
  return { n, secs: (performance.now() - t0) / 1000 };
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const ort = require(workerData.ort);
(async () => {
  const s = await ort.InferenceSession.create(workerData.model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  parentPort.on("message", async ({ id, data, rows }) => {
    const out = await s.run({ input: new ort.Tensor("float32", data, [rows, ${cols}]) });
    const y = out[s.outputNames[0]].data;
    parentPort.postMessage({ id, y });
  });
  parentPort.postMessage("ready");
})();
`;

export async function run(seconds = 2): Promise<SessionResult> {
  const session = await ort.InferenceSession.create(DIABETES_MODEL, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const runRowsPerSec: Record<number, number> = {};
  const runMicros: Record<number, number> = {};
  for (const rows of [1, 32]) {
    const f = feeds(rows);
    await timeLoop(0.3, () => session.run(f));
    const { n, secs } = await timeLoop(seconds, () => session.run(f));
    runRowsPerSec[rows] = (n * rows) / secs;
    runMicros[rows] = (secs / n) * 1e6;
  }

  // Blocking: onnxruntime-node defers to setImmediate, then runs synchronously on this thread.
  // Time the gap a concurrent setImmediate chain sees around each run.
  const f1 = feeds(1);
  let blocked = 0;
  let samples = 0;
  for (let i = 0; i < 2000; i++) {
    const p = session.run(f1);
    const t = performance.now();
    await new Promise<void>((r) => setImmediate(r)); // queued behind the run's own setImmediate
    blocked += performance.now() - t;
    samples++;
    await p;
  }
  const blockMicros = (blocked / samples) * 1000;

  const { createRequire } = await import("node:module");
  const ortPath = createRequire(import.meta.url).resolve("onnxruntime-node");
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ort: ortPath, model: DIABETES_MODEL } });
  await new Promise<void>((r) => worker.once("message", () => r()));
  let nextId = 0;
  const pending = new Map<number, () => void>();
  worker.on("message", (m: { id: number }) => {
    pending.get(m.id)?.();
    pending.delete(m.id);
  });
  const viaWorker = () =>
    new Promise<void>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      worker.postMessage({ id, data: new Float32Array(cols).fill(1), rows: 1 });
    });
  await timeLoop(0.3, viaWorker);
  const seq = await timeLoop(seconds, viaWorker);
  const workerRoundTripMicros = (seq.secs / seq.n) * 1e6;

  const outstanding = async (call: () => Promise<unknown>) => {
    const end = performance.now() + seconds * 1000;
    let n = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (performance.now() < end) {
          await call();
          n++;
        }
      }),
    );
    return n / ((performance.now() - t0) / 1000);
  };
  const workerRps = await outstanding(viaWorker);
  const inProcessRps = await outstanding(() => session.run(feeds(1)));
  await worker.terminate();
  await session.release();
  return { runRowsPerSec, runMicros, blockMicros, workerRoundTripMicros, workerRps, inProcessRps };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await run());
