import { appendFile, mkdir, open, readFile, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { finished } from "node:stream/promises";
import type { Logger } from "pino";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { uuidv7 } from "../ids.ts";
import { JsonText, type PredictionLog, type PredictionRecord } from "../ports.ts";
import { LineQueue, lineEnds } from "./line-queue.ts";
import { reportQueueDepth, type DataPlaneMetrics } from "./metrics.ts";

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
const READ_CHUNK_BYTES = 1 << 20;
const UNIQUE_VIOLATION = "23505";

// Batches travel as COPY text: Postgres parses each field once, straight into its column, with no
// planning; about 0.6x the backend CPU of INSERT ... SELECT FROM jsonb_to_recordset($1) per row.
const COLUMNS = "id, time, model, version, request_id, key_id, input_hash, inputs, outputs, latency_ms, cache_hit";
const COPY_SQL = `COPY predictions (${COLUMNS}) FROM STDIN`;
// COPY has no ON CONFLICT. A batch holding an id already written (a replay, a retry after a timeout
// that committed) fails as a whole with a unique violation and goes again through a staging table.
const CREATE_STAGING_SQL = "CREATE TEMP TABLE predictions_incoming (LIKE predictions) ON COMMIT DROP";
const COPY_STAGING_SQL = `COPY predictions_incoming (${COLUMNS}) FROM STDIN`;
const INSERT_STAGED_SQL = `INSERT INTO predictions (${COLUMNS}) SELECT ${COLUMNS} FROM predictions_incoming ON CONFLICT (id) DO NOTHING`;

const COPY_ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\ufffd" };
const COPY_SPECIAL = /[\\\t\n\r\0]/;
const COPY_SPECIALS = /[\\\t\n\r\0]/g;
const COPY_UNESCAPES: Record<string, string> = { "\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r" };

/** A value as one field of COPY's text format. Text in Postgres cannot hold NUL: it becomes U+FFFD. */
function copyText(value: unknown): string {
  if (value === null || value === undefined) return "\\N";
  const text = String(value);
  return COPY_SPECIAL.test(text) ? text.replace(COPY_SPECIALS, (c) => COPY_ESCAPES[c]!) : text;
}

/** A value as a jsonb field of COPY's text format. jsonb refuses the NUL character, even escaped. */
function copyJson(value: unknown): string {
  let json = value instanceof JsonText ? value.text : JSON.stringify(value) ?? "null";
  // The common case: JSON.stringify escapes every control character. JSON text from elsewhere may
  // hold raw newlines or tabs as whitespace, which COPY must see escaped.
  if (!COPY_SPECIAL.test(json)) return json;
  if (json.includes("\\u0000")) json = json.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, "$1\\ufffd");
  return json.replace(COPY_SPECIALS, (c) => COPY_ESCAPES[c]!);
}

let isoSecond = Number.NaN;
let isoPrefix = "";

/** date.toISOString(), reusing the text up to the second: toISOString costs about 0.5-1 µs a call. */
function isoTime(date: Date): string {
  const ms = date.getTime();
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoPrefix = date.toISOString().slice(0, -4); // throws on an invalid date, as toISOString does
    isoSecond = second;
  }
  const milli = ms - second * 1000;
  return `${isoPrefix}${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
}

/** Milliseconds to the microsecond: String() of a full-precision double was the dearest field of a line. */
function millisText(ms: number): string {
  if (!(ms >= 0 && ms < 1e9)) return String(ms); // NaN, Infinity and negatives as Postgres reads them
  const us = Math.round(ms * 1000);
  const whole = Math.floor(us / 1000);
  const frac = us - whole * 1000;
  return `${whole}.${frac < 10 ? "00" : frac < 100 ? "0" : ""}${frac}`;
}

type EncodableRecord = Omit<PredictionRecord, "time"> & { time: Date | string };

/** One row of COPY text, in COLUMNS order; throws if the record cannot be encoded. */
function copyLine(rec: EncodableRecord): string {
  const time = rec.time instanceof Date ? isoTime(rec.time) : copyText(rec.time);
  const latency = typeof rec.latencyMs === "number" ? millisText(rec.latencyMs) : "NaN";
  const inputHash = typeof rec.inputHash === "function" ? rec.inputHash() : rec.inputHash;
  return `${copyText(rec.id ?? uuidv7())}\t${time}\t${copyText(rec.model)}\t${copyText(rec.version)}\t${copyText(rec.requestId)}\t${copyText(rec.keyId)}\t${copyText(inputHash)}\t${copyJson(rec.inputs)}\t${copyJson(rec.outputs)}\t${latency}\t${rec.cacheHit ? "t" : "f"}`;
}

const unescapeCopy = (field: string) => (field === "\\N" ? null : field.replace(/\\[\\tnr]/g, (e) => COPY_UNESCAPES[e]!));

/** A COPY line as a spill-file line: the JSON record format, which every version reads. */
function spillLine(line: string): string {
  const f = line.split("\t").map(unescapeCopy);
  const latency = Number(f[9]);
  return `{"id":${JSON.stringify(f[0])},"time":${JSON.stringify(f[1])},"model":${JSON.stringify(f[2])},"version":${JSON.stringify(f[3])},` +
    `"requestId":${JSON.stringify(f[4])},"keyId":${JSON.stringify(f[5])},"inputHash":${JSON.stringify(f[6])},"inputs":${f[7]},"outputs":${f[8]},` +
    `"latencyMs":${Number.isFinite(latency) ? latency : null},"cacheHit":${f[10] === "t"}}`;
}

/** A spill-file line (JSON) as a COPY line; throws on a line torn by a crash. */
function lineFromSpill(json: string): string {
  const rec = JSON.parse(json) as EncodableRecord;
  if (rec === null || typeof rec !== "object") throw new Error("not a record");
  return copyLine(rec);
}

const idOf = (data: Buffer) => data.toString("utf8", 0, Math.max(0, data.indexOf(9 /* \t */)));

/** COPY has no query_timeout: a partition would hold it (and every later flush) until TCP gives up. */
async function copyInto(client: pg.PoolClient, sql: string, data: Buffer, timeoutMs: number): Promise<number> {
  const stream = client.query(copyFrom(sql));
  const timer = setTimeout(() => stream.destroy(new Error(`COPY timed out after ${timeoutMs} ms`)), timeoutMs);
  try {
    stream.end(data);
    await finished(stream);
  } finally {
    clearTimeout(timer);
  }
  return stream.rowCount;
}

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

const sqlState = (err: unknown) => (err as { code?: unknown }).code;

/** Retrying the same rows cannot help: SQLSTATE classes 22 (data exception) and 23 (integrity). */
function isBadData(err: unknown): boolean {
  const code = sqlState(err);
  return typeof code === "string" && /^2[23]/.test(code);
}


/**
 * The prediction log. `record()` only appends to an in-memory queue; a single background writer
 * writes batches with one COPY each. A batch that meets an id already in the table is written again
 * through a staging table with INSERT ... ON CONFLICT (id) DO NOTHING, so no row is written twice.
 * While Postgres is slow or down the queue grows to `queueMax`, then the whole queue is appended to
 * the spill file (JSONL, the record format of every version, so a rollback still replays it).
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
   * Records as lines of COPY text, encoded in record(): the request's objects die young instead of
   * surviving until the next batch, and a batch is the queue's bytes as they are.
   */
  #queue = new LineQueue();
  /** Records of the current event-loop turn, not encoded yet (see record()). */
  #pending: PredictionRecord[] = [];
  readonly #encodePendingSoon = () => this.#encodePending();
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
    reportQueueDepth(options.metrics, () => this.queueDepth);
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
    return this.#queue.length + this.#pending.length;
  }

  /** The spill file this process holds (the configured path, or a numbered sibling). */
  get spillPath(): string {
    return this.#spillPath;
  }

  get spillBytes(): number {
    return this.#spillSize;
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
        this.#o.logger.error({ id: rec.id, requestId: rec.requestId, err: (err as Error).message }, "prediction log: record not encodable; dropped");
      }
    }
    return true;
  }

  /** Stops the writer, then writes what is left to Postgres, or spills it when that fails or times out. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#encodePending();
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

  /** One unit of work: a replay batch, the spill file's truncation, or a queue batch. True if more is ready now. */
  async #step(): Promise<boolean> {
    await this.#spillChain;
    this.#encodePending();
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
    const batch = this.#queue.peek(this.#o.batchSize);
    const inserted = await this.#insert(batch.data);
    // A spill during the insert took these records to disk too; the replay will skip them by id.
    if (generation === this.#spillGeneration) this.#queue.drop(batch.lines);
    this.#o.metrics.written.inc(inserted);
    // Straight on only for a full batch: records trickling in wait for the next flush, or each
    // insert would carry the few that arrived during the last one (a transaction per handful of rows).
    return this.#queue.length >= this.#o.batchSize;
  }

  /**
   * Inserts rows; rows Postgres refuses as invalid are logged and dropped, never retried forever.
   * A refused batch is split in halves until the bad rows stand alone.
   */
  async #insert(data: Buffer): Promise<number> {
    try {
      return await this.#insertRows(data);
    } catch (err) {
      if (!isBadData(err)) throw err;
      const ends = lineEnds(data);
      if (ends.length <= 1) {
        this.#o.metrics.rejected.inc();
        this.#o.logger.error({ id: idOf(data), err: (err as Error).message }, "prediction log: record refused by Postgres; dropped");
        return 0;
      }
      const half = ends[Math.ceil(ends.length / 2) - 1]!;
      return (await this.#insert(data.subarray(0, half))) + (await this.#insert(data.subarray(half)));
    }
  }

  /** Rows written from COPY data; ids already in the table are skipped. */
  async #insertRows(data: Buffer): Promise<number> {
    const client = await this.#o.pool.connect();
    // A connection lost mid-COPY fails the COPY; without a listener it would also crash the process.
    const ignore = () => {};
    client.on("error", ignore);
    let failure: unknown;
    try {
      try {
        return await copyInto(client, COPY_SQL, data, this.#o.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS);
      } catch (err) {
        if (sqlState(err) !== UNIQUE_VIOLATION) throw err;
        return await this.#insertSkippingDuplicates(client, data);
      }
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      client.off("error", ignore);
      // A refused row leaves the connection ready; anything else (a timeout mid-COPY) may not.
      client.release(failure === undefined || isBadData(failure) ? undefined : (failure as Error));
    }
  }

  async #insertSkippingDuplicates(client: pg.PoolClient, data: Buffer): Promise<number> {
    await client.query("BEGIN");
    try {
      await client.query(CREATE_STAGING_SQL);
      await copyInto(client, COPY_STAGING_SQL, data, this.#o.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS);
      const result = await client.query(INSERT_STAGED_SQL);
      await client.query("COMMIT");
      return result.rowCount ?? 0;
    } catch (err) {
      if (isBadData(err)) await client.query("ROLLBACK");
      throw err;
    }
  }

  /** Appends the whole in-memory queue to the spill file, after any append already under way. */
  #spill(): Promise<void> {
    this.#encode();
    const records = this.#queue.takeAll();
    if (records.lines > 0) {
      this.#spillGeneration++;
      this.#spillChain = this.#spillChain.then(async () => {
        try {
          // Off record()'s call stack.
          const data = `${records.data.toString("utf8", 0, records.data.length - 1).split("\n").map(spillLine).join("\n")}\n`;
          await mkdir(dirname(this.#spillPath), { recursive: true });
          await appendFile(this.#spillPath, data, { mode: 0o600 });
          this.#spillSize += Buffer.byteLength(data);
          this.#o.metrics.spilled.inc(records.lines);
          this.#o.metrics.spillBytes.set(this.#spillSize);
        } catch (err) {
          // Disk refused too: keep the records in memory, oldest first, rather than lose them.
          this.#o.logger.error({ err: (err as Error).message, path: this.#spillPath }, "prediction log: spill failed; keeping records in memory");
          this.#queue.prepend(records.data);
        }
      });
    }
    return this.#spillChain;
  }

  async #replayBatch(): Promise<void> {
    const { records, nextOffset } = await this.#readSpill(this.#replayOffset, this.#spillSize);
    const inserted = records.length ? await this.#insert(Buffer.from(`${records.join("\n")}\n`)) : 0;
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
            records.push(lineFromSpill(line)); // a line torn by a crash must not fail its whole batch
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
