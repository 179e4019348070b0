/**
 * The Pulumi program: validate the stack config, then declare the tier's platform.
 * `index.ts` is the entry point Pulumi loads; the offline engine (`offline/`, behind `npm run plan`)
 * and the tests call `main()` under `pulumi.runtime.setMocks`.
 */
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig } from "./config.ts";
import { trackCost } from "./cost.ts";
import { deployAwsTier } from "./platforms/aws.ts";
import { deployDockerTier } from "./platforms/docker.ts";

export async function main(): Promise<Record<string, unknown>> {
  // Registered before any resource so every priced resource is seen.
  const costEstimate = trackCost();
  // Validation runs before any resource is declared: a bad value fails the preview up front.
  const cfg = parseStackConfig(pulumi.runtime.allConfig());
  const outputs = cfg.platform === "docker" ? deployDockerTier(cfg) : deployAwsTier(cfg);
  return {
    tier: cfg.tier,
    ...outputs,
    estimatedMonthlyCost: costEstimate.apply((e) => e.total),
    costBreakdown: costEstimate,
  };
}
