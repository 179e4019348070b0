/**
 * Error bodies: the Open Inference Protocol's `{"error": "..."}` (used by every route), with the
 * offending fields listed in `details` when there are several.
 */
import type { Resolution } from "../inference/repository.ts";
import type { ValidationIssue } from "../inference/validation.ts";

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

export interface ErrorBody {
  error: string;
  details?: ValidationIssue[];
}

export function errorBody(message: string, details?: ValidationIssue[]): ErrorBody {
  return details && details.length > 1 ? { error: message, details } : { error: message };
}

/** Why a model name or version cannot serve, as the error to answer with (503 + Retry-After while loading). */
export function unresolvedError(r: Exclude<Resolution, { ok: true }>): ApiError {
  return r.status === 503 ? new ApiError(503, r.error, undefined, { "retry-after": String(r.retryAfterSeconds) }) : new ApiError(r.status, r.error);
}
