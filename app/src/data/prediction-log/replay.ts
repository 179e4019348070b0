/**
 * Reading a spill file back as COPY lines, from an offset, a batch at a time. The writer replays
 * the file from start to end in order before it writes anything newer, so the table receives
 * records in the order they were served; a line torn by a crash is skipped, not fatal.
 */
import { open } from "node:fs/promises";
import { lineFromSpill } from "./copy-encoding.ts";

const READ_CHUNK_BYTES = 1 << 20;

export interface SpillBatch {
  /** COPY lines, each ending in "\n"; empty when every line read was unreadable. */
  data: Buffer;
  lines: number;
  /** Where the next batch starts. */
  nextOffset: number;
}

/**
 * Reads up to `maxLines` whole lines of `path` between `offset` and `end` (the bytes known to be
 * written). A line that does not parse calls `onUnreadable` and is skipped.
 */
export async function readSpillBatch(
  path: string,
  offset: number,
  end: number,
  maxLines: number,
  onUnreadable: (offset: number) => void,
): Promise<SpillBatch> {
  const file = await open(path, "r");
  try {
    let chunkSize = READ_CHUNK_BYTES;
    for (;;) {
      const length = Math.min(chunkSize, end - offset);
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await file.read(buffer, 0, length, offset);
      const text = buffer.subarray(0, bytesRead);
      const lastNewline = text.lastIndexOf(0x0a);
      if (lastNewline < 0) {
        if (offset + bytesRead >= end) return { data: Buffer.alloc(0), lines: 0, nextOffset: end }; // torn tail: nothing usable
        chunkSize *= 2;
        continue;
      }
      const lines: string[] = [];
      let consumed = 0;
      for (const line of text.subarray(0, lastNewline).toString("utf8").split("\n")) {
        if (lines.length >= maxLines) break;
        consumed += Buffer.byteLength(line) + 1;
        if (line === "") continue;
        try {
          lines.push(lineFromSpill(line)); // a line torn by a crash must not fail its whole batch
        } catch {
          onUnreadable(offset);
        }
      }
      const data = lines.length ? Buffer.from(`${lines.join("\n")}\n`) : Buffer.alloc(0);
      return { data, lines: lines.length, nextOffset: Math.min(offset + consumed, end) };
    }
  } finally {
    await file.close();
  }
}
