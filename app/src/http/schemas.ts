/** zod schemas of the API's responses; the OpenAPI document is generated from these. */
import { z } from "zod";
import { DatatypeSchema } from "../inference/manifest.ts";

export const ErrorSchema = z
  .object({
    error: z.string().describe("What was wrong and where"),
    details: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: "Error" });

export const TensorMetadataSchema = z
  .object({ name: z.string(), datatype: DatatypeSchema, shape: z.array(z.number().int()) })
  .meta({ id: "TensorMetadata" });

export const ServerMetadataSchema = z
  .object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) })
  .meta({ id: "ServerMetadata" });

export const ModelMetadataSchema = z
  .object({
    name: z.string(),
    versions: z.array(z.string()),
    platform: z.string(),
    inputs: z.array(TensorMetadataSchema),
    outputs: z.array(TensorMetadataSchema),
  })
  .meta({ id: "ModelMetadata" });

export const ModelReadySchema = z
  .object({ name: z.string(), ready: z.boolean(), reason: z.string().optional() })
  .meta({ id: "ModelReady" });

export const V2OutputTensorSchema = z
  .object({
    name: z.string(),
    datatype: DatatypeSchema,
    shape: z.array(z.number().int()),
    data: z.array(z.unknown()).optional().describe("Row-major elements; absent when the output is sent as binary data"),
    parameters: z
      .object({
        binary_data_size: z
          .number()
          .int()
          .min(0)
          .describe("Bytes of this output after the JSON header (binary tensor data extension)"),
      })
      .optional(),
  })
  .meta({ id: "OutputTensor" });

/** The binary tensor data extension's body, for the OpenAPI document (the bytes are checked in code). */
export const BinaryTensorBodySchema = z.string().meta({
  id: "BinaryTensorBody",
  format: "binary",
  description:
    "The JSON inference request or response (its length in bytes in the Inference-Header-Content-Length header), then the bytes of each tensor that has parameters.binary_data_size, in order: little-endian, row-major; BOOL one byte; BYTES a 4-byte little-endian length before each element.",
});

export const V2InferResponseSchema = z
  .object({
    model_name: z.string(),
    model_version: z.string(),
    id: z.string().optional(),
    outputs: z.array(V2OutputTensorSchema),
  })
  .meta({ id: "InferenceResponse" });

export const RepositoryIndexRequestSchema = z
  .object({ ready: z.boolean().optional() })
  .strict()
  .meta({ id: "RepositoryIndexRequest" });
export const RepositoryIndexSchema = z
  .array(
    z.object({
      name: z.string(),
      version: z.string(),
      state: z.enum(["READY", "UNAVAILABLE", "LOADING", "UNLOADING"]),
      reason: z.string(),
    }),
  )
  .meta({ id: "RepositoryIndex" });

export const V1ModelListSchema = z.object({ models: z.array(z.string()) }).meta({ id: "V1ModelList" });
export const V1ModelSchema = z
  .object({
    name: z.string(),
    ready: z.boolean(),
    versions: z.array(z.string()),
    description: z.string().optional(),
    reason: z.string().optional(),
    inputs: z.array(TensorMetadataSchema.extend({ features: z.array(z.record(z.string(), z.unknown())).optional() })),
    outputs: z.array(TensorMetadataSchema),
    labels: z.array(z.string()).optional(),
    batching: z.object({ maxBatchSize: z.number(), maxQueueDelayMicros: z.number() }).optional(),
  })
  .meta({ id: "V1Model" });
export const V1PredictResponseSchema = z
  .object({
    predictions: z.array(
      z.union([
        z.number(),
        z.array(z.unknown()),
        z.object({ label: z.string(), probabilities: z.record(z.string(), z.number()) }),
        z.record(z.string(), z.unknown()),
      ]),
    ),
  })
  .meta({ id: "V1PredictResponse" });

export const HealthSchema = z
  .object({
    status: z.string(),
    ready: z.boolean().optional(),
    readiness: z
      .enum(["relaxed", "strict"])
      .optional()
      .describe("READINESS: relaxed (one model serving suffices) or strict (every model)"),
    reasons: z.array(z.string()).optional(),
    models: z
      .array(
        z.object({
          name: z.string(),
          ready: z.boolean(),
          versions: z.array(z.number()),
          reason: z.string().optional(),
        }),
      )
      .optional(),
    dependencies: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string().optional() })).optional(),
  })
  .meta({ id: "Health" });
