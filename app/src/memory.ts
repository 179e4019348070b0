/**
 * The container's memory limit (cgroup v2 memory.max or v1 memory.limit_in_bytes, as libuv reads
 * them) and what the API sizes from it: V8's heap for worker processes and the connection cap.
 */
import { getHeapStatistics } from "node:v8";

/** Bytes, or undefined when the process runs without a memory limit. */
export function containerMemoryLimit(): number | undefined {
  const limit = process.constrainedMemory();
  // Unlimited reads as 0 or as a value near 2^63 (v1's "no limit").
  return limit > 0 && limit < 2 ** 50 ? limit : undefined;
}

/** Measured: an open HTTP connection costs about 40 KiB (5,000 held connections, +200 MiB RSS). */
const BYTES_PER_CONNECTION = 40 * 1024;
const UNLIMITED_CONNECTIONS = 10_000;

/**
 * Connections one process accepts at once (more are closed on arrival): `configured`, or a quarter
 * of this process's share of the memory limit at ~40 KiB each.
 */
export function maxConnections(configured: number, processes: number, limit = containerMemoryLimit()): number {
  if (configured > 0) return configured;
  if (limit === undefined) return UNLIMITED_CONNECTIONS;
  return Math.max(100, Math.floor(limit / Math.max(1, processes) / 4 / BYTES_PER_CONNECTION));
}

export function heapLimitBytes(): number {
  return getHeapStatistics().heap_size_limit;
}
