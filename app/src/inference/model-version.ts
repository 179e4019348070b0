/**
 * One loaded model version: an ONNX Runtime session, its signature and its batcher. Counts the
 * requests using it so that a hot reload can release the session only after they finish.
 */
import { readFile } from "node:fs/promises";
import * as ort from "onnxruntime-node";
import { type BatchStats, DynamicBatcher, type TensorMap } from "./batcher.ts";
import type { Manifest } from "./manifest.ts";
import { buildSignature, type ModelSignature } from "./signature.ts";
import { ModelStats } from "./stats.ts";
import { codecOf, type HostTensor, type TensorData, v2FromOrt } from "./tensor.ts";

/** ONNX Runtime refused this input (bad shape, index out of range...): the caller's fault. */
export class InferenceInputError extends Error {}

export interface SessionSettings {
  intraOpThreads: number;
}

export class ModelVersion {
  readonly name: string;
  readonly version: number;
  readonly signature: ModelSignature;
  readonly loadedAt = new Date();
  readonly stats = new ModelStats();
  readonly #session: ort.InferenceSession;
  readonly #batcher: DynamicBatcher;
  #inflight = 0;
  #drained: (() => void) | undefined;
  #released = false;
  #sessionFreed = false;
  /** Seconds of the last #run's three phases; one batch runs at a time, read in onBatch right after. */
  readonly #lastRun = { input: 0, infer: 0, output: 0 };

  private constructor(
    name: string,
    version: number,
    session: ort.InferenceSession,
    signature: ModelSignature,
    onBatch: (s: BatchStats) => void,
  ) {
    this.name = name;
    this.version = version;
    this.#session = session;
    this.signature = signature;
    this.#batcher = new DynamicBatcher({
      maxBatchSize: signature.batching.maxBatchSize,
      maxQueueDelayMicros: signature.batching.maxQueueDelayMicros,
      outputNames: signature.outputs.map((o) => o.name),
      run: (inputs, outputs) => this.#run(inputs, outputs),
      onBatch: (s) => {
        if (s.ok) {
          s.inputSeconds = this.#lastRun.input;
          s.inferSeconds = this.#lastRun.infer;
          s.outputSeconds = this.#lastRun.output;
        }
        this.stats.batch(s);
        onBatch(s);
      },
      ...(signature.batching.eager ? { pendingElsewhere: () => this.#inflight - this.#batcher.held } : {}),
    });
  }

  static async load(
    name: string,
    version: number,
    file: string,
    manifest: Manifest | undefined,
    settings: SessionSettings,
    onBatch: (s: BatchStats) => void,
  ): Promise<ModelVersion> {
    // Read the bytes first so a file replaced mid-load cannot yield a half-read session.
    const bytes = await readFile(file);
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: settings.intraOpThreads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      logSeverityLevel: 4, // runtime errors reach the caller and our logs; keep ORT's own stderr quiet
    });
    try {
      const signature = buildSignature(session.inputMetadata, session.outputMetadata, manifest);
      return new ModelVersion(name, version, session, signature, onBatch);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  /** True once the native session has been freed. */
  get released(): boolean {
    return this.#sessionFreed;
  }

  get inflight(): number {
    return this.#inflight;
  }

  /** Marks a request as using this version; false once it is being released. */
  acquire(): boolean {
    if (this.#released) return false;
    this.#inflight++;
    return true;
  }

  release(): void {
    this.#inflight--;
    if (this.#inflight === 0 && this.#drained) this.#drained();
    else this.#batcher.poke();
  }

  /** Runs through the dynamic batcher; resolves with every served output for these rows. */
  infer(inputs: TensorMap, rows: number): Promise<TensorMap> {
    return this.#batcher.submit(inputs, rows);
  }

  /**
   * Waits for in-flight requests to finish (at most `boundMs`: requests are themselves bounded by
   * the request timeout, this only guards against a leak), then frees the native session.
   */
  async retire(boundMs = 120_000): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    if (this.#inflight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => (this.#drained = r)),
        new Promise<void>((r) => {
          timer = setTimeout(r, boundMs);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
    }
    await this.#batcher.idle();
    await this.#session.release();
    this.#sessionFreed = true;
  }

  async #run(inputs: TensorMap, outputNames: string[]): Promise<TensorMap> {
    const t0 = performance.now();
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(inputs)) {
      const tensor = new ort.Tensor(codecOf(t.datatype).ort as "float32", t.data as Float32Array, t.shape);
      // onnxruntime-node's binding reads a Float16Array as 0 bytes (microsoft/onnxruntime#32323):
      // hand it the same bytes as the Uint16Array it has always accepted.
      if (t.datatype === "FP16") {
        const half = t.data as Uint16Array;
        (tensor as unknown as { cpuData: Uint16Array }).cpuData = new Uint16Array(
          half.buffer,
          half.byteOffset,
          half.length,
        );
      }
      feeds[name] = tensor;
    }
    let results: ort.InferenceSession.OnnxValueMapType;
    const t1 = performance.now();
    try {
      results = await this.#session.run(feeds, outputNames);
    } catch (err) {
      throw new InferenceInputError(String((err as Error).message ?? err));
    }
    const t2 = performance.now();
    const out: TensorMap = {};
    for (const name of outputNames) {
      const value = results[name] as ort.Tensor;
      out[name] = {
        datatype: v2FromOrt(value.type) ?? "FP32",
        shape: value.dims.slice(),
        data: value.data as TensorData,
      } satisfies HostTensor;
    }
    const t3 = performance.now();
    const last = this.#lastRun;
    last.input = (t1 - t0) / 1000;
    last.infer = (t2 - t1) / 1000;
    last.output = (t3 - t2) / 1000;
    return out;
  }
}
