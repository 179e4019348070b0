/**
 * Per model version counters behind Triton's statistics extension (GET /v2/models/.../stats), in
 * the extension's own terms: requests (success, fail, queue, cache hit/miss) and executions
 * (compute input/infer/output, per batch size). Plain numbers bumped on the request path; the
 * JSON is only built when asked for. They live as long as the loaded version, as in Triton.
 */
import type { BatchStats } from "./batcher.ts";

export interface DurationStat {
  count: number;
  ns: number;
}

interface BatchSizeStat {
  count: number;
  inputNs: number;
  inferNs: number;
  outputNs: number;
}

const duration = (): DurationStat => ({ count: 0, ns: 0 });
const NS_PER_MS = 1e6;
const NS_PER_S = 1e9;

export class ModelStats {
  /** performance.now() of the last request (a clock read is costly on some VMs: none taken here). */
  #lastInference = 0;
  /** Rows executed by successful requests (cache hits excluded), as Triton counts inferences. */
  inferenceCount = 0;
  executionCount = 0;
  readonly success = duration();
  readonly fail = duration();
  readonly queue = duration();
  readonly computeInput = duration();
  readonly computeInfer = duration();
  readonly computeOutput = duration();
  readonly cacheHit = duration();
  readonly cacheMiss = duration();
  readonly #batches = new Map<number, BatchSizeStat>();

  /** One request finished at `now` (performance.now()), after its model was resolved at `started`. */
  request(ok: boolean, started: number, now: number): void {
    const d = ok ? this.success : this.fail;
    d.count++;
    d.ns += (now - started) * NS_PER_MS;
    this.#lastInference = now;
  }

  /** Milliseconds since the epoch of the last request; 0 before the first. */
  get lastInferenceMs(): number {
    return this.#lastInference === 0 ? 0 : Math.round(performance.timeOrigin + this.#lastInference);
  }

  /** One response cache lookup (a hit is also a success: see request()). */
  cacheLookup(hit: boolean, ms: number): void {
    const d = hit ? this.cacheHit : this.cacheMiss;
    d.count++;
    d.ns += ms * NS_PER_MS;
  }

  /** One execution of the batcher: every request in it is charged the execution's durations. */
  batch(s: BatchStats): void {
    if (!s.ok) return;
    this.executionCount++;
    this.inferenceCount += s.rows;
    const inputNs = (s.inputSeconds ?? 0) * NS_PER_S;
    const inferNs = (s.inferSeconds ?? s.runSeconds) * NS_PER_S;
    const outputNs = (s.outputSeconds ?? 0) * NS_PER_S;
    for (const q of s.queueSeconds) this.queue.ns += q * NS_PER_S;
    this.computeInput.count += s.requests;
    this.computeInput.ns += inputNs * s.requests;
    this.computeInfer.count += s.requests;
    this.computeInfer.ns += inferNs * s.requests;
    this.computeOutput.count += s.requests;
    this.computeOutput.ns += outputNs * s.requests;
    let b = this.#batches.get(s.rows);
    if (!b) {
      b = { count: 0, inputNs: 0, inferNs: 0, outputNs: 0 };
      this.#batches.set(s.rows, b);
    }
    b.count++;
    b.inputNs += inputNs;
    b.inferNs += inferNs;
    b.outputNs += outputNs;
  }

  /** Triton's `$model_stat` object (every member present: perf_analyzer reads them unchecked). */
  toTriton(name: string, version: number) {
    const out = (d: DurationStat) => ({ count: d.count, ns: Math.round(d.ns) });
    return {
      name,
      version: String(version),
      last_inference: this.lastInferenceMs,
      inference_count: this.inferenceCount,
      execution_count: this.executionCount,
      inference_stats: {
        success: out(this.success),
        fail: out(this.fail),
        // Triton counts a queue passage per successful request, cache hits included.
        queue: { count: this.success.count, ns: Math.round(this.queue.ns) },
        compute_input: out(this.computeInput),
        compute_infer: out(this.computeInfer),
        compute_output: out(this.computeOutput),
        cache_hit: out(this.cacheHit),
        cache_miss: out(this.cacheMiss),
      },
      response_stats: {},
      batch_stats: [...this.#batches]
        .sort((a, b) => a[0] - b[0])
        .map(([size, b]) => ({
          batch_size: size,
          compute_input: { count: b.count, ns: Math.round(b.inputNs) },
          compute_infer: { count: b.count, ns: Math.round(b.inferNs) },
          compute_output: { count: b.count, ns: Math.round(b.outputNs) },
        })),
      memory_usage: [],
    };
  }
}
