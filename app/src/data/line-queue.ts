/**
 * A FIFO of text lines held as UTF-8 bytes in large Buffers, outside the JS heap. The prediction log
 * queues thousands of records between batches: as JS strings they would survive young-generation
 * GCs and be copied by each one, then be joined and encoded again for COPY. Here a record is encoded
 * once, the garbage collector never walks the queue, and a batch is usually a slice of one Buffer.
 *
 * Lines must not contain "\n" (COPY text escapes it), so a batch's bytes split back into lines there.
 */

const DEFAULT_CHUNK_BYTES = 1 << 20;

interface Segment {
  buf: Buffer;
  used: number;
  /** Byte offset just past each line's "\n". */
  ends: number[];
  /** Lines at the front already dropped. */
  dropped: number;
}

export interface LineBatch {
  /** The lines, each followed by "\n". */
  data: Buffer;
  lines: number;
}

/** Offsets just past each "\n" in `data`. */
export function lineEnds(data: Buffer): number[] {
  const ends: number[] = [];
  for (let i = data.indexOf(0x0a); i !== -1; i = data.indexOf(0x0a, i + 1)) ends.push(i + 1);
  return ends;
}

export class LineQueue {
  readonly #chunkBytes: number;
  #segments: Segment[] = [];
  /** A fully dropped chunk kept for the next segment: each fresh one adds to V8's external memory count and brings GC sooner. */
  #spare: Buffer | null = null;
  #length = 0;

  constructor(chunkBytes = DEFAULT_CHUNK_BYTES) {
    this.#chunkBytes = chunkBytes;
  }

  get length(): number {
    return this.#length;
  }

  push(line: string): void {
    const worstCase = line.length * 3 + 1; // UTF-8 bytes per UTF-16 unit, at most, and the newline
    let seg = this.#segments.at(-1);
    if (!seg || seg.used + worstCase > seg.buf.length) {
      const size = Math.max(this.#chunkBytes, worstCase);
      const spare = this.#spare !== null && this.#spare.length >= size ? this.#spare : null;
      this.#spare = null;
      seg = { buf: spare ?? Buffer.allocUnsafeSlow(size), used: 0, ends: [], dropped: 0 };
      this.#segments.push(seg);
    }
    seg.used += seg.buf.write(line, seg.used);
    seg.buf[seg.used++] = 0x0a;
    seg.ends.push(seg.used);
    this.#length++;
  }

  /**
   * The first `max` lines (fewer if the queue is shorter), still queued; empty data when the queue
   * is. The bytes stay valid while newer lines are pushed, until the lines are dropped.
   */
  peek(max: number): LineBatch {
    const slices: Buffer[] = [];
    let lines = 0;
    for (const seg of this.#segments) {
      if (lines >= max) break;
      const take = Math.min(max - lines, seg.ends.length - seg.dropped);
      if (take <= 0) continue;
      const start = seg.dropped === 0 ? 0 : seg.ends[seg.dropped - 1]!;
      slices.push(seg.buf.subarray(start, seg.ends[seg.dropped + take - 1]));
      lines += take;
    }
    return { data: slices.length === 1 ? slices[0]! : Buffer.concat(slices), lines };
  }

  /** Removes the first `count` lines; slices peek() returned of them may be overwritten from now on. */
  drop(count: number): void {
    let left = Math.min(count, this.#length);
    this.#length -= left;
    while (left > 0) {
      const seg = this.#segments[0]!;
      const take = Math.min(left, seg.ends.length - seg.dropped);
      seg.dropped += take;
      left -= take;
      // The last segment stays for the lines still to come. A dropped chunk is reused: peek()'s
      // slices of it belonged to batches the caller has finished with, since it dropped them.
      if (seg.dropped === seg.ends.length && this.#segments.length > 1) {
        this.#segments.shift();
        if (seg.buf.length === this.#chunkBytes) this.#spare = seg.buf;
      }
    }
  }

  /** Removes and returns every line. */
  takeAll(): LineBatch {
    const batch = this.peek(this.#length);
    this.#segments = [];
    this.#length = 0;
    return batch;
  }

  /** Puts lines (as from takeAll) back at the front, oldest first. */
  prepend(data: Buffer): void {
    const ends = lineEnds(data);
    if (ends.length === 0) return;
    this.#segments.unshift({ buf: data, used: data.length, ends, dropped: 0 });
    this.#length += ends.length;
  }
}
