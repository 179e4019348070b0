/**
 * The API, started on the real bundled model repository, serves predictions that match
 * scikit-learn's held-out reference over real HTTP: KServe V1 predict with feature-keyed objects
 * and with plain arrays, and Open Inference Protocol V2 infer with FP32 tensors.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { startServer } from "../../app/src/server.ts";
import {
  assertMatchesReference,
  BUNDLED,
  type BundledModel,
  type ClassificationReference,
  loadReference,
  MODELS_DIR,
  type Outputs,
  type Reference,
  rows,
} from "../reference.ts";

let server: Awaited<ReturnType<typeof startServer>> | undefined;
let base = "";

before(async () => {
  server = await startServer({
    port: 0,
    host: "127.0.0.1",
    modelsDir: MODELS_DIR,
    // Parity of the inference path itself: no response cache, no external services, no limits.
    env: {
      DATABASE_URL: "",
      REDIS_URL: "",
      AUTH_MODE: "off",
      RATE_LIMIT: "off",
      RESPONSE_CACHE: "off",
      PREDICTION_LOG: "off",
      LOG_LEVEL: "silent",
    },
  });
  base = server.url.replace(/\/$/, "");
  for (const model of BUNDLED) await waitReady(model);
});

after(async () => {
  await server?.close();
});

async function waitReady(model: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last = "";
  while (Date.now() < deadline) {
    const res = await fetch(`${base}/v2/models/${model}/ready`);
    last = `${res.status} ${await res.text()}`;
    if (res.status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${model} never became ready: ${last}`);
}

async function post(url: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${base}${url}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `POST ${url}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function get(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${url}`);
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${url}: ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

function maxBatch(model: BundledModel): number {
  const manifest = JSON.parse(readFileSync(path.join(MODELS_DIR, model, "model.json"), "utf8")) as {
    batching?: { maxBatchSize: number };
  };
  return manifest.batching?.maxBatchSize || 64;
}

/** Requests of at most the model's batch limit, in order. */
function chunks<T>(items: T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

/** V1 answers: a number per row for regressors, {label, probabilities: {label: p}} for classifiers. */
function fromV1(ref: Reference, predictions: unknown[]): Outputs {
  if (ref.kind === "regression") {
    return {
      predictions: predictions.map((p, i) => {
        const value = Array.isArray(p) ? p[0] : p;
        assert.equal(typeof value, "number", `row ${i}: regression prediction is a number, got ${JSON.stringify(p)}`);
        return value as number;
      }),
    };
  }
  const labels: number[] = [];
  const probabilities: number[][] = [];
  predictions.forEach((p, i) => {
    const { label, probabilities: probs } = p as { label: unknown; probabilities: Record<string, number> };
    assert.equal(typeof label, "string", `row ${i}: classifier label is the class name`);
    assert.deepEqual(Object.keys(probs), ref.labels, `row ${i}: probabilities keyed by label, in order`);
    labels.push(ref.labels.indexOf(label as string));
    probabilities.push(ref.labels.map((l) => probs[l]!));
  });
  return { labels, probabilities };
}

interface V2Output {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
}

function fromV2(ref: Reference, outputs: V2Output[], batch: number): Outputs {
  const byName = new Map(outputs.map((o) => [o.name, o]));
  if (ref.kind === "regression") {
    const out = byName.get(ref.output);
    assert.ok(out, `V2 answer has output ${ref.output}`);
    assert.equal(out.datatype, "FP32");
    assert.deepEqual(out.shape, [batch, 1]);
    return { predictions: out.data.flat() as number[] };
  }
  const label = byName.get(ref.labelOutput);
  const probs = byName.get(ref.probabilitiesOutput);
  assert.ok(label && probs, "V2 answer has both classifier outputs");
  assert.equal(label.datatype, "INT64");
  assert.deepEqual(label.shape, [batch]);
  assert.equal(probs.datatype, "FP32");
  assert.deepEqual(probs.shape, [batch, ref.labels.length]);
  const flat = probs.data.flat() as number[];
  const k = ref.labels.length;
  return {
    labels: (label.data.flat() as (number | string)[]).map(Number),
    probabilities: Array.from({ length: batch }, (_, i) => flat.slice(i * k, (i + 1) * k)),
  };
}

async function v1(ref: Reference, model: BundledModel, asArrays: boolean): Promise<Outputs> {
  const merged: Outputs = ref.kind === "regression" ? { predictions: [] } : { labels: [], probabilities: [] };
  const instances = asArrays ? rows(ref) : ref.cases.map((c) => c.instance);
  for (const chunk of chunks<unknown>(instances, maxBatch(model))) {
    const body = (await post(`/v1/models/${model}:predict`, { instances: chunk })) as { predictions: unknown[] };
    assert.ok(Array.isArray(body.predictions), "V1 answer has predictions");
    assert.equal(body.predictions.length, chunk.length, "one prediction per instance");
    const part = fromV1(ref, body.predictions);
    merged.predictions?.push(...(part.predictions ?? []));
    merged.labels?.push(...(part.labels ?? []));
    merged.probabilities?.push(...(part.probabilities ?? []));
  }
  return merged;
}

async function v2(
  ref: Reference,
  model: BundledModel,
  batchRows: number[][],
  url = `/v2/models/${model}/infer`,
): Promise<Outputs> {
  const merged: Outputs = ref.kind === "regression" ? { predictions: [] } : { labels: [], probabilities: [] };
  for (const chunk of chunks(batchRows, maxBatch(model))) {
    const body = (await post(url, {
      id: `parity-${model}`,
      inputs: [{ name: ref.input, datatype: "FP32", shape: [chunk.length, ref.features.length], data: chunk.flat() }],
    })) as { model_name: string; outputs: V2Output[] };
    assert.equal(body.model_name, model);
    const part = fromV2(ref, body.outputs, chunk.length);
    merged.predictions?.push(...(part.predictions ?? []));
    merged.labels?.push(...(part.labels ?? []));
    merged.probabilities?.push(...(part.probabilities ?? []));
  }
  return merged;
}

for (const model of BUNDLED) {
  test(`${model}: V1 predict with feature-keyed instances matches scikit-learn`, async (t) => {
    const ref = loadReference(model);
    const worst = assertMatchesReference(ref, await v1(ref, model, false), "V1 objects");
    t.diagnostic(`${ref.cases.length} rows over HTTP, worst relative error ${worst.relative.toExponential(2)}`);
  });

  test(`${model}: V1 predict with plain-array instances matches scikit-learn`, async () => {
    const ref = loadReference(model);
    assertMatchesReference(ref, await v1(ref, model, true), "V1 arrays");
  });

  test(`${model}: V2 infer with FP32 tensors matches scikit-learn (latest and explicit version)`, async () => {
    const ref = loadReference(model);
    assertMatchesReference(ref, await v2(ref, model, rows(ref)), "V2 infer");
    const url = `/v2/models/${model}/versions/${ref.version}/infer`;
    assertMatchesReference(ref, await v2(ref, model, rows(ref), url), `V2 infer version ${ref.version}`);
  });

  test(`${model}: V1 and V2 metadata describe the manifest's features and labels`, async () => {
    const ref = loadReference(model);
    const v2meta = await get(`/v2/models/${model}`);
    const inputs = v2meta.inputs as { name: string; datatype: string; shape: number[] }[];
    assert.deepEqual(
      inputs.map((i) => [i.name, i.datatype, i.shape]),
      [[ref.input, "FP32", [-1, ref.features.length]]],
    );
    const v1meta = JSON.stringify(await get(`/v1/models/${model}`));
    for (const feature of ref.features)
      assert.ok(v1meta.includes(`"${feature}"`), `V1 metadata names feature ${feature}`);
    if (ref.kind === "classification") {
      for (const label of ref.labels) assert.ok(v1meta.includes(`"${label}"`), `V1 metadata names label ${label}`);
    }
  });
}

test("all models at once, one instance per request, concurrently: every caller gets its own row's answer", async (t) => {
  // Hundreds of single-row requests in flight together coalesce in the dynamic batcher; a row
  // answered from another request's slot would break parity here.
  const jobs = BUNDLED.flatMap((model) => {
    const ref = loadReference(model);
    return ref.cases.map((c, i) => async () => {
      const body = (await post(`/v1/models/${model}:predict`, { instances: [c.instance] })) as {
        predictions: unknown[];
      };
      assertMatchesReference(
        { ...ref, cases: [c] } as Reference,
        fromV1(ref, body.predictions),
        `concurrent ${model} row ${i}`,
      );
    });
  });
  const before = await batchTotals();
  await Promise.all(jobs.map((job) => job()));
  const after = await batchTotals();
  // Reported, not asserted: how far requests coalesced depends on timing.
  const batches = after.count - before.count;
  t.diagnostic(
    `${jobs.length} concurrent single-row requests ran in ${batches} batches (mean ${((after.sum - before.sum) / batches).toFixed(1)} rows)`,
  );
});

/** Sums of the batch-size histogram over all models, from /metrics. */
async function batchTotals(): Promise<{ sum: number; count: number }> {
  const lines = (await (await fetch(`${base}/metrics`)).text()).split("\n");
  const total = (suffix: string) =>
    lines
      .filter((l) => l.startsWith(`inferstack_inference_batch_size_${suffix}{`))
      .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
  return { sum: total("sum"), count: total("count") };
}

test("wine-classifier: boundary rows at float32 neighbours of split thresholds survive JSON and the server", async () => {
  const ref = loadReference("wine-classifier") as ClassificationReference;
  assert.ok(ref.edgeCases, "reference has edge cases");
  const edge = { ...ref, cases: ref.edgeCases.cases };
  assertMatchesReference(edge, await v2(edge, "wine-classifier", rows(edge)), "V2 edge rows");
  assertMatchesReference(edge, await v1({ ...edge }, "wine-classifier", false), "V1 edge rows");
});
