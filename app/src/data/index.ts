import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { DataPlane } from "../ports.ts";

export interface DataPlaneDeps {
  /** The app instance's metrics registry: data-plane metrics register here. */
  registry: Registry;
  logger: Logger;
}

/**
 * Builds the data plane from the environment (issue 3). Until Postgres and Redis are wired, the
 * API runs on in-process defaults: no auth, no shared limits, no cache, no prediction log.
 */
export async function createDataPlane(_env: NodeJS.ProcessEnv, _deps: DataPlaneDeps): Promise<DataPlane> {
  return {};
}
