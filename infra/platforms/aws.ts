import type { StackConfig } from "../config.ts";
import type { TierOutputs } from "./docker.ts";

/** The `small` and `medium` tiers (issue 5). */
export function deployAwsTier(cfg: StackConfig): TierOutputs {
  throw new Error(`tier ${cfg.tier}: the AWS platform is not built yet`);
}
