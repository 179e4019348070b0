/**
 * Triton's HTTP extensions beyond the Open Inference Protocol core, in the JSON Triton's own server
 * returns (what perf_analyzer, model_analyzer and tritonclient read):
 * - model configuration: GET /v2/models/<m>[/versions/<v>]/config — the ModelConfig protobuf of
 *   triton-inference-server/common printed as Triton prints it (proto field names, primitive fields
 *   at their defaults included, 64-bit integers as numbers), built from the served signature;
 * - statistics: GET /v2/models[/<m>[/versions/<v>]]/stats — per serving version, from ModelStats.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import type { Datatype, VersionPolicy } from "../inference/manifest.ts";
import type { ModelVersion } from "../inference/model-version.ts";
import type { AppDeps, AppEnv } from "./context.ts";
import { ApiError, unresolvedError } from "./errors.ts";
import { ErrorSchema } from "./schemas.ts";

export const TRITON_EXTENSIONS = ["model_configuration", "statistics"];

/** model_config.proto's DataType for each V2 datatype (BYTES is Triton's TYPE_STRING). */
const TRITON_DATA_TYPE: Record<Datatype, string> = {
  BOOL: "TYPE_BOOL",
  UINT8: "TYPE_UINT8",
  UINT16: "TYPE_UINT16",
  UINT32: "TYPE_UINT32",
  UINT64: "TYPE_UINT64",
  INT8: "TYPE_INT8",
  INT16: "TYPE_INT16",
  INT32: "TYPE_INT32",
  INT64: "TYPE_INT64",
  FP16: "TYPE_FP16",
  FP32: "TYPE_FP32",
  FP64: "TYPE_FP64",
  BYTES: "TYPE_STRING",
};

function versionPolicy(policy: VersionPolicy | undefined) {
  // Triton's default, as its NormalizeModelConfig sets it: the latest version.
  if (!policy) return { latest: { num_versions: 1 } };
  if ("latest" in policy) return { latest: { num_versions: policy.latest.numVersions } };
  if ("specific" in policy) return { specific: { versions: [...policy.specific.versions] } };
  return { all: {} };
}

/**
 * The model configuration Triton would report for this model served the way we serve it: one CPU
 * instance, the dynamic batcher when batching is on (dims then leave out the batch dimension).
 */
export function tritonModelConfig(model: ModelVersion, responseCache: boolean) {
  const sig = model.signature;
  const maxBatchSize = sig.batching.maxBatchSize;
  const dims = (shape: number[]) => (maxBatchSize > 0 ? shape.slice(1) : [...shape]);
  return {
    name: model.name,
    platform: "onnxruntime_onnx",
    backend: "onnxruntime",
    runtime: "",
    version_policy: versionPolicy(sig.versionPolicy),
    max_batch_size: maxBatchSize,
    input: sig.inputs.map((t) => ({
      name: t.name,
      data_type: TRITON_DATA_TYPE[t.datatype],
      format: "FORMAT_NONE",
      dims: dims(t.shape),
      is_shape_tensor: false,
      allow_ragged_batch: false,
      optional: false,
      is_non_linear_format_io: false,
    })),
    output: sig.outputs.map((t) => ({
      name: t.name,
      data_type: TRITON_DATA_TYPE[t.datatype],
      dims: dims(t.shape),
      label_filename: "",
      is_shape_tensor: false,
      is_non_linear_format_io: false,
    })),
    batch_input: [],
    batch_output: [],
    optimization: {
      priority: "PRIORITY_DEFAULT",
      input_pinned_memory: { enable: true },
      output_pinned_memory: { enable: true },
      gather_kernel_buffer_threshold: 0,
      eager_batching: false,
    },
    ...(maxBatchSize > 0
      ? {
          dynamic_batching: {
            // Triton fills an empty preferred_batch_size with max_batch_size; our batcher cuts there too.
            preferred_batch_size: [maxBatchSize],
            max_queue_delay_microseconds: sig.batching.maxQueueDelayMicros,
            preserve_ordering: false,
            priority_levels: 0,
            default_priority_level: 0,
            priority_queue_policy: {},
          },
        }
      : {}),
    instance_group: [
      {
        name: model.name,
        kind: "KIND_CPU",
        count: 1,
        gpus: [],
        secondary_devices: [],
        profile: [],
        passive: false,
        host_policy: "",
      },
    ],
    default_model_filename: "model.onnx",
    cc_model_filenames: {},
    metric_tags: {},
    parameters: {},
    model_warmup: [],
    ...(responseCache ? { response_cache: { enable: true } } : {}),
  };
}

const DurationSchema = z.object({ count: z.number().int(), ns: z.number().int() });

const TensorConfigSchema = z
  .object({
    name: z.string(),
    data_type: z.string().describe("model_config.proto DataType, e.g. TYPE_FP32"),
    dims: z.array(z.number().int()),
  })
  .catchall(z.unknown());

const ModelConfigSchema = z
  .object({
    name: z.string(),
    platform: z.literal("onnxruntime_onnx"),
    backend: z.literal("onnxruntime"),
    version_policy: z.record(z.string(), z.unknown()),
    max_batch_size: z
      .number()
      .int()
      .describe("0: not batched, dims are the full shape; > 0: dims leave out the batch dimension"),
    input: z.array(TensorConfigSchema),
    output: z.array(TensorConfigSchema),
    dynamic_batching: z
      .object({ preferred_batch_size: z.array(z.number().int()), max_queue_delay_microseconds: z.number().int() })
      .catchall(z.unknown())
      .optional(),
  })
  .catchall(z.unknown())
  .describe("Triton's ModelConfig (model_config.proto) as JSON")
  .meta({ id: "TritonModelConfig" });

const ModelStatSchema = z
  .object({
    name: z.string(),
    version: z.string(),
    last_inference: z.number().int().describe("Milliseconds since the epoch; 0 before the first request"),
    inference_count: z.number().int(),
    execution_count: z.number().int(),
    inference_stats: z.object({
      success: DurationSchema,
      fail: DurationSchema,
      queue: DurationSchema,
      compute_input: DurationSchema,
      compute_infer: DurationSchema,
      compute_output: DurationSchema,
      cache_hit: DurationSchema,
      cache_miss: DurationSchema,
    }),
    response_stats: z.record(z.string(), z.unknown()),
    batch_stats: z.array(
      z.object({
        batch_size: z.number().int(),
        compute_input: DurationSchema,
        compute_infer: DurationSchema,
        compute_output: DurationSchema,
      }),
    ),
    memory_usage: z.array(z.unknown()),
  })
  .meta({ id: "TritonModelStatistics" });

const StatsResponseSchema = z
  .object({ model_stats: z.array(ModelStatSchema) })
  .meta({ id: "TritonStatisticsResponse" });

const VERSION = /^[1-9][0-9]{0,8}$/;

function parseVersion(raw: string): number {
  if (!VERSION.test(raw)) throw new ApiError(400, `version: "${raw}" is not a positive integer`);
  return Number(raw);
}

export function registerTritonExtensions(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const reg = app.openAPIRegistry;
  const json = (schema: z.ZodType, description: string) => ({
    description,
    content: { "application/json": { schema } },
  });
  const NameParam = z.object({ name: z.string() });
  const VersionParams = z.object({ name: z.string(), version: z.string().regex(VERSION) });

  const configOf = (name: string, version?: number) => {
    const r = deps.repo.resolve(name, version);
    if (!r.ok) throw unresolvedError(r);
    const ttl = r.model.signature.cacheTtlSeconds ?? deps.config.CACHE_TTL_SECONDS;
    return tritonModelConfig(r.model, deps.dataPlane.cache !== undefined && ttl > 0);
  };
  const configTags = ["Model configuration extension (Triton)"];
  const configResponses = {
    200: json(ModelConfigSchema, "Model configuration"),
    400: json(ErrorSchema, "Not ready"),
    404: json(ErrorSchema, "Not found"),
  };
  reg.registerPath({
    method: "get",
    path: "/v2/models/{name}/config",
    tags: configTags,
    summary: "Model configuration (Triton's ModelConfig)",
    request: { params: NameParam },
    responses: configResponses,
  });
  app.get("/v2/models/:name/config", (c) => c.json(configOf(c.req.param("name"))));
  reg.registerPath({
    method: "get",
    path: "/v2/models/{name}/versions/{version}/config",
    tags: configTags,
    summary: "Model configuration of a version",
    request: { params: VersionParams },
    responses: configResponses,
  });
  app.get("/v2/models/:name/versions/:version/config", (c) =>
    c.json(configOf(c.req.param("name"), parseVersion(c.req.param("version")))),
  );

  const statsOf = (name?: string, version?: number) => {
    if (name === undefined) {
      return {
        model_stats: deps.repo
          .names()
          .flatMap((n) => ascending(deps.repo.servingVersions(n)).map((m) => m.stats.toTriton(n, m.version))),
      };
    }
    if (!deps.repo.has(name)) throw new ApiError(404, `model "${name}" not found`);
    const serving = ascending(deps.repo.servingVersions(name));
    if (serving.length === 0) {
      // Still loading: 503 + Retry-After, as every model route; else, as Triton, statistics exist for ready versions only.
      const r = deps.repo.resolve(name);
      if (!r.ok && r.status === 503) throw unresolvedError(r);
      throw new ApiError(400, `model "${name}" is not available: ${deps.repo.notReadyReason(name)}`);
    }
    const chosen = version === undefined ? serving : serving.filter((m) => m.version === version);
    if (chosen.length === 0)
      throw new ApiError(
        400,
        `model "${name}" version ${version} is not available (serving: ${serving.map((m) => m.version).join(", ")})`,
      );
    return { model_stats: chosen.map((m) => m.stats.toTriton(name, m.version)) };
  };
  const statsTags = ["Statistics extension (Triton)"];
  const statsResponses = {
    200: json(StatsResponseSchema, "Cumulative statistics per serving version since it loaded"),
    400: json(ErrorSchema, "Model or version not serving"),
    404: json(ErrorSchema, "No such model"),
  };
  reg.registerPath({
    method: "get",
    path: "/v2/models/stats",
    tags: statsTags,
    summary: "Statistics of every serving model version",
    responses: { 200: statsResponses[200] },
  });
  app.get("/v2/models/stats", (c) => c.json(statsOf()));
  reg.registerPath({
    method: "get",
    path: "/v2/models/{name}/stats",
    tags: statsTags,
    summary: "Statistics of a model's serving versions",
    request: { params: NameParam },
    responses: statsResponses,
  });
  app.get("/v2/models/:name/stats", (c) => c.json(statsOf(c.req.param("name"))));
  reg.registerPath({
    method: "get",
    path: "/v2/models/{name}/versions/{version}/stats",
    tags: statsTags,
    summary: "Statistics of one model version",
    request: { params: VersionParams },
    responses: statsResponses,
  });
  app.get("/v2/models/:name/versions/:version/stats", (c) =>
    c.json(statsOf(c.req.param("name"), parseVersion(c.req.param("version")))),
  );
}

function ascending(models: ModelVersion[]): ModelVersion[] {
  return [...models].sort((a, b) => a.version - b.version);
}
