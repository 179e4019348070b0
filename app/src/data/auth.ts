import pg from "pg";
import type { Logger } from "pino";
import type { Authenticator, AuthResult, MaybePromise, Principal } from "../ports.ts";
import { hashKey, isWellFormedKey, KEYS_CHANNEL, maskKey } from "./keys.ts";
import type { DataPlaneMetrics } from "./metrics.ts";
import { retryUntilStopped } from "./retry.ts";

/** The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`, or null. */
export function extractKey(headers: Headers): string | null {
  const authorization = headers.get("authorization");
  if (authorization) {
    const match = /^bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1]!;
  }
  const apiKey = headers.get("x-api-key")?.trim();
  return apiKey ? apiKey : null;
}

/** Auth off: every caller is anonymous, on the anonymous plan, limited per client IP. */
export function anonymousAuthenticator(plan: string): Authenticator {
  const result: AuthResult = { ok: true, principal: { keyId: null, keyDisplay: null, plan } };
  return { authenticate: () => result };
}

type Lookup =
  /** `result` is built once per lookup and handed to every request the lookup answers. */
  { kind: "active"; principal: Principal; result: AuthResult } | { kind: "revoked" } | { kind: "unknown" };

const active = (principal: Principal): Lookup => ({ kind: "active", principal, result: { ok: true, principal } });

interface CacheEntry {
  lookup: Lookup;
  fetchedAt: number;
}

export interface PostgresAuthenticatorOptions {
  pool: pg.Pool;
  logger: Logger;
  metrics: DataPlaneMetrics;
  /** How long a lookup is trusted before Postgres is asked again (revocation delay). */
  cacheTtlMs: number;
  /** How long a known-good key keeps working while Postgres is unreachable. */
  staleGraceMs: number;
  /** How often `last_used_at` is written, coalesced over all requests in between. */
  lastUsedFlushMs?: number;
  /** Seconds a caller is told to wait when its key cannot be checked. */
  retryAfterSeconds?: number;
  now?: () => number;
}

const NEGATIVE_TTL_MS = 5000;
const MAX_CACHE_ENTRIES = 50_000;

/**
 * API keys checked against Postgres (sha256 lookups), with an in-memory cache so the request path
 * rarely touches the database and a Postgres blip does not 401 callers whose keys were seen
 * recently. A key that cannot be checked at all (unknown here, Postgres down) gets 503 + Retry-After:
 * refusing it as 401 would tell a valid client its key is bad.
 */
export class PostgresAuthenticator implements Authenticator {
  readonly #o: Required<Omit<PostgresAuthenticatorOptions, "now">> & { now: () => number };
  readonly #cache = new Map<string, CacheEntry>();
  /** Well-formed keys seen recently and their sha256 (hex): saves the checksum and the hash per request. */
  readonly #hashes = new Map<string, string>();
  readonly #inflight = new Map<string, Promise<Lookup>>();
  /** Key id -> epoch ms of its latest use, written out every lastUsedFlushMs. */
  readonly #lastUsed = new Map<string, number>();
  readonly #flushTimer: NodeJS.Timeout;

  constructor(options: PostgresAuthenticatorOptions) {
    this.#o = { lastUsedFlushMs: 10_000, retryAfterSeconds: 5, now: Date.now, ...options };
    this.#flushTimer = setInterval(() => void this.flushLastUsed(), this.#o.lastUsedFlushMs);
    this.#flushTimer.unref();
  }

  /** Synchronous when the key's lookup is cached and fresh; a promise when Postgres is asked. */
  authenticate(headers: Headers): MaybePromise<AuthResult> {
    const key = extractKey(headers);
    if (key === null)
      return this.#reject("missing", "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'");
    let hash = this.#hashes.get(key);
    if (hash === undefined) {
      if (!isWellFormedKey(key)) return this.#reject("unknown", `unknown API key ${maskKey(key)}`);
      hash = hashKey(key).toString("hex");
      if (this.#hashes.size >= MAX_CACHE_ENTRIES) this.#hashes.clear();
      this.#hashes.set(key, hash);
    }
    const now = this.#o.now();
    const cached = this.#cache.get(hash);
    const ttl = cached?.lookup.kind === "active" ? this.#o.cacheTtlMs : Math.min(this.#o.cacheTtlMs, NEGATIVE_TTL_MS);
    if (cached && now - cached.fetchedAt < ttl) return this.#result(key, cached.lookup, now);
    return this.#fetch(key, hash, cached, now);
  }

  async #fetch(key: string, hash: string, cached: CacheEntry | undefined, now: number): Promise<AuthResult> {
    let lookup: Lookup;
    try {
      lookup = await this.#lookup(hash);
    } catch (err) {
      if (cached?.lookup.kind === "active" && now - cached.fetchedAt < this.#o.staleGraceMs) {
        lookup = cached.lookup;
      } else if (cached && cached.lookup.kind !== "active") {
        lookup = cached.lookup;
      } else {
        this.#o.logger.warn(
          { key: maskKey(key), err: (err as Error).message },
          "API key check failed: Postgres unreachable",
        );
        return {
          ok: false,
          status: 503,
          error: "API keys cannot be checked right now (database unavailable); retry shortly",
          retryAfterSeconds: this.#o.retryAfterSeconds,
        };
      }
    }
    return this.#result(key, lookup, now);
  }

  #result(key: string, lookup: Lookup, now: number): AuthResult {
    if (lookup.kind === "unknown") return this.#reject("unknown", `unknown API key ${maskKey(key)}`);
    if (lookup.kind === "revoked") return this.#reject("revoked", `API key ${maskKey(key)} has been revoked`);
    this.#lastUsed.set(lookup.principal.keyId!, now);
    return lookup.result;
  }

  /** Forgets every cached lookup (e.g. after revocations may have been missed). */
  invalidate(): void {
    this.#cache.clear();
  }

  /** Forgets the cached lookup of one key, so its revocation applies on its next request. */
  forgetKey(keyId: string): void {
    for (const [hash, entry] of this.#cache) {
      if (entry.lookup.kind === "active" && entry.lookup.principal.keyId === keyId) this.#cache.delete(hash);
    }
  }

  /** Writes the coalesced `last_used_at` values; failures keep them for the next round. */
  async flushLastUsed(): Promise<void> {
    if (this.#lastUsed.size === 0) return;
    const batch = [...this.#lastUsed];
    this.#lastUsed.clear();
    try {
      await this.#o.pool.query(
        `UPDATE api_keys AS k SET last_used_at = GREATEST(k.last_used_at, u.t)
           FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, t) WHERE k.id = u.id`,
        [batch.map(([id]) => id), batch.map(([, t]) => new Date(t))],
      );
    } catch (err) {
      for (const [id, t] of batch) if (!this.#lastUsed.has(id)) this.#lastUsed.set(id, t);
      this.#o.logger.debug({ err: (err as Error).message }, "last_used_at update deferred");
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#flushTimer);
    await this.flushLastUsed();
  }

  #reject(reason: "missing" | "unknown" | "revoked", error: string): AuthResult {
    this.#o.metrics.authFailures.inc({ reason });
    return { ok: false, status: 401, error };
  }

  #lookup(hash: string): Promise<Lookup> {
    const pending = this.#inflight.get(hash);
    if (pending) return pending;
    const query = this.#o.pool
      .query<{ id: string; prefix: string; plan: string; revoked: boolean }>(
        "SELECT id, prefix, plan, revoked_at IS NOT NULL AS revoked FROM api_keys WHERE key_hash = $1",
        [Buffer.from(hash, "hex")],
      )
      .then(({ rows }): Lookup => {
        const row = rows[0];
        const lookup: Lookup = !row
          ? { kind: "unknown" }
          : row.revoked
            ? { kind: "revoked" }
            : active({ keyId: row.id, keyDisplay: `${row.prefix}…`, plan: row.plan });
        if (this.#cache.size >= MAX_CACHE_ENTRIES) this.#cache.clear();
        this.#cache.set(hash, { lookup, fetchedAt: this.#o.now() });
        return lookup;
      })
      .finally(() => this.#inflight.delete(hash));
    this.#inflight.set(hash, query);
    return query;
  }
}

/**
 * LISTENs for revocations announced by `npm run keys -- revoke` (pg_notify), so every replica drops
 * a revoked key at once rather than after AUTH_CACHE_TTL_SECONDS. Reconnects with backoff; after a
 * reconnect it clears the whole cache, since announcements made while it was away are lost.
 */
export class RevocationListener {
  readonly #url: string;
  readonly #auth: PostgresAuthenticator;
  readonly #logger: Logger;
  readonly #stopped = new AbortController();
  #client: pg.Client | undefined;
  #connectedBefore = false;

  constructor(url: string, auth: PostgresAuthenticator, logger: Logger) {
    this.#url = url;
    this.#auth = auth;
    this.#logger = logger;
  }

  /** Resolves after the first attempt, connected or not. */
  start(): Promise<void> {
    return new Promise((resolve) => this.#listen(resolve));
  }

  async stop(): Promise<void> {
    this.#stopped.abort();
    await this.#client?.end().catch(() => {});
  }

  /** Connects, retrying with backoff until connected or stopped; connects again when the connection ends. */
  #listen(afterFirstAttempt?: () => void): void {
    retryUntilStopped(
      async () => {
        try {
          return await this.#connect();
        } finally {
          afterFirstAttempt?.();
        }
      },
      { minMs: 500, maxMs: 30_000, signal: this.#stopped.signal, unref: true },
    ).then(
      (client) => {
        client.on("end", () => {
          if (this.#client === client) this.#client = undefined;
          if (!this.#stopped.signal.aborted) this.#listen();
        });
        this.#client = client;
        if (this.#connectedBefore) {
          this.#auth.invalidate();
          this.#logger.info("key revocation listener reconnected; key cache cleared");
        }
        this.#connectedBefore = true;
      },
      (err: Error) => {
        if (!this.#stopped.signal.aborted)
          this.#logger.error(
            { err: err.message },
            "key revocation listener failed; revocations apply after AUTH_CACHE_TTL_SECONDS",
          );
      },
    );
  }

  async #connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.#url,
      connectionTimeoutMillis: 2000,
      keepAlive: true,
      application_name: "inferstack-key-revocations",
    });
    client.on("error", () => {}); // followed by "end", which reconnects
    client.on("notification", (msg) => {
      if (msg.payload) this.#auth.forgetKey(msg.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${KEYS_CHANNEL}`);
      // Stopped while connecting: nobody else would end this connection.
      this.#stopped.signal.throwIfAborted();
      return client;
    } catch (err) {
      void client.end().catch(() => {});
      throw err;
    }
  }
}
