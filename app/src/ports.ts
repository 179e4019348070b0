/**
 * Ports between the HTTP layer and the data plane. The HTTP adapters depend only on these
 * interfaces; `createDataPlane` (`data/index.ts`, called by `server.ts`) wires the implementations:
 * Postgres and Redis where `DATABASE_URL` / `REDIS_URL` are set, per-process ones (anonymous
 * callers, in-memory rate limits) or none (no cache, no prediction log) otherwise.
 */

/** Who is calling. `keyId` is null when auth is off. */
export interface Principal {
  keyId: string | null;
  /** Masked key for logs, e.g. `isk_live_ab12…`; never the key itself. */
  keyDisplay: string | null;
  plan: string;
}

export type AuthResult =
  | { ok: true; principal: Principal }
  /**
   * 401: missing, unknown or revoked key. 503: the key could not be checked (Postgres unreachable
   * and the key not in the in-memory cache); answer 503 with `Retry-After: retryAfterSeconds`.
   */
  | { ok: false; status: 401 | 503; error: string; retryAfterSeconds?: number };

/**
 * A result now, or a promise of one when it needs I/O. The data plane answers most requests from
 * memory; a promise and a microtask hop per check would be a measurable part of their cost.
 */
export type MaybePromise<T> = T | Promise<T>;

export interface Authenticator {
  /** `headers` is the request's headers (lower-case names). */
  authenticate(headers: Headers): MaybePromise<AuthResult>;
}

export interface RateLimitDecision {
  allowed: boolean;
  limit: number | null; // null = unlimited plan
  remaining: number | null;
  resetSeconds: number;
}

export interface RateLimiter {
  /** `subject` is the key id when auth is on, else the client IP. */
  consume(subject: string, plan: string): MaybePromise<RateLimitDecision>;
}

export interface CacheKey {
  model: string;
  version: string;
  /** Canonical hash of the inputs (sha256 over a canonical JSON encoding). */
  inputHash: string;
}

export interface ResponseCache {
  get(key: CacheKey): Promise<unknown | undefined>;
  set(key: CacheKey, value: unknown, ttlSeconds: number): Promise<void>;
}

/** JSON text kept as it is (e.g. a response body exactly as sent), so it is not encoded twice. */
export class JsonText {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toJSON(): unknown {
    return JSON.parse(this.text);
  }
}

export interface PredictionRecord {
  /** Idempotency key: a UUID per served prediction; the log generates a UUIDv7 when it is absent. */
  id?: string;
  time: Date;
  model: string;
  version: string;
  requestId: string;
  keyId: string | null;
  /** The canonical input hash, or a function the log calls to compute it off the request's path. */
  inputHash: string | (() => string);
  inputs: unknown;
  /** The response body; a JsonText when it is already encoded. */
  outputs: unknown;
  latencyMs: number;
  cacheHit: boolean;
}

export interface PredictionLog {
  /** Must return immediately: never awaits I/O on the request path. */
  record(rec: PredictionRecord): void;
}

export interface DependencyStatus {
  name: string; // "postgres" | "redis"
  ok: boolean;
  detail?: string;
}

export interface DependencyProbe {
  name: string;
  check(): Promise<DependencyStatus>;
}

/** Everything the HTTP layer needs from the data plane; every field optional. */
export interface DataPlane {
  auth?: Authenticator;
  rateLimiter?: RateLimiter;
  cache?: ResponseCache;
  predictionLog?: PredictionLog;
  dependencies?: DependencyProbe[];
  /** Flush queues and close pools; called during graceful shutdown after HTTP has drained. */
  close?(): Promise<void>;
}
