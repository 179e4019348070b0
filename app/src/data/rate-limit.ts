/**
 * Per-plan rate limits: fixed windows counted in Redis by rate-limiter-flexible (one atomic Lua
 * increment per call), shared by every replica; per process (the library's insurance limiter) while
 * Redis is down.
 *
 * The lease protocol. A Redis round trip per request costs the API more CPU than the prediction, so
 * each process reserves points for a busy subject ahead of its requests. Per subject and plan a
 * process keeps `leased` (points already counted in Redis and not handed out yet), `counted` (the
 * shared count after its last reservation) and the window's end.
 *
 * 1. A request takes a leased point if there is one, synchronously, with no Redis call. A request
 *    that finds none waits; all that wait in one event-loop turn share the next reservation.
 * 2. A reservation is one increment by n = (waiting requests) + (lease), where the lease is the
 *    subject's traffic over the last `leaseHorizonMs` at its recent rate, capped at 1/16 of what is
 *    left in the window and at 1000; none on a subject's first reservation in this process, with
 *    leases off (`leaseHorizonMs` 0) or with Redis down. Redis answers the new total T; the k-th
 *    waiting request gets position T - n + k and is allowed if that is within the limit. The lease
 *    granted is what remains of n within the limit. A total no larger than n (or a window end that
 *    moved) means a new window: points leased in the old one are dropped.
 * 3. A lease is refilled once less than half of the last grant is left, before it runs dry, so a
 *    steady subject rarely waits for Redis.
 * 4. A lease unused for `leaseIdleMs`, and every lease at close(), goes back with a DECRBY that
 *    only runs while the window's key exists, and only more than a second before it ends.
 * 5. Once a reservation finds the window full, the subject is refused locally for up to a second
 *    (never past the window's end) before Redis is asked again.
 *
 * Why it holds: every point is counted in Redis before it is handed out, so a window never allows
 * more than its limit across replicas. What it costs: a lease that is never returned (a crash, a
 * return that fails) is lost to that window, which only makes the limit stricter, and for up to
 * `leaseIdleMs` a process may hold points that another replica could have used. Near the limit the
 * 1/16 cap makes leases small, so the last points are counted one request at a time. Measured
 * (docs/data-plane.md, "Leases, measured"): far fewer Redis round trips and less API CPU per request.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import type { MaybePromise, RateLimitDecision, RateLimiter } from "../ports.ts";
import type { PlanLimit } from "./config.ts";
import type { DataPlaneMetrics } from "./metrics.ts";

export interface PlanRateLimiterOptions {
  plans: Record<string, PlanLimit>;
  /** Shared counters; without it limits are per process. */
  redis?: Redis;
  keyPrefix: string;
  metrics: DataPlaneMetrics;
  logger: Logger;
  /** How much of a subject's traffic one reservation covers (default 100 ms). 0 turns leases off. */
  leaseHorizonMs?: number;
  /** A lease unused this long goes back to the shared count (default 500 ms). */
  leaseIdleMs?: number;
}

/** A lease never takes more than this share of what is left in the window. */
const LEASE_HEADROOM_SHARE = 16;
const MAX_LEASE = 1000;
/** Points are only handed back this long before the window ends, so a return cannot outlive its key. */
const RETURN_MARGIN_MS = 1000;
const STATE_IDLE_MS = 10_000;
/** A subject over its limit is refused here, without Redis, for this long before the count is asked again. */
const EXHAUSTED_RECHECK_MS = 1000;

// Hands unused points back only while the window's key still exists: DECRBY on a missing key would
// open the next window with a negative count (rate-limiter-flexible's reward() does exactly that).
const RETURN_LUA = `if redis.call('exists', KEYS[1]) == 1 then return redis.call('decrby', KEYS[1], ARGV[1]) end return false`;

type Resolve = (decision: RateLimitDecision) => void;

const resetSeconds = (state: { windowEndsAt: number }, now: number) =>
  Math.max(1, Math.ceil((state.windowEndsAt - now) / 1000));

/** What this process knows about one subject's window. */
interface Subject {
  plan: string;
  subject: string;
  limiter: RateLimiterAbstract;
  limit: number;
  windowSeconds: number;
  /** Points counted in the shared window for this process and not handed out yet. */
  leased: number;
  /** The shared count after this process's last reservation (its lease included); -1 before the first. */
  counted: number;
  windowEndsAt: number;
  /** Refuse without asking Redis until then: the shared window was full. */
  exhaustedUntil: number;
  waiters: Resolve[];
  /** The reservation in flight, if any. */
  reserving: Promise<void> | null;
  /** Requests since the last reservation began: the subject's recent rate sizes the next lease. */
  arrivals: number;
  reservedAt: number;
  lastGrant: number;
  lastSeenAt: number;
}

/** Fixed-window limits per subject and plan, with the lease protocol described at the top of this file. */
export class PlanRateLimiter implements RateLimiter {
  readonly #limiters = new Map<string, RateLimiterAbstract>();
  readonly #o: PlanRateLimiterOptions & { leaseHorizonMs: number; leaseIdleMs: number };
  readonly #warnedPlans = new Set<string>();
  /** Plan -> subject -> state: keyed by the subject string itself, no per-request key to build and hash. */
  readonly #subjects = new Map<string, Map<string, Subject>>();
  readonly #due = new Set<Subject>();
  readonly #sweeper: NodeJS.Timeout;
  #flushScheduled = false;
  #closed = false;

  constructor(options: PlanRateLimiterOptions) {
    // An option passed as undefined takes the default too.
    this.#o = { ...options, leaseHorizonMs: options.leaseHorizonMs ?? 100, leaseIdleMs: options.leaseIdleMs ?? 500 };
    for (const [plan, { limit, windowSeconds }] of Object.entries(options.plans)) {
      if (limit === null) continue;
      const memory = new RateLimiterMemory({
        points: limit,
        duration: windowSeconds,
        keyPrefix: `${options.keyPrefix}rl:${plan}`,
      });
      this.#limiters.set(
        plan,
        options.redis
          ? new RateLimiterRedis({
              storeClient: options.redis,
              points: limit,
              duration: windowSeconds,
              keyPrefix: `${options.keyPrefix}rl:${plan}`,
              rejectIfRedisNotReady: true,
              insuranceLimiter: memory,
            })
          : memory,
      );
    }
    const redis = options.redis;
    if (redis) {
      options.metrics.rateLimiterFallback.set(redis.status === "ready" ? 0 : 1);
      redis.on("ready", () => options.metrics.rateLimiterFallback.set(0));
      redis.on("close", () => options.metrics.rateLimiterFallback.set(1));
    }
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(50, Math.min(250, this.#o.leaseIdleMs / 2)));
    this.#sweeper.unref();
  }

  /** Synchronous when answered from a lease or a known-exhausted window; a promise when Redis is asked. */
  consume(subject: string, plan: string): MaybePromise<RateLimitDecision> {
    const known = plan in this.#o.plans;
    if (!known && !this.#warnedPlans.has(plan)) {
      this.#warnedPlans.add(plan);
      this.#o.logger.warn({ plan }, "API key has a plan missing from RATE_LIMIT_PLANS; limiting it as 'free'");
    }
    const effectivePlan = known ? plan : "free";
    const limiter = this.#limiters.get(effectivePlan);
    if (!limiter) {
      return {
        allowed: true,
        limit: null,
        remaining: null,
        resetSeconds: this.#o.plans[effectivePlan]?.windowSeconds ?? 3600,
      };
    }
    const state = this.#subject(effectivePlan, subject, limiter);
    const now = Date.now();
    state.arrivals++;
    state.lastSeenAt = now;
    if (now < state.exhaustedUntil) return this.#refused(state, now);
    if (state.leased > 0 && now >= state.windowEndsAt) state.leased = 0; // that window's key is gone
    if (state.leased > 0 && state.waiters.length === 0) {
      state.leased--;
      // Refill before the lease runs dry, so the next requests do not wait for Redis either.
      if (!state.reserving && state.leased * 2 < state.lastGrant) this.#reserve(state);
      return this.#allowed(state, now);
    }
    return new Promise((resolve) => {
      state.waiters.push(resolve);
      this.#due.add(state);
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /** Hands unused leases back to the shared count; call once, at shutdown. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    await Promise.all(
      [...this.#subjects.values()]
        .flatMap((plan) => [...plan.values()])
        .map(async (state) => {
          while (state.reserving) await state.reserving;
          await this.#returnLease(state);
        }),
    );
    this.#subjects.clear();
  }

  #subject(plan: string, subject: string, limiter: RateLimiterAbstract): Subject {
    let subjects = this.#subjects.get(plan);
    if (!subjects) {
      subjects = new Map();
      this.#subjects.set(plan, subjects);
    }
    let state = subjects.get(subject);
    if (!state) {
      state = {
        plan,
        subject,
        limiter,
        limit: limiter.points,
        windowSeconds: this.#o.plans[plan]?.windowSeconds ?? 3600,
        leased: 0,
        counted: -1,
        windowEndsAt: 0,
        exhaustedUntil: 0,
        waiters: [],
        reserving: null,
        arrivals: 0,
        reservedAt: Date.now(),
        lastGrant: 0,
        lastSeenAt: Date.now(),
      };
      subjects.set(subject, state);
    }
    return state;
  }

  /** An allowed request's decision; `remaining` defaults to what this process knows is left. */
  #allowed(state: Subject, now: number, remaining = state.limit - (state.counted - state.leased)): RateLimitDecision {
    return {
      allowed: true,
      limit: state.limit,
      remaining: Math.max(0, remaining),
      resetSeconds: resetSeconds(state, now),
    };
  }

  #refused(state: Subject, now: number): RateLimitDecision {
    this.#o.metrics.rateLimited.inc({ plan: state.plan });
    return { allowed: false, limit: state.limit, remaining: 0, resetSeconds: resetSeconds(state, now) };
  }

  #flush(): void {
    this.#flushScheduled = false;
    const due = [...this.#due];
    this.#due.clear();
    for (const state of due) if (!state.reserving && state.waiters.length > 0) this.#reserve(state);
  }

  /** Points to reserve beyond the queued requests: ~leaseHorizonMs of recent traffic, within the caps. */
  #leaseSize(state: Subject, now: number): number {
    if (this.#closed || this.#o.leaseHorizonMs <= 0 || this.#o.redis?.status !== "ready" || state.counted < 0) return 0;
    const byHeadroom = Math.floor((state.limit - state.counted) / LEASE_HEADROOM_SHARE);
    const byDemand = Math.floor((state.arrivals * this.#o.leaseHorizonMs) / Math.max(1, now - state.reservedAt));
    return Math.max(0, Math.min(byHeadroom, byDemand, MAX_LEASE));
  }

  /**
   * One atomic INCRBY for the subject's queued requests and its next lease. The k-th of n queued
   * requests gets position (total - n - lease + k) in the window, so counts stay exact across replicas.
   */
  #reserve(state: Subject): void {
    const now = Date.now();
    const waiters = state.waiters;
    state.waiters = [];
    const lease = this.#leaseSize(state, now);
    if (waiters.length + lease === 0) return;
    state.arrivals = 0;
    state.reservedAt = now;
    // Only a shared count is worth remembering as full; the per-process fallback answers locally anyway.
    const shared = this.#o.redis?.status === "ready";
    state.reserving = this.#consume(state, waiters.length + lease).then((res) => {
      state.reserving = null;
      const after = Date.now();
      if (res === null) {
        // Both Redis and the in-memory fallback failed: never block a request on the limiter itself.
        for (const resolve of waiters)
          resolve({ allowed: true, limit: state.limit, remaining: null, resetSeconds: state.windowSeconds });
      } else {
        const windowEndsAt = after + res.msBeforeNext;
        if (res.consumedPoints <= waiters.length + lease || windowEndsAt > state.windowEndsAt + 1000) state.leased = 0; // a new window began
        const before = res.consumedPoints - waiters.length - lease;
        const granted = Math.max(0, Math.min(lease, state.limit - before - waiters.length));
        state.leased += granted;
        state.lastGrant = granted;
        state.counted = res.consumedPoints;
        state.windowEndsAt = windowEndsAt;
        // A client hammering past its limit must not cost a Redis round trip per request.
        if (shared && before + waiters.length > state.limit)
          state.exhaustedUntil = Math.min(windowEndsAt, after + EXHAUSTED_RECHECK_MS);
        waiters.forEach((resolve, i) => {
          const position = before + i + 1;
          resolve(
            position <= state.limit ? this.#allowed(state, after, state.limit - position) : this.#refused(state, after),
          );
        });
      }
      // Requests that queued meanwhile: answer them from what is now known, or reserve again.
      while (state.waiters.length > 0) {
        if (after < state.exhaustedUntil) {
          state.waiters.shift()!(this.#refused(state, after));
        } else if (state.leased > 0 && after < state.windowEndsAt) {
          state.leased--;
          state.waiters.shift()!(this.#allowed(state, after));
        } else {
          break;
        }
      }
      if (state.waiters.length > 0) this.#reserve(state);
    });
  }

  /** The shared count after adding `points`, or null if no limiter could answer. */
  async #consume(state: Subject, points: number): Promise<RateLimiterRes | null> {
    try {
      return await state.limiter.consume(state.subject, points);
    } catch (err) {
      if (err instanceof RateLimiterRes) return err;
      this.#o.logger.error({ err: (err as Error).message }, "rate limiter failed; allowing the request");
      return null;
    }
  }

  /** Returns idle leases and forgets subjects whose window ended. */
  #sweep(): void {
    const now = Date.now();
    for (const subjects of this.#subjects.values()) {
      for (const [subject, state] of subjects) {
        if (state.reserving || state.waiters.length > 0) continue;
        if (state.leased > 0 && now - state.lastSeenAt >= this.#o.leaseIdleMs) void this.#returnLease(state);
        if (state.leased === 0 && (now >= state.windowEndsAt || now - state.lastSeenAt >= STATE_IDLE_MS))
          subjects.delete(subject);
      }
    }
  }

  async #returnLease(state: Subject): Promise<void> {
    const points = state.leased;
    state.leased = 0;
    state.lastGrant = 0;
    const redis = this.#o.redis;
    // Past the margin the window's key may expire first; the points then lapse with it.
    if (points <= 0 || !redis || redis.status !== "ready" || state.windowEndsAt - Date.now() < RETURN_MARGIN_MS) return;
    try {
      await redis.eval(RETURN_LUA, 1, state.limiter.getKey(state.subject), points);
      state.counted -= points;
    } catch (err) {
      this.#o.logger.debug({ err: (err as Error).message }, "rate limit lease not returned; it lapses with its window");
    }
  }
}
