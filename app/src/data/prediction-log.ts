import { appendFile, mkdir, open, readFile, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import type { Logger } from "pino";
import type pg from "pg";
import type { PredictionLog, PredictionRecord } from "../ports.ts";
import type { DataPlaneMetrics } from "./metrics.ts";

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
  /** False until the schema exists; nothing is written before (records wait or spill). */
  schemaReady?: () => boolean;
}

const MAX_BACKOFF_MS = 5000;
const READ_CHUNK_BYTES = 1 << 20;

// The batch travels as one JSON document (JSON.stringify is V8's fastest serializer, and the
// inputs/outputs arrive in Postgres already parsed as jsonb): far cheaper than 11 text arrays.
const INSERT_SQL = `
INSERT INTO predictions (id, time, model, version, request_id, key_id, input_hash, inputs, outputs, latency_ms, cache_hit)
SELECT id, time, model, version, "requestId", "keyId", "inputHash", coalesce(inputs, 'null'), coalesce(outputs, 'null'),
       coalesce("latencyMs", 'NaN'), coalesce("cacheHit", false)
  FROM jsonb_to_recordset($1::jsonb)
    AS t(id uuid, time timestamptz, model text, version text, "requestId" text, "keyId" uuid, "inputHash" text,
         inputs jsonb, outputs jsonb, "latencyMs" float8, "cacheHit" boolean)
ON CONFLICT (id) DO NOTHING`;

/** The batch as JSON text Postgres accepts as jsonb: it refuses the NUL character, even escaped. */
function batchJson(batch: string[]): string {
  const json = `[${batch.join(",")}]`;
  return json.includes("\\u0000") ? json.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, "$1\\ufffd") : json;
}

const idOf = (json: string) => /"id":"([^"]*)"/.exec(json)?.[1];

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Slot 0 is the configured path; slot k is `name.k.jsonl` next to it. */
export function spillSlotPath(path: string, slot: number): string {
  if (slot === 0) return path;
  return path.endsWith(".jsonl") ? `${path.slice(0, -".jsonl".length)}.${slot}.jsonl` : `${path}.${slot}`;
}

/**
 * Claims a spill file that no live process on this host holds, via `<file>.lock` (pid and host).
 * Processes sharing one configured path (node:cluster workers) get slots 0, 1, 2...; a slot whose
 * holder died is taken over, so its spill file is replayed by whoever restarts in its place.
 */
export async function claimSpillPath(path: string, maxSlots = 64): Promise<{ path: string; release(): Promise<void> }> {
  await mkdir(dirname(path), { recursive: true });
  const me = JSON.stringify({ pid: process.pid, host: hostname() });
  for (let slot = 0; slot < maxSlots; slot++) {
    const candidate = spillSlotPath(path, slot);
    const lock = `${candidate}.lock`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(lock, me, { flag: "wx", mode: 0o600 });
        return { path: candidate, release: () => unlink(lock).catch(() => {}) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      let holder: { pid?: unknown; host?: unknown } = {};
      try {
        holder = JSON.parse(await readFile(lock, "utf8"));
      } catch {
        // unreadable: treat as stale
      }
      // Same host and a dead pid (or our own pid: a restarted container reuses it) = stale.
      const stale = holder.host === hostname() && typeof holder.pid === "number" && (holder.pid === process.pid || !isAlive(holder.pid));
      if (!stale && typeof holder.pid === "number") break;
      await unlink(lock).catch(() => {});
    }
  }
  throw new Error(`no free spill slot for ${path} (${maxSlots} held by live processes)`);
}

/** Retrying the same rows cannot help: SQLSTATE classes 22 (data exception) and 23 (integrity). */
function isBadData(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && /^2[23]/.test(code);
}


/**
 * The prediction log. `record()` only appends to an in-memory queue; a single background writer
 * inserts batches (multi-row INSERT ... ON CONFLICT (id) DO NOTHING). While Postgres is slow or
 * down the queue grows to `queueMax`, then the whole queue is appended to the spill file (JSONL).
 *
 * Ordering: every record in the spill file is older than every record in memory, because a spill
 * always takes the whole queue, and the writer replays the file to its end before it touches the
 * queue again. A batch in flight while a spill happens is also in the file; if its insert then
 * succeeds, the replay of those ids is a no-op. Ids are idempotency keys throughout: a crash during
 * replay just replays again from the start of the file.
 */
export class PostgresPredictionLog implements PredictionLog {
  readonly #o: PredictionLogOptions;
  /**
   * Records as JSON, encoded in record(): the request's objects die young instead of surviving
   * until the next batch, and the same text serves the INSERT, the spill file and the replay.
   */
  #queue: string[] = [];
  #spillGeneration = 0;
  #spillChain: Promise<void> = Promise.resolve();
  /** Bytes of the spill file known to be fully written. */
  #spillSize = 0;
  #replayOffset = 0;
  #loop: Promise<void> | null = null;
  #stopping = false;
  #closed = false;
  #wake: (() => void) | null = null;
  #postgresDown = false;
  #spillPath: string;
  #releaseSpill: () => Promise<void> = async () => {};

  constructor(options: PredictionLogOptions) {
    this.#o = options;
    this.#spillPath = options.spillPath;
    options.metrics.queueDepth.set(0);
    options.metrics.spillBytes.set(0);
  }

  /** Picks up a spill file left by an earlier process and starts the writer. */
  async start(): Promise<void> {
    try {
      const claim = await claimSpillPath(this.#o.spillPath);
      this.#spillPath = claim.path;
      this.#releaseSpill = claim.release;
    } catch (err) {
      this.#o.logger.error({ err: (err as Error).message, path: this.#o.spillPath }, "prediction log: cannot lock a spill file; using the configured path unlocked");
    }
    try {
      this.#spillSize = (await stat(this.#spillPath)).size;
    } catch {
      this.#spillSize = 0;
    }
    this.#o.metrics.spillBytes.set(this.#spillSize);
    if (this.#spillSize > 0) this.#o.logger.info({ path: this.#spillPath, bytes: this.#spillSize }, "prediction log: replaying spill file");
    this.#loop = this.#run();
  }

  get queueDepth(): number {
    return this.#queue.length;
  }

  /** The spill file this process holds (the configured path, or a numbered sibling). */
  get spillPath(): string {
    return this.#spillPath;
  }

  get spillBytes(): number {
    return this.#spillSize;
  }

  record(rec: PredictionRecord): void {
    let json: string;
    try {
      json = JSON.stringify(rec);
    } catch (err) {
      this.#o.metrics.rejected.inc();
      this.#o.logger.error({ id: rec.id, err: (err as Error).message }, "prediction log: record not JSON-encodable; dropped");
      return;
    }
    this.#queue.push(json);
    this.#o.metrics.queueDepth.set(this.#queue.length);
    if (this.#closed || this.#queue.length > this.#o.queueMax) {
      void this.#spill();
    } else if (this.#queue.length >= this.#o.batchSize) {
      this.#wake?.();
    }
  }

  /** Stops the writer, then writes what is left to Postgres, or spills it when that fails or times out. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#stopping = true;
    this.#wake?.();
    await this.#loop;
    const deadline = Date.now() + this.#o.closeTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => { timer = setTimeout(resolve, this.#o.closeTimeoutMs, "timeout"); });
    try {
      while (Date.now() < deadline && (this.#queue.length > 0 || this.#replayOffset < this.#spillSize)) {
        if (!this.#schemaReady()) break;
        const outcome = await Promise.race([this.#step(), timedOut]);
        if (outcome === "timeout") break;
      }
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message }, "prediction log: Postgres unavailable at shutdown; spilling");
    } finally {
      clearTimeout(timer);
    }
    this.#closed = true;
    await this.#spill();
    if (this.#spillSize > 0) {
      this.#o.logger.warn({ path: this.#spillPath, bytes: this.#spillSize }, "prediction log: records left in the spill file; the next start replays them");
    }
    await this.#releaseSpill();
  }

  #schemaReady(): boolean {
    return this.#o.schemaReady?.() ?? true;
  }

  async #run(): Promise<void> {
    let backoff = this.#o.flushMs;
    while (!this.#stopping) {
      let worked = false;
      if (this.#schemaReady()) {
        try {
          worked = await this.#step();
          if (this.#postgresDown) this.#o.logger.info("prediction log: Postgres reachable again");
          this.#postgresDown = false;
          backoff = this.#o.flushMs;
        } catch (err) {
          if (!this.#postgresDown) this.#o.logger.warn({ err: (err as Error).message }, "prediction log: Postgres write failed; queueing");
          this.#postgresDown = true;
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        }
      }
      if (worked) continue;
      if (this.#stopping) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { this.#wake = null; resolve(); }, this.#postgresDown ? backoff : this.#o.flushMs);
        this.#wake = () => { clearTimeout(timer); this.#wake = null; resolve(); };
      });
    }
  }

  /** One unit of work: a replay batch, the spill file's truncation, or a queue batch. False if idle. */
  async #step(): Promise<boolean> {
    await this.#spillChain;
    if (this.#replayOffset < this.#spillSize) {
      await this.#replayBatch();
      return true;
    }
    if (this.#spillSize > 0) {
      await this.#truncateSpill();
      return true;
    }
    if (this.#queue.length === 0) return false;
    const generation = this.#spillGeneration;
    const batch = this.#queue.slice(0, this.#o.batchSize);
    const inserted = await this.#insert(batch);
    // A spill during the insert took these records to disk too; the replay will skip them by id.
    if (generation === this.#spillGeneration) this.#queue.splice(0, batch.length);
    this.#o.metrics.queueDepth.set(this.#queue.length);
    this.#o.metrics.written.inc(inserted);
    return true;
  }

  /** Inserts rows; rows Postgres refuses as invalid are logged and dropped, never retried forever. */
  async #insert(batch: string[]): Promise<number> {
    try {
      return await this.#insertRows(batch);
    } catch (err) {
      if (!isBadData(err) || batch.length === 1) {
        if (isBadData(err)) {
          this.#o.metrics.rejected.inc();
          this.#o.logger.error({ id: idOf(batch[0]!), err: (err as Error).message }, "prediction log: record refused by Postgres; dropped");
          return 0;
        }
        throw err;
      }
      let inserted = 0;
      for (const rec of batch) inserted += await this.#insert([rec]);
      return inserted;
    }
  }

  async #insertRows(batch: string[]): Promise<number> {
    const result = await this.#o.pool.query(INSERT_SQL, [batchJson(batch)]);
    return result.rowCount ?? 0;
  }

  /** Appends the whole in-memory queue to the spill file, after any append already under way. */
  #spill(): Promise<void> {
    const records = this.#queue;
    if (records.length > 0) {
      this.#queue = [];
      this.#spillGeneration++;
      this.#o.metrics.queueDepth.set(0);
      const data = `${records.join("\n")}\n`;
      this.#spillChain = this.#spillChain.then(async () => {
        try {
          await mkdir(dirname(this.#spillPath), { recursive: true });
          await appendFile(this.#spillPath, data, { mode: 0o600 });
          this.#spillSize += Buffer.byteLength(data);
          this.#o.metrics.spilled.inc(records.length);
          this.#o.metrics.spillBytes.set(this.#spillSize);
        } catch (err) {
          // Disk refused too: keep the records in memory, oldest first, rather than lose them.
          this.#o.logger.error({ err: (err as Error).message, path: this.#spillPath }, "prediction log: spill failed; keeping records in memory");
          this.#queue = records.concat(this.#queue);
          this.#o.metrics.queueDepth.set(this.#queue.length);
        }
      });
    }
    return this.#spillChain;
  }

  async #replayBatch(): Promise<void> {
    const { records, nextOffset } = await this.#readSpill(this.#replayOffset, this.#spillSize);
    const inserted = records.length ? await this.#insert(records) : 0;
    this.#replayOffset = nextOffset;
    this.#o.metrics.replayed.inc(inserted);
    this.#o.metrics.written.inc(inserted);
  }

  /** Reads up to `batchSize` whole lines from `offset`; an unparsable line (torn by a crash) is skipped. */
  async #readSpill(offset: number, end: number): Promise<{ records: string[]; nextOffset: number }> {
    const file = await open(this.#spillPath, "r");
    try {
      let chunkSize = READ_CHUNK_BYTES;
      for (;;) {
        const length = Math.min(chunkSize, end - offset);
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await file.read(buffer, 0, length, offset);
        const text = buffer.subarray(0, bytesRead);
        const lastNewline = text.lastIndexOf(0x0a);
        if (lastNewline < 0) {
          if (offset + bytesRead >= end) return { records: [], nextOffset: end }; // torn tail: nothing usable
          chunkSize *= 2;
          continue;
        }
        const records: string[] = [];
        let consumed = 0;
        for (const line of text.subarray(0, lastNewline).toString("utf8").split("\n")) {
          if (records.length >= this.#o.batchSize) break;
          consumed += Buffer.byteLength(line) + 1;
          if (line === "") continue;
          try {
            JSON.parse(line); // a line torn by a crash must not fail its whole batch
            records.push(line);
          } catch {
            this.#o.metrics.rejected.inc();
            this.#o.logger.error({ offset, path: this.#spillPath }, "prediction log: unreadable spill line skipped");
          }
        }
        return { records, nextOffset: Math.min(offset + consumed, end) };
      }
    } finally {
      await file.close();
    }
  }

  /** Replay reached the end: empty the file, unless an append is under way (then replay that first). */
  #truncateSpill(): Promise<void> {
    this.#spillChain = this.#spillChain.then(async () => {
      if (this.#replayOffset < this.#spillSize) return;
      await truncate(this.#spillPath, 0);
      this.#o.logger.info({ path: this.#spillPath, bytes: this.#spillSize }, "prediction log: spill file replayed");
      this.#spillSize = 0;
      this.#replayOffset = 0;
      this.#o.metrics.spillBytes.set(0);
    });
    return this.#spillChain;
  }
}
