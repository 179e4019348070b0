/**
 * The prediction path shared by V1 predict and V2 infer:
 * authenticate -> rate limit -> resolve model -> read + validate -> cache lookup -> infer (batched)
 * -> respond, cache and log the prediction. Data-plane failures degrade (skip the cache, allow
 * the request); only bad input or a missing model answers 4xx.
 */
import type { Context } from "hono";
import type { PreparedInputs, TensorMap } from "../inference/batcher.ts";
import { InferenceInputError, type ModelVersion } from "../inference/model-version.ts";
import { toJsonArray } from "../inference/tensor.ts";
import { type AuthResult, JsonText, type MaybePromise, type Principal, type RateLimitDecision } from "../ports.ts";
import { type BodyOptions, type RequestBody, readJsonBody } from "./body.ts";
import { clientIp } from "./client-ip.ts";
import type { AppDeps, AppEnv } from "./context.ts";
import { ApiError, unresolvedError } from "./errors.ts";
import { hashInputs } from "./input-hash.ts";
import { setResponseHeader as setHeader } from "./node-adapter.ts";

export type Protocol = "v1" | "v2";

const JSON_CONTENT_TYPE = { "Content-Type": "application/json" };

/** How one protocol decodes, renders and logs a prediction: made once per route, not per request. */
export interface PredictionSpec<P extends PreparedInputs> {
  protocol: Protocol;
  /** How the body is read (V2 infer: binary tensor data, no Content-Type). */
  bodyOptions?: BodyOptions;
  prepare(model: ModelVersion, body: unknown, request: RequestBody): P;
  /** The response body from the model's outputs (only the outputs `prepared.outputs` asks for). */
  render(model: ModelVersion, prepared: P, outputs: TensorMap): Record<string, unknown>;
  /** Per-request fields added after a cache hit or a fresh prediction (e.g. V2 `id`). */
  decorate?(body: Record<string, unknown>, prepared: P): Record<string, unknown>;
  /**
   * A response other than JSON for this request (V2 binary tensor data), from the decorated body;
   * undefined for JSON. `logged` is the JSON text the prediction log records.
   */
  encode?(
    body: Record<string, unknown>,
    prepared: P,
  ): { body: Uint8Array<ArrayBuffer>; headers: Record<string, string>; logged: string } | undefined;
  /** The body member the prediction log records as the request's inputs. */
  inputsMember: string;
}

const ANONYMOUS: Principal = Object.freeze({ keyId: null, keyDisplay: null, plan: "anonymous" });

/** The caller, or a thrown 401/503; synchronous when the authenticator answers from memory. */
export function authenticate(c: Context<AppEnv>, deps: AppDeps): MaybePromise<Principal> {
  const auth = deps.dataPlane.auth;
  if (!auth) return ANONYMOUS;
  const result = auth.authenticate(c.req.raw.headers);
  return result instanceof Promise ? result.then(principalOf) : principalOf(result);
}

function principalOf(result: AuthResult): Principal {
  if (!result.ok) {
    // 503: the key store is unreachable and the key is not cached; the caller should retry.
    if (result.status === 503) {
      throw new ApiError(503, result.error, undefined, { "retry-after": String(result.retryAfterSeconds ?? 5) });
    }
    throw new ApiError(401, result.error, undefined, { "www-authenticate": 'Bearer realm="inferstack"' });
  }
  return result.principal;
}

/** Sets the RateLimit headers or throws 429; synchronous when the limiter answers from memory. */
function rateLimit(c: Context<AppEnv>, deps: AppDeps, principal: Principal): MaybePromise<void> {
  const limiter = deps.dataPlane.rateLimiter;
  if (!limiter) return;
  let decision: ReturnType<typeof limiter.consume>;
  try {
    decision = limiter.consume(principal.keyId ?? clientIp(c, deps.config), principal.plan);
  } catch (err) {
    return limiterFailed(c, deps, err);
  }
  if (decision instanceof Promise)
    return decision.then(
      (d) => applyDecision(c, principal, d),
      (err: unknown) => limiterFailed(c, deps, err),
    );
  applyDecision(c, principal, decision);
}

/** The limiter failing must not take serving down: the request goes through. */
function limiterFailed(c: Context<AppEnv>, deps: AppDeps, err: unknown): void {
  deps.logger.warn({ reqId: c.get("requestId"), err }, "rate limiter failed; request allowed");
}

function applyDecision(c: Context<AppEnv>, principal: Principal, decision: RateLimitDecision): void {
  const limit = decision.limit === null ? null : String(decision.limit);
  const remaining = String(Math.max(0, decision.remaining ?? 0));
  const reset = String(Math.max(0, Math.ceil(decision.resetSeconds)));
  if (limit !== null) {
    setHeader(c, "ratelimit-limit", limit);
    setHeader(c, "ratelimit-remaining", remaining);
    setHeader(c, "ratelimit-reset", reset);
  }
  if (!decision.allowed) {
    // The error response is built afresh: it carries the RateLimit headers itself.
    const headers: Record<string, string> =
      limit === null ? {} : { "ratelimit-limit": limit, "ratelimit-remaining": remaining, "ratelimit-reset": reset };
    headers["retry-after"] = String(Math.max(1, Math.ceil(decision.resetSeconds)));
    throw new ApiError(
      429,
      `rate limit exceeded for plan "${principal.plan}"; retry after ${headers["retry-after"]} s`,
      undefined,
      headers,
    );
  }
}

/** Resolves the version and marks it in use, retrying if a reload retired it in between. */
function acquireModel(deps: AppDeps, name: string, version?: number): ModelVersion {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = deps.repo.resolve(name, version);
    if (!r.ok) throw unresolvedError(r);
    if (r.model.acquire()) return r.model;
  }
  throw new ApiError(503, `model "${name}" is reloading; retry`);
}

type Outcome = "ok" | "client_error" | "error";

function countRequest(deps: AppDeps, model: ModelVersion, protocol: Protocol, outcome: Outcome, started: number): void {
  deps.metrics.inferenceRequests.inc({ model: model.name, version: String(model.version), protocol, outcome });
  model.stats.request(outcome === "ok", started, performance.now());
}

export async function servePrediction<P extends PreparedInputs>(
  c: Context<AppEnv>,
  deps: AppDeps,
  spec: PredictionSpec<P>,
  name: string,
  requestedVersion?: number,
): Promise<Response> {
  const started = performance.now();
  const { metrics } = deps;
  const authenticated = authenticate(c, deps);
  const principal = authenticated instanceof Promise ? await authenticated : authenticated;
  const limited = rateLimit(c, deps, principal);
  if (limited) await limited;

  const model = acquireModel(deps, name, requestedVersion);
  const version = String(model.version);
  try {
    const request = await readJsonBody(
      c,
      { maxBytes: deps.config.BODY_LIMIT_BYTES, maxDepth: deps.config.MAX_JSON_DEPTH },
      spec.bodyOptions,
    );
    const prepared = spec.prepare(model, request.value, request);
    // Taken now, so that the parsed body is not held across inference when nothing logs it: a
    // body kept alive through a scavenge is copied, and under load promoted to the old generation.
    const logged = deps.dataPlane.predictionLog ? loggedRequest(request, spec.inputsMember) : null;

    const cache = deps.dataPlane.cache;
    const ttl = model.signature.cacheTtlSeconds ?? deps.config.CACHE_TTL_SECONDS;
    const useCache = cache !== undefined && ttl > 0;
    const inputHash = useCache ? hashInputs(spec.protocol, prepared) : "";
    const key = { model: model.name, version, inputHash };
    let body: Record<string, unknown> | undefined;
    let cacheHit = false;
    if (useCache) {
      if (/\bno-cache\b/i.test(c.req.header("cache-control") ?? "")) {
        metrics.cacheRequests.inc({ model: model.name, result: "bypass" });
      } else {
        try {
          const lookupStarted = performance.now();
          const cached = await cache.get(key);
          if (cached !== undefined && cached !== null && typeof cached === "object") {
            body = cached as Record<string, unknown>;
            cacheHit = true;
          }
          metrics.cacheRequests.inc({ model: model.name, result: cacheHit ? "hit" : "miss" });
          model.stats.cacheLookup(cacheHit, performance.now() - lookupStarted);
        } catch (err) {
          metrics.cacheRequests.inc({ model: model.name, result: "error" });
          deps.logger.warn(
            { reqId: c.get("requestId"), err: (err as Error).message },
            "cache lookup failed; serving from the model",
          );
        }
      }
    }

    if (!body) {
      let outputs: TensorMap;
      try {
        outputs = await model.infer(prepared.inputs, prepared.rows);
      } catch (err) {
        if (err instanceof InferenceInputError)
          throw new ApiError(400, `inference failed on this input: ${err.message}`);
        throw err;
      }
      body = spec.render(model, prepared, outputs);
      if (useCache) {
        cache.set(key, body, ttl).catch((err: unknown) => {
          metrics.cacheRequests.inc({ model: model.name, result: "error" });
          deps.logger.warn({ reqId: c.get("requestId"), err: (err as Error).message }, "cache write failed");
        });
      }
    }
    setHeader(c, "x-cache", useCache ? (cacheHit ? "hit" : "miss") : "off");
    const response = spec.decorate ? spec.decorate(body, prepared) : body;
    countRequest(deps, model, spec.protocol, "ok", started);
    const encoded = spec.encode?.(response, prepared);
    const json = encoded ? encoded.logged : JSON.stringify(response); // once, for the client and the prediction log
    deps.dataPlane.predictionLog?.record({
      // The request id when the API made it, else the log makes a UUIDv7; without the cache the
      // input hash is left to the log too, which computes it after the response is written.
      id: c.get("requestIdIsOwn") ? c.get("requestId") : undefined,
      time: new Date(),
      model: model.name,
      version,
      requestId: c.get("requestId"),
      keyId: principal.keyId,
      inputHash: useCache ? inputHash : () => hashInputs(spec.protocol, prepared),
      inputs: logged,
      outputs: new JsonText(json),
      latencyMs: performance.now() - started,
      cacheHit,
    });
    return encoded ? c.body(encoded.body, 200, encoded.headers) : c.body(json, 200, JSON_CONTENT_TYPE);
  } catch (err) {
    countRequest(
      deps,
      model,
      spec.protocol,
      err instanceof ApiError && err.status < 500 ? "client_error" : "error",
      started,
    );
    throw err;
  } finally {
    model.release();
  }
}

function loggedRequest(request: RequestBody, name: string): unknown {
  return request.value === undefined ? null : loggedInputs(request.text, request.value, name);
}

/**
 * What the log records as the inputs: when `name` is the body's only member, the client's own text
 * of it (nothing to encode again, and numbers stay as they were sent), else the parsed value.
 */
export function loggedInputs(text: string, body: unknown, name: string): unknown {
  const value = (body as Record<string, unknown>)[name];
  let members = 0;
  for (const _ in body as object) if (++members > 1) return value;
  // A valid JSON object with one member: its value runs from the first ":" (the member's name,
  // once parsed, is `name`, which holds none) to the closing "}".
  return members === 1 && value !== undefined
    ? new JsonText(text.slice(text.indexOf(":") + 1, text.lastIndexOf("}")))
    : value;
}

/** Output tensors in V2 JSON form. */
export function v2Outputs(outputs: TensorMap, names: string[]) {
  return names.map((name) => {
    const t = outputs[name]!;
    return { name, datatype: t.datatype, shape: t.shape, data: toJsonArray(t.datatype, t.data) };
  });
}
