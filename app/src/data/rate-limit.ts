import type { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import type { Logger } from "pino";
import type { RateLimitDecision, RateLimiter } from "../ports.ts";
import type { PlanLimit } from "./config.ts";
import type { DataPlaneMetrics } from "./metrics.ts";

export interface PlanRateLimiterOptions {
  plans: Record<string, PlanLimit>;
  /** Shared counters; without it limits are per process. */
  redis?: Redis;
  keyPrefix: string;
  metrics: DataPlaneMetrics;
  logger: Logger;
}

/**
 * Fixed-window limits per subject and plan. Counted in Redis (an atomic Lua increment, so every
 * replica shares one count); while Redis is unreachable each process counts on its own with the
 * same limits (rate-limiter-flexible's insurance limiter), so the API keeps serving.
 */
export class PlanRateLimiter implements RateLimiter {
  readonly #limiters = new Map<string, RateLimiterAbstract>();
  readonly #o: PlanRateLimiterOptions;
  readonly #warnedPlans = new Set<string>();
  readonly #pending = new Map<string, PendingBatch>();
  #flushScheduled = false;

  constructor(options: PlanRateLimiterOptions) {
    this.#o = options;
    for (const [plan, { limit, windowSeconds }] of Object.entries(options.plans)) {
      if (limit === null) continue;
      const memory = new RateLimiterMemory({ points: limit, duration: windowSeconds, keyPrefix: `${options.keyPrefix}rl:${plan}` });
      this.#limiters.set(plan, options.redis
        ? new RateLimiterRedis({
          storeClient: options.redis,
          points: limit,
          duration: windowSeconds,
          keyPrefix: `${options.keyPrefix}rl:${plan}`,
          rejectIfRedisNotReady: true,
          insuranceLimiter: memory,
        })
        : memory);
    }
    const redis = options.redis;
    if (redis) {
      options.metrics.rateLimiterFallback.set(redis.status === "ready" ? 0 : 1);
      redis.on("ready", () => options.metrics.rateLimiterFallback.set(0));
      redis.on("close", () => options.metrics.rateLimiterFallback.set(1));
    }
  }

  consume(subject: string, plan: string): Promise<RateLimitDecision> {
    const known = plan in this.#o.plans;
    if (!known && !this.#warnedPlans.has(plan)) {
      this.#warnedPlans.add(plan);
      this.#o.logger.warn({ plan }, "API key has a plan missing from RATE_LIMIT_PLANS; limiting it as 'free'");
    }
    const effectivePlan = known ? plan : "free";
    const limiter = this.#limiters.get(effectivePlan);
    if (!limiter) {
      return Promise.resolve({ allowed: true, limit: null, remaining: null, resetSeconds: this.#o.plans[effectivePlan]?.windowSeconds ?? 3600 });
    }
    return new Promise((resolve) => {
      const id = `${effectivePlan}\0${subject}`;
      let batch = this.#pending.get(id);
      if (!batch) {
        batch = { plan: effectivePlan, subject, limiter, waiters: [] };
        this.#pending.set(id, batch);
      }
      batch.waiters.push(resolve);
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#flushScheduled = false;
    const batches = [...this.#pending.values()];
    this.#pending.clear();
    for (const batch of batches) void this.#consumeBatch(batch);
  }

  /**
   * One atomic INCRBY for every request of a subject that arrived in the same event-loop turn. The
   * k-th of n gets position (total - n + k) in the window, so counts stay exact across replicas
   * while a busy key costs one Redis round trip per turn instead of one per request.
   */
  async #consumeBatch({ plan, subject, limiter, waiters }: PendingBatch): Promise<void> {
    const limit = limiter.points;
    const windowSeconds = this.#o.plans[plan]?.windowSeconds ?? 3600;
    let res: RateLimiterRes;
    try {
      res = await limiter.consume(subject, waiters.length);
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        res = err;
      } else {
        // Both Redis and the in-memory fallback failed: never block a request on the limiter itself.
        this.#o.logger.error({ err: (err as Error).message }, "rate limiter failed; allowing the request");
        for (const resolve of waiters) resolve({ allowed: true, limit, remaining: null, resetSeconds: windowSeconds });
        return;
      }
    }
    const before = res.consumedPoints - waiters.length;
    const resetSeconds = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
    waiters.forEach((resolve, i) => {
      const position = before + i + 1;
      const allowed = position <= limit;
      if (!allowed) this.#o.metrics.rateLimited.inc({ plan });
      resolve({ allowed, limit, remaining: Math.max(0, limit - position), resetSeconds });
    });
  }
}

interface PendingBatch {
  plan: string;
  subject: string;
  limiter: RateLimiterAbstract;
  waiters: Array<(decision: RateLimitDecision) => void>;
}
