/** KServe V1 protocol: model list, model status, predict. */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import type { PreparedInputs } from "../inference/batcher.ts";
import type { ModelVersion } from "../inference/model-version.ts";
import type { AppDeps, AppEnv } from "./context.ts";
import { ApiError } from "./errors.ts";
import { type PredictionSpec, servePrediction } from "./pipeline.ts";
import { renderV1 } from "./render.ts";
import { ErrorSchema, V1ModelListSchema, V1ModelSchema, V1PredictResponseSchema } from "./schemas.ts";
import { prepareV1 } from "./v1-decode.ts";

const json = (schema: z.ZodType, description: string) => ({ description, content: { "application/json": { schema } } });
const errors = {
  400: json(ErrorSchema, "Invalid request or model not ready; `error` names the field"),
  404: json(ErrorSchema, "No such model"),
};

const V1_PREDICT: PredictionSpec<PreparedInputs> = {
  protocol: "v1",
  bodyOptions: { deferDepth: true },
  prepare: (m: ModelVersion, body, request) => prepareV1(m.signature, body, request),
  render: (m, prepared, outputs) => ({ predictions: renderV1(m.signature, outputs, prepared.rows) }),
  inputsMember: "instances",
};

export function v1Model(deps: AppDeps, name: string) {
  const serving = deps.repo.servingVersions(name);
  const m = serving[0];
  const body: z.infer<typeof V1ModelSchema> = {
    name,
    ready: serving.length > 0,
    versions: serving.map((v) => String(v.version)),
    inputs: [],
    outputs: [],
  };
  if (!m) {
    body.reason = deps.repo.notReadyReason(name);
    return body;
  }
  const sig = m.signature;
  if (sig.description) body.description = sig.description;
  body.inputs = sig.inputs.map((t) => ({
    name: t.name,
    datatype: t.datatype,
    shape: t.shape,
    ...(t.features ? { features: t.features } : {}),
  }));
  body.outputs = sig.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape }));
  if (sig.labels) body.labels = sig.labels;
  body.batching = sig.batching;
  return body;
}

export function registerV1(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const reg = app.openAPIRegistry;
  reg.registerPath({
    method: "get",
    path: "/v1/models",
    tags: ["KServe V1"],
    summary: "Names of the models in the repository",
    responses: { 200: json(V1ModelListSchema, "Model names") },
  });
  app.get("/v1/models", (c) => c.json({ models: deps.repo.names() }));

  reg.registerPath({
    method: "get",
    path: "/v1/models/{name}",
    tags: ["KServe V1"],
    summary: "A model's status, inputs (with named features), outputs and labels",
    request: { params: z.object({ name: z.string() }) },
    responses: { 200: json(V1ModelSchema, "Model status"), ...errors },
  });
  app.get("/v1/models/:name", (c) => {
    const name = c.req.param("name");
    if (name.includes(":")) throw new ApiError(405, `GET is not allowed on ${c.req.path}; use POST`);
    if (!deps.repo.has(name)) throw new ApiError(404, `model "${name}" not found`);
    return c.json(v1Model(deps, name));
  });

  reg.registerPath({
    method: "post",
    path: "/v1/models/{name}:predict",
    tags: ["KServe V1"],
    summary: "Predict (any model; see the per-model paths for each model's instance schema)",
    description:
      "`instances` are objects keyed by feature name (when the manifest names features, or by input name for multi-input models) or plain arrays. Classifiers answer `{label, probabilities}` per instance; regressors a number (or an array for multi-output).",
    request: {
      params: z.object({ name: z.string() }),
      body: {
        content: { "application/json": { schema: z.object({ instances: z.array(z.unknown()).min(1) }) } },
        required: true,
      },
    },
    responses: {
      200: json(V1PredictResponseSchema, "One prediction per instance"),
      ...errors,
      401: json(ErrorSchema, "Missing or invalid API key"),
      413: json(ErrorSchema, "Body or batch over the limit"),
      415: json(ErrorSchema, "Not application/json"),
      429: json(ErrorSchema, "Rate limit exceeded (see Retry-After)"),
      503: json(ErrorSchema, "Model still loading (see Retry-After)"),
    },
  });
  app.post("/v1/models/:target", (c) => {
    c.set("routeLabel", "/v1/models/:name:predict");
    const target = c.req.param("target");
    const sep = target.lastIndexOf(":");
    const verb = sep > 0 ? target.slice(sep + 1) : "";
    if (verb !== "predict") {
      throw new ApiError(404, `unknown V1 verb "${verb || target}"; use POST /v1/models/<name>:predict`);
    }
    return servePrediction(c, deps, V1_PREDICT, target.slice(0, sep));
  });
}
