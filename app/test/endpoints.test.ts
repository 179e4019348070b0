/** Every endpoint over real HTTP, on the fixture repository (one model per tensor type and failure mode). */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { RunningServer } from "../src/server.ts";
import { fixtureRepo, metricValue, request, testServer } from "./helpers.ts";

let server: RunningServer;
let base: string;
let cleanup: () => Promise<void>;

before(async () => {
  const repo = await fixtureRepo();
  cleanup = repo.cleanup;
  server = await testServer(repo.dir, { CORS_ORIGINS: "https://app.example.com" });
  base = server.url;
});
after(async () => {
  await server.close();
  await cleanup();
});

const infer = (model: string, body: unknown, path = `/v2/models/${model}/infer`) =>
  request(base + path, { json: body });

describe("probes and service endpoints", () => {
  test("GET / points at the docs", async () => {
    const r = await request(`${base}/`);
    assert.equal(r.status, 200);
    assert.equal(r.body.openapi, "/openapi.json");
  });
  test("liveness, startup and readiness", async () => {
    assert.equal((await request(`${base}/health/live`)).status, 200);
    assert.equal((await request(`${base}/health/startup`)).status, 200);
    const ready = await request(`${base}/health/ready`);
    assert.equal(ready.status, 200);
    assert.equal(ready.body.status, "ok");
    const broken = ready.body.models.find((m: { name: string }) => m.name === "broken-onnx");
    assert.equal(broken.ready, false);
    assert.match(broken.reason, /protobuf/i);
    assert.deepEqual(ready.body.dependencies, []);
  });
  test("an unreadable model repository is not ready, and says why", async () => {
    const broken = await testServer("/nonexistent/inferstack-models");
    try {
      const r = await request(`${broken.url}/health/ready`);
      assert.equal(r.status, 503);
      assert.match(r.body.reasons.join(" "), /cannot read model repository \/nonexistent\/inferstack-models/);
      assert.equal((await request(`${broken.url}/health/live`)).status, 200);
    } finally {
      await broken.close();
    }
  });
  test("every $ref of the OpenAPI document resolves", async () => {
    const doc = (await request(`${base}/openapi.json`)).body;
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(refs.length > 5);
    for (const r of refs) assert.ok(doc.components.schemas[r], `unresolved $ref ${r}`);
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, { responses?: object }>>)) {
      for (const [method, op] of Object.entries(ops)) assert.ok(op.responses, `${method} ${path} has responses`);
    }
  });
  test("V2 health and server metadata", async () => {
    assert.deepEqual((await request(`${base}/v2/health/live`)).body, { live: true });
    assert.deepEqual((await request(`${base}/v2/health/ready`)).body, { ready: true });
    const meta = await request(`${base}/v2`);
    assert.equal(meta.body.name, "inferstack");
    assert.ok(meta.body.extensions.includes("model_repository"));
  });
  test("metrics expose the API's series", async () => {
    await request(`${base}/v1/models/linear:predict`, { json: { instances: [[1, 1, 1]] } });
    const r = await request(`${base}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /text\/plain/);
    for (const name of [
      "inferstack_http_requests_total",
      "inferstack_http_request_duration_seconds_bucket",
      "inferstack_inference_duration_seconds_bucket",
      "inferstack_inference_queue_duration_seconds_bucket",
      "inferstack_inference_batch_size_bucket",
      "inferstack_inference_requests_total",
      "inferstack_models_loaded",
      "inferstack_model_load_failures_total",
      "inferstack_ready",
      "inferstack_degraded",
      "inferstack_build_info",
      "process_resident_memory_bytes",
      "nodejs_eventloop_lag_seconds",
    ]) {
      assert.ok(r.text.includes(`\n${name}`), `missing ${name}`);
    }
    assert.equal(metricValue(r.text, "inferstack_ready"), 1);
    assert.equal(metricValue(r.text, "inferstack_models_loaded", { model: "versioned", version: "3" }), 1);
    assert.equal(metricValue(r.text, "inferstack_models_loaded", { model: "versioned", version: "1" }), undefined);
    assert.ok((metricValue(r.text, "inferstack_model_load_failures_total", { model: "broken-onnx" }) ?? 0) >= 1);
    assert.ok((metricValue(r.text, "inferstack_model_load_failures_total", { model: "broken-manifest" }) ?? 0) >= 1);
    assert.ok(
      (metricValue(r.text, "inferstack_http_requests_total", {
        route: "/v1/models/:name:predict",
        method: "POST",
        status: "200",
      }) ?? 0) >= 1,
    );
    assert.ok(
      (metricValue(r.text, "inferstack_inference_requests_total", {
        model: "linear",
        version: "1",
        protocol: "v1",
        outcome: "ok",
      }) ?? 0) >= 1,
    );
  });
  test("OpenAPI document with a per-model V1 schema, and the /docs page", async () => {
    const r = await request(`${base}/openapi.json`);
    assert.equal(r.status, 200);
    assert.equal(r.body.openapi, "3.0.3");
    for (const p of [
      "/v1/models/{name}:predict",
      "/v2/models/{name}/infer",
      "/v2/repository/index",
      "/health/ready",
      "/metrics",
    ]) {
      assert.ok(r.body.paths[p], `missing path ${p}`);
    }
    const linear = r.body.paths["/v1/models/linear:predict"].post.requestBody.content["application/json"].schema;
    const instance = linear.properties.instances.items;
    const objectForm = instance.anyOf.find((s: { type: string }) => s.type === "object");
    assert.deepEqual(Object.keys(objectForm.properties), ["a", "b", "c"]);
    assert.equal(objectForm.properties.a.maximum, 100);
    assert.equal(objectForm.properties.b.type, "integer");
    assert.equal(linear.properties.instances.maxItems, 8);
    assert.ok(!r.body.paths["/v1/models/broken-onnx:predict"], "a model that is not serving has no predict schema");
    const docs = await request(`${base}/docs`);
    assert.equal(docs.status, 200);
    assert.match(docs.text, /swagger/i);
    assert.match(docs.text, /\/openapi\.json/);
  });
});

describe("cross-cutting HTTP behaviour", () => {
  test("x-request-id is echoed, or generated", async () => {
    const mine = await request(`${base}/v1/models`, { headers: { "x-request-id": "trace-abc.123" } });
    assert.equal(mine.headers.get("x-request-id"), "trace-abc.123");
    const generated = await request(`${base}/v1/models`, { headers: { "x-request-id": "bad id with spaces" } });
    assert.match(generated.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  });
  test("security headers", async () => {
    const r = await request(`${base}/v1/models`);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff");
    assert.equal(r.headers.get("x-frame-options"), "DENY");
    assert.ok(r.headers.get("strict-transport-security"));
  });
  test("CORS answers allowed origins only", async () => {
    const ok = await request(`${base}/v1/models`, { headers: { origin: "https://app.example.com" } });
    assert.equal(ok.headers.get("access-control-allow-origin"), "https://app.example.com");
    const denied = await request(`${base}/v1/models`, { headers: { origin: "https://evil.example.net" } });
    assert.equal(denied.headers.get("access-control-allow-origin"), null);
    const preflight = await fetch(`${base}/v1/models/linear:predict`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example.com", "access-control-request-method": "POST" },
    });
    assert.ok(preflight.status === 204 || preflight.status === 200);
    assert.match(preflight.headers.get("access-control-allow-methods") ?? "", /POST/);
  });
  test("large responses are compressed when the client accepts it", async () => {
    const res = await fetch(`${base}/openapi.json`, { headers: { "accept-encoding": "gzip" } });
    assert.equal(res.headers.get("content-encoding"), "gzip");
    assert.ok(((await res.json()) as { paths: object }).paths); // fetch decompresses
    const small = await fetch(`${base}/health/live`, { headers: { "accept-encoding": "gzip" } });
    assert.equal(small.headers.get("content-encoding"), null);
  });
  test("a request over REQUEST_TIMEOUT_MS answers 503 and the server keeps serving", async () => {
    const repo = await fixtureRepo(["linear"]);
    const quick = await testServer(repo.dir, { REQUEST_TIMEOUT_MS: "200" });
    try {
      // The body never completes: the request is stuck in reading.
      const { request: httpRequest } = await import("node:http");
      const res = await new Promise<{ status: number; body: string; headers: string | undefined }>(
        (resolve, reject) => {
          const req = httpRequest(`${quick.url}/v1/models/linear:predict`, {
            method: "POST",
            headers: { "content-type": "application/json", "content-length": "100" },
          });
          req.on("response", (r) => {
            let body = "";
            r.on("data", (d: Buffer) => (body += d.toString()));
            r.on("end", () => {
              resolve({ status: r.statusCode ?? 0, body, headers: r.headers.connection });
              req.destroy();
            });
          });
          req.on("error", reject);
          req.write('{"instances": [');
        },
      );
      assert.equal(res.status, 503);
      assert.match(JSON.parse(res.body).error, /timed out after 200 ms/);
      assert.equal(res.headers, "close", "a half-read request cannot keep its connection");
      const ok = await request(`${quick.url}/v1/models/linear:predict`, { json: { instances: [[1, 1, 1]] } });
      assert.equal(ok.status, 200);
      // The abandoned handler ends too (and releases its model version) once the socket closes.
      let ended: number | undefined;
      for (let i = 0; i < 100 && !ended; i++) {
        const m = (await request(`${quick.url}/metrics`)).text;
        ended = metricValue(m, "inferstack_inference_requests_total", {
          model: "linear",
          version: "1",
          protocol: "v1",
          outcome: "client_error",
        });
        if (!ended) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(ended, 1);
    } finally {
      await quick.close();
      await repo.cleanup();
    }
  });
  test("unknown routes answer a JSON 404", async () => {
    const r = await request(`${base}/v3/nothing`);
    assert.equal(r.status, 404);
    assert.match(r.body.error, /no route/);
  });
});

describe("KServe V1", () => {
  test("GET /v1/models lists every model on disk", async () => {
    const r = await request(`${base}/v1/models`);
    assert.ok(r.body.models.includes("linear"));
    assert.ok(r.body.models.includes("broken-onnx"));
  });
  test("GET /v1/models/<name> describes features, labels and batching", async () => {
    const r = await request(`${base}/v1/models/classifier`);
    assert.equal(r.body.ready, true);
    assert.deepEqual(r.body.labels, ["left", "middle", "right"]);
    assert.deepEqual(
      r.body.inputs[0].features.map((f: { name: string }) => f.name),
      ["petal", "sepal"],
    );
    assert.equal(r.body.batching.maxBatchSize, 16);
    const broken = await request(`${base}/v1/models/broken-manifest`);
    assert.equal(broken.body.ready, false);
    assert.match(broken.body.reason, /model\.json is invalid: inputs\.0\.datatype/);
    assert.equal((await request(`${base}/v1/models/nope`)).status, 404);
  });
  test("regressor: instances as feature objects or arrays", async () => {
    const r = await request(`${base}/v1/models/linear:predict`, {
      json: { instances: [{ a: 1, b: 2, c: 0.5 }, [1, 1, 1], { c: 1, a: -2, b: 0 }] },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.predictions, [7, 6.5, 1.5]);
  });
  test("classifier: label and probabilities per instance", async () => {
    const r = await request(`${base}/v1/models/classifier:predict`, {
      json: { instances: [{ petal: 1, sepal: 0 }, [0, 1], [-1, 0]] },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.body.predictions.map((p: { label: string }) => p.label),
      ["left", "middle", "right"],
    );
    const p = r.body.predictions[0].probabilities;
    assert.deepEqual(Object.keys(p), ["left", "middle", "right"]);
    assert.ok(Math.abs(p.left + p.middle + p.right - 1) < 1e-5);
  });
  test("model without a manifest: plain arrays, symbolic dimensions", async () => {
    const r = await request(`${base}/v1/models/symbolic:predict`, {
      json: {
        instances: [
          [1, 2, 3, 4],
          [5, 5, 5, 5],
        ],
      },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.predictions, [10, 20]);
    const meta = await request(`${base}/v2/models/symbolic`);
    assert.deepEqual(meta.body.inputs, [{ name: "x", datatype: "FP32", shape: [-1, -1] }]);
  });
  test("multi-input model: instances keyed by input name; outputs keyed by name", async () => {
    const r = await request(`${base}/v1/models/multi:predict`, { json: { instances: [{ a: [1, 2], b: [3, 5] }] } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.predictions, [{ sum: [4, 7], diff: [-2, -3] }]);
  });
  test("fixed-shape model (no batch dimension)", async () => {
    const r = await request(`${base}/v1/models/fixed:predict`, { json: { instances: [[1, -2, 3, 0]] } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.predictions, [[-1, 2, -3, 0]]);
  });
});

describe("Open Inference Protocol (V2)", () => {
  test("model metadata and version metadata", async () => {
    const r = await request(`${base}/v2/models/linear`);
    assert.deepEqual(r.body, {
      name: "linear",
      versions: ["1"],
      platform: "onnxruntime_onnx",
      inputs: [{ name: "x", datatype: "FP32", shape: [-1, 3] }],
      outputs: [{ name: "y", datatype: "FP32", shape: [-1, 1] }],
    });
    const v = await request(`${base}/v2/models/versioned/versions/2`);
    assert.deepEqual(v.body.versions, ["2"]);
    assert.equal((await request(`${base}/v2/models/versioned/versions/9`)).status, 404);
    assert.equal((await request(`${base}/v2/models/versioned/versions/1`)).status, 400);
  });
  test("model readiness: 200 ready, 400 not ready with the reason, 404 unknown", async () => {
    assert.deepEqual((await request(`${base}/v2/models/linear/ready`)).body, { name: "linear", ready: true });
    const broken = await request(`${base}/v2/models/broken-onnx/ready`);
    assert.equal(broken.status, 400);
    assert.equal(broken.body.ready, false);
    assert.match(broken.body.reason, /protobuf/i);
    assert.equal((await request(`${base}/v2/models/versioned/versions/3/ready`)).status, 200);
    assert.equal((await request(`${base}/v2/models/versioned/versions/1/ready`)).status, 400);
    assert.equal((await request(`${base}/v2/models/ghost/ready`)).status, 404);
  });
  test("FP32 with nested data, FP64, INT32, INT64, BOOL", async () => {
    const fp32 = await infer("linear", {
      id: "r1",
      inputs: [
        {
          name: "x",
          shape: [2, 3],
          datatype: "FP32",
          data: [
            [1, 2, 0.5],
            [0, 0, 0],
          ],
        },
      ],
    });
    assert.equal(fp32.status, 200);
    assert.deepEqual(fp32.body, {
      model_name: "linear",
      model_version: "1",
      id: "r1",
      outputs: [{ name: "y", datatype: "FP32", shape: [2, 1], data: [7, 0.5] }],
    });
    const fp64 = await infer("fp64", { inputs: [{ name: "x", shape: [1, 2], datatype: "FP64", data: [0.1, 1e300] }] });
    assert.deepEqual(fp64.body.outputs[0], { name: "y", datatype: "FP64", shape: [1, 2], data: [0.2, 2e300] });
    const int32 = await infer("int32", {
      inputs: [{ name: "x", shape: [1, 2], datatype: "INT32", data: [2147483646, -5] }],
    });
    assert.deepEqual(int32.body.outputs[0].data, [2147483647, -4]);
    const int64 = await infer("int64", {
      inputs: [{ name: "x", shape: [3], datatype: "INT64", data: [9007199254740990, -1, 0] }],
    });
    assert.deepEqual(int64.body.outputs[0], {
      name: "y",
      datatype: "INT64",
      shape: [3],
      data: [9007199254740991, 0, 1],
    });
    const bool = await infer("bool", {
      inputs: [{ name: "x", shape: [2, 2], datatype: "BOOL", data: [true, false, false, true] }],
    });
    assert.deepEqual(bool.body.outputs[0], {
      name: "y",
      datatype: "BOOL",
      shape: [2, 2],
      data: [false, true, true, false],
    });
  });
  test("string tensors (BYTES) in and out, V2 and V1", async () => {
    const r = await infer("string", {
      inputs: [{ name: "x", shape: [2], datatype: "BYTES", data: ["hello", "wörld"] }],
    });
    assert.deepEqual(r.body.outputs[0], { name: "y", datatype: "BYTES", shape: [2], data: ["hello", "wörld"] });
    const v1 = await request(`${base}/v1/models/string:predict`, { json: { instances: ["hello", "ö"] } });
    assert.deepEqual(v1.body.predictions, ["hello", "ö"]);
    const wrong = await infer("string", { inputs: [{ name: "x", shape: [1], datatype: "BYTES", data: [1] }] });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body.error, /inputs\[0\] \("x"\)\.data\[0\]: expected a string/);
  });
  test("requested outputs", async () => {
    const r = await infer("multi", {
      inputs: [
        { name: "a", shape: [1, 2], datatype: "FP32", data: [1, 2] },
        { name: "b", shape: [1, 2], datatype: "FP32", data: [3, 4] },
      ],
      outputs: [{ name: "diff" }],
    });
    assert.deepEqual(r.body.outputs, [{ name: "diff", datatype: "FP32", shape: [1, 2], data: [-2, -2] }]);
  });
  test("versions are addressable; the default is the highest served", async () => {
    const body = { inputs: [{ name: "x", shape: [1, 1], datatype: "FP32", data: [5] }] };
    const latest = await infer("versioned", body);
    assert.equal(latest.body.model_version, "3");
    assert.deepEqual(latest.body.outputs[0].data, [15]);
    const v2 = await infer("versioned", body, "/v2/models/versioned/versions/2/infer");
    assert.equal(v2.body.model_version, "2");
    assert.deepEqual(v2.body.outputs[0].data, [10]);
    const v1 = await infer("versioned", body, "/v2/models/versioned/versions/1/infer");
    assert.equal(v1.status, 400);
    assert.match(v1.body.error, /version 1 is not ready: not selected by the version policy/);
  });
  test("an ONNX Runtime error on a given input answers 400 with the runtime's message", async () => {
    const r = await infer("gather", { inputs: [{ name: "idx", shape: [2], datatype: "INT64", data: [1, 7] }] });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /indices element out of data bounds, idx=7/);
    const ok = await infer("gather", { inputs: [{ name: "idx", shape: [2], datatype: "INT64", data: [0, 2] }] });
    assert.deepEqual(ok.body.outputs[0].data, [10, 30]);
  });
  test("repository index lists every version with its state and reason", async () => {
    const all = await request(`${base}/v2/repository/index`, { method: "POST" });
    assert.equal(all.status, 200);
    const find = (name: string, version: string) =>
      all.body.find((e: { name: string; version: string }) => e.name === name && e.version === version);
    assert.deepEqual(find("linear", "1"), { name: "linear", version: "1", state: "READY", reason: "" });
    assert.equal(find("versioned", "1").state, "UNAVAILABLE");
    assert.match(find("broken-manifest", "1").reason, /model\.json is invalid/);
    const ready = await request(`${base}/v2/repository/index`, { json: { ready: true } });
    assert.ok(ready.body.every((e: { state: string }) => e.state === "READY"));
    assert.ok(ready.body.length < all.body.length);
    const bad = await request(`${base}/v2/repository/index`, { json: { ready: "yes" } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /ready/);
  });
});
