/** Open Inference Protocol (KServe V2 / Triton HTTP): server and model metadata, health, infer, repository index. */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { z } from "zod";
import { encodeBinaryResponse } from "./binary-tensor.ts";
import { readJson } from "./body.ts";
import type { AppDeps, AppEnv } from "./context.ts";
import { ApiError, unresolvedError } from "./errors.ts";
import { authenticate, type PredictionSpec, servePrediction, v2Outputs } from "./pipeline.ts";
import {
  BinaryTensorBodySchema,
  ErrorSchema,
  ModelMetadataSchema,
  ModelReadySchema,
  RepositoryIndexRequestSchema,
  RepositoryIndexSchema,
  ServerMetadataSchema,
  V2InferResponseSchema,
} from "./schemas.ts";
import { type PreparedV2, prepareV2, V2RequestSchema } from "./v2-decode.ts";
import { registerTritonExtensions, TRITON_EXTENSIONS } from "./v2-triton.ts";

const json = (schema: z.ZodType, description: string) => ({ description, content: { "application/json": { schema } } });
const NameParam = z.object({ name: z.string() });
const VersionParams = z.object({ name: z.string(), version: z.string().regex(/^[1-9][0-9]*$/) });

export const SERVER_EXTENSIONS = ["model_repository", "binary_tensor_data", ...TRITON_EXTENSIONS];

function parseVersion(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(raw)) throw new ApiError(400, `version: "${raw}" is not a positive integer`);
  return Number(raw);
}

const V2_INFER: PredictionSpec<PreparedV2> = {
  protocol: "v2",
  bodyOptions: { binaryTensors: true },
  prepare: (m, body, request) => prepareV2(m.signature, body, request),
  render: (m, prepared, outputs) => ({
    model_name: m.name,
    model_version: String(m.version),
    outputs: v2Outputs(outputs, prepared.outputs ?? m.signature.outputs.map((o) => o.name)),
  }),
  decorate: (body, prepared) => (prepared.id !== undefined ? { ...body, id: prepared.id } : body),
  encode: (body, prepared) => (prepared.binaryOutputs ? encodeBinaryResponse(body, prepared.binaryOutputs) : undefined),
  inputsMember: "inputs",
};

export function registerV2(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const reg = app.openAPIRegistry;
  const tags = ["Open Inference Protocol (V2)"];

  reg.registerPath({
    method: "get",
    path: "/v2",
    tags,
    summary: "Server metadata",
    responses: { 200: json(ServerMetadataSchema, "Server metadata") },
  });
  for (const path of ["/v2", "/v2/"])
    app.get(path, (c) =>
      c.json({ name: "inferstack", version: deps.config.APP_VERSION, extensions: SERVER_EXTENSIONS }),
    );

  reg.registerPath({
    method: "get",
    path: "/v2/health/live",
    tags,
    summary: "Liveness",
    responses: { 200: { description: "Live" } },
  });
  app.get("/v2/health/live", (c) => c.json({ live: deps.health.live() }));

  reg.registerPath({
    method: "get",
    path: "/v2/health/ready",
    tags,
    summary: "Readiness (200 ready, 400 not ready, per the protocol)",
    responses: { 200: { description: "Ready" }, 400: { description: "Not ready" } },
  });
  app.get("/v2/health/ready", async (c) => {
    const r = await deps.health.readiness();
    return c.json({ ready: r.ready }, r.ready ? 200 : 400);
  });

  // Before /v2/models/:name, which would otherwise take GET /v2/models/stats for a model named "stats".
  registerTritonExtensions(app, deps);

  const metadata = (name: string, version?: number) => {
    const r = deps.repo.resolve(name, version);
    if (!r.ok) throw unresolvedError(r);
    const sig = r.model.signature;
    return {
      name,
      versions:
        version !== undefined ? [String(version)] : deps.repo.servingVersions(name).map((m) => String(m.version)),
      platform: "onnxruntime_onnx",
      inputs: sig.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
      outputs: sig.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    };
  };
  const metaResponses = {
    200: json(ModelMetadataSchema, "Model metadata"),
    400: json(ErrorSchema, "Not ready"),
    404: json(ErrorSchema, "Not found"),
    503: json(ErrorSchema, "Model still loading (see Retry-After)"),
  };
  reg.registerPath({
    method: "get",
    path: "/v2/models/{name}",
    tags,
    summary: "Model metadata",
    request: { params: NameParam },
    responses: metaResponses,
  });
  app.get("/v2/models/:name", (c) => c.json(metadata(c.req.param("name"))));
  reg.registerPath({
    method: "get",
    path: "/v2/models/{name}/versions/{version}",
    tags,
    summary: "Model version metadata",
    request: { params: VersionParams },
    responses: metaResponses,
  });
  app.get("/v2/models/:name/versions/:version", (c) =>
    c.json(metadata(c.req.param("name"), parseVersion(c.req.param("version")))),
  );

  const ready = (name: string, version?: number) => {
    if (!deps.repo.has(name)) throw new ApiError(404, `model "${name}" not found`);
    const r = deps.repo.resolve(name, version);
    if (!r.ok && r.status === 404) throw new ApiError(404, r.error);
    return r.ok
      ? { body: { name, ready: true }, status: 200 as const }
      : { body: { name, ready: false, reason: r.error }, status: 400 as const };
  };
  const readyResponses = {
    200: json(ModelReadySchema, "Ready"),
    400: json(ModelReadySchema, "Not ready, with the reason"),
    404: json(ErrorSchema, "Not found"),
  };
  reg.registerPath({
    method: "get",
    path: "/v2/models/{name}/ready",
    tags,
    summary: "Model readiness",
    request: { params: NameParam },
    responses: readyResponses,
  });
  app.get("/v2/models/:name/ready", (c) => {
    const r = ready(c.req.param("name"));
    return c.json(r.body, r.status);
  });
  reg.registerPath({
    method: "get",
    path: "/v2/models/{name}/versions/{version}/ready",
    tags,
    summary: "Model version readiness",
    request: { params: VersionParams },
    responses: readyResponses,
  });
  app.get("/v2/models/:name/versions/:version/ready", (c) => {
    const r = ready(c.req.param("name"), parseVersion(c.req.param("version")));
    return c.json(r.body, r.status);
  });

  const inferDoc = {
    tags,
    request: {
      body: {
        content: {
          "application/json": { schema: V2RequestSchema },
          "application/octet-stream": { schema: BinaryTensorBodySchema },
        },
        required: true,
        description:
          "JSON (also when Content-Type is absent), or JSON followed by binary tensor data; gzip or deflate Content-Encoding accepted",
      },
      headers: z.object({
        "inference-header-content-length": z
          .string()
          .regex(/^[0-9]+$/)
          .optional()
          .describe(
            "Length in bytes of the JSON before the binary tensor data; 0 for a raw binary request (the single input's bytes)",
          ),
      }),
    },
    responses: {
      200: {
        description: "Output tensors: JSON, or (when outputs are asked for in binary) JSON followed by their bytes",
        headers: {
          "Inference-Header-Content-Length": {
            description: "Length of the JSON part of a binary response",
            schema: { type: "integer" as const },
          },
        },
        content: {
          "application/json": { schema: V2InferResponseSchema },
          "application/octet-stream": { schema: BinaryTensorBodySchema },
        },
      },
      400: json(ErrorSchema, "Invalid request (names the tensor and reason) or runtime error on this input"),
      401: json(ErrorSchema, "Missing or invalid API key"),
      404: json(ErrorSchema, "No such model or version"),
      413: json(ErrorSchema, "Body or batch over the limit"),
      415: json(
        ErrorSchema,
        "Content-Type other than application/json or application/octet-stream, or Content-Encoding other than gzip, deflate or identity",
      ),
      429: json(ErrorSchema, "Rate limit exceeded"),
      503: json(ErrorSchema, "Model still loading (see Retry-After)"),
    },
  };
  reg.registerPath({
    method: "post",
    path: "/v2/models/{name}/infer",
    summary: "Inference (default version)",
    ...inferDoc,
    request: { ...inferDoc.request, params: NameParam },
  });
  reg.registerPath({
    method: "post",
    path: "/v2/models/{name}/versions/{version}/infer",
    summary: "Inference on a given version",
    ...inferDoc,
    request: { ...inferDoc.request, params: VersionParams },
  });
  app.post("/v2/models/:name/infer", (c) => servePrediction(c, deps, V2_INFER, c.req.param("name")));
  app.post("/v2/models/:name/versions/:version/infer", (c) =>
    servePrediction(c, deps, V2_INFER, c.req.param("name"), parseVersion(c.req.param("version"))),
  );

  const repoTags = ["Model repository extension"];
  reg.registerPath({
    method: "post",
    path: "/v2/repository/models/{name}/load",
    tags: repoTags,
    summary: "Load (or reload) a model from disk now; answers once it serves or failed",
    request: { params: NameParam },
    responses: {
      200: { description: "Serving" },
      400: json(ErrorSchema, "Could not load, with the reason"),
      403: json(ErrorSchema, "Repository control disabled (MODEL_CONTROL)"),
      404: json(ErrorSchema, "No such model directory"),
    },
  });
  // Changing what is served is an operator action: off unless enabled, and behind API keys.
  const control = async (c: Context<AppEnv>) => {
    if (!deps.config.MODEL_CONTROL)
      throw new ApiError(403, "repository control is disabled (set MODEL_CONTROL=true to enable load/unload)");
    await authenticate(c, deps);
  };
  app.post("/v2/repository/models/:name/load", async (c) => {
    await control(c);
    const name = c.req.param("name");
    await deps.repo.loadModel(name);
    if (!deps.repo.has(name)) throw new ApiError(404, `model "${name}" not found in the repository`);
    const r = deps.repo.resolve(name);
    if (!r.ok) throw new ApiError(400, r.error);
    return c.json({});
  });
  reg.registerPath({
    method: "post",
    path: "/v2/repository/models/{name}/unload",
    tags: repoTags,
    summary: "Stop serving a model (in-flight requests finish) until it is loaded again",
    request: { params: NameParam },
    responses: {
      200: { description: "Unloaded" },
      403: json(ErrorSchema, "Repository control disabled (MODEL_CONTROL)"),
      404: json(ErrorSchema, "No such model"),
    },
  });
  app.post("/v2/repository/models/:name/unload", async (c) => {
    await control(c);
    const name = c.req.param("name");
    if (!deps.repo.unloadModel(name)) throw new ApiError(404, `model "${name}" not found`);
    return c.json({});
  });

  reg.registerPath({
    method: "post",
    path: "/v2/repository/index",
    tags: repoTags,
    summary: "Every model version on disk with its state (READY, UNAVAILABLE) and the reason",
    request: { body: { content: { "application/json": { schema: RepositoryIndexRequestSchema } }, required: false } },
    responses: { 200: json(RepositoryIndexSchema, "Repository index"), 400: json(ErrorSchema, "Invalid body") },
  });
  app.post("/v2/repository/index", async (c) => {
    let readyOnly = false;
    const length = c.req.header("content-length");
    if (length !== undefined && length !== "0") {
      const body = await readJson(c, { maxBytes: deps.config.BODY_LIMIT_BYTES, maxDepth: deps.config.MAX_JSON_DEPTH });
      const parsed = RepositoryIndexRequestSchema.safeParse(body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new ApiError(400, `${issue.path.join(".") || "body"}: ${issue.message}`);
      }
      readyOnly = parsed.data.ready ?? false;
    }
    return c.json(deps.repo.index(readyOnly));
  });
}
