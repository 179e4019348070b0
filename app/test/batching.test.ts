/**
 * Dynamic batching: concurrent requests coalesce into batches (> 1) within the model's window,
 * never over maxBatchSize, never splitting a request, and every caller gets its own result.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DynamicBatcher, type TensorMap } from "../src/inference/batcher.ts";
import type { RunningServer } from "../src/server.ts";
import { fixtureRepo, metricValue, request, testServer } from "./helpers.ts";

let server: RunningServer;
let cleanup: () => Promise<void>;
before(async () => {
  const repo = await fixtureRepo(["linear", "gather", "classifier"]);
  cleanup = repo.cleanup;
  server = await testServer(repo.dir);
});
after(async () => {
  await server.close();
  await cleanup();
});

const linear = (a: number, b: number, c: number) => a + 2 * b + 3 * c + 0.5;

describe("over HTTP", () => {
  test("concurrent requests coalesce and each caller gets its own prediction", async () => {
    // The fixture's window is 100 ms with maxBatchSize 8: 24 simultaneous requests fit in few batches.
    const inputs = Array.from({ length: 24 }, (_, i) => ({ a: i, b: i % 11, c: [0, 0.5, 1][i % 3]! }));
    const results = await Promise.all(
      inputs.map((inst) => request(`${server.url}/v1/models/linear:predict`, { json: { instances: [inst] } })),
    );
    results.forEach((r, i) => {
      assert.equal(r.status, 200);
      const { a, b, c } = inputs[i]!;
      assert.deepEqual(r.body.predictions, [linear(a, b, c)]);
    });
    const m = (await request(`${server.url}/metrics`)).text;
    const labels = { model: "linear", version: "1" };
    const batches = metricValue(m, "inferstack_inference_batch_size_count", labels)!;
    const rows = metricValue(m, "inferstack_inference_batch_size_sum", labels)!;
    const singles = metricValue(m, "inferstack_inference_batch_size_bucket", { ...labels, le: "1" })!;
    const overMax = batches - metricValue(m, "inferstack_inference_batch_size_bucket", { ...labels, le: "8" })!;
    assert.equal(rows, 24);
    assert.ok(batches < 24, `expected fewer batches than requests, got ${batches}`);
    assert.ok(singles < batches, "some batch must hold more than one request");
    assert.equal(overMax, 0, "no batch may exceed maxBatchSize");
    assert.equal(metricValue(m, "inferstack_inference_queue_duration_seconds_count", labels), 24);
  });

  test("multi-instance requests are never split across batches", async () => {
    const bodies = Array.from({ length: 6 }, (_, k) => Array.from({ length: 3 }, (_, j) => [k, j, 1]));
    const results = await Promise.all(
      bodies.map((instances) => request(`${server.url}/v1/models/linear:predict`, { json: { instances } })),
    );
    results.forEach((r, k) => {
      assert.equal(r.status, 200);
      assert.deepEqual(
        r.body.predictions,
        [0, 1, 2].map((j) => linear(k, j, 1)),
      );
    });
  });

  test("V1 and V2 requests share batches and the classifier splits correctly", async () => {
    const v1 = Array.from({ length: 10 }, (_, i) =>
      request(`${server.url}/v1/models/classifier:predict`, { json: { instances: [[i % 2 ? 1 : -1, 0]] } }),
    );
    const v2 = Array.from({ length: 10 }, (_, i) =>
      request(`${server.url}/v2/models/classifier/infer`, {
        json: { inputs: [{ name: "x", shape: [1, 2], datatype: "FP32", data: [0, i] }] },
      }),
    );
    const r1 = await Promise.all(v1);
    for (const [i, r] of r1.entries()) assert.equal(r.body.predictions[0].label, i % 2 ? "left" : "right");
    const r2 = await Promise.all(v2);
    r2.forEach((r, i) => {
      const label = r.body.outputs.find((o: { name: string }) => o.name === "label");
      assert.deepEqual(label.data, [i === 0 ? 0 : 1]);
    });
  });

  test("a request the runtime rejects fails alone; its batch-mates succeed", async () => {
    const idx = [0, 1, 9, 2, -1, 5, 1];
    const results = await Promise.all(
      idx.map((i) =>
        request(`${server.url}/v2/models/gather/infer`, {
          json: { inputs: [{ name: "idx", shape: [1], datatype: "INT64", data: [i] }] },
        }),
      ),
    );
    results.forEach((r, k) => {
      const i = idx[k]!;
      if (i > 2 || i < -3) {
        assert.equal(r.status, 400);
        assert.match(r.body.error, /out of data bounds/);
      } else {
        assert.equal(r.status, 200);
        assert.deepEqual(r.body.outputs[0].data, [[10, 20, 30].at(i)]);
      }
    });
  });
});

describe("DynamicBatcher semantics", () => {
  const tensor = (rows: number, v: number) => ({
    x: { datatype: "FP32" as const, shape: [rows, 1], data: new Float32Array(rows).fill(v) },
  });
  const echo =
    (log: number[]) =>
    async (inputs: TensorMap): Promise<TensorMap> => {
      log.push(inputs.x!.shape[0]!);
      return { y: inputs.x! };
    };

  test("batches up to maxBatchSize, in arrival order, without splitting requests", async () => {
    const sizes: number[] = [];
    const b = new DynamicBatcher({
      maxBatchSize: 4,
      maxQueueDelayMicros: 1_000_000,
      outputNames: ["y"],
      run: echo(sizes),
    });
    const rows = [1, 2, 1, 3, 1];
    const out = await Promise.all(rows.map((n, i) => b.submit(tensor(n, i), n)));
    out.forEach((o, i) => {
      assert.equal(o.y!.shape[0], rows[i]);
      assert.ok(Array.from(o.y!.data as Float32Array).every((v) => v === i));
    });
    assert.deepEqual(sizes, [4, 4]); // [1,2,1] then [3,1]: the 3-row request does not fit the first
  });

  test("eager: with nothing else in flight the batch runs without waiting out the window", async () => {
    const sizes: number[] = [];
    let pending = 0;
    const b = new DynamicBatcher({
      maxBatchSize: 8,
      maxQueueDelayMicros: 600_000_000, // ten minutes: only the eager rule can run this batch
      outputNames: ["y"],
      run: echo(sizes),
      pendingElsewhere: () => pending,
    });
    pending = 1; // another request is being read: wait for it
    const first = b.submit(tensor(1, 1), 1);
    pending = 0; // it arrives: now nothing else is coming
    const second = b.submit(tensor(1, 2), 1);
    await Promise.all([first, second]);
    assert.deepEqual(sizes, [2]);
  });

  test("maxBatchSize 0 runs every request alone", async () => {
    const sizes: number[] = [];
    const b = new DynamicBatcher({ maxBatchSize: 0, maxQueueDelayMicros: 0, outputNames: ["y"], run: echo(sizes) });
    await Promise.all([1, 1, 1].map((n, i) => b.submit(tensor(n, i), n)));
    assert.deepEqual(sizes, [1, 1, 1]);
  });

  test("requests with different inner shapes never share a batch", async () => {
    const shapes: number[][] = [];
    const b = new DynamicBatcher({
      maxBatchSize: 8,
      maxQueueDelayMicros: 100_000,
      outputNames: ["y"],
      run: async (inputs) => {
        shapes.push(inputs.x!.shape);
        return { y: inputs.x! };
      },
    });
    const wide = { x: { datatype: "FP32" as const, shape: [1, 2], data: new Float32Array(2) } };
    const narrow = { x: { datatype: "FP32" as const, shape: [1, 1], data: new Float32Array(1) } };
    await Promise.all([b.submit(wide, 1), b.submit(narrow, 1), b.submit(wide, 1)]);
    assert.deepEqual(shapes, [
      [2, 2],
      [1, 1],
    ]);
  });
});
