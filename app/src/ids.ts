import { randomFillSync } from "node:crypto";

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));
// Random bytes are drawn in bulk, as Node does for randomUUID(): one syscall per 512 ids.
const RANDOM_BYTES_PER_ID = 10;
const entropy = Buffer.alloc(RANDOM_BYTES_PER_ID * 512);
let entropyOffset = entropy.length;
let lastMs = -1;
let timePrefix = "";

/**
 * A UUIDv7 (RFC 9562): the Unix time in ms, the version, then 74 random bits. Ids made in time
 * order land at the right edge of a btree index instead of on random pages all over it, which is
 * what makes them cheap keys for the predictions table. Measured: no dearer than randomUUID() once
 * the string is used, several times cheaper than the `uuid` package's v7.
 */
export function uuidv7(): string {
  if (entropyOffset + RANDOM_BYTES_PER_ID > entropy.length) {
    randomFillSync(entropy);
    entropyOffset = 0;
  }
  const b = entropy;
  const o = entropyOffset;
  entropyOffset += RANDOM_BYTES_PER_ID;
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    const hex = ms.toString(16).padStart(12, "0");
    timePrefix = `${hex.slice(0, 8)}-${hex.slice(8)}-7`;
  }
  return (
    timePrefix +
    HEX[b[o]! & 0x0f]!.slice(1) +
    HEX[b[o + 1]!] +
    "-" +
    HEX[(b[o + 2]! & 0x3f) | 0x80] +
    HEX[b[o + 3]!] +
    "-" +
    HEX[b[o + 4]!] +
    HEX[b[o + 5]!] +
    HEX[b[o + 6]!] +
    HEX[b[o + 7]!] +
    HEX[b[o + 8]!] +
    HEX[b[o + 9]!]
  );
}
