/**
 * The prediction log's two record encodings: a line of COPY's text format (what the in-memory queue
 * holds and Postgres ingests) and a line of JSON (the spill file's format, which every version of
 * the app reads, so either side of an upgrade or a rollback replays a spill file).
 */
import { uuidv7 } from "../../ids.ts";
import { JsonText, type PredictionRecord } from "../../ports.ts";

/** The columns of every COPY line, in order. */
export const COLUMNS =
  "id, time, model, version, request_id, key_id, input_hash, inputs, outputs, latency_ms, cache_hit";

const COPY_ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\ufffd" };
const COPY_SPECIAL = /[\\\t\n\r\0]/;
const COPY_SPECIALS = /[\\\t\n\r\0]/g;
const COPY_UNESCAPES: Record<string, string> = { "\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r" };

/** A value as one field of COPY's text format. Text in Postgres cannot hold NUL: it becomes U+FFFD. */
function copyText(value: unknown): string {
  if (value === null || value === undefined) return "\\N";
  const text = String(value);
  return COPY_SPECIAL.test(text) ? text.replace(COPY_SPECIALS, (c) => COPY_ESCAPES[c]!) : text;
}

/** A value as a jsonb field of COPY's text format. jsonb refuses the NUL character, even escaped. */
function copyJson(value: unknown): string {
  let json = value instanceof JsonText ? value.text : (JSON.stringify(value) ?? "null");
  // The common case: JSON.stringify escapes every control character. JSON text from elsewhere may
  // hold raw newlines or tabs as whitespace, which COPY must see escaped.
  if (!COPY_SPECIAL.test(json)) return json;
  if (json.includes("\\u0000")) json = json.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, "$1\\ufffd");
  return json.replace(COPY_SPECIALS, (c) => COPY_ESCAPES[c]!);
}

let isoSecond = Number.NaN;
let isoPrefix = "";

/** date.toISOString(), reusing the text up to the second: toISOString costs about 0.5-1 µs a call. */
function isoTime(date: Date): string {
  const ms = date.getTime();
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoPrefix = date.toISOString().slice(0, -4); // throws on an invalid date, as toISOString does
    isoSecond = second;
  }
  const milli = ms - second * 1000;
  return `${isoPrefix}${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
}

/** Milliseconds to the microsecond: String() of a full-precision double is the dearest field of a line. */
function millisText(ms: number): string {
  if (!(ms >= 0 && ms < 1e9)) return String(ms); // NaN, Infinity and negatives as Postgres reads them
  const us = Math.round(ms * 1000);
  const whole = Math.floor(us / 1000);
  const frac = us - whole * 1000;
  return `${whole}.${frac < 10 ? "00" : frac < 100 ? "0" : ""}${frac}`;
}

type EncodableRecord = Omit<PredictionRecord, "time"> & { time: Date | string };

/** One row of COPY text, in COLUMNS order; throws if the record cannot be encoded. */
export function copyLine(rec: EncodableRecord): string {
  const time = rec.time instanceof Date ? isoTime(rec.time) : copyText(rec.time);
  const latency = typeof rec.latencyMs === "number" ? millisText(rec.latencyMs) : "NaN";
  const inputHash = typeof rec.inputHash === "function" ? rec.inputHash() : rec.inputHash;
  return `${copyText(rec.id ?? uuidv7())}\t${time}\t${copyText(rec.model)}\t${copyText(rec.version)}\t${copyText(rec.requestId)}\t${copyText(rec.keyId)}\t${copyText(inputHash)}\t${copyJson(rec.inputs)}\t${copyJson(rec.outputs)}\t${latency}\t${rec.cacheHit ? "t" : "f"}`;
}

const unescapeCopy = (field: string) =>
  field === "\\N" ? null : field.replace(/\\[\\tnr]/g, (e) => COPY_UNESCAPES[e]!);

/** A COPY line as a spill-file line. */
function spillLine(line: string): string {
  const f = line.split("\t").map(unescapeCopy);
  const latency = Number(f[9]);
  return (
    `{"id":${JSON.stringify(f[0])},"time":${JSON.stringify(f[1])},"model":${JSON.stringify(f[2])},"version":${JSON.stringify(f[3])},` +
    `"requestId":${JSON.stringify(f[4])},"keyId":${JSON.stringify(f[5])},"inputHash":${JSON.stringify(f[6])},"inputs":${f[7]},"outputs":${f[8]},` +
    `"latencyMs":${Number.isFinite(latency) ? latency : null},"cacheHit":${f[10] === "t"}}`
  );
}

/** COPY lines (each ending in "\n") as spill-file text, each line ending in "\n". */
export function spillText(copyLines: Buffer): string {
  return `${copyLines
    .toString("utf8", 0, copyLines.length - 1)
    .split("\n")
    .map(spillLine)
    .join("\n")}\n`;
}

/** A spill-file line as a COPY line; throws on a line torn by a crash. */
export function lineFromSpill(json: string): string {
  const rec = JSON.parse(json) as EncodableRecord;
  if (rec === null || typeof rec !== "object") throw new Error("not a record");
  return copyLine(rec);
}

/** The id of the first COPY line in `data`. */
export const idOf = (data: Buffer) => data.toString("utf8", 0, Math.max(0, data.indexOf(9 /* \t */)));
