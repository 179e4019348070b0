/** What every HTTP adapter receives: config, logger, metrics, the model repository, the data plane. */
import type { Logger } from "pino";
import type { AppConfig } from "../config.ts";
import type { ModelRepository } from "../inference/repository.ts";
import type { Metrics } from "../metrics.ts";
import type { DataPlane } from "../ports.ts";
import type { Health } from "./health-state.ts";

export interface AppDeps {
  config: AppConfig;
  logger: Logger;
  metrics: Metrics;
  repo: ModelRepository;
  dataPlane: DataPlane;
  health: Health;
}

export type AppEnv = {
  Variables: {
    requestId: string;
    /** The API made the request id (a fresh UUIDv7, so unique): the prediction log reuses it as the row id. */
    requestIdIsOwn?: boolean;
    /** Route template for metrics when the router's own pattern is less telling. */
    routeLabel?: string;
    /** Why the request failed, for the access log. */
    failure?: string;
  };
};
