/**
 * Server readiness with a broken model in the repository, in both of Triton's semantics
 * (READINESS=relaxed, the default, and strict), on every readiness surface: /health/ready,
 * /v2/health/ready and the inferstack_ready gauge.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { loadConfig } from "../src/config.ts";
import { fixtureRepo, metricValue, request, testServer } from "./helpers.ts";

async function withServer(models: string[], env: Record<string, string>, fn: (base: string) => Promise<void>) {
  const repo = await fixtureRepo(models);
  const server = await testServer(repo.dir, env);
  try {
    await fn(server.url);
  } finally {
    await server.close();
    await repo.cleanup();
  }
}

const readyGauge = async (base: string) => metricValue((await request(`${base}/metrics`)).text, "inferstack_ready");

describe("readiness when a model failed to load", () => {
  test("relaxed (default): ready while another model serves; the broken one is reported", async () => {
    await withServer(["linear", "broken-onnx"], {}, async (base) => {
      const r = await request(`${base}/health/ready`);
      assert.equal(r.status, 200);
      assert.equal(r.body.readiness, "relaxed");
      assert.equal(r.body.status, "ok");
      const broken = r.body.models.find((m: { name: string }) => m.name === "broken-onnx");
      assert.equal(broken.ready, false);
      assert.match(broken.reason, /protobuf/i);
      const v2 = await request(`${base}/v2/health/ready`);
      assert.equal(v2.status, 200);
      assert.deepEqual(v2.body, { ready: true });
      assert.equal(await readyGauge(base), 1);
    });
  });

  test("relaxed: not ready when no model serves at all", async () => {
    await withServer(["broken-onnx"], { READINESS: "relaxed" }, async (base) => {
      assert.equal((await request(`${base}/health/ready`)).status, 503);
      assert.equal((await request(`${base}/v2/health/ready`)).status, 400);
      assert.equal(await readyGauge(base), 0);
    });
  });

  test("strict: not ready while any model is short of its versions, and says which", async () => {
    await withServer(["linear", "broken-onnx"], { READINESS: "strict" }, async (base) => {
      const r = await request(`${base}/health/ready`);
      assert.equal(r.status, 503);
      assert.equal(r.body.readiness, "strict");
      assert.equal(r.body.status, "not_ready");
      assert.match(
        r.body.reasons.join("\n"),
        /model "broken-onnx" is not fully serving \(strict readiness\): version 1: .*protobuf/i,
      );
      assert.doesNotMatch(r.body.reasons.join("\n"), /"linear"/);
      const v2 = await request(`${base}/v2/health/ready`);
      assert.equal(v2.status, 400);
      assert.deepEqual(v2.body, { ready: false });
      assert.equal(await readyGauge(base), 0);
      // The healthy model keeps answering: readiness is about routing, not serving.
      assert.equal(
        (await request(`${base}/v1/models/linear:predict`, { json: { instances: [[1, 1, 1]] } })).status,
        200,
      );
    });
  });

  test("strict: a model unloaded on request does not count (as in Triton); loading it back does", async () => {
    await withServer(["linear", "broken-onnx"], { READINESS: "strict", MODEL_CONTROL: "true" }, async (base) => {
      assert.equal((await request(`${base}/v2/health/ready`)).status, 400);
      assert.equal((await request(`${base}/v2/repository/models/broken-onnx/unload`, { method: "POST" })).status, 200);
      assert.equal((await request(`${base}/v2/health/ready`)).status, 200);
      assert.equal((await request(`${base}/health/ready`)).status, 200);
      assert.equal((await request(`${base}/v2/repository/models/broken-onnx/load`, { method: "POST" })).status, 400);
      assert.equal((await request(`${base}/v2/health/ready`)).status, 400);
    });
  });

  test("strict: versions left out by the version policy are not failures", async () => {
    await withServer(["versioned", "linear"], { READINESS: "strict" }, async (base) => {
      const r = await request(`${base}/health/ready`);
      assert.equal(r.status, 200, r.text);
      assert.equal((await request(`${base}/v2/health/ready`)).status, 200);
    });
  });

  test("strict: a manifest that breaks the schema makes the model short", async () => {
    await withServer(["linear", "broken-manifest"], { READINESS: "strict" }, async (base) => {
      const r = await request(`${base}/health/ready`);
      assert.equal(r.status, 503);
      assert.match(
        r.body.reasons.join("\n"),
        /model "broken-manifest" is not fully serving \(strict readiness\): model\.json is invalid/,
      );
    });
  });

  test("the OpenAPI document describes the readiness field", async () => {
    await withServer(["linear"], {}, async (base) => {
      const doc = (await request(`${base}/openapi.json`)).body;
      assert.deepEqual(doc.components.schemas.Health.properties.readiness.enum, ["relaxed", "strict"]);
    });
  });

  test("a bad READINESS value fails the start, naming the variable", () => {
    assert.throws(() => loadConfig({ READINESS: "lenient" }), /READINESS="lenient"/);
    assert.equal(loadConfig({}).READINESS, "relaxed");
  });
});
