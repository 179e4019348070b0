/**
 * The model repository (Triton layout): `<dir>/<model>/<version>/model.onnx` plus an optional
 * `<dir>/<model>/model.json`. Loads what each model's version policy selects, and reloads a model
 * when its files change (fs.watch, a poll as fallback, or an explicit reload such as SIGHUP).
 * A new version serves only once loaded; replaced versions drain before their session is freed.
 * One broken model or manifest never affects the others.
 */
import { type FSWatcher, watch } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { BatchStats } from "./batcher.ts";
import { type Manifest, parseManifest, type VersionPolicy } from "./manifest.ts";
import { ModelVersion, type SessionSettings } from "./model-version.ts";

export type VersionStateName = "LOADING" | "READY" | "UNAVAILABLE" | "UNLOADING";

export interface IndexEntry {
  name: string;
  version: string;
  state: VersionStateName;
  reason: string;
}

export interface RepositoryHooks {
  onBatch(model: string, version: number, stats: BatchStats): void;
  onLoaded(model: string, version: number): void;
  onUnloaded(model: string, version: number): void;
  onLoadFailure(model: string): void;
}

export interface RepositoryOptions {
  dir: string;
  logger: Logger;
  hooks: RepositoryHooks;
  session: SessionSettings;
  /** 0 disables polling. */
  pollIntervalMs: number;
  watch: boolean;
}

interface ModelEntry {
  name: string;
  fingerprint: string;
  manifestFingerprint: string;
  manifest: Manifest | undefined;
  /** Reason the model (or its manifest) cannot be served as it is on disk; null when fine. */
  error: string | null;
  /** Version -> why it is not serving (load error, excluded by policy...). */
  versionErrors: Map<number, string>;
  available: number[];
  serving: Map<number, { model: ModelVersion; fingerprint: string }>;
  /** Found on disk, its versions not loaded yet: requests get 503 + Retry-After, not 404. */
  loading: boolean;
}

export type Resolution =
  | { ok: true; model: ModelVersion }
  | { ok: false; status: 404 | 400; error: string }
  | { ok: false; status: 503; error: string; retryAfterSeconds: number };

/** What a client waiting for a loading model is told to wait: loads take tens of ms to seconds. */
const LOADING_RETRY_AFTER_SECONDS = 1;

const UNLOADED = "unloaded on request (POST /v2/repository/models/<name>/load loads it)";
const NOT_SELECTED = "not selected by the version policy";
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const VERSION_DIR = /^[1-9][0-9]{0,8}$/;

export function selectVersions(policy: VersionPolicy | undefined, available: number[]): number[] {
  const sorted = [...available].sort((a, b) => b - a);
  if (!policy || "latest" in policy) return sorted.slice(0, policy ? policy.latest.numVersions : 1);
  if ("specific" in policy) return sorted.filter((v) => policy.specific.versions.includes(v));
  return sorted;
}

async function fileStamp(path: string): Promise<string | null> {
  try {
    const s = await stat(path);
    return s.isFile() ? `${s.size}:${s.mtimeMs}` : null;
  } catch {
    return null;
  }
}

/** Version number -> stamp of its model.onnx, for every version directory that has one. */
async function versionStamps(root: string): Promise<Map<number, string>> {
  const dirents = await readdir(root, { withFileTypes: true }).catch(() => []);
  const stamps = new Map<number, string>();
  for (const d of dirents) {
    if (!d.isDirectory() || !VERSION_DIR.test(d.name)) continue;
    const s = await fileStamp(join(root, d.name, "model.onnx"));
    if (s) stamps.set(Number(d.name), s);
  }
  return stamps;
}

function loadingResolution(what: string): Resolution {
  return {
    ok: false,
    status: 503,
    error: `${what} is loading; retry in ${LOADING_RETRY_AFTER_SECONDS} s`,
    retryAfterSeconds: LOADING_RETRY_AFTER_SECONDS,
  };
}

export class ModelRepository {
  readonly dir: string;
  readonly #opts: RepositoryOptions;
  readonly #log: Logger;
  #models = new Map<string, ModelEntry>();
  #unloaded = new Set<string>();
  #reloading: Promise<void> | null = null;
  #again = false;
  #retiring = new Set<Promise<void>>();
  #poll: NodeJS.Timeout | undefined;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #closed = false;
  /** Bumped whenever what is served changes (used to cache derived documents). */
  generation = 0;
  startupComplete = false;
  lastError: string | null = null;

  constructor(opts: RepositoryOptions) {
    this.dir = opts.dir;
    this.#opts = opts;
    this.#log = opts.logger.child({ component: "repository" });
  }

  /**
   * Registers every model on disk as loading, without loading any: run before the port opens so
   * that a request arriving during the first load hears "loading", never "not found".
   */
  async discover(): Promise<void> {
    const dirents = await readdir(this.dir, { withFileTypes: true }).catch(() => []);
    for (const d of dirents) {
      if (!d.isDirectory() || !MODEL_NAME.test(d.name) || this.#models.has(d.name)) continue;
      const root = join(this.dir, d.name);
      const stamps = await versionStamps(root);
      if (stamps.size === 0 && (await fileStamp(join(root, "model.json"))) === null) continue;
      this.#models.set(d.name, {
        name: d.name,
        fingerprint: "",
        manifestFingerprint: "",
        manifest: undefined,
        error: null,
        versionErrors: new Map(),
        available: [...stamps.keys()].sort((a, b) => b - a),
        serving: new Map(),
        loading: true,
      });
    }
  }

  async start(): Promise<void> {
    await this.reload();
    this.startupComplete = true;
    if (this.#closed) return;
    if (this.#opts.pollIntervalMs > 0) {
      this.#poll = setInterval(() => void this.reload(), this.#opts.pollIntervalMs);
      this.#poll.unref();
    }
    if (this.#opts.watch) {
      try {
        this.#watcher = watch(this.dir, { recursive: true, persistent: false }, () => {
          clearTimeout(this.#debounce);
          this.#debounce = setTimeout(() => void this.reload(), 250);
          this.#debounce.unref();
        });
        this.#watcher.on("error", (err) => this.#log.warn({ err }, "model directory watch failed; polling continues"));
      } catch (err) {
        this.#log.warn({ err }, "cannot watch the model directory; relying on polling");
      }
    }
  }

  /** Rescans the repository; concurrent calls coalesce into at most one extra pass. */
  reload(): Promise<void> {
    if (this.#reloading) {
      this.#again = true;
      return this.#reloading;
    }
    this.#reloading = (async () => {
      try {
        do {
          this.#again = false;
          await this.#scan();
        } while (this.#again && !this.#closed);
      } finally {
        this.#reloading = null;
      }
    })();
    return this.#reloading;
  }

  /** Repository extension: (re)loads one model from disk now; resolves once it is settled. */
  async loadModel(name: string): Promise<void> {
    this.#unloaded.delete(name);
    const entry = this.#models.get(name);
    if (entry) {
      entry.fingerprint = ""; // force a fresh load of every selected version
      entry.manifestFingerprint = "";
    }
    await this.reload();
    // A reload already running may have scanned before the request: make sure of a pass after it.
    if (this.#models.get(name)?.fingerprint === "") await this.reload();
  }

  /** Repository extension: stops serving a model until loadModel() (files changing do not reload it). */
  unloadModel(name: string): boolean {
    const entry = this.#models.get(name);
    if (!entry) return false;
    this.#unloaded.add(name);
    this.#unloadAll(entry);
    entry.versionErrors = new Map(entry.available.map((v) => [v, UNLOADED]));
    this.generation++;
    this.#log.info({ model: name }, "model unloaded on request");
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
    this.#watcher?.close();
    await this.#reloading?.catch(() => undefined);
    // HTTP has drained by now: whatever still holds a version is abandoned after a short grace.
    for (const entry of this.#models.values()) this.#unloadAll(entry, 5_000);
    await Promise.allSettled([...this.#retiring]);
  }

  /** Model names known on disk, sorted. */
  names(): string[] {
    return [...this.#models.keys()].sort();
  }

  has(name: string): boolean {
    return this.#models.has(name);
  }

  /** Serving versions of a model, highest first. */
  servingVersions(name: string): ModelVersion[] {
    const e = this.#models.get(name);
    if (!e) return [];
    return [...e.serving.values()].map((s) => s.model).sort((a, b) => b.version - a.version);
  }

  /** Versions present on disk, highest first. */
  availableVersions(name: string): number[] {
    return [...(this.#models.get(name)?.available ?? [])];
  }

  /** The version that serves a request, or why none can. */
  resolve(name: string, version?: number): Resolution {
    const e = this.#models.get(name);
    if (!e) return { ok: false, status: 404, error: `model "${name}" not found` };
    if (version !== undefined) {
      const s = e.serving.get(version);
      if (s) return { ok: true, model: s.model };
      if (!e.available.includes(version))
        return { ok: false, status: 404, error: `model "${name}" has no version ${version}` };
      if (e.loading && !e.versionErrors.has(version)) return loadingResolution(`model "${name}" version ${version}`);
      const why = e.versionErrors.get(version) ?? "not loaded";
      return { ok: false, status: 400, error: `model "${name}" version ${version} is not ready: ${why}` };
    }
    const best = this.servingVersions(name)[0];
    if (best) return { ok: true, model: best };
    if (e.loading) return loadingResolution(`model "${name}"`);
    return { ok: false, status: 400, error: `model "${name}" is not ready: ${this.notReadyReason(name)}` };
  }

  notReadyReason(name: string): string {
    const e = this.#models.get(name);
    if (!e) return "not found";
    if (e.loading && e.serving.size === 0) return "loading";
    if (e.error) return e.error;
    const errs = [...e.versionErrors.entries()].map(([v, r]) => `version ${v}: ${r}`);
    return errs.length ? errs.join("; ") : "no version loaded";
  }

  /** Problems to surface on a model that is nevertheless serving (e.g. a broken new manifest). */
  warnings(name: string): string | null {
    const e = this.#models.get(name);
    return e && e.serving.size > 0 ? e.error : null;
  }

  /** Triton's repository index. */
  index(readyOnly = false): IndexEntry[] {
    const rows: IndexEntry[] = [];
    for (const name of this.names()) {
      const e = this.#models.get(name)!;
      if (e.available.length === 0 && !readyOnly) {
        rows.push({
          name,
          version: "",
          state: "UNAVAILABLE",
          reason: e.error ?? "no version directory with a model.onnx",
        });
      }
      for (const v of [...e.available].sort((a, b) => a - b)) {
        const serving = e.serving.has(v);
        if (readyOnly && !serving) continue;
        const failed = e.versionErrors.get(v);
        const loading = !serving && e.loading && failed === undefined;
        rows.push({
          name,
          version: String(v),
          state: serving ? "READY" : loading ? "LOADING" : "UNAVAILABLE",
          reason: serving ? "" : loading ? "loading" : (failed ?? e.error ?? "not loaded"),
        });
      }
    }
    return rows;
  }

  /** True when at least one version of every model is serving. */
  allReady(): boolean {
    for (const e of this.#models.values()) if (e.serving.size === 0) return false;
    return true;
  }

  /**
   * Models short of what their files and policy ask for, with the reason: a rejected manifest, a
   * selected version that failed to load, nothing serving. A model unloaded on request is not
   * counted (Triton's strict readiness does the same).
   */
  notFullyServing(): { name: string; reason: string }[] {
    const out: { name: string; reason: string }[] = [];
    for (const name of this.names()) {
      if (this.#unloaded.has(name)) continue;
      const e = this.#models.get(name)!;
      const failed = [...e.versionErrors]
        .filter(([, why]) => why !== NOT_SELECTED)
        .map(([v, why]) => `version ${v}: ${why}`);
      if (e.error) failed.unshift(e.error);
      if (failed.length) out.push({ name, reason: failed.join("; ") });
      else if (e.serving.size === 0) out.push({ name, reason: "no version loaded" });
    }
    return out;
  }

  anyReady(): boolean {
    for (const e of this.#models.values()) if (e.serving.size > 0) return true;
    return false;
  }

  async #scan(): Promise<void> {
    let names: string[];
    try {
      const dirents = await readdir(this.dir, { withFileTypes: true });
      names = dirents.filter((d) => d.isDirectory() && MODEL_NAME.test(d.name)).map((d) => d.name);
      this.lastError = null;
    } catch (err) {
      this.lastError = `cannot read model repository ${this.dir}: ${(err as Error).message}`;
      this.#log.error({ dir: this.dir, err }, "cannot read the model repository");
      return; // keep serving what is loaded
    }
    const present = new Set(names);
    for (const [name, entry] of this.#models) {
      if (!present.has(name)) {
        this.#log.info({ model: name }, "model removed from the repository; unloading");
        this.#unloadAll(entry);
        this.#models.delete(name);
        this.generation++;
      }
    }
    // Models load one after another: loading is CPU-bound and parallel loads would not finish sooner.
    for (const name of names.sort()) {
      if (this.#closed) return;
      try {
        await this.#scanModel(name);
      } catch (err) {
        this.#log.error({ model: name, err }, "unexpected error while scanning a model");
      }
    }
  }

  async #scanModel(name: string): Promise<void> {
    try {
      await this.#scanModelFiles(name);
    } finally {
      const entry = this.#models.get(name);
      if (entry) entry.loading = false;
    }
  }

  async #scanModelFiles(name: string): Promise<void> {
    const root = join(this.dir, name);
    const manifestPath = join(root, "model.json");
    const manifestStamp = (await fileStamp(manifestPath)) ?? "none";
    const stamps = await versionStamps(root);
    if (stamps.size === 0 && manifestStamp === "none") {
      // Neither a version nor a manifest: not a model (e.g. a build/ or docs folder beside them).
      const gone = this.#models.get(name);
      if (gone) {
        this.#unloadAll(gone);
        this.#models.delete(name);
        this.generation++;
      }
      return;
    }
    const fingerprint = `${manifestStamp}|${[...stamps]
      .sort((a, b) => a[0] - b[0])
      .map(([v, s]) => `${v}=${s}`)
      .join(",")}`;
    let entry = this.#models.get(name);
    if (entry && entry.fingerprint === fingerprint) return;
    if (this.#unloaded.has(name) && entry) {
      // Unloaded on request: track the files, load nothing until asked to.
      entry.fingerprint = fingerprint;
      entry.available = [...stamps.keys()].sort((a, b) => b - a);
      entry.versionErrors = new Map(entry.available.map((v) => [v, UNLOADED]));
      this.generation++;
      return;
    }

    if (!entry) {
      entry = {
        name,
        fingerprint,
        manifestFingerprint: "",
        manifest: undefined,
        error: null,
        versionErrors: new Map(),
        available: [],
        serving: new Map(),
        loading: true,
      };
      this.#models.set(name, entry);
    }
    // A model with nothing serving yet is loading until this pass settles it.
    if (entry.serving.size === 0 && stamps.size > 0) entry.loading = true;
    entry.fingerprint = fingerprint;
    entry.available = [...stamps.keys()].sort((a, b) => b - a);
    this.generation++;

    let manifest: Manifest | undefined;
    if (manifestStamp !== "none") {
      const text = await readFile(manifestPath, "utf8").catch((e: Error) => e);
      const parsed =
        typeof text === "string"
          ? parseManifest(text)
          : { ok: false as const, error: `cannot read model.json: ${text.message}` };
      if (!parsed.ok) {
        entry.error = parsed.error;
        this.#opts.hooks.onLoadFailure(name);
        this.#log.error(
          { model: name, error: parsed.error },
          "model manifest rejected; the model keeps its loaded versions",
        );
        return;
      }
      manifest = parsed.manifest;
    }
    entry.error = null;
    const manifestChanged = manifestStamp !== entry.manifestFingerprint;
    entry.manifest = manifest;

    if (stamps.size === 0) {
      entry.error = "no version directory with a model.onnx";
      this.#log.warn({ model: name }, "model has no version to serve");
    }
    const wanted = selectVersions(manifest?.versionPolicy, [...stamps.keys()]);
    entry.versionErrors = new Map();
    for (const v of stamps.keys()) if (!wanted.includes(v)) entry.versionErrors.set(v, NOT_SELECTED);

    const next = new Map<number, { model: ModelVersion; fingerprint: string }>();
    for (const v of wanted) {
      const stamp = stamps.get(v)!;
      const current = entry.serving.get(v);
      if (current && current.fingerprint === stamp && !manifestChanged) {
        next.set(v, current);
        continue;
      }
      try {
        const model = await ModelVersion.load(
          name,
          v,
          join(root, String(v), "model.onnx"),
          manifest,
          this.#opts.session,
          (s) => this.#opts.hooks.onBatch(name, v, s),
        );
        next.set(v, { model, fingerprint: stamp });
        this.#log.info({ model: name, version: v, batching: model.signature.batching }, "model version loaded");
      } catch (err) {
        const reason = (err as Error).message;
        entry.versionErrors.set(v, reason);
        this.#opts.hooks.onLoadFailure(name);
        this.#log.error({ model: name, version: v, error: reason }, "model version failed to load");
      }
    }
    if (next.size === 0 && entry.serving.size > 0) {
      // Nothing new could load: keep serving the previous versions rather than nothing.
      this.#log.warn({ model: name }, "no selected version could load; previous versions keep serving");
      return;
    }
    entry.manifestFingerprint = manifestStamp;
    const previous = entry.serving;
    entry.serving = next;
    for (const v of next.keys()) this.#opts.hooks.onLoaded(name, v);
    for (const [v, old] of previous) {
      if (next.get(v)?.model === old.model) continue;
      if (!next.has(v)) this.#opts.hooks.onUnloaded(name, v);
      this.#retire(old.model);
    }
    this.generation++;
  }

  #unloadAll(entry: ModelEntry, boundMs?: number): void {
    for (const [v, s] of entry.serving) {
      this.#opts.hooks.onUnloaded(entry.name, v);
      this.#retire(s.model, boundMs);
    }
    entry.serving = new Map();
  }

  #retire(model: ModelVersion, boundMs?: number): void {
    const p = model
      .retire(boundMs)
      .then(() => this.#log.info({ model: model.name, version: model.version }, "model version released"))
      .catch((err) =>
        this.#log.error({ model: model.name, version: model.version, err }, "releasing a model version failed"),
      );
    this.#retiring.add(p);
    void p.finally(() => this.#retiring.delete(p));
  }
}
