/**
 * Dynamic batcher with Triton's semantics: requests for one model version queue in arrival order;
 * a batch is cut as soon as the queued rows reach `maxBatchSize` or the oldest request has waited
 * `maxQueueDelayMicros`; a request is never split across batches; one batch runs at a time, so
 * requests that arrive while the model is busy coalesce into the next batch.
 */
import { concatTyped, type HostTensor, sizeOf, sliceData } from "./tensor.ts";

export type TensorMap = Record<string, HostTensor>;

/** A decoded request, as the protocols hand it to the inference core: typed tensors and their rows. */
export interface PreparedInputs {
  inputs: TensorMap;
  rows: number;
  /** The outputs the caller asked for (all when absent). */
  outputs?: string[];
}

export interface BatchStats {
  rows: number;
  requests: number;
  /** False when the execution failed (its requests are retried alone or rejected). */
  ok: boolean;
  runSeconds: number;
  /** The run's own split, when it reports one (see ModelVersion): feeds, session.run, outputs. */
  inputSeconds?: number;
  inferSeconds?: number;
  outputSeconds?: number;
  /** Seconds each request waited in the queue before its batch started. */
  queueSeconds: number[];
}

export interface BatcherOptions {
  /** 0 = no batching: every request runs alone. */
  maxBatchSize: number;
  maxQueueDelayMicros: number;
  run(inputs: TensorMap, outputNames: string[]): Promise<TensorMap>;
  outputNames: string[];
  onBatch?(stats: BatchStats): void;
  /**
   * Requests already being served for this model that have not reached the batcher yet (body
   * still being read or validated). When none are, no known request can join the batch and
   * waiting out the queue delay would only add latency, so the batch runs at once: the delay is
   * an upper bound, as in Triton.
   */
  pendingElsewhere?(): number;
}

interface Job {
  inputs: TensorMap;
  rows: number;
  /** Requests can share a batch only when their non-batch dimensions agree. */
  key: string;
  enqueued: bigint;
  resolve(out: TensorMap): void;
  reject(err: unknown): void;
}

const NS_PER_US = 1000n;

export class DynamicBatcher {
  readonly #opts: BatcherOptions;
  #queue: Job[] = [];
  #running = false;
  #runningJobs = 0;
  #timer: NodeJS.Timeout | undefined;
  /** A dispatch is scheduled (setImmediate or microtask). */
  #immediate: NodeJS.Immediate | true | undefined;
  #idleWaiters: Array<() => void> = [];

  constructor(opts: BatcherOptions) {
    this.#opts = opts;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Requests queued or in the running batch. */
  get held(): number {
    return this.#queue.length + this.#runningJobs;
  }

  /** Re-evaluates the queue, e.g. after a request it was waiting for went elsewhere. */
  poke(): void {
    if (this.#queue.length) this.#schedule();
  }

  submit(inputs: TensorMap, rows: number): Promise<TensorMap> {
    const key = batchKey(inputs);
    return new Promise<TensorMap>((resolve, reject) => {
      this.#queue.push({ inputs, rows, key, enqueued: process.hrtime.bigint(), resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves once nothing is queued or running (used before a session is released). */
  idle(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  #schedule(): void {
    if (this.#running || this.#queue.length === 0 || this.#immediate) return;
    const { maxBatchSize, maxQueueDelayMicros } = this.#opts;
    const waitedUs = Number((process.hrtime.bigint() - this.#queue[0]!.enqueued) / NS_PER_US);
    let queuedRows = 0;
    for (const j of this.#queue) queuedRows += j.rows;
    const full = maxBatchSize === 0 || queuedRows >= maxBatchSize;
    const nothingElseComing = this.#opts.pendingElsewhere !== undefined && this.#opts.pendingElsewhere() <= 0;
    const due = full || waitedUs >= maxQueueDelayMicros || nothingElseComing;
    if (due) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = undefined;
      if (full || nothingElseComing) {
        // No request can join (the batch is full, or none is on its way): skip the event-loop
        // turn, tens of µs of latency at low load and one loop iteration per batch under load.
        this.#immediate = true;
        queueMicrotask(() => {
          this.#immediate = undefined;
          void this.#dispatch();
        });
      } else {
        // setImmediate lets requests already read in this I/O phase join the batch.
        this.#immediate = setImmediate(() => {
          this.#immediate = undefined;
          void this.#dispatch();
        });
      }
    } else if (!this.#timer) {
      const remainingMs = Math.max(0, (maxQueueDelayMicros - waitedUs) / 1000);
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#schedule();
      }, remainingMs);
    }
  }

  #take(): Job[] {
    const max = this.#opts.maxBatchSize;
    const head = this.#queue[0]!;
    if (max === 0) return [this.#queue.shift()!];
    const batch: Job[] = [];
    const rest: Job[] = [];
    let rows = 0;
    for (const job of this.#queue) {
      if (job.key === head.key && (batch.length === 0 || rows + job.rows <= max)) {
        batch.push(job);
        rows += job.rows;
      } else {
        rest.push(job);
      }
    }
    this.#queue = rest;
    return batch;
  }

  async #dispatch(): Promise<void> {
    if (this.#running || this.#queue.length === 0) return;
    this.#running = true;
    const batch = this.#take();
    this.#runningJobs = batch.length;
    try {
      await this.#runBatch(batch);
    } finally {
      this.#running = false;
      this.#runningJobs = 0;
      if (this.#queue.length) this.#schedule();
      else for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  async #runBatch(batch: Job[]): Promise<void> {
    const started = process.hrtime.bigint();
    const queueSeconds = batch.map((j) => Number(started - j.enqueued) / 1e9);
    const rows = batch.reduce((n, j) => n + j.rows, 0);
    let outputs: TensorMap;
    try {
      outputs = await this.#opts.run(
        batch.length === 1 ? batch[0]!.inputs : concatInputs(batch, rows),
        this.#opts.outputNames,
      );
    } catch (err) {
      this.#report(batch.length, rows, started, queueSeconds, false);
      if (batch.length === 1) batch[0]!.reject(err);
      else await this.#runAlone(batch); // isolate the request whose input the runtime refused
      return;
    }
    this.#report(batch.length, rows, started, queueSeconds, true);
    if (batch.length === 1) {
      batch[0]!.resolve(outputs);
      return;
    }
    const split = splitOutputs(outputs, batch, rows);
    if (split) {
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(split[i]!);
    } else await this.#runAlone(batch);
  }

  async #runAlone(batch: Job[]): Promise<void> {
    for (const job of batch) {
      const started = process.hrtime.bigint();
      try {
        const out = await this.#opts.run(job.inputs, this.#opts.outputNames);
        this.#report(1, job.rows, started, [0], true);
        job.resolve(out);
      } catch (err) {
        job.reject(err);
      }
    }
  }

  #report(requests: number, rows: number, started: bigint, queueSeconds: number[], ok: boolean): void {
    this.#opts.onBatch?.({
      requests,
      rows,
      ok,
      runSeconds: Number(process.hrtime.bigint() - started) / 1e9,
      queueSeconds,
    });
  }
}

/** Inputs' names and non-batch dimensions, e.g. `x:3x4`; the one-input case without sorting or arrays. */
function batchKey(inputs: TensorMap): string {
  let key = "";
  let count = 0;
  for (const name in inputs) {
    if (++count > 1) break;
    key = `${name}:${innerDims(inputs[name]!.shape)}`;
  }
  if (count <= 1) return key;
  return Object.keys(inputs)
    .sort()
    .map((n) => `${n}:${innerDims(inputs[n]!.shape)}`)
    .join("|");
}

function innerDims(shape: number[]): string {
  if (shape.length === 2) return String(shape[1]);
  return shape.slice(1).join("x");
}

function concatInputs(batch: Job[], rows: number): TensorMap {
  const out: TensorMap = {};
  for (const name of Object.keys(batch[0]!.inputs)) {
    const first = batch[0]!.inputs[name]!;
    const inner = first.shape.slice(1);
    const parts = batch.map((j) => j.inputs[name]!.data);
    out[name] = { datatype: first.datatype, shape: [rows, ...inner], data: concatTyped(parts, rows * sizeOf(inner)) };
  }
  return out;
}

/** Slices each output along its first dimension; null when an output is not per-row. */
function splitOutputs(outputs: TensorMap, batch: Job[], rows: number): TensorMap[] | null {
  const result: TensorMap[] = batch.map(() => ({}));
  for (const [name, t] of Object.entries(outputs)) {
    if (t.shape[0] !== rows) return null;
    const inner = t.shape.slice(1);
    const per = sizeOf(inner);
    let row = 0;
    batch.forEach((job, i) => {
      result[i]![name] = {
        datatype: t.datatype,
        shape: [job.rows, ...inner],
        data: sliceData(t.data, row * per, (row + job.rows) * per),
      };
      row += job.rows;
    });
  }
  return result;
}
