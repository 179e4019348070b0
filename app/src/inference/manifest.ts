/**
 * The optional per-model manifest, `models/<name>/model.json`. It overlays what the ONNX file
 * declares: names the columns of tabular inputs, bounds them, labels classifier outputs and sets
 * the version policy, batching and cache. Documented in docs/api.md.
 */
import { z } from "zod";

/** Open Inference Protocol (V2) tensor datatypes. */
export const V2_DATATYPES = [
  "BOOL",
  "UINT8",
  "UINT16",
  "UINT32",
  "UINT64",
  "INT8",
  "INT16",
  "INT32",
  "INT64",
  "FP16",
  "FP32",
  "FP64",
  "BYTES",
] as const;
export const DatatypeSchema = z.enum(V2_DATATYPES);
export type Datatype = z.infer<typeof DatatypeSchema>;

const Dim = z.number().int().min(-1);

export const FeatureSchema = z
  .object({
    name: z.string().min(1),
    type: z.enum(["number", "integer", "boolean"]).default("number"),
    min: z.number().optional(),
    max: z.number().optional(),
    enum: z.array(z.number()).min(1).optional(),
    description: z.string().optional(),
    unit: z.string().optional(),
  })
  .strict()
  .refine((f) => f.min === undefined || f.max === undefined || f.min <= f.max, {
    message: "min must be <= max",
    path: ["min"],
  });
export type Feature = z.infer<typeof FeatureSchema>;

export const TensorSpecSchema = z
  .object({
    name: z.string().min(1),
    datatype: DatatypeSchema,
    shape: z.array(Dim),
    description: z.string().optional(),
    /** Columns of a 2-D input, in order; V1 instances may be objects keyed by these names. */
    features: z.array(FeatureSchema).min(1).optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (!t.features) return;
    if (t.shape.length !== 2) {
      ctx.addIssue({ code: "custom", path: ["features"], message: "features need a 2-D shape [batch, columns]" });
      return;
    }
    const cols = t.shape[1];
    if (cols !== -1 && cols !== t.features.length) {
      ctx.addIssue({
        code: "custom",
        path: ["features"],
        message: `shape has ${cols} columns but ${t.features.length} features are named`,
      });
    }
    const names = new Set<string>();
    t.features.forEach((f, i) => {
      if (names.has(f.name))
        ctx.addIssue({ code: "custom", path: ["features", i, "name"], message: `duplicate feature "${f.name}"` });
      names.add(f.name);
    });
  });
export type TensorSpec = z.infer<typeof TensorSpecSchema>;

export const VersionPolicySchema = z.union([
  z.object({ latest: z.object({ numVersions: z.number().int().min(1) }).strict() }).strict(),
  z.object({ specific: z.object({ versions: z.array(z.number().int().min(1)).min(1) }).strict() }).strict(),
  z.object({ all: z.object({}).strict() }).strict(),
]);
export type VersionPolicy = z.infer<typeof VersionPolicySchema>;

export const BatchingSchema = z
  .object({
    /** 0 disables dynamic batching (each request runs alone); also the per-request instance limit. */
    maxBatchSize: z.number().int().min(0).max(65536),
    maxQueueDelayMicros: z.number().int().min(0).max(10_000_000).default(0),
    /**
     * true (default): run at once when no other request for the model is in flight, since none
     * can join the batch; false: always wait out maxQueueDelayMicros (Triton's strict window).
     */
    eager: z.boolean().default(true),
  })
  .strict();
export type Batching = z.infer<typeof BatchingSchema>;

export const ManifestSchema = z
  .object({
    description: z.string().optional(),
    platform: z.literal("onnxruntime_onnx").optional(),
    versionPolicy: VersionPolicySchema.optional(),
    inputs: z.array(TensorSpecSchema).min(1).optional(),
    outputs: z.array(TensorSpecSchema).min(1).optional(),
    /** Classifiers: class index -> label. */
    labels: z.array(z.string()).min(1).optional(),
    classification: z
      .object({
        probabilitiesOutput: z.string().min(1),
        labelOutput: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    batching: BatchingSchema.optional(),
    cache: z
      .object({ ttlSeconds: z.number().int().min(0) })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.classification && !m.labels) {
      ctx.addIssue({ code: "custom", path: ["labels"], message: "classification needs labels (class index -> label)" });
    }
    if (m.classification && m.outputs) {
      const names = new Set(m.outputs.map((o) => o.name));
      for (const key of ["probabilitiesOutput", "labelOutput"] as const) {
        const out = m.classification[key];
        if (out !== undefined && !names.has(out)) {
          ctx.addIssue({
            code: "custom",
            path: ["classification", key],
            message: `"${out}" is not one of the declared outputs`,
          });
        }
      }
    }
  });
export type Manifest = z.infer<typeof ManifestSchema>;

/** Human-readable list of a zod error's issues, each prefixed with its path. */
export function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.map(String).join(".") : "(root)"}: ${i.message}`).join("; ");
}

export type ManifestParse = { ok: true; manifest: Manifest } | { ok: false; error: string };

/** Parses manifest text; errors name the JSON path and the rule broken. */
export function parseManifest(text: string): ManifestParse {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `model.json is not valid JSON: ${(e as Error).message}` };
  }
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, error: `model.json is invalid: ${formatIssues(parsed.error)}` };
  return { ok: true, manifest: parsed.data };
}
