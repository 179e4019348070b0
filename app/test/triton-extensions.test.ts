/**
 * Triton's model configuration and statistics extensions over real HTTP, held to what Triton's own
 * tools read: perf_analyzer's model_parser.cc (max_batch_size, input/output names matching the
 * metadata, is_shape_tensor, optional, dynamic_batching present when batching, metadata shapes
 * keeping the batch dimension that config dims leave out), its ParseStatistics (every counter a
 * non-negative integer, version a string: it reads them with GetUint64/GetString unchecked), and
 * Triton's JsonToModelConfig, which parses the JSON with ignore_unknown_fields=false (so every key
 * must be a model_config.proto field name).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { RunningServer } from "../src/server.ts";
import { fixtureRepo, request, testServer } from "./helpers.ts";

let server: RunningServer;
let base: string;
let cleanup: () => Promise<void>;

before(async () => {
  const repo = await fixtureRepo();
  cleanup = repo.cleanup;
  server = await testServer(repo.dir);
  base = server.url;
});
after(async () => {
  await server.close();
  await cleanup();
});

// Field names of the messages in triton-inference-server/common protobuf/model_config.proto.
const MODEL_CONFIG_FIELDS = new Set([
  "name",
  "platform",
  "backend",
  "runtime",
  "version_policy",
  "max_batch_size",
  "input",
  "output",
  "batch_input",
  "batch_output",
  "optimization",
  "dynamic_batching",
  "sequence_batching",
  "ensemble_scheduling",
  "instance_group",
  "default_model_filename",
  "cc_model_filenames",
  "metric_tags",
  "parameters",
  "model_warmup",
  "model_operations",
  "model_transaction_policy",
  "model_repository_agents",
  "response_cache",
  "model_metrics",
]);
const MODEL_INPUT_FIELDS = new Set([
  "name",
  "data_type",
  "format",
  "dims",
  "reshape",
  "is_shape_tensor",
  "allow_ragged_batch",
  "optional",
  "is_non_linear_format_io",
]);
const MODEL_OUTPUT_FIELDS = new Set([
  "name",
  "data_type",
  "dims",
  "reshape",
  "label_filename",
  "is_shape_tensor",
  "is_non_linear_format_io",
]);
const DYNAMIC_BATCHING_FIELDS = new Set([
  "preferred_batch_size",
  "max_queue_delay_microseconds",
  "preserve_ordering",
  "priority_levels",
  "default_priority_level",
  "default_queue_policy",
  "priority_queue_policy",
]);
const INSTANCE_GROUP_FIELDS = new Set([
  "name",
  "kind",
  "count",
  "rate_limiter",
  "gpus",
  "secondary_devices",
  "profile",
  "passive",
  "host_policy",
]);
const DATA_TYPES = new Set([
  "TYPE_BOOL",
  "TYPE_UINT8",
  "TYPE_UINT16",
  "TYPE_UINT32",
  "TYPE_UINT64",
  "TYPE_INT8",
  "TYPE_INT16",
  "TYPE_INT32",
  "TYPE_INT64",
  "TYPE_FP16",
  "TYPE_FP32",
  "TYPE_FP64",
  "TYPE_STRING",
  "TYPE_BF16",
]);

function assertProtoKeys(obj: Record<string, unknown>, allowed: Set<string>, where: string) {
  for (const key of Object.keys(obj)) assert.ok(allowed.has(key), `${where}.${key} is not a model_config.proto field`);
}

/** What perf_analyzer's ModelParser::InitTriton derives from metadata + config, checked the same way. */
async function assertPerfAnalyzerConsistent(name: string) {
  const meta = (await request(`${base}/v2/models/${name}`)).body;
  const config = (await request(`${base}/v2/models/${name}/config`)).body;
  assert.ok(Number.isInteger(config.max_batch_size) && config.max_batch_size >= 0);
  const skip = config.max_batch_size > 0 ? 1 : 0;
  for (const [kind, metaKind] of [
    ["input", "inputs"],
    ["output", "outputs"],
  ] as const) {
    for (const t of config[kind]) {
      const m = meta[metaKind].find((x: { name: string }) => x.name === t.name);
      assert.ok(m, `no metadata found for ${kind} tensor ${t.name}`);
      assert.deepEqual(t.dims, m.shape.slice(skip), `${name} ${kind} ${t.name}: config dims vs metadata shape`);
      assert.equal(t.data_type, `TYPE_${m.datatype === "BYTES" ? "STRING" : m.datatype}`);
      assert.equal(typeof t.is_shape_tensor, "boolean");
      if (kind === "input") assert.equal(typeof t.optional, "boolean");
    }
    assert.equal(config[kind].length, meta[metaKind].length);
  }
  return config;
}

describe("model configuration extension", () => {
  test("server metadata lists the extensions, and GET /v2/ answers as GET /v2", async () => {
    const plain = await request(`${base}/v2`);
    const slash = await request(`${base}/v2/`);
    assert.equal(slash.status, 200);
    assert.deepEqual(slash.body, plain.body);
    for (const ext of ["model_repository", "model_configuration", "statistics"])
      assert.ok(plain.body.extensions.includes(ext), ext);
  });

  test("a batched model: Triton's JSON, dims without the batch dimension, dynamic_batching", async () => {
    const config = await assertPerfAnalyzerConsistent("linear");
    assertProtoKeys(config, MODEL_CONFIG_FIELDS, "config");
    assert.equal(config.name, "linear");
    assert.equal(config.platform, "onnxruntime_onnx");
    assert.equal(config.backend, "onnxruntime");
    assert.equal(config.max_batch_size, 8);
    assert.deepEqual(config.version_policy, { latest: { num_versions: 1 } });
    assert.deepEqual(
      config.input.map((t: { name: string; data_type: string; dims: number[] }) => [t.name, t.data_type, t.dims]),
      [["x", "TYPE_FP32", [3]]],
    );
    assert.deepEqual(
      config.output.map((t: { name: string; data_type: string; dims: number[] }) => [t.name, t.data_type, t.dims]),
      [["y", "TYPE_FP32", [1]]],
    );
    for (const t of config.input) assertProtoKeys(t, MODEL_INPUT_FIELDS, "input");
    for (const t of config.output) assertProtoKeys(t, MODEL_OUTPUT_FIELDS, "output");
    assertProtoKeys(config.dynamic_batching, DYNAMIC_BATCHING_FIELDS, "dynamic_batching");
    assert.deepEqual(config.dynamic_batching.preferred_batch_size, [8]);
    assert.equal(config.dynamic_batching.max_queue_delay_microseconds, 100000);
    for (const g of config.instance_group) assertProtoKeys(g, INSTANCE_GROUP_FIELDS, "instance_group");
    assert.equal(config.instance_group[0].kind, "KIND_CPU");
    assert.equal(config.default_model_filename, "model.onnx");
    // 64-bit fields are JSON numbers, as Triton's ModelConfigToJson fixes them, never protobuf's strings.
    assert.equal(typeof config.dynamic_batching.max_queue_delay_microseconds, "number");
    // No response cache without Redis: Triton omits the unset message.
    assert.equal(config.response_cache, undefined);
  });

  test("every fixture model's configuration is consistent with its metadata", async () => {
    const index = (await request(`${base}/v2/repository/index`, { method: "POST" })).body as {
      name: string;
      state: string;
    }[];
    const ready = [...new Set(index.filter((m) => m.state === "READY").map((m) => m.name))];
    assert.ok(ready.length >= 8);
    for (const name of ready) {
      const config = await assertPerfAnalyzerConsistent(name);
      assertProtoKeys(config, MODEL_CONFIG_FIELDS, name);
      for (const t of [...config.input, ...config.output])
        assert.ok(DATA_TYPES.has(t.data_type), `${name}: ${t.data_type}`);
      assert.equal("dynamic_batching" in config, config.max_batch_size > 0, `${name}: dynamic_batching iff batched`);
    }
  });

  test("an unbatched model reports max_batch_size 0 and its full shapes", async () => {
    const config = await assertPerfAnalyzerConsistent("fixed");
    assert.equal(config.max_batch_size, 0);
    assert.deepEqual(config.input[0].dims, [1, 4]);
    assert.equal(config.dynamic_batching, undefined);
  });

  test("version policy and per-version configuration", async () => {
    const config = (await request(`${base}/v2/models/versioned/versions/2/config`)).body;
    assert.deepEqual(config.version_policy, { latest: { num_versions: 2 } });
    assert.deepEqual(config.input[0].dims, [1]);
    const STRING = (await request(`${base}/v2/models/string/config`)).body;
    assert.equal(STRING.input[0].data_type, "TYPE_STRING");
  });

  test("errors: unknown model 404, version not served 400, version not a number 400, broken model 400", async () => {
    const unknown = await request(`${base}/v2/models/nope/config`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error, /model "nope" not found/);
    const policy = await request(`${base}/v2/models/versioned/versions/1/config`);
    assert.equal(policy.status, 400);
    assert.match(policy.body.error, /version 1 is not ready: not selected by the version policy/);
    assert.equal((await request(`${base}/v2/models/versioned/versions/x/config`)).status, 400);
    const broken = await request(`${base}/v2/models/broken-onnx/config`);
    assert.equal(broken.status, 400);
    assert.match(broken.body.error, /broken-onnx/);
  });
});

/** A model's statistics as the server sends them, every leaf unchecked until asserted. */
interface TritonStat {
  [k: string]: unknown;
  inference_stats: Record<string, { count: unknown; ns: unknown }>;
  batch_stats: ({ batch_size: unknown } & Record<string, { ns: unknown }>)[];
}

function assertTritonStat(s: TritonStat) {
  const uint = (v: unknown, where: string) =>
    assert.ok(Number.isSafeInteger(v) && (v as number) >= 0, `${where} = ${String(v)} is not a uint64`);
  assert.equal(typeof s.name, "string");
  assert.equal(typeof s.version, "string");
  for (const k of ["last_inference", "inference_count", "execution_count"]) uint(s[k], k);
  for (const k of [
    "success",
    "fail",
    "queue",
    "compute_input",
    "compute_infer",
    "compute_output",
    "cache_hit",
    "cache_miss",
  ]) {
    uint(s.inference_stats[k]!.count, `${k}.count`);
    uint(s.inference_stats[k]!.ns, `${k}.ns`);
  }
  for (const b of s.batch_stats)
    for (const k of ["compute_input", "compute_infer", "compute_output"])
      uint(b[k]!.ns, `batch ${b.batch_size} ${k}.ns`);
  assert.ok(Array.isArray(s.memory_usage));
  assert.equal(typeof s.response_stats, "object");
}

describe("statistics extension", () => {
  test("counts requests, rows, executions and batch sizes of a model", async () => {
    const before = (await request(`${base}/v2/models/multi/stats`)).body.model_stats[0];
    assertTritonStat(before);
    const body = (rows: number) => ({
      inputs: [
        { name: "a", datatype: "FP32", shape: [rows, 2], data: new Array(rows * 2).fill(1) },
        { name: "b", datatype: "FP32", shape: [rows, 2], data: new Array(rows * 2).fill(2) },
      ],
    });
    const t0 = Date.now();
    assert.equal((await request(`${base}/v2/models/multi/infer`, { json: body(3) })).status, 200);
    assert.equal((await request(`${base}/v2/models/multi/infer`, { json: body(1) })).status, 200);
    const bad = await request(`${base}/v2/models/multi/infer`, {
      json: { inputs: [{ name: "a", datatype: "FP32", shape: [1, 2], data: [1, 2] }] },
    });
    assert.equal(bad.status, 400);
    const r = await request(`${base}/v2/models/multi/versions/1/stats`);
    assert.equal(r.status, 200);
    const [s] = r.body.model_stats;
    assertTritonStat(s);
    assert.equal(s.name, "multi");
    assert.equal(s.version, "1");
    assert.equal(s.inference_count - before.inference_count, 4);
    assert.equal(s.execution_count - before.execution_count, 2);
    assert.equal(s.inference_stats.success.count - before.inference_stats.success.count, 2);
    assert.equal(s.inference_stats.fail.count - before.inference_stats.fail.count, 1);
    assert.equal(s.inference_stats.compute_infer.count - before.inference_stats.compute_infer.count, 2);
    assert.ok(s.inference_stats.success.ns > before.inference_stats.success.ns);
    assert.ok(s.inference_stats.compute_infer.ns > before.inference_stats.compute_infer.ns);
    assert.ok(s.last_inference >= t0 && s.last_inference <= Date.now());
    const sizes = Object.fromEntries(
      s.batch_stats.map((b: { batch_size: number; compute_infer: { count: number } }) => [
        b.batch_size,
        b.compute_infer.count,
      ]),
    );
    assert.ok(sizes[3] >= 1 && sizes[1] >= 1, JSON.stringify(s.batch_stats));
  });

  test("concurrent requests of a batching model: fewer executions than requests", async () => {
    const before = (await request(`${base}/v2/models/linear/stats`)).body.model_stats[0];
    // linear waits out a 100 ms window, so these four share one execution.
    await Promise.all(
      [1, 2, 3, 4].map(() => request(`${base}/v1/models/linear:predict`, { json: { instances: [[1, 1, 1]] } })),
    );
    const s = (await request(`${base}/v2/models/linear/stats`)).body.model_stats[0];
    assert.equal(s.inference_count - before.inference_count, 4);
    assert.ok(
      s.execution_count - before.execution_count < 4,
      `${s.execution_count - before.execution_count} executions`,
    );
    assert.equal(s.inference_stats.queue.count - before.inference_stats.queue.count, 4);
    assert.ok(
      s.inference_stats.queue.ns - before.inference_stats.queue.ns > 4 * 50e6,
      "each waited in the 100 ms window",
    );
  });

  test("all models: every serving version, sorted; unknown model 404; unserved version 400", async () => {
    const all = (await request(`${base}/v2/models/stats`)).body.model_stats as (TritonStat & {
      name: string;
      version: string;
    })[];
    for (const s of all) assertTritonStat(s);
    const keys = all.map((s) => `${s.name}/${s.version}`);
    assert.ok(keys.includes("versioned/2") && keys.includes("versioned/3") && !keys.includes("versioned/1"));
    assert.ok(!keys.some((k) => k.startsWith("broken-onnx/")));
    assert.deepEqual(
      keys,
      [...keys].sort((a, b) => a.localeCompare(b, "en", { numeric: true })),
    );
    const versions = (await request(`${base}/v2/models/versioned/stats`)).body.model_stats.map(
      (s: { version: string }) => s.version,
    );
    assert.deepEqual(versions, ["2", "3"]);
    assert.equal((await request(`${base}/v2/models/nope/stats`)).status, 404);
    const unserved = await request(`${base}/v2/models/versioned/versions/1/stats`);
    assert.equal(unserved.status, 400);
    assert.match(unserved.body.error, /version 1 is not available \(serving: 2, 3\)/);
    const broken = await request(`${base}/v2/models/broken-onnx/stats`);
    assert.equal(broken.status, 400);
    assert.match(broken.body.error, /not available/);
  });

  test("the OpenAPI document describes the new routes", async () => {
    const doc = (await request(`${base}/openapi.json`)).body;
    for (const p of [
      "/v2/models/{name}/config",
      "/v2/models/{name}/versions/{version}/config",
      "/v2/models/stats",
      "/v2/models/{name}/stats",
      "/v2/models/{name}/versions/{version}/stats",
    ]) {
      assert.ok(doc.paths[p]?.get, p);
    }
    assert.ok(doc.components.schemas.TritonModelConfig);
    assert.ok(doc.components.schemas.TritonStatisticsResponse);
  });
});
