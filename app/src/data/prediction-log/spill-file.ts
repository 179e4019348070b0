/**
 * The spill file: where the prediction log puts records while Postgres cannot take them (JSONL,
 * mode 0600), and the lock that gives each process a file of its own.
 *
 * Locking: `<file>.lock` holds the holder's pid and host, created with O_EXCL. Processes sharing one
 * configured path (node:cluster workers) get slots 0, 1, 2...: slot 0 is the path itself, slot k is
 * `name.k.jsonl` next to it. A lock whose holder died on this host is stale and taken over, so the
 * dead holder's records are replayed by whoever restarts in its place. A pid cannot be checked on
 * another host, so replicas on different hosts must not share a path.
 */
import { appendFile, mkdir, readFile, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { spillText } from "./copy-encoding.ts";

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

/** Claims the first spill slot that no live process on this host holds (see the top of this file). */
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
      const stale =
        holder.host === hostname() &&
        typeof holder.pid === "number" &&
        (holder.pid === process.pid || !isAlive(holder.pid));
      if (!stale && typeof holder.pid === "number") break;
      await unlink(lock).catch(() => {});
    }
  }
  throw new Error(`no free spill slot for ${path} (${maxSlots} held by live processes)`);
}

/** This process's spill file. Its size counts only bytes known to be fully written. */
export class SpillFile {
  readonly path: string;
  #size: number;
  readonly #release: () => Promise<void>;

  private constructor(path: string, size: number, release: () => Promise<void>) {
    this.path = path;
    this.#size = size;
    this.#release = release;
  }

  /** Claims a slot for `configuredPath`; if that fails, uses the path itself, unlocked, and says so. */
  static async claim(configuredPath: string, logger: Logger): Promise<SpillFile> {
    let path = configuredPath;
    let release = async () => {};
    try {
      ({ path, release } = await claimSpillPath(configuredPath));
    } catch (err) {
      logger.error(
        { err: (err as Error).message, path: configuredPath },
        "prediction log: cannot lock a spill file; using the configured path unlocked",
      );
    }
    const size = await stat(path).then(
      (s) => s.size,
      () => 0,
    );
    return new SpillFile(path, size, release);
  }

  get size(): number {
    return this.#size;
  }

  /** Appends COPY lines in the spill format; returns the bytes written. */
  async append(copyLines: Buffer): Promise<number> {
    const text = spillText(copyLines);
    await mkdir(dirname(this.path), { recursive: true });
    await appendFile(this.path, text, { mode: 0o600 });
    const bytes = Buffer.byteLength(text);
    this.#size += bytes;
    return bytes;
  }

  async truncate(): Promise<void> {
    await truncate(this.path, 0);
    this.#size = 0;
  }

  /** Frees the slot for the next process. */
  release(): Promise<void> {
    return this.#release();
  }
}
