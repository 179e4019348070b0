/**
 * A model whose inputs share no leading batch dimension (a recurrent state [2, batch, 64] beside
 * tokens [seq, batch], the shape of most exported RNN/LSTM decoders) is served unbatched, each
 * input with its shape as declared and no cross-input batch check; a manifest can still turn
 * batching off for a model that looks batchable, and cannot turn it on for one that is not.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { RunningServer } from "../src/server.ts";
import { fixtureRepo, request, testServer } from "./helpers.ts";

let server: RunningServer;
let base: string;
let dir: string;
let cleanup: () => Promise<void>;

before(async () => {
  const repo = await fixtureRepo(["recurrent", "multi"]);
  dir = repo.dir;
  cleanup = repo.cleanup;
  server = await testServer(repo.dir);
  base = server.url;
});
after(async () => {
  await server.close();
  await cleanup();
});

function recurrentRequest(seq: number, batch: number) {
  const x = Array.from({ length: seq * batch }, (_, i) => i + 1);
  return {
    inputs: [
      { name: "x", datatype: "FP32", shape: [seq, batch], data: x },
      { name: "h", datatype: "FP32", shape: [2, batch, 64], data: new Array(2 * batch * 64).fill(2) },
    ],
  };
}

describe("a model without a shared batch dimension", () => {
  test("metadata and configuration show the shapes as declared, unbatched", async () => {
    const meta = (await request(`${base}/v2/models/recurrent`)).body;
    assert.deepEqual(
      meta.inputs.map((t: { name: string; shape: number[] }) => [t.name, t.shape]),
      [
        ["x", [-1, -1]],
        ["h", [2, -1, 64]],
      ],
    );
    const config = (await request(`${base}/v2/models/recurrent/config`)).body;
    assert.equal(config.max_batch_size, 0);
    assert.deepEqual(
      config.input.map((t: { dims: number[] }) => t.dims),
      [
        [-1, -1],
        [2, -1, 64],
      ],
    );
    assert.equal(config.dynamic_batching, undefined);
  });

  test("inputs whose first dimensions differ are served (the issue's [2,-1,64] beside [-1,-1])", async () => {
    const r = await request(`${base}/v2/models/recurrent/infer`, { json: recurrentRequest(1, 1) });
    assert.equal(r.status, 200, r.text);
    const y = r.body.outputs.find((o: { name: string }) => o.name === "y");
    const h = r.body.outputs.find((o: { name: string }) => o.name === "h_next");
    assert.deepEqual(y.shape, [1]);
    assert.deepEqual(y.data, [1]);
    assert.deepEqual(h.shape, [2, 1, 64]);
    // h / 2 + mean(x) = 1 + 1
    assert.ok(h.data.every((v: number) => v === 2));
  });

  test("any sequence length and batch: the runtime's result, not ours, decides", async () => {
    const r = await request(`${base}/v2/models/recurrent/infer`, { json: recurrentRequest(4, 3) });
    assert.equal(r.status, 200, r.text);
    const y = r.body.outputs.find((o: { name: string }) => o.name === "y");
    // x = [[1,2,3],[4,5,6],[7,8,9],[10,11,12]] summed over the sequence axis.
    assert.deepEqual(y.data, [22, 26, 30]);
    const h = r.body.outputs.find((o: { name: string }) => o.name === "h_next");
    assert.deepEqual(h.shape, [2, 3, 64]);
    assert.equal(h.data[0], 1 + 6.5);
  });

  test("a fixed dimension is still checked; first dimensions are not compared across inputs", async () => {
    const wrongLayers = recurrentRequest(1, 1);
    wrongLayers.inputs[1] = { name: "h", datatype: "FP32", shape: [3, 1, 64], data: new Array(3 * 64).fill(0) };
    const r = await request(`${base}/v2/models/recurrent/infer`, { json: wrongLayers });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /inputs\[1\] \("h"\)\.shape\[0\]: expected 2, got 3/);
    // 2 columns in x, 3 in h: the graph never combines them, so the runtime runs it and so do we.
    const mixed = recurrentRequest(1, 2);
    mixed.inputs[1] = { name: "h", datatype: "FP32", shape: [2, 3, 64], data: new Array(2 * 3 * 64).fill(0) };
    const m = await request(`${base}/v2/models/recurrent/infer`, { json: mixed });
    assert.equal(m.status, 200, m.text);
    assert.deepEqual(
      m.body.outputs.map((o: { shape: number[] }) => o.shape),
      [[2], [2, 3, 64]],
    );
  });

  test("a batched model still checks that its inputs agree on the batch size", async () => {
    const r = await request(`${base}/v2/models/multi/infer`, {
      json: {
        inputs: [
          { name: "a", datatype: "FP32", shape: [2, 2], data: [1, 2, 3, 4] },
          { name: "b", datatype: "FP32", shape: [1, 2], data: [1, 2] },
        ],
      },
    });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /inputs\[1\] \("b"\)\.shape\[0\]: batch size 1 differs from the other inputs' 2/);
  });
});

describe("the manifest decides where it says so", () => {
  test("batching off for a model that looks batchable: served unbatched, no cross-input check", async () => {
    await writeFile(join(dir, "multi", "model.json"), JSON.stringify({ batching: { maxBatchSize: 0 } }));
    await server.reload();
    const config = (await request(`${base}/v2/models/multi/config`)).body;
    assert.equal(config.max_batch_size, 0);
    assert.deepEqual(config.input[0].dims, [-1, 2]);
    const ok = await request(`${base}/v2/models/multi/infer`, {
      json: {
        inputs: [
          { name: "a", datatype: "FP32", shape: [2, 2], data: [1, 2, 3, 4] },
          { name: "b", datatype: "FP32", shape: [1, 2], data: [10, 20] },
        ],
      },
    });
    // Add broadcasts [1,2] over [2,2]: the model, not a batch rule, decides.
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body.outputs.find((o: { name: string }) => o.name === "sum").data, [11, 22, 13, 24]);
  });

  test("batching on for a model without a shared batch dimension: refused, naming the tensors", async () => {
    const repo = await fixtureRepo(["recurrent"]);
    await writeFile(join(repo.dir, "recurrent", "model.json"), JSON.stringify({ batching: { maxBatchSize: 8 } }));
    const other = await testServer(repo.dir);
    try {
      const ready = await request(`${other.url}/v2/models/recurrent/ready`);
      assert.equal(ready.status, 400);
      assert.match(
        ready.body.reason,
        /every input and output needs a variable first dimension to batch; "h" \[2,-1,64\], "h_next" \[2,-1,64\] have none/,
      );
    } finally {
      await other.close();
      await repo.cleanup();
    }
  });
});
