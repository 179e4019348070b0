import type { DataPlane } from "../ports.ts";

/**
 * Builds the data plane from the environment (issue 3). Until Postgres and Redis are wired, the
 * API runs on in-process defaults: no auth, no shared limits, no cache, no prediction log.
 */
export async function createDataPlane(_env: NodeJS.ProcessEnv): Promise<DataPlane> {
  return {};
}
