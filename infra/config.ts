/**
 * The stack configuration, validated before any resource is declared.
 *
 * A stack sets `inferstack:tier` and may override any preset value (`presets.ts`) with structured
 * config, e.g. `pulumi config set --path 'inferstack:app.replicas' 3`. Overrides are deep-merged
 * onto the preset, then the whole result is validated against its platform's strict schema
 * (`schema.ts`); a bad or unknown value fails with an error naming the full key
 * (`inferstack:app.replicas`) and the rule it broke.
 * Secrets (alert receivers, Grafana admin password overrides) are read separately as Pulumi
 * secrets and never appear in this schema.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { AlertReceivers } from "../monitoring/index.ts";
import { presets, type TierName, tierNames } from "./presets.ts";
import { type Platform, type Preset, presetSchema, settingsByPlatform } from "./schema.ts";

export type StackConfig = Preset & { tier: TierName };
export type DockerStackConfig = Extract<StackConfig, { platform: "docker" }>;
export type AwsStackConfig = Extract<StackConfig, { platform: "aws" }>;

export class ConfigError extends Error {
  readonly issues: { key: string; message: string }[];
  constructor(issues: { key: string; message: string }[]) {
    super(`Invalid stack configuration:\n${issues.map((i) => `  - ${i.key}: ${i.message}`).join("\n")}`);
    this.name = "ConfigError";
    this.issues = issues;
  }
}

const NAMESPACE = "inferstack";
/**
 * Secret settings, read by the platforms with `pulumi.Config#getSecretObject` (never validated
 * into `StackConfig`, so they stay secret): `alertReceivers` (JSON, monitoring/src/alertmanager.ts
 * `AlertReceivers`), `grafanaAdminPassword` (defaults to a generated one).
 */
export const secretKeys = ["alertReceivers", "grafanaAdminPassword"] as const;

/**
 * Reads the secret settings. Pulumi.yaml gives both the default "" (the CLI requires a declared key
 * that has no default in every stack), so "" means unset: no receivers, a generated password.
 */
export function readSecretSettings(config: pulumi.Config): {
  alertReceivers?: pulumi.Output<AlertReceivers>;
  grafanaAdminPassword?: pulumi.Output<string>;
} {
  const set = (key: string) => (config.get(key) ?? "") !== "";
  return {
    ...(set("alertReceivers") ? { alertReceivers: config.getSecretObject<AlertReceivers>("alertReceivers")! } : {}),
    ...(set("grafanaAdminPassword") ? { grafanaAdminPassword: config.getSecret("grafanaAdminPassword")! } : {}),
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Deep merge where objects merge key by key and anything else replaces. */
export function deepMerge<T>(base: T, override: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(override)) return (override === undefined ? base : override) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = deepMerge((base as Record<string, unknown>)[k], v);
  return out as T;
}

/** Pulumi hands structured config values over as JSON strings; plain strings stay strings. */
function parseValue(raw: string): Json {
  try {
    return JSON.parse(raw) as Json;
  } catch {
    return raw;
  }
}

/**
 * Validates a stack's config. `raw` maps config keys (`inferstack:tier`, `inferstack:app`, ...,
 * as `pulumi.runtime.allConfig()` returns them) to their string values. Keys of other
 * namespaces (`aws:region`, `docker:host`) are ignored.
 */
export function parseStackConfig(raw: Record<string, string>): StackConfig {
  const values: Record<string, Json> = {};
  for (const [key, value] of Object.entries(raw)) {
    const [ns, name] = key.split(":", 2);
    if (ns !== NAMESPACE || name === undefined || (secretKeys as readonly string[]).includes(name)) continue;
    if (name === "tier") {
      values[name] = value;
      continue;
    }
    // Pulumi.yaml's defaults: the CLI hands "" (string keys) or {} (object keys) to the program for
    // a key the stack leaves unset, on every platform.
    const parsed = value === "" ? undefined : parseValue(value);
    if (parsed === undefined || (isPlainObject(parsed) && Object.keys(parsed).length === 0)) continue;
    values[name] = parsed;
  }

  const issues: { key: string; message: string }[] = [];
  const { tier: tierValue, platform, ...overrides } = values;
  const tier = tierValue ?? "local";
  if (typeof tier !== "string" || !(tierNames as readonly string[]).includes(tier)) {
    issues.push({
      key: `${NAMESPACE}:tier`,
      message: `must be one of ${tierNames.join(", ")} (got ${JSON.stringify(tierValue)})`,
    });
    throw new ConfigError(issues);
  }
  const preset = presets[tier as TierName];
  if (platform !== undefined) {
    issues.push({
      key: `${NAMESPACE}:platform`,
      message: `is set by the tier (${tier} runs on ${preset.platform}): pick a tier of the other platform instead`,
    });
  }
  const merged = deepMerge<Record<string, unknown>>(preset, overrides);
  const parsed = presetSchema.safeParse(merged);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === "unrecognized_keys") {
        for (const k of issue.keys)
          issues.push({
            key: `${NAMESPACE}:${[...issue.path, k].join(".")}`,
            message: unknownSettingMessage(preset.platform, issue.path.length === 0 ? k : undefined),
          });
        continue;
      }
      const key = `${NAMESPACE}:${issue.path.join(".")}`;
      const got = issue.path.reduce<unknown>((v, p) => (isPlainObject(v) ? v[String(p)] : undefined), merged);
      issues.push({ key, message: `${issue.message}${got === undefined ? "" : ` (got ${JSON.stringify(got)})`}` });
    }
  }
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);
  return { tier: tier as TierName, ...parsed.data };
}

/** Says so when a top-level key is a setting of the other platform's tiers. */
function unknownSettingMessage(platform: Platform, topLevelKey: string | undefined): string {
  const other = platform === "docker" ? "aws" : "docker";
  if (topLevelKey !== undefined && settingsByPlatform[other].includes(topLevelKey)) {
    return `is not a known setting on ${platform} tiers (it configures ${other} tiers)`;
  }
  return "is not a known setting";
}
