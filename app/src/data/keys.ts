import { createHash, randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import type pg from "pg";

/** Every key starts with this, so leaked keys are recognisable by secret scanners and humans. */
export const KEY_PREFIX = "isk_";
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SECRET_BYTES = 30; // 240 bits
const SECRET_CHARS = 41; // ceil(240 / log2(62))
const CHECKSUM_CHARS = 6; // crc32 < 62^6
/** Characters of the key kept as its display prefix: `isk_` + 8 of the secret. */
const DISPLAY_CHARS = KEY_PREFIX.length + 8;
const KEY_PATTERN = new RegExp(`^${KEY_PREFIX}[0-9A-Za-z]{${SECRET_CHARS + CHECKSUM_CHARS}}$`);

function base62(value: bigint, width: number): string {
  let out = "";
  for (let i = 0; i < width; i++) {
    out = ALPHABET[Number(value % 62n)]! + out;
    value /= 62n;
  }
  return out;
}

function checksum(body: string): string {
  return base62(BigInt(crc32(body)), CHECKSUM_CHARS);
}

export interface NewKey {
  key: string;
  hash: Buffer;
  prefix: string;
}

/** `isk_` + 41 base62 chars of CSPRNG output + a 6-char CRC32, so typos are rejected without a DB hit. */
export function generateKey(): NewKey {
  const secret = base62(BigInt(`0x${randomBytes(SECRET_BYTES).toString("hex")}`), SECRET_CHARS);
  const body = `${KEY_PREFIX}${secret}`;
  const key = `${body}${checksum(body)}`;
  return { key, hash: hashKey(key), prefix: displayPrefix(key) };
}

export function isWellFormedKey(key: string): boolean {
  if (!KEY_PATTERN.test(key)) return false;
  const body = key.slice(0, -CHECKSUM_CHARS);
  return checksum(body) === key.slice(-CHECKSUM_CHARS);
}

export function hashKey(key: string): Buffer {
  return createHash("sha256").update(key).digest();
}

export function displayPrefix(key: string): string {
  return key.slice(0, DISPLAY_CHARS);
}

/** The only form of a key that may appear in logs. */
export function maskKey(key: string): string {
  return key.startsWith(KEY_PREFIX) ? `${displayPrefix(key)}…` : "(not an isk_ key)";
}

/** NOTIFY channel announcing revocations (payload: the key id). */
export const KEYS_CHANNEL = "inferstack_api_keys";

export interface ApiKeyRow {
  id: string;
  prefix: string;
  name: string;
  plan: string;
  createdAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

const COLUMNS = `id, prefix, name, plan, created_at AS "createdAt", revoked_at AS "revokedAt", last_used_at AS "lastUsedAt"`;

export async function createKey(
  db: pg.Pool | pg.Client,
  name: string,
  plan: string,
): Promise<{ key: string; row: ApiKeyRow }> {
  const fresh = generateKey();
  const { rows } = await db.query<ApiKeyRow>(
    `INSERT INTO api_keys (key_hash, prefix, name, plan) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
    [fresh.hash, fresh.prefix, name, plan],
  );
  return { key: fresh.key, row: rows[0]! };
}

export async function listKeys(db: pg.Pool | pg.Client, opts: { includeRevoked?: boolean } = {}): Promise<ApiKeyRow[]> {
  const where = opts.includeRevoked ? "" : "WHERE revoked_at IS NULL";
  const { rows } = await db.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys ${where} ORDER BY created_at, id`);
  return rows;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Revokes by id or by display prefix (`isk_AbCd1234`, with or without the trailing `…`). A prefix
 * matching several active keys is refused: revoke those by id.
 */
export async function revokeKey(db: pg.Pool | pg.Client, idOrPrefix: string): Promise<ApiKeyRow> {
  const ref = idOrPrefix.replace(/…$/, "");
  const byId = UUID.test(ref);
  const { rows } = await db.query<ApiKeyRow>(
    `SELECT ${COLUMNS} FROM api_keys WHERE ${byId ? "id = $1" : "prefix = $1"}`,
    [ref],
  );
  if (rows.length === 0) throw new KeyNotFoundError(`no API key with ${byId ? "id" : "prefix"} '${ref}'`);
  const active = rows.filter((r) => r.revokedAt === null);
  if (active.length > 1) {
    throw new KeyNotFoundError(
      `prefix '${ref}' matches ${active.length} active keys; revoke by id: ${active.map((r) => r.id).join(", ")}`,
    );
  }
  const target = active[0] ?? rows[0]!;
  if (target.revokedAt !== null) return target;
  const updated = await db.query<ApiKeyRow>(
    `UPDATE api_keys SET revoked_at = now() WHERE id = $1 RETURNING ${COLUMNS}`,
    [target.id],
  );
  // Running APIs drop their cached lookups at once instead of after AUTH_CACHE_TTL_SECONDS.
  await db.query("SELECT pg_notify($1, $2)", [KEYS_CHANNEL, target.id]);
  return updated.rows[0]!;
}

export class KeyNotFoundError extends Error {
  override name = "KeyNotFoundError";
}
