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

  async consume(subject: string, plan: string): Promise<RateLimitDecision> {
    const known = plan in this.#o.plans;
    if (!known && !this.#warnedPlans.has(plan)) {
      this.#warnedPlans.add(plan);
      this.#o.logger.warn({ plan }, "API key has a plan missing from RATE_LIMIT_PLANS; limiting it as 'free'");
    }
    const effectivePlan = known ? plan : "free";
    const limiter = this.#limiters.get(effectivePlan);
    const windowSeconds = this.#o.plans[effectivePlan]?.windowSeconds ?? 3600;
    if (!limiter) return { allowed: true, limit: null, remaining: null, resetSeconds: windowSeconds };
    const limit = limiter.points;
    try {
      const res = await limiter.consume(subject);
      return { allowed: true, limit, remaining: res.remainingPoints, resetSeconds: Math.ceil(res.msBeforeNext / 1000) };
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        this.#o.metrics.rateLimited.inc({ plan: effectivePlan });
        return { allowed: false, limit, remaining: 0, resetSeconds: Math.max(1, Math.ceil(err.msBeforeNext / 1000)) };
      }
      // Both Redis and the in-memory fallback failed: never block a request on the limiter itself.
      this.#o.logger.error({ err: (err as Error).message }, "rate limiter failed; allowing the request");
      return { allowed: true, limit, remaining: null, resetSeconds: windowSeconds };
    }
  }
}
