/**
 * The prediction log: the in-memory queue, the single background writer and shutdown. Its parts:
 * `copy-encoding.ts` (the record as COPY text and as a spill line), `copy-insert.ts` (COPY into
 * Postgres, idempotent by id), `spill-file.ts` (the spill file and its lock) and `replay.ts`
 * (reading the spill file back).
 */

import type pg from "pg";
import type { Logger } from "pino";
import type { PredictionLog, PredictionRecord } from "../../ports.ts";
import { LineQueue } from "../line-queue.ts";
import { type DataPlaneMetrics, reportQueueDepth } from "../metrics.ts";
import { retryUntilStopped } from "../retry.ts";
import { copyLine } from "./copy-encoding.ts";
import { type CopyInsertOptions, insertCopyLines } from "./copy-insert.ts";
import { readSpillBatch } from "./replay.ts";
import { SpillFile } from "./spill-file.ts";

export { claimSpillPath, spillSlotPath } from "./spill-file.ts";

export interface PredictionLogOptions {
  pool: pg.Pool;
  logger: Logger;
  metrics: DataPlaneMetrics;
  spillPath: string;
  /** Records held in memory before they are spilled to disk. */
  queueMax: number;
  batchSize: number;
  flushMs: number;
  /** How long close() keeps trying Postgres before it spills what is left. */
  closeTimeoutMs: number;
  /** A COPY not done by then fails (its connection is dropped) and its rows are retried or spilled. */
  writeTimeoutMs?: number;
  /** False until the schema exists; nothing is written before (records wait or spill). */
  schemaReady?: () => boolean;
}

const MAX_BACKOFF_MS = 5000;
const DEFAULT_WRITE_TIMEOUT_MS = 10_000;

/**
 * `record()` only appends to an in-memory queue; a single background writer writes batches with one
 * COPY each. While Postgres is slow or down the queue grows to `queueMax`, then the whole queue is
 * appended to the spill file.
 *
 * Ordering: every record in the spill file is older than every record in memory, because a spill
 * always takes the whole queue, and the writer replays the file to its end before it touches the
 * queue again. A batch in flight while a spill happens is also in the file; if its insert then
 * succeeds, the replay of those ids is a no-op. Ids are idempotency keys throughout: a crash during
 * replay just replays again from the start of the file.
 */
export class PostgresPredictionLog implements PredictionLog {
  readonly #o: PredictionLogOptions;
  readonly #insert: CopyInsertOptions;
  /**
   * Records as lines of COPY text: the request's objects die young instead of surviving until the
   * next batch, and a batch is the queue's bytes as they are.
   */
  #queue = new LineQueue();
  /** Records of the current event-loop turn, not encoded yet (see record()). */
  #pending: PredictionRecord[] = [];
  readonly #encodePendingSoon = () => this.#encodePending();
  #spillFile: SpillFile | undefined;
  #claiming: Promise<SpillFile> | undefined;
  /** Appends and truncations of the spill file, one at a time and in order. */
  #spillChain: Promise<void> = Promise.resolve();
  #spillGeneration = 0;
  #replayOffset = 0;
  #loop: Promise<void> | null = null;
  #stopping = false;
  readonly #stopWriter = new AbortController();
  #closed = false;
  #wake: (() => void) | null = null;
  #postgresDown = false;

  constructor(options: PredictionLogOptions) {
    this.#o = options;
    this.#insert = {
      pool: options.pool,
      timeoutMs: options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS,
      onRejected: (id, err) => {
        options.metrics.rejected.inc();
        options.logger.error({ id, err: err.message }, "prediction log: record refused by Postgres; dropped");
      },
    };
    reportQueueDepth(options.metrics, () => this.queueDepth);
    options.metrics.spillBytes.set(0);
  }

  /** Picks up a spill file left by an earlier process and starts the writer. */
  async start(): Promise<void> {
    const file = await this.#claimSpillFile();
    this.#o.metrics.spillBytes.set(file.size);
    if (file.size > 0)
      this.#o.logger.info({ path: file.path, bytes: file.size }, "prediction log: replaying spill file");
    this.#loop = this.#run();
  }

  #claimSpillFile(): Promise<SpillFile> {
    this.#claiming ??= SpillFile.claim(this.#o.spillPath, this.#o.logger).then((file) => (this.#spillFile = file));
    return this.#claiming;
  }

  get queueDepth(): number {
    return this.#queue.length + this.#pending.length;
  }

  /** The spill file this process holds (the configured path, or a numbered sibling). */
  get spillPath(): string {
    return this.#spillFile?.path ?? this.#o.spillPath;
  }

  get spillBytes(): number {
    return this.#spillFile?.size ?? 0;
  }

  /**
   * Takes the record. It is encoded (its id made and its input hash computed, when left to the log)
   * with the rest of this event-loop turn's records once the turn ends: after the responses have
   * been written, and still soon enough for the records to die young.
   */
  record(rec: PredictionRecord): void {
    if (this.#pending.push(rec) === 1) setImmediate(this.#encodePendingSoon);
    else if (this.#pending.length + this.#queue.length > this.#o.queueMax) this.#encodePending(); // the bound holds within a turn too
  }

  /** Encodes this turn's records, then spills past the bound or wakes the writer for a full batch. */
  #encodePending(): void {
    if (!this.#encode()) return;
    if (this.#closed || this.#queue.length > this.#o.queueMax) {
      void this.#spill();
    } else if (this.#queue.length >= this.#o.batchSize) {
      this.#wake?.();
    }
  }

  /** Moves this turn's records into the queue as COPY lines; false if there were none. */
  #encode(): boolean {
    const pending = this.#pending;
    if (pending.length === 0) return false;
    this.#pending = [];
    for (const rec of pending) {
      try {
        this.#queue.push(copyLine(rec));
      } catch (err) {
        this.#o.metrics.rejected.inc();
        // The id may not exist yet (the log makes it while encoding); the request id always does.
        this.#o.logger.error(
          { id: rec.id, requestId: rec.requestId, err: (err as Error).message },
          "prediction log: record not encodable; dropped",
        );
      }
    }
    return true;
  }

  /** Stops the writer, then writes what is left to Postgres, or spills it when that fails or times out. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#encodePending();
    this.#stopping = true;
    this.#stopWriter.abort();
    this.#wake?.();
    await this.#loop;
    const deadline = Date.now() + this.#o.closeTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(resolve, this.#o.closeTimeoutMs, "timeout");
    });
    try {
      while (Date.now() < deadline && (this.#queue.length > 0 || this.#replayOffset < this.spillBytes)) {
        if (!this.#schemaReady()) break;
        const outcome = await Promise.race([this.#step(), timedOut]);
        if (outcome === "timeout") break;
      }
    } catch (err) {
      this.#o.logger.warn(
        { err: (err as Error).message },
        "prediction log: Postgres unavailable at shutdown; spilling",
      );
    } finally {
      clearTimeout(timer);
    }
    this.#closed = true;
    await this.#spill();
    const file = await this.#claimSpillFile();
    if (file.size > 0) {
      this.#o.logger.warn(
        { path: file.path, bytes: file.size },
        "prediction log: records left in the spill file; the next start replays them",
      );
    }
    await file.release();
  }

  #schemaReady(): boolean {
    return this.#o.schemaReady?.() ?? true;
  }

  /** The writer: a step at each flush tick, or at once while full batches wait; backs off while Postgres fails. */
  async #run(): Promise<void> {
    while (!this.#stopping) {
      let more = false;
      if (this.#schemaReady()) {
        try {
          more = await retryUntilStopped(() => this.#step(), {
            minMs: 2 * this.#o.flushMs,
            maxMs: MAX_BACKOFF_MS,
            signal: this.#stopWriter.signal,
            onFailedAttempt: (err) => {
              if (!this.#postgresDown)
                this.#o.logger.warn({ err: err.message }, "prediction log: Postgres write failed; queueing");
              this.#postgresDown = true;
            },
          });
          if (this.#postgresDown) this.#o.logger.info("prediction log: Postgres reachable again");
          this.#postgresDown = false;
        } catch (err) {
          if (this.#stopping) break;
          // Not an outage but a fault of the writer itself: reported, and tried again at the next tick.
          this.#o.logger.error({ err: (err as Error).message }, "prediction log: write failed");
        }
      }
      if (more) continue;
      if (this.#stopping) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#wake = null;
          resolve();
        }, this.#o.flushMs);
        this.#wake = () => {
          clearTimeout(timer);
          this.#wake = null;
          resolve();
        };
      });
    }
  }

  /** One unit of work: a replay batch, the spill file's truncation, or a queue batch. True if more is ready now. */
  async #step(): Promise<boolean> {
    await this.#spillChain;
    const file = await this.#claimSpillFile();
    this.#encodePending();
    if (this.#replayOffset < file.size) {
      await this.#replayBatch(file);
      return true;
    }
    if (file.size > 0) {
      await this.#truncateSpill(file);
      return true;
    }
    if (this.#queue.length === 0) return false;
    const generation = this.#spillGeneration;
    const batch = this.#queue.peek(this.#o.batchSize);
    const inserted = await insertCopyLines(batch.data, this.#insert);
    // A spill during the insert took these records to disk too; the replay will skip them by id.
    if (generation === this.#spillGeneration) this.#queue.drop(batch.lines);
    this.#o.metrics.written.inc(inserted);
    // Straight on only for a full batch: records trickling in wait for the next flush, or each
    // insert would carry the few that arrived during the last one (a transaction per handful of rows).
    return this.#queue.length >= this.#o.batchSize;
  }

  /** Appends the whole in-memory queue to the spill file, after any append already under way. */
  #spill(): Promise<void> {
    this.#encode();
    const records = this.#queue.takeAll();
    if (records.lines > 0) {
      this.#spillGeneration++;
      this.#spillChain = this.#spillChain.then(async () => {
        const file = await this.#claimSpillFile();
        try {
          await file.append(records.data); // off record()'s call stack
          this.#o.metrics.spilled.inc(records.lines);
          this.#o.metrics.spillBytes.set(file.size);
        } catch (err) {
          // Disk refused too: keep the records in memory, oldest first, rather than lose them.
          this.#o.logger.error(
            { err: (err as Error).message, path: file.path },
            "prediction log: spill failed; keeping records in memory",
          );
          this.#queue.prepend(records.data);
        }
      });
    }
    return this.#spillChain;
  }

  async #replayBatch(file: SpillFile): Promise<void> {
    const batch = await readSpillBatch(file.path, this.#replayOffset, file.size, this.#o.batchSize, (offset) => {
      this.#o.metrics.rejected.inc();
      this.#o.logger.error({ offset, path: file.path }, "prediction log: unreadable spill line skipped");
    });
    const inserted = batch.lines ? await insertCopyLines(batch.data, this.#insert) : 0;
    this.#replayOffset = batch.nextOffset;
    this.#o.metrics.replayed.inc(inserted);
    this.#o.metrics.written.inc(inserted);
  }

  /** Replay reached the end: empty the file, unless an append is under way (then replay that first). */
  #truncateSpill(file: SpillFile): Promise<void> {
    this.#spillChain = this.#spillChain.then(async () => {
      if (this.#replayOffset < file.size) return;
      const bytes = file.size;
      await file.truncate();
      this.#o.logger.info({ path: file.path, bytes }, "prediction log: spill file replayed");
      this.#replayOffset = 0;
      this.#o.metrics.spillBytes.set(0);
    });
    return this.#spillChain;
  }
}
