/**
 * Reads a stack's `Pulumi.<stack>.yaml` the way the Pulumi CLI hands config to the program:
 * full keys (`inferstack:tier`) to strings, structured values JSON-encoded. Secure values are
 * ciphertext we cannot (and need not) decrypt offline: they become a fixed placeholder, so a
 * plan needs no passphrase or cloud secret and still runs on pull requests from forks.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse } from "yaml";
import { presets } from "../../infra/presets.ts";

export const SECRET_PLACEHOLDER = "plan-placeholder-secret";

export interface StackFile {
  config: Record<string, string>;
  /** Keys whose value (or part of it) was a `secure:` value. */
  secretKeys: string[];
}

function isSecure(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && "secure" in v;
}

function replaceSecure(v: unknown): [unknown, boolean] {
  if (isSecure(v)) return [SECRET_PLACEHOLDER, true];
  if (Array.isArray(v)) {
    const parts = v.map(replaceSecure);
    return [parts.map(([x]) => x), parts.some(([, s]) => s)];
  }
  if (typeof v === "object" && v !== null) {
    let secret = false;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const [value, s] = replaceSecure(x);
      out[k] = value;
      secret ||= s;
    }
    return [out, secret];
  }
  return [v, false];
}

/** Parses the YAML text of a stack file; `source` names it in errors. */
export function parseStackFile(text: string, source: string): StackFile {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new Error(`${source}: not valid YAML: ${(err as Error).message}`);
  }
  const section = (doc as { config?: unknown } | null)?.config ?? {};
  if (typeof section !== "object" || section === null || Array.isArray(section))
    throw new Error(`${source}: "config" must be a mapping`);
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [key, raw] of Object.entries(section)) {
    if (!key.includes(":")) throw new Error(`${source}: config key "${key}" needs a namespace, e.g. inferstack:${key}`);
    const [value, secret] = replaceSecure(raw);
    config[key] = typeof value === "string" ? value : JSON.stringify(value);
    if (secret) secretKeys.push(key);
  }
  return { config, secretKeys };
}

/**
 * Values each operator must set before a first `pulumi up` (their own SSH key), which a committed
 * stack file therefore lacks. A preset marks such a value with `null` at that path; the plan fills
 * it with an obvious stand-in so every stack plans offline, and says which it filled; the real
 * deploy still fails until they are set.
 */
export const PLAN_STAND_INS: { key: string; path: string[]; value: string }[] = [
  {
    key: "inferstack:host",
    path: ["sshPublicKey"],
    value: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlanStandInKeyReplaceWithYourOwnPublicKey0000 plan-stand-in",
  },
];

function presetValue(tier: string, key: string, path: string[]): unknown {
  let cursor: unknown = (presets as Record<string, Record<string, unknown>>)[tier]?.[key.replace(/^inferstack:/, "")];
  for (const part of path)
    cursor = cursor !== null && typeof cursor === "object" ? (cursor as Record<string, unknown>)[part] : undefined;
  return cursor;
}

export function applyStandIns(config: Record<string, string>): { config: Record<string, string>; standIns: string[] } {
  const out = { ...config };
  const standIns: string[] = [];
  const tier = config["inferstack:tier"] ?? "local";
  for (const s of PLAN_STAND_INS) {
    if (presetValue(tier, s.key, s.path) !== null) continue;
    let obj: Record<string, unknown> = {};
    try {
      obj = out[s.key] ? (JSON.parse(out[s.key]!) as Record<string, unknown>) : {};
    } catch {
      continue;
    }
    let cursor = obj;
    for (const part of s.path.slice(0, -1)) {
      cursor[part] ??= {};
      cursor = cursor[part] as Record<string, unknown>;
    }
    const leaf = s.path.at(-1)!;
    if (cursor[leaf] !== undefined && cursor[leaf] !== null) continue;
    cursor[leaf] = s.value;
    out[s.key] = JSON.stringify(obj);
    standIns.push(`${s.key}.${s.path.join(".")}`);
  }
  return { config: out, standIns };
}

export async function readStackFile(projectRoot: string, stack: string): Promise<StackFile> {
  if (!/^[A-Za-z0-9_.-]+$/.test(stack)) throw new Error(`--stack: "${stack}" is not a valid stack name`);
  const file = join(projectRoot, `Pulumi.${stack}.yaml`);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    throw new Error(`--stack ${stack}: ${file} not found (stacks are local, dev, staging, prod)`);
  }
  return parseStackFile(text, `Pulumi.${stack}.yaml`);
}
