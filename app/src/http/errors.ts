/**
 * Error bodies: the Open Inference Protocol's `{"error": "..."}` (used by every route), with the
 * offending fields listed in `details` when there are several.
 */
import type { z } from "zod";
import type { Resolution } from "../inference/repository.ts";

export interface ValidationIssue {
  /** Where, e.g. `instances[3].age` or `inputs[0].data[5]` (tensor "x"). */
  field: string;
  message: string;
}

export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 408 | 413 | 415 | 422 | 429 | 500 | 503 | 504;

export class ApiError extends Error {
  readonly status: ErrorStatus;
  readonly details: ValidationIssue[] | undefined;
  readonly headers: Record<string, string>;
  constructor(status: ErrorStatus, message: string, details?: ValidationIssue[], headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.details = details;
    this.headers = headers;
  }
}

/** A request the protocol decoders refused: every issue names its field and the reason. */
export class RequestValidationError extends ApiError {
  readonly issues: ValidationIssue[];
  constructor(issues: ValidationIssue[], status: 400 | 413 = 400) {
    super(status, issues.map((i) => `${i.field}: ${i.message}`).join("; "), issues);
    this.issues = issues;
  }
}

export interface ErrorBody {
  error: string;
  details?: ValidationIssue[];
}

export function errorBody(message: string, details?: ValidationIssue[]): ErrorBody {
  const error = boundEchoes(message);
  return details && details.length > 1 ? { error, details } : { error };
}

/** Longest quoted value (a model name, a path, a verb) an error echoes back whole. */
export const MAX_ECHO_CHARS = 128;
const MAX_MESSAGE_CHARS = 1024;
const LONG_QUOTED = new RegExp(`"([^"]{${MAX_ECHO_CHARS + 1},})"`, "g");

/**
 * Bounds what an error echoes of the request: each quoted value to MAX_ECHO_CHARS with an ellipsis
 * and its length, the whole message to MAX_MESSAGE_CHARS, so a 10,000-character model name costs
 * a short error, not a 10 KB one.
 */
export function boundEchoes(message: string): string {
  if (message.length <= MAX_ECHO_CHARS) return message;
  let bounded = message.replace(
    LONG_QUOTED,
    (_, value: string) => `"${value.slice(0, MAX_ECHO_CHARS)}…" (${value.length} characters)`,
  );
  if (bounded.length > MAX_MESSAGE_CHARS)
    bounded = `${bounded.slice(0, MAX_MESSAGE_CHARS)}… (${message.length} characters in all)`;
  return bounded;
}

/** Why a model name or version cannot serve, as the error to answer with (503 + Retry-After while loading). */
export function unresolvedError(r: Exclude<Resolution, { ok: true }>): ApiError {
  return r.status === 503
    ? new ApiError(503, r.error, undefined, { "retry-after": String(r.retryAfterSeconds) })
    : new ApiError(r.status, r.error);
}

function pathString(base: string, path: ReadonlyArray<PropertyKey>): string {
  let s = base;
  for (const p of path) s += typeof p === "number" ? `[${p}]` : `.${String(p)}`;
  return s;
}

/** zod issues as the API words them: the field's path, unknown keys named. */
export function zodIssues(base: string, err: z.ZodError, unknownKey = "feature"): ValidationIssue[] {
  return err.issues.slice(0, 10).map((i) => {
    const keys = i.code === "unrecognized_keys" ? (i as { keys: string[] }).keys : null;
    return {
      field: pathString(base, keys ? [...i.path, keys[0]!] : i.path),
      message: keys
        ? `unknown ${unknownKey}${keys.length > 1 ? "s" : ""} ${keys.map((k) => `"${k}"`).join(", ")}`
        : i.message,
    };
  });
}
