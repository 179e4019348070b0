/**
 * Builds the arguments @pulumi/policy hands a policy, from a resource's type, name and inputs, so
 * tests can call `validateResource` / `validateStack` directly (the engine cannot run here).
 */
import type {
  PolicyProviderResource,
  PolicyResource,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
import type { GuardrailConfig } from "../policies.ts";

export interface FakeResource {
  type: string;
  name: string;
  props: Record<string, unknown>;
  provider?: PolicyProviderResource;
  /** Input name → resources it depends on (as the engine reports them). */
  propertyDependencies?: Record<string, FakeResource[]>;
}

export const urnOf = (r: { type: string; name: string }, stack = "test") =>
  `urn:pulumi:${stack}::inferstack::${r.type}::${r.name}`;

const notApplicable = (reason?: string): never => {
  throw new Error(`not applicable: ${reason}`);
};

export function resourceArgs(r: FakeResource, config: GuardrailConfig = {}): ResourceValidationArgs {
  return {
    type: r.type,
    name: r.name,
    urn: urnOf(r),
    props: r.props,
    opts: {
      protect: false,
      ignoreChanges: [],
      aliases: [],
      additionalSecretOutputs: [],
      customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
    } as ResourceValidationArgs["opts"],
    ...(r.provider ? { provider: r.provider } : {}),
    stackTags: new Map(),
    isType: () => false,
    asType: () => undefined,
    getConfig: <T extends object>() => config as T,
    notApplicable,
  } as ResourceValidationArgs;
}

export function policyResource(r: FakeResource, all: Map<FakeResource, PolicyResource> = new Map()): PolicyResource {
  const existing = all.get(r);
  if (existing) return existing;
  const pr: PolicyResource = {
    type: r.type,
    name: r.name,
    urn: urnOf(r),
    props: r.props,
    opts: {} as PolicyResource["opts"],
    ...(r.provider ? { provider: r.provider } : {}),
    dependencies: [],
    propertyDependencies: {},
    isType: () => false,
    asType: () => undefined,
  };
  all.set(r, pr);
  for (const [k, deps] of Object.entries(r.propertyDependencies ?? {}))
    pr.propertyDependencies[k] = deps.map((d) => policyResource(d, all));
  pr.dependencies = Object.values(pr.propertyDependencies).flat();
  return pr;
}

export function stackArgs(resources: FakeResource[], config: GuardrailConfig = {}): StackValidationArgs {
  const all = new Map<FakeResource, PolicyResource>();
  return {
    resources: resources.map((r) => policyResource(r, all)),
    stackTags: new Map(),
    getConfig: <T extends object>() => config as T,
    notApplicable,
  };
}

export async function violationsOf(
  policy: ResourceValidationPolicy,
  r: FakeResource,
  config: GuardrailConfig = {},
): Promise<string[]> {
  const out: string[] = [];
  const validate = policy.validateResource;
  for (const v of Array.isArray(validate) ? validate : validate ? [validate] : [])
    await v(resourceArgs(r, config), (m) => out.push(m));
  return out;
}

export async function stackViolationsOf(
  policy: StackValidationPolicy,
  resources: FakeResource[],
  config: GuardrailConfig = {},
): Promise<string[]> {
  const out: string[] = [];
  await policy.validateStack(stackArgs(resources, config), (m) => out.push(m));
  return out;
}
