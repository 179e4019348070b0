/**
 * The offline plan: runs a checkout's Pulumi program under Pulumi's mocks with the stack's config
 * and returns its resources (with their parent component and inputs) and the cost estimate.
 * `root` may be another checkout (plan:diff plans a base revision from a git worktree): its own
 * program and price table are loaded, the mock harness is this checkout's.
 *
 * Process-global Pulumi state: one plan per process.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { runUnderMocks } from "../../infra/offline/run-under-mocks.ts";
import {
  type CostEstimate,
  estimateMonthlyCost as currentEstimator,
  type PricedResource,
} from "../../infra/pricing/estimate.ts";
import { applyStandIns, readStackFile, SECRET_PLACEHOLDER } from "./stack-config.ts";

export interface PlanResource {
  /** `type::name`: unique within a stack, stable across revisions. */
  id: string;
  type: string;
  name: string;
  /** `type::name` of the parent component; absent at the top level. */
  parent?: string;
  component: boolean;
  /** Inputs as the provider would receive them, secrets masked. */
  inputs: Record<string, unknown>;
}

export interface Plan {
  stack: string;
  tier: string;
  resources: PlanResource[];
  /** Stack outputs except the cost breakdown, secrets masked. */
  outputs: Record<string, unknown>;
  cost: CostEstimate;
  /** Config keys the stack file lacks that the plan filled with stand-ins (see stack-config.ts). */
  standIns: string[];
}

export const MASK = "[secret]";
const secretish = new RegExp(`mock-secret-|${SECRET_PLACEHOLDER}|mock-ecr-token`);
// The mocked secrets' exact forms (cloud-mocks.ts): masked in place, so that a connection string
// keeps its host and the diagram its edge (postgres://user:[secret]@postgres:5432/db).
const secretToken = new RegExp(`mock-secret-[A-Za-z0-9-]*?-Zq7x|${SECRET_PLACEHOLDER}|mock-ecr-token`, "g");

export function maskSecrets(value: unknown): unknown {
  if (typeof value === "string") {
    if (!secretish.test(value)) return value;
    const masked = value.replace(secretToken, MASK);
    return secretish.test(masked) ? MASK : masked; // a form not recognised: hide all of it
  }
  if (Array.isArray(value)) return value.map(maskSecrets);
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskSecrets(v)]));
  return value;
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export async function buildPlan(root: string, stack: string): Promise<Plan> {
  const { config, standIns } = applyStandIns((await readStackFile(root, stack)).config);
  const program = (await import(pathToFileURL(join(root, "infra/program.ts")).href)) as {
    main: () => Promise<Record<string, unknown>>;
  };
  const estimatorFile = join(root, "infra/pricing/estimate.ts");
  const estimate: (r: PricedResource[]) => CostEstimate = existsSync(estimatorFile)
    ? ((await import(pathToFileURL(estimatorFile).href)) as { estimateMonthlyCost: typeof currentEstimator })
        .estimateMonthlyCost
    : currentEstimator;

  const mocked = await runUnderMocks(stack, config, program.main);
  const resources: PlanResource[] = mocked.resources
    .filter((r) => r.type !== "pulumi:pulumi:Stack")
    .map((r) => ({
      id: `${r.type}::${r.name}`,
      type: r.type,
      name: r.name,
      ...(r.parent && !r.parent.startsWith("pulumi:pulumi:Stack::") ? { parent: r.parent } : {}),
      component: !r.custom,
      inputs: maskSecrets(r.inputs) as Record<string, unknown>,
    }))
    .sort(byId);
  const { costBreakdown: _breakdown, ...outputs } = mocked.outputs;
  const priced = mocked.resources
    .filter((r) => r.custom)
    .map((r) => ({ id: `${r.type}::${r.name}`, type: r.type, name: r.name, inputs: r.inputs }));
  const cost = estimate(priced.sort(byId));
  return {
    stack,
    tier: String(mocked.outputs.tier ?? config["inferstack:tier"] ?? "local"),
    resources,
    outputs: maskSecrets(outputs) as Record<string, unknown>,
    cost,
    standIns,
  };
}
