/**
 * OpenAPI 3 document at /openapi.json, generated from the routes' zod schemas plus one
 * `/v1/models/<name>:predict` path per served model whose request schema is the zod schema that
 * validates it (built from the manifest or the ONNX metadata). Interactive page at /docs (docs-page.ts).
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import type { AppDeps, AppEnv } from "./context.ts";
import { registerDocsPage } from "./docs-page.ts";
import { v1Plan } from "./v1-decode.ts";

type Doc = ReturnType<OpenAPIHono["getOpenAPIDocument"]>;

export function registerOpenApi(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  let cached: { generation: number; doc: Doc } | undefined;
  const build = (): Doc => {
    const doc = app.getOpenAPIDocument({
      openapi: "3.0.3",
      info: {
        title: "InferStack inference API",
        version: deps.config.APP_VERSION,
        description:
          'Serves the ONNX models of the model repository over KServe V1 and the Open Inference Protocol (V2). Errors are `{"error": "..."}` naming the field or tensor.',
      },
    });
    doc.paths ??= {};
    for (const name of deps.repo.names()) {
      const model = deps.repo.servingVersions(name)[0];
      if (!model) continue;
      const schema = z.toJSONSchema(v1Plan(model.signature).requestSchema, {
        target: "openapi-3.0",
        unrepresentable: "any",
        io: "input",
      });
      delete (schema as Record<string, unknown>).$schema;
      doc.paths[`/v1/models/${name}:predict`] = {
        post: {
          tags: ["Models"],
          summary: `Predict with ${name}${model.signature.description ? ` — ${model.signature.description}` : ""}`,
          operationId: `predict_${name.replace(/[^A-Za-z0-9_]/g, "_")}`,
          requestBody: { required: true, content: { "application/json": { schema: schema as never } } },
          responses: {
            200: {
              description: "Predictions",
              content: { "application/json": { schema: { $ref: "#/components/schemas/V1PredictResponse" } } },
            },
            400: {
              description: "Invalid instance (names the feature)",
              content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
            },
          },
        },
      };
    }
    return doc;
  };
  app.get("/openapi.json", (c) => {
    if (!cached || cached.generation !== deps.repo.generation)
      cached = { generation: deps.repo.generation, doc: build() };
    return c.json(cached.doc);
  });
  registerDocsPage(app, { specUrl: "/openapi.json", title: "InferStack API" });
}
