import type * as pulumi from "@pulumi/pulumi";

/** What every platform's deploy function returns; `program.ts` adds `tier` and the cost estimate. */
export interface TierOutputs {
  url: pulumi.Input<string>;
  grafanaUrl: pulumi.Input<string>;
  [output: string]: unknown;
}
