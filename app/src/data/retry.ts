import pRetry from "p-retry";

export interface RetryOptions {
  /** Wait after the first failure; it doubles after each further one. */
  minMs: number;
  /** The wait never grows past this. */
  maxMs: number;
  /** Aborting ends the retries, during an attempt's wait too; the promise then rejects. */
  signal: AbortSignal;
  /** Let the process exit while only a wait is pending. */
  unref?: boolean;
  onFailedAttempt?: (error: Error, attempt: number) => void;
}

/**
 * Calls `attempt` until it succeeds or `signal` aborts, waiting minMs, 2 minMs, 4 minMs... (capped
 * at maxMs) between failures: how the data plane waits for Postgres to come back. No jitter: each
 * process has one of each loop, too few to stampede a recovering server. A TypeError other than a
 * network error is a bug, not an outage, and ends the retries at once (p-retry's rule).
 */
export function retryUntilStopped<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  return pRetry(attempt, {
    retries: Number.POSITIVE_INFINITY,
    factor: 2,
    // A zero wait would make the outage a busy loop.
    minTimeout: Math.max(1, options.minMs),
    maxTimeout: options.maxMs,
    randomize: false,
    signal: options.signal,
    unref: options.unref ?? false,
    onFailedAttempt: ({ error, attemptNumber }) => options.onFailedAttempt?.(error, attemptNumber),
  });
}
