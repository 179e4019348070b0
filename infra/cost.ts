/**
 * `trackCost()`: records every resource the program declares that the price table can price
 * (through a stack transformation, so components need no change), and yields the stack's
 * estimated monthly cost once they have all registered. `program.ts` exports it as
 * `estimatedMonthlyCost` (USD number) and `costBreakdown` (line items with their assumptions).
 *
 * During a real preview some inputs are unknown; those count as absent and the estimate uses the
 * defaults AWS would apply, which is why the offline plan (`npm run plan`) is the number to quote.
 */
import * as pulumi from "@pulumi/pulumi";
import { type CostEstimate, estimateMonthlyCost, type PricedResource, pricedTypes } from "./pricing/estimate.ts";

/** Types the estimator reads to price others (a service's task size, its autoscaling bounds). */
const supportingTypes = ["aws:ecs/taskDefinition:TaskDefinition", "aws:appautoscaling/target:Target"];
const trackedTypes = new Set([...pricedTypes, ...supportingTypes]);

interface Tracked {
  type: string;
  name: string;
  resource: pulumi.Resource;
  props: pulumi.Inputs;
}

/** Output internals: resolves whether or not the value is known (an unknown never resolves `apply`). */
function settled(value: unknown): Promise<unknown> {
  const out = pulumi.output(value) as unknown as { promise(withUnknowns: boolean): Promise<unknown> };
  return out.promise(true);
}

/** Drops unknowns and resource references, leaving the plain inputs the estimator reads. */
function plain(value: unknown): unknown {
  if (pulumi.isUnknown(value) || value instanceof pulumi.Resource) return undefined;
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .map(([k, v]) => [k, plain(v)])
        .filter(([, v]) => v !== undefined),
    );
  }
  return value;
}

function withoutResources(value: unknown): unknown {
  if (value instanceof pulumi.Resource) return undefined;
  if (Array.isArray(value)) return value.map(withoutResources);
  if (value !== null && typeof value === "object" && !pulumi.Output.isInstance(value) && !(value instanceof Promise)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutResources(v)]));
  }
  return value;
}

/** Waits until every tracked resource has registered and no new one appeared meanwhile. */
async function allRegistered(tracked: Tracked[]): Promise<void> {
  for (let seen = -1; seen !== tracked.length; ) {
    seen = tracked.length;
    await Promise.all(
      tracked.map((t) => settled(t.resource instanceof pulumi.CustomResource ? t.resource.id : t.resource.urn)),
    );
    await new Promise((r) => setImmediate(r));
  }
}

/** Call first thing in the program, before any resource is declared. */
export function trackCost(): pulumi.Output<CostEstimate> {
  const tracked: Tracked[] = [];
  pulumi.runtime.registerStackTransformation((args) => {
    if (trackedTypes.has(args.type))
      tracked.push({ type: args.type, name: args.name, resource: args.resource, props: args.props });
    return undefined;
  });
  const estimate = (async () => {
    await allRegistered(tracked);
    const resources: PricedResource[] = [];
    for (const t of tracked) {
      const inputs = plain(await settled(withoutResources(t.props))) as Record<string, unknown>;
      resources.push({ type: t.type, name: t.name, inputs: inputs ?? {} });
    }
    return estimateMonthlyCost(resources);
  })();
  return pulumi.output(estimate);
}
