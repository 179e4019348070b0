/**
 * The Pulumi CLI's own handling of `Pulumi.yaml` and `Pulumi.<stack>.yaml`, ported rule by rule
 * from its Go source so tests meet the checks a real `pulumi up` applies before the program runs.
 * Sources (pulumi/pulumi, read at commit 1b5949891b3c, CLI 3.x of August 2026):
 * - sdk/go/common/workspace/loaders.go       LoadProjectBytes, LoadProjectStackBytes
 * - sdk/go/common/workspace/project.json     the project file's JSON schema (not shipped in the
 *                                            npm package, so its rules are encoded below)
 * - sdk/go/common/workspace/project.go       ValidateProject, RewriteShorthandConfigValues,
 *                                            Project.Validate, ValidateConfigValue
 * - pkg/workspace/config.go                  mergeConfig, validateStackConfigValue
 * - sdk/go/common/resource/config/{map,value,object}.go   Map.Set with --path, coerce, Value YAML
 * - pkg/cmd/pulumi/config/config.go          `pulumi config set` (--path, --secret, --type, looksLikeSecret)
 * - sdk/nodejs/cmd/pulumi-language-nodejs/main.go   parseOptions (runtime options), execRuntime
 * - pkg/engine/project.go                    getPwdMain (`main:` → program directory)
 */
import { parse } from "yaml";

export class PulumiCliError extends Error {
  override name = "PulumiCliError";
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const stringOrNull = (v: unknown) => v === null || typeof v === "string";

export interface ProjectConfigType {
  type?: string;
  description?: string;
  items?: ConfigItemsType;
  default?: unknown;
  value?: unknown;
  secret?: boolean;
}
interface ConfigItemsType {
  type: string;
  items?: ConfigItemsType;
}

export interface Project {
  name: string;
  runtime: { name: string; options: Record<string, unknown> };
  main?: string;
  config: Record<string, ProjectConfigType>;
}

// project.json $defs.simpleConfigType
const SIMPLE_CONFIG_TYPES = ["string", "integer", "boolean", "array", "object"];

/** project.json $defs.configItemsType: `type` required, `items` required when type is array. */
function schemaItemsErrors(v: unknown, at: string): string[] {
  if (!isMap(v)) return [`${at}: expected object`];
  const errs: string[] = [];
  if (!("type" in v)) errs.push(`${at}: missing property 'type'`);
  else if (!(typeof v.type === "string" && SIMPLE_CONFIG_TYPES.includes(v.type)) && !isMap(v.type)) {
    errs.push(`${at}/type: must be one of ${SIMPLE_CONFIG_TYPES.join(", ")}`);
  }
  if (v.type === "array" && !("items" in v)) errs.push(`${at}: missing property 'items'`);
  if ("items" in v) errs.push(...schemaItemsErrors(v.items, `${at}/items`));
  return errs;
}

/** project.json $defs.configTypeDeclaration (additionalProperties: false). */
function schemaConfigDeclarationErrors(v: Record<string, unknown>, at: string): string[] {
  const errs: string[] = [];
  for (const k of Object.keys(v)) {
    if (!["type", "items", "description", "secret", "default", "value"].includes(k))
      errs.push(`${at}: additionalProperties '${k}' not allowed`);
  }
  if ("type" in v && !(typeof v.type === "string" && SIMPLE_CONFIG_TYPES.includes(v.type))) {
    errs.push(`${at}/type: value must be one of ${SIMPLE_CONFIG_TYPES.map((t) => `"${t}"`).join(", ")}`);
  }
  if ("items" in v) errs.push(...schemaItemsErrors(v.items, `${at}/items`));
  if ("description" in v && typeof v.description !== "string") errs.push(`${at}/description: expected string`);
  if ("secret" in v && typeof v.secret !== "boolean") errs.push(`${at}/secret: expected boolean`);
  return errs;
}

/** The JSON-schema half of ValidateProject (project.go), for the properties this project can use. */
export function projectSchemaErrors(raw: unknown): string[] {
  if (!isMap(raw)) return ["project must be an object"];
  const errs: string[] = [];
  // ValidateProject checks `name` by hand before the schema.
  if (!("name" in raw)) return ["project is missing a 'name' attribute"];
  if (typeof raw.name !== "string" || raw.name === "")
    return ["project is missing a non-empty string 'name' attribute"];
  for (const k of ["description", "author", "website", "license", "main", "stackConfigDir"]) {
    if (k in raw && !stringOrNull(raw[k])) errs.push(`#/${k}: expected string or null`);
  }
  if ("runtime" in raw) {
    const r = raw.runtime;
    if (typeof r === "string") {
      if (r === "") errs.push("#/runtime: length must be >= 1");
    } else if (isMap(r)) {
      for (const k of Object.keys(r))
        if (k !== "name" && k !== "options") errs.push(`#/runtime: additionalProperties '${k}' not allowed`);
      if ("name" in r && (typeof r.name !== "string" || r.name === ""))
        errs.push("#/runtime/name: expected non-empty string");
      if ("options" in r && !isMap(r.options)) errs.push("#/runtime/options: expected object");
    } else errs.push("#/runtime: expected string or object");
  }
  if ("config" in raw && raw.config !== null && typeof raw.config !== "string") {
    if (!isMap(raw.config)) errs.push("#/config: expected object, string or null");
    else {
      for (const [key, v] of Object.entries(raw.config)) {
        const at = `#/config/${key}`;
        if (key === "secret" && typeof v !== "boolean") errs.push(`${at}: expected boolean`);
        // oneOf: string | integer | boolean | array | configTypeDeclaration
        if (
          typeof v === "string" ||
          typeof v === "boolean" ||
          Array.isArray(v) ||
          (typeof v === "number" && Number.isInteger(v))
        )
          continue;
        if (isMap(v)) errs.push(...schemaConfigDeclarationErrors(v, at));
        else errs.push(`${at}: oneOf failed, none matched (got ${JSON.stringify(v)})`);
      }
    }
  }
  if ("backend" in raw && raw.backend !== null) {
    if (!isMap(raw.backend)) errs.push("#/backend: expected object or null");
    else
      for (const k of Object.keys(raw.backend))
        if (k !== "url") errs.push(`#/backend: additionalProperties '${k}' not allowed`);
  }
  if ("options" in raw && raw.options !== null) {
    if (!isMap(raw.options)) errs.push("#/options: expected object or null");
    else {
      for (const k of Object.keys(raw.options))
        if (k !== "refresh") errs.push(`#/options: additionalProperties '${k}' not allowed`);
      if ("refresh" in raw.options && raw.options.refresh !== "always")
        errs.push('#/options/refresh: value must be "always"');
    }
  }
  for (const k of ["packages", "plugins"]) if (k in raw && !isMap(raw[k])) errs.push(`#/${k}: expected object`);
  return errs;
}

/** ValidateConfigValue (project.go): Go's view of YAML/JSON values. */
export function validateConfigValue(typeName: string, items: ConfigItemsType | undefined, value: unknown): boolean {
  switch (typeName) {
    case "string":
      return typeof value === "string";
    case "integer":
      if (typeof value === "number") return Number.isInteger(value);
      // strconv.Atoi: optional sign, decimal digits, fits in int64
      return (
        typeof value === "string" &&
        /^[+-]?\d+$/.test(value) &&
        Math.abs(Number(value)) <= Number.MAX_SAFE_INTEGER * 1024
      );
    case "boolean":
      return value === "true" || value === "false" || typeof value === "boolean";
    case "object":
      return isMap(value);
    default:
      if (!Array.isArray(value) || items === undefined) return false;
      return value.every((item) => validateConfigValue(items.type, items.items, item));
  }
}

function fullTypeName(typeName: string, items: ConfigItemsType | undefined): string {
  return items ? `array<${fullTypeName(items.type, items.items)}>` : typeName;
}

const namespacedByProject = (project: string, key: string) => !key.includes(":") || key.startsWith(`${project}:`);

/** The nodejs language host's parseOptions (pulumi-language-nodejs/main.go). */
function nodejsOptionErrors(options: Record<string, unknown>): string[] {
  const errs: string[] = [];
  const expect = (k: string, t: "boolean" | "string") => {
    if (k in options && typeof options[k] !== t) errs.push(`${k} option must be a ${t}`);
  };
  expect("typescript", "boolean");
  expect("tsconfig", "string");
  expect("nodeargs", "string");
  expect("production", "boolean");
  if ("packagemanager" in options) {
    const pm = options.packagemanager;
    if (typeof pm !== "string") errs.push("packagemanager option must be a string");
    else if (!["auto", "npm", "yarn", "pnpm", "bun"].includes(pm))
      errs.push(`packagemanager option must be one of auto, npm, yarn, pnpm or bun, got "${pm}"`);
  }
  return errs;
}

/** LoadProjectBytes: schema, shorthand rewrite, then Project.Validate; plus the nodejs host's options. */
export function loadProject(text: string, source = "Pulumi.yaml"): Project {
  const raw: unknown = parse(text);
  const schemaErrors = projectSchemaErrors(raw);
  if (schemaErrors.length > 0) throw new PulumiCliError(`could not validate '${source}': ${schemaErrors.join("; ")}`);
  const doc = raw as Record<string, unknown>;
  const name = doc.name as string;
  const configIn = isMap(doc.config) ? doc.config : {};
  const config: Record<string, ProjectConfigType> = {};
  for (const [key, v] of Object.entries(configIn)) {
    // RewriteShorthandConfigValues: primitives and arrays become a default (project keys) or a value.
    if (!isMap(v)) config[key] = namespacedByProject(name, key) ? { default: v } : { value: v };
    else config[key] = v as ProjectConfigType;
  }
  // Project.Validate. Go's `Default != nil` is false for YAML null, so null counts as absent.
  for (const [key, t] of Object.entries(config)) {
    const hasDefault = t.default !== undefined && t.default !== null;
    const hasValue = t.value !== undefined && t.value !== null;
    if (hasDefault && hasValue)
      throw new PulumiCliError(`project config '${key}' cannot have both a 'default' and 'value' attribute`);
    if (namespacedByProject(name, key)) {
      if (t.type === "array" && t.items === undefined) {
        throw new PulumiCliError(
          `The configuration key '${key}' declares an array but does not specify the underlying type via the 'items' attribute`,
        );
      }
      if (t.type !== undefined && hasDefault && !validateConfigValue(t.type, t.items, t.default)) {
        throw new PulumiCliError(
          `The default value specified for configuration key '${key}' is not of the expected type '${fullTypeName(t.type, t.items)}'`,
        );
      }
    } else {
      if (t.type !== undefined)
        throw new PulumiCliError(
          `Configuration key '${key}' is not namespaced by the project and should not define a type`,
        );
      if (hasDefault)
        throw new PulumiCliError(
          `Configuration key '${key}' is not namespaced by the project and should not define a default value. Did you mean to use the 'value' attribute instead of 'default'?`,
        );
      if (!hasValue)
        throw new PulumiCliError(`Configuration key '${key}' is namespaced and must provide an attribute 'value'`);
    }
  }
  const runtime =
    typeof doc.runtime === "string"
      ? { name: doc.runtime, options: {} }
      : {
          name: String((doc.runtime as Record<string, unknown>)?.name ?? ""),
          options: ((doc.runtime as Record<string, unknown>)?.options ?? {}) as Record<string, unknown>,
        };
  if (runtime.name === "nodejs") {
    const optionErrors = nodejsOptionErrors(runtime.options);
    if (optionErrors.length > 0) throw new PulumiCliError(`nodejs language host: ${optionErrors.join("; ")}`);
  }
  return { name, runtime, ...(typeof doc.main === "string" ? { main: doc.main } : {}), config };
}

/**
 * One stack config value as config.Value holds it: a string, or JSON text when `object`; `secure`
 * when the value (or one leaf of an object) is ciphertext.
 */
export interface ConfigValue {
  value: string;
  secure: boolean;
  object: boolean;
}
export type ConfigMap = Map<string, ConfigValue>;

const isSecureValue = (v: unknown): v is { secure: string } =>
  isMap(v) && Object.keys(v).length === 1 && typeof v.secure === "string";
const containsSecure = (v: unknown): boolean =>
  isSecureValue(v) || (Array.isArray(v) ? v.some(containsSecure) : isMap(v) && Object.values(v).some(containsSecure));

/** Value.UnmarshalYAML → object.MarshalString (object.go). */
function valueFromYaml(v: unknown): ConfigValue {
  if (typeof v === "string") return { value: v, secure: false, object: false };
  if (typeof v === "boolean" || typeof v === "number")
    return { value: JSON.stringify(v), secure: false, object: false };
  if (isSecureValue(v)) return { value: v.secure, secure: true, object: false };
  return { value: JSON.stringify(v ?? null), secure: containsSecure(v), object: true };
}

/** LoadProjectStackBytes: keys without a namespace get the project's; values as config.Value. */
export function loadProjectStack(project: Project, text: string, source: string): ConfigMap {
  const raw: unknown = parse(text);
  const out: ConfigMap = new Map();
  if (raw === null || raw === undefined) return out;
  if (!isMap(raw)) throw new PulumiCliError(`${source}: expected project to be an object`);
  const config = raw.config ?? {};
  if (!isMap(config)) throw new PulumiCliError(`${source}: config must be a mapping`);
  for (const [key, v] of Object.entries(config)) {
    const full = key.includes(":") ? key : `${project.name}:${key}`;
    if (!/^[^:]+:[^:]+$/.test(full))
      throw new PulumiCliError(`${source}: could not parse ${key} as a configuration key`);
    out.set(full, valueFromYaml(v));
  }
  return out;
}

/** A stand-in for the stack's secrets provider: ciphertext is `v1:` + base64 of the plaintext. */
export const testCrypter = {
  encrypt: (plaintext: string) => `v1:${Buffer.from(plaintext).toString("base64")}`,
  decrypt: (ciphertext: string) => {
    if (!ciphertext.startsWith("v1:")) throw new PulumiCliError(`cannot decrypt ${ciphertext}`);
    return Buffer.from(ciphertext.slice(3), "base64").toString();
  },
};

function decryptJson(v: unknown, decrypt: (c: string) => string): unknown {
  if (isSecureValue(v)) return decrypt(v.secure);
  if (Array.isArray(v)) return v.map((x) => decryptJson(x, decrypt));
  if (isMap(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decryptJson(x, decrypt)]));
  return v;
}

/** Value.Value(decrypter): plaintext string; objects as JSON with their secure leaves decrypted. */
export function decryptedValue(v: ConfigValue, decrypt: (c: string) => string): string {
  if (!v.object) return v.secure ? decrypt(v.value) : v.value;
  return JSON.stringify(decryptJson(JSON.parse(v.value), decrypt));
}

/** resource.ParsePropertyPathStrict for the forms our docs use: `a.b.c`, `a[0]`, `["a.b"]`. */
export function parsePropertyPath(path: string): (string | number)[] {
  const parts: (string | number)[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]|\["([^"]*)"\]|(\.)/gy;
  let last = 0;
  for (let m = re.exec(path); m !== null; m = re.exec(path)) {
    last = re.lastIndex;
    if (m[1] !== undefined) parts.push(m[1]);
    else if (m[2] !== undefined) parts.push(Number(m[2]));
    else if (m[3] !== undefined) parts.push(m[3]);
  }
  if (last !== path.length || parts.length === 0) throw new PulumiCliError(`invalid config key path: ${path}`);
  return parts;
}

/** coerce (object.go): "true"/"false" → boolean, base-10 integers not starting with 0 → number. */
function coerce(v: string): unknown {
  if (v === "true") return true;
  if (v === "false") return false;
  if (v.length > 1 && v.startsWith("0")) return v;
  if (/^[+-]?\d+$/.test(v) && Number.isSafeInteger(Number(v))) return Number(v);
  return v;
}

export interface ConfigSetOptions {
  path?: boolean;
  secret?: boolean;
  plaintext?: boolean;
  type?: "string" | "int" | "bool" | "float";
}

// pkg/cmd/pulumi/config/config.go keyPattern: a plaintext value under such a key may be refused
// as "looks like a secret" (an entropy check we do not port: we refuse every such plain set).
const SECRET_LOOKING_KEY = /passwd|pass|password|pwd|secret|token/i;

/** `pulumi config set [--path] [--secret] <key> <value>` applied to a stack's config map. */
export function configSet(
  project: Project,
  map: ConfigMap,
  key: string,
  value: string,
  opts: ConfigSetOptions = {},
): void {
  const full = key.includes(":") ? key : `${project.name}:${key}`;
  const colon = full.indexOf(":");
  const namespace = full.slice(0, colon);
  const name = full.slice(colon + 1);
  if (!opts.secret && !opts.plaintext && SECRET_LOOKING_KEY.test(name)) {
    throw new PulumiCliError(
      `config value for '${full}' looks like a secret; rerun with --secret to encrypt it, or --plaintext if you meant to store in plaintext`,
    );
  }
  const path = opts.path ? parsePropertyPath(name) : [name];
  const root = `${namespace}:${String(path[0])}`;
  let leaf: unknown;
  if (opts.secret) leaf = { secure: testCrypter.encrypt(value) };
  else if (opts.type === "int") leaf = Number.parseInt(value, 10);
  else if (opts.type === "float") leaf = Number.parseFloat(value);
  else if (opts.type === "bool") leaf = value === "true";
  else if (opts.type === "string") leaf = value;
  // Top-level entries are always strings; only path leaves are coerced (Map.Set).
  else leaf = path.length > 1 ? coerce(value) : value;
  if (path.length === 1) {
    map.set(root, valueFromYaml(leaf));
    return;
  }
  const existing = map.get(root);
  let obj: unknown;
  if (existing === undefined) obj = typeof path[1] === "number" ? [] : {};
  else if (existing.object) obj = JSON.parse(existing.value);
  else throw new PulumiCliError(`could not set config: ${root} is a string, not an object or list`);
  let cursor = obj as Record<string | number, unknown>;
  for (let i = 1; i < path.length - 1; i++) {
    const part = path[i]!;
    if (cursor[part] === undefined || cursor[part] === null) cursor[part] = typeof path[i + 1] === "number" ? [] : {};
    cursor = cursor[part] as Record<string | number, unknown>;
  }
  cursor[path.at(-1)!] = leaf;
  map.set(root, valueFromYaml(obj));
}

/** The config the language host hands the program: PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS. */
export interface ProgramConfig {
  config: Record<string, string>;
  secretKeys: string[];
}

/**
 * ValidateStackConfigAndApplyProjectConfig → mergeConfig(validate=true) in pkg/workspace/config.go:
 * project defaults/values fill keys the stack lacks; a project key with neither is required;
 * explicitly typed keys are type-checked against the stack's (decrypted) value, and a key declared
 * `secret: true` must hold a secure value. Throws the CLI's own message.
 */
export function mergeConfig(
  stackName: string,
  project: Project,
  stack: ConfigMap,
  decrypt = testCrypter.decrypt,
): ProgramConfig {
  const merged: ConfigMap = new Map(stack);
  const missing: string[] = [];
  const keys = Object.keys(project.config).sort();
  for (const projectKey of keys) {
    const t = project.config[projectKey]!;
    const full = projectKey.includes(":") ? projectKey : `${project.name}:${projectKey}`;
    const found = merged.has(full);
    const hasDefault = t.default !== undefined && t.default !== null;
    const hasValue = t.value !== undefined && t.value !== null;
    if (!found && !hasValue && !hasDefault && full.startsWith(`${project.name}:`)) {
      missing.push(projectKey);
      continue;
    }
    if (!found && (hasValue || hasDefault)) {
      // createConfigValue: string/int/bool become "%v" text, anything else JSON (an object value).
      const v = hasDefault ? t.default : t.value;
      const primitive =
        typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isInteger(v));
      merged.set(
        full,
        primitive
          ? { value: String(v), secure: false, object: false }
          : { value: JSON.stringify(v), secure: false, object: true },
      );
    }
  }
  if (missing.length > 0) {
    const sorted = [...missing].sort();
    const list =
      sorted.length === 1
        ? `'${sorted[0]}'`
        : `${sorted
            .slice(0, -1)
            .map((k) => `'${k}'`)
            .join(", ")} and '${sorted.at(-1)}'`;
    throw new PulumiCliError(
      `Stack '${stackName}' is missing configuration value${sorted.length === 1 ? "" : "s"} ${list}`,
    );
  }
  // validateStackConfigValues
  for (const projectKey of keys) {
    const t = project.config[projectKey]!;
    if (t.type === undefined) continue;
    const full = projectKey.includes(":") ? projectKey : `${project.name}:${projectKey}`;
    const v = merged.get(full);
    if (v === undefined) continue;
    if (t.secret && !v.secure)
      throw new PulumiCliError(
        `Stack '${stackName}' with configuration key '${projectKey}' must be encrypted as it's secret`,
      );
    const plain = decryptedValue(v, decrypt);
    const content: unknown = v.object ? JSON.parse(plain) : plain;
    if (!validateConfigValue(t.type, t.items, content)) {
      throw new PulumiCliError(
        `Stack '${stackName}' with configuration key '${projectKey}' must be of type '${fullTypeName(t.type, t.items)}'`,
      );
    }
  }
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [k, v] of [...merged].sort(([a], [b]) => a.localeCompare(b))) {
    config[k] = decryptedValue(v, decrypt);
    if (v.secure) secretKeys.push(k);
  }
  return { config, secretKeys };
}

/**
 * Splits one shell command line of our docs into argv: single and double quotes, `\` escapes,
 * and `$(...)` substitutions replaced through `substitute` (e.g. `$(cat ~/.ssh/id_ed25519.pub)`).
 */
export function shellWords(line: string, substitute: (expr: string) => string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    // A comment, or the end of this command (`&&`, `;`, `|`): the rest is another command.
    if ((c === "#" || c === "&" || c === ";" || c === "|") && !inWord) break;
    if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in: ${line}`);
      cur += line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === "\\") cur += line[++j];
        else if (line.startsWith("$(", j)) {
          const end = line.indexOf(")", j);
          cur += substitute(line.slice(j + 2, end));
          j = end;
        } else cur += line[j];
      }
      if (j >= line.length) throw new Error(`unterminated " in: ${line}`);
      i = j;
    } else if (c === "\\") cur += line[++i] ?? "";
    else if (line.startsWith("$(", i)) {
      const end = line.indexOf(")", i);
      cur += substitute(line.slice(i + 2, end));
      i = end;
    } else cur += c;
  }
  if (inWord) words.push(cur);
  return words;
}

export interface ConfigSetCommand {
  key: string;
  value: string;
  opts: ConfigSetOptions;
  stack?: string;
}

/** Parses `[npx] pulumi config set ...` argv the way cobra does for that command's flags. */
export function parseConfigSet(argv: string[]): ConfigSetCommand {
  const args = argv[0] === "npx" ? argv.slice(1) : argv;
  if (args[0] !== "pulumi" || args[1] !== "config" || args[2] !== "set")
    throw new Error(`not a pulumi config set: ${argv.join(" ")}`);
  const opts: ConfigSetOptions = {};
  const positional: string[] = [];
  let stack: string | undefined;
  for (let i = 3; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--path") opts.path = true;
    else if (a === "--secret") opts.secret = true;
    else if (a === "--plaintext") opts.plaintext = true;
    else if (a === "--type") opts.type = args[++i] as ConfigSetOptions["type"];
    else if (a === "--stack" || a === "-s") stack = args[++i];
    else if (a.startsWith("--stack=")) stack = a.slice(8);
    else if (a === "--") {
      positional.push(...args.slice(i + 1));
      i = args.length;
    } else if (a.startsWith("-")) throw new Error(`unknown flag ${a} in: ${argv.join(" ")}`);
    else positional.push(a);
  }
  if (positional.length !== 2) throw new Error(`expected <key> <value> in: ${argv.join(" ")}`);
  return { key: positional[0]!, value: positional[1]!, opts, ...(stack ? { stack } : {}) };
}

/**
 * getPwdMain (pkg/engine/project.go) and the nodejs host's run.js: `main: infra/` makes `infra/` the
 * program's working directory (`--pwd`, also every provider plugin's cwd) with entry point ".";
 * run.js then takes package.json `exports`/`main` if present, else for `type: module` the first of
 * index.js, index.mjs, index.ts, index.mts in that directory.
 */
export function resolveEntryPoint(
  projectMain: string | undefined,
  packageJson: { type?: string; main?: string; exports?: unknown },
  exists: (relativePath: string) => boolean,
): { pwd: string; entry: string } {
  const pwd = (projectMain ?? ".").replace(/\/+$/, "") || ".";
  if (packageJson.exports !== undefined || packageJson.main !== undefined) {
    throw new PulumiCliError(
      "package.json `exports`/`main` would replace Pulumi.yaml's `main` as the program's entry point (run.js)",
    );
  }
  if (packageJson.type !== "module")
    throw new PulumiCliError("package.json is not `type: module`: run.js would require() the program as CommonJS");
  for (const index of ["index.js", "index.mjs", "index.ts", "index.mts"]) {
    const candidate = pwd === "." ? index : `${pwd}/${index}`;
    if (exists(candidate)) return { pwd, entry: candidate };
  }
  throw new PulumiCliError(`No entrypoint found in ${pwd}`);
}
