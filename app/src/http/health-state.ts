/**
 * One health state behind every probe (/health/*, /v2/health/*) and the ready/degraded metrics.
 * Liveness depends on nothing external; readiness needs the initial model load done and a model
 * serving (relaxed, the default) or every model serving (strict); a configured dependency that is
 * down makes the API "degraded", never unready.
 */
import type { ModelRepository } from "../inference/repository.ts";
import type { Metrics } from "../metrics.ts";
import type { DependencyProbe, DependencyStatus } from "../ports.ts";

/** See READINESS in config.ts and docs/api.md. */
export type ReadinessMode = "relaxed" | "strict";

export interface ReadinessReport {
  ready: boolean;
  readiness: ReadinessMode;
  status: "ok" | "degraded" | "not_ready" | "shutting_down";
  reasons: string[];
  models: { name: string; ready: boolean; versions: number[]; reason?: string }[];
  dependencies: DependencyStatus[];
}

export class Health {
  readonly startedAt = Date.now();
  shuttingDown = false;
  readonly #repo: ModelRepository;
  readonly #metrics: Metrics;
  readonly #probes: DependencyProbe[];
  readonly #timeoutMs: number;
  readonly #mode: ReadinessMode;
  #lastDeps: DependencyStatus[] = [];

  constructor(
    repo: ModelRepository,
    metrics: Metrics,
    probes: DependencyProbe[],
    timeoutMs: number,
    mode: ReadinessMode = "relaxed",
  ) {
    this.#repo = repo;
    this.#mode = mode;
    this.#metrics = metrics;
    this.#probes = probes;
    this.#timeoutMs = timeoutMs;
    metrics.setReadyProbe(() => this.modelsReady() && !this.shuttingDown);
  }

  live(): boolean {
    return true;
  }

  started(): boolean {
    return this.#repo.startupComplete;
  }

  /**
   * Initial load done and something to serve (an empty repository counts as nothing to wait for);
   * in strict mode, also no model short of what its files and policy ask for.
   */
  modelsReady(): boolean {
    if (!this.#repo.startupComplete) return false;
    if (this.#mode === "strict" && this.#repo.notFullyServing().length > 0) return false;
    if (this.#repo.anyReady()) return true;
    // An empty repository is a valid state; one that cannot be read (wrong MODELS_DIR) is not.
    return this.#repo.names().length === 0 && this.#repo.lastError === null;
  }

  async checkDependencies(): Promise<DependencyStatus[]> {
    const results = await Promise.all(
      this.#probes.map(async (p): Promise<DependencyStatus> => {
        let timer: NodeJS.Timeout | undefined;
        try {
          const timeout = new Promise<DependencyStatus>((resolve) => {
            timer = setTimeout(
              () => resolve({ name: p.name, ok: false, detail: `no answer within ${this.#timeoutMs} ms` }),
              this.#timeoutMs,
            );
          });
          return await Promise.race([p.check(), timeout]);
        } catch (err) {
          return { name: p.name, ok: false, detail: (err as Error).message };
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    for (const d of results) this.#metrics.dependencyUp.set({ dependency: d.name }, d.ok ? 1 : 0);
    this.#metrics.degraded.set(results.some((d) => !d.ok) ? 1 : 0);
    this.#lastDeps = results;
    return results;
  }

  get lastDependencies(): DependencyStatus[] {
    return this.#lastDeps;
  }

  async readiness(): Promise<ReadinessReport> {
    const dependencies = await this.checkDependencies();
    const reasons: string[] = [];
    if (!this.#repo.startupComplete) reasons.push("initial model load in progress");
    else if (this.#mode === "strict" && this.#repo.notFullyServing().length > 0) {
      for (const m of this.#repo.notFullyServing())
        reasons.push(`model "${m.name}" is not fully serving (strict readiness): ${m.reason}`);
    } else if (!this.modelsReady()) reasons.push("no model version is serving");
    if (this.#repo.lastError) reasons.push(this.#repo.lastError);
    const models = this.#repo.names().map((name) => {
      const versions = this.#repo.servingVersions(name).map((m) => m.version);
      const entry: ReadinessReport["models"][number] = { name, ready: versions.length > 0, versions };
      const problem = versions.length ? this.#repo.warnings(name) : this.#repo.notReadyReason(name);
      if (problem) entry.reason = problem;
      return entry;
    });
    const down = dependencies.filter((d) => !d.ok);
    for (const d of down) reasons.push(`${d.name} unreachable${d.detail ? `: ${d.detail}` : ""}`);
    let ready = this.modelsReady();
    let status: ReadinessReport["status"] = ready ? (down.length ? "degraded" : "ok") : "not_ready";
    if (this.shuttingDown) {
      ready = false;
      status = "shutting_down";
      reasons.unshift("shutting down");
    }
    this.#metrics.ready.set(ready ? 1 : 0);
    return { ready, readiness: this.#mode, status, reasons, models, dependencies };
  }
}
