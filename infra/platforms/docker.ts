import type * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../config.ts";

export interface TierOutputs {
  url: pulumi.Input<string>;
  grafanaUrl: pulumi.Input<string>;
  [output: string]: unknown;
}

/** The `local` and `free` tiers (issue 4). */
export function deployDockerTier(cfg: StackConfig): TierOutputs {
  throw new Error(`tier ${cfg.tier}: the Docker platform is not built yet`);
}
