/**
 * Malformed requests: each answers its 4xx with a JSON body naming the field or tensor, and the
 * server keeps serving afterwards (never a 5xx, never a crash).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { RunningServer } from "../src/server.ts";
import { fixtureRepo, request, testServer } from "./helpers.ts";

let server: RunningServer;
let cleanup: () => Promise<void>;
before(async () => {
  const repo = await fixtureRepo();
  cleanup = repo.cleanup;
  server = await testServer(repo.dir, { BODY_LIMIT_BYTES: "4096", MAX_JSON_DEPTH: "16" });
});
after(async () => {
  await server.close();
  await cleanup();
});

interface Case {
  name: string;
  path: string;
  /** Raw body text (sent as is) or a value to JSON-encode. */
  raw?: string;
  json?: unknown;
  contentType?: string | null;
  method?: string;
  status: number;
  /** Must appear in the error message: the field/tensor and the reason. */
  error: RegExp;
}

const V1 = "/v1/models/linear:predict";
const V2 = "/v2/models/linear/infer";
const ok = { a: 1, b: 2, c: 0.5 };
const x = (over: Record<string, unknown>) => ({
  inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", data: [1, 2, 0.5], ...over }],
});

const cases: Case[] = [
  // Transport: content type, size, JSON syntax, nesting.
  {
    name: "no content type",
    path: V1,
    raw: '{"instances":[[1,1,1]]}',
    contentType: null,
    status: 415,
    error: /content-type: missing/,
  },
  {
    name: "text/plain body",
    path: V1,
    raw: '{"instances":[[1,1,1]]}',
    contentType: "text/plain",
    status: 415,
    error: /content-type: expected application\/json/,
  },
  {
    name: "form-encoded body",
    path: V2,
    raw: "a=1",
    contentType: "application/x-www-form-urlencoded",
    status: 415,
    error: /content-type/,
  },
  { name: "empty body", path: V1, raw: "", status: 400, error: /body: empty/ },
  { name: "malformed JSON", path: V1, raw: '{"instances": [1, 2', status: 400, error: /body: malformed JSON/ },
  { name: "trailing garbage", path: V2, raw: '{"inputs": []} x', status: 400, error: /body: malformed JSON/ },
  {
    name: "NaN literal",
    path: V1,
    raw: '{"instances": [[NaN, 1, 1]]}',
    status: 400,
    error: /NaN and Infinity are not JSON numbers/,
  },
  {
    name: "Infinity literal",
    path: V2,
    raw: '{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[Infinity,1,1]}]}',
    status: 400,
    error: /NaN and Infinity/,
  },
  {
    name: "number overflowing to Infinity (1e999)",
    path: V1,
    raw: '{"instances": [[1e999, 1, 1]]}',
    status: 400,
    error: /instances\[0\]\[0\]/,
  },
  {
    name: "deeply nested JSON",
    path: V1,
    raw: `{"instances": ${"[".repeat(1000)}${"]".repeat(1000)}}`,
    status: 400,
    error: /body: JSON nested deeper than 16/,
  },
  {
    name: "body over the size limit",
    path: V1,
    json: { instances: Array.from({ length: 800 }, () => [1, 1, 1]) },
    status: 413,
    error: /body: .*limit/,
  },
  // V1 envelope.
  { name: "V1 body is an array", path: V1, json: [[1, 1, 1]], status: 400, error: /body: expected a JSON object/ },
  {
    name: "V1 missing instances",
    path: V1,
    json: { inputs: [[1, 1, 1]] },
    status: 400,
    error: /inputs: unknown field/,
  },
  { name: "V1 instances absent", path: V1, json: {}, status: 400, error: /instances: required/ },
  {
    name: "V1 instances not an array",
    path: V1,
    json: { instances: { a: 1 } },
    status: 400,
    error: /instances: expected an array/,
  },
  {
    name: "V1 no instances",
    path: V1,
    json: { instances: [] },
    status: 400,
    error: /instances: must hold at least one/,
  },
  {
    name: "V1 batch over the model's limit",
    path: V1,
    json: { instances: Array.from({ length: 9 }, () => ok) },
    status: 413,
    error: /instances: 9 instances exceed this model's limit of 8/,
  },
  // V1 features (from the manifest).
  { name: "missing feature", path: V1, json: { instances: [{ a: 1, b: 2 }] }, status: 400, error: /instances\[0\]\.c/ },
  {
    name: "unknown feature",
    path: V1,
    json: { instances: [{ ...ok, colour: 1 }] },
    status: 400,
    error: /instances\[0\]\.colour: unknown feature "colour"/,
  },
  {
    name: "wrong type (string)",
    path: V1,
    json: { instances: [{ ...ok, a: "1" }] },
    status: 400,
    error: /instances\[0\]\.a: .*expected number/,
  },
  {
    name: "wrong type (null)",
    path: V1,
    json: { instances: [{ ...ok, a: null }] },
    status: 400,
    error: /instances\[0\]\.a/,
  },
  {
    name: "integer feature given a fraction",
    path: V1,
    json: { instances: [{ ...ok, b: 2.5 }] },
    status: 400,
    error: /instances\[0\]\.b: .*int/,
  },
  {
    name: "above max",
    path: V1,
    json: { instances: [{ ...ok, a: 101 }] },
    status: 400,
    error: /instances\[0\]\.a: .*<=100/,
  },
  {
    name: "below min",
    path: V1,
    json: { instances: [{ ...ok, b: -1 }] },
    status: 400,
    error: /instances\[0\]\.b: .*>=0/,
  },
  {
    name: "not in enum",
    path: V1,
    json: { instances: [{ ...ok, c: 0.7 }] },
    status: 400,
    error: /instances\[0\]\.c: .*0\|0\.5\|1/,
  },
  {
    name: "error in a later instance is located",
    path: V1,
    json: { instances: [ok, ok, { ...ok, a: 500 }] },
    status: 400,
    error: /instances\[2\]\.a/,
  },
  { name: "array instance too short", path: V1, json: { instances: [[1, 1]] }, status: 400, error: /instances\[0\]/ },
  {
    name: "array instance too long",
    path: V1,
    json: { instances: [[1, 1, 1, 1]] },
    status: 400,
    error: /instances\[0\]/,
  },
  {
    name: "array instance element out of range",
    path: V1,
    json: { instances: [[1, 11, 1]] },
    status: 400,
    error: /instances\[0\]\[1\] \(b\): .*<=10/,
  },
  { name: "instance is a scalar", path: V1, json: { instances: [5] }, status: 400, error: /instances\[0\]/ },
  {
    name: "multi-input instance given as array",
    path: "/v1/models/multi:predict",
    json: { instances: [[1, 2]] },
    status: 400,
    error: /instances\[0\]: expected an object keyed by input name/,
  },
  {
    name: "multi-input: missing input",
    path: "/v1/models/multi:predict",
    json: { instances: [{ a: [1, 2] }] },
    status: 400,
    error: /instances\[0\]\.b/,
  },
  {
    name: "no-manifest model: ragged instances",
    path: "/v1/models/symbolic:predict",
    json: {
      instances: [
        [1, 2],
        [1, 2, 3],
      ],
    },
    status: 400,
    error: /instances\[1\]: shape \[3\] differs/,
  },
  // V2 envelope and tensors.
  { name: "V2 no inputs", path: V2, json: { inputs: [] }, status: 400, error: /inputs: .*>=1/ },
  {
    name: "V2 unknown member in a tensor",
    path: V2,
    json: x({ extra: 1 }),
    status: 400,
    error: /inputs\[0\]\.extra: unknown member "extra"/,
  },
  {
    name: "V2 input without data",
    path: V2,
    json: { inputs: [{ name: "x", shape: [1, 3], datatype: "FP32" }] },
    status: 400,
    error: /inputs\[0\]\.data/,
  },
  {
    name: "V2 unknown input name",
    path: V2,
    json: x({ name: "z" }),
    status: 400,
    error: /inputs\[0\] \("z"\): unknown input/,
  },
  {
    name: "V2 wrong datatype",
    path: V2,
    json: x({ datatype: "INT32" }),
    status: 400,
    error: /inputs\[0\] \("x"\)\.datatype: expected FP32, got INT32/,
  },
  { name: "V2 wrong rank", path: V2, json: x({ shape: [3] }), status: 400, error: /\("x"\)\.shape: expected rank 2/ },
  {
    name: "V2 wrong fixed dimension",
    path: V2,
    json: x({ shape: [1, 4], data: [1, 2, 0.5, 1] }),
    status: 400,
    error: /\("x"\)\.shape\[1\]: expected 3, got 4/,
  },
  {
    name: "V2 negative dimension",
    path: V2,
    json: x({ shape: [-1, 3] }),
    status: 400,
    error: /inputs\[0\]\.shape\[0\]/,
  },
  {
    name: "V2 data length != product of shape",
    path: V2,
    json: x({ shape: [2, 3] }),
    status: 400,
    error: /\("x"\)\.data: has 3 elements but shape \[2,3\] needs 6/,
  },
  {
    name: "V2 string in FP32 data",
    path: V2,
    json: x({ data: [1, "2", 0.5] }),
    status: 400,
    error: /\("x"\)\.data\[1\]: expected a number/,
  },
  {
    name: "V2 feature range applies to tensors too",
    path: V2,
    json: x({ data: [1, 20, 0.5] }),
    status: 400,
    error: /\("x"\)\.data\[1\]: feature "b" must be <= 10/,
  },
  {
    name: "V2 INT32 overflow",
    path: "/v2/models/int32/infer",
    json: { inputs: [{ name: "x", shape: [1, 2], datatype: "INT32", data: [2147483648, 0] }] },
    status: 400,
    error: /\("x"\)\.data\[0\]: out of range for int32/,
  },
  {
    name: "V2 INT64 beyond 2^63",
    path: "/v2/models/int64/infer",
    json: { inputs: [{ name: "x", shape: [1], datatype: "INT64", data: [2 ** 63] }] },
    status: 400,
    error: /\("x"\)\.data\[0\]: out of range for int64/,
  },
  {
    name: "V2 fraction in INT64",
    path: "/v2/models/int64/infer",
    json: { inputs: [{ name: "x", shape: [1], datatype: "INT64", data: [1.5] }] },
    status: 400,
    error: /\("x"\)\.data\[0\]: expected an integer/,
  },
  {
    name: "V2 BOOL given a string",
    path: "/v2/models/bool/infer",
    json: { inputs: [{ name: "x", shape: [1, 2], datatype: "BOOL", data: ["true", false] }] },
    status: 400,
    error: /\("x"\)\.data\[0\]: expected a boolean/,
  },
  {
    name: "V2 missing input",
    path: "/v2/models/multi/infer",
    json: { inputs: [{ name: "a", shape: [1, 2], datatype: "FP32", data: [1, 2] }] },
    status: 400,
    error: /inputs: missing input "b"/,
  },
  {
    name: "V2 input given twice",
    path: V2,
    json: { inputs: [x({}).inputs[0], x({}).inputs[0]] },
    status: 400,
    error: /inputs\[1\] \("x"\): input given twice/,
  },
  {
    name: "V2 inputs disagree on batch size",
    path: "/v2/models/multi/infer",
    json: {
      inputs: [
        { name: "a", shape: [1, 2], datatype: "FP32", data: [1, 2] },
        { name: "b", shape: [2, 2], datatype: "FP32", data: [1, 2, 3, 4] },
      ],
    },
    status: 400,
    error: /\("b"\)\.shape\[0\]: batch size 2 differs/,
  },
  {
    name: "V2 unknown requested output",
    path: V2,
    json: { ...x({}), outputs: [{ name: "nope" }] },
    status: 400,
    error: /outputs\[0\] \("nope"\): unknown output/,
  },
  {
    name: "V2 batch over the model's limit",
    path: V2,
    json: x({ shape: [9, 3], data: Array.from({ length: 9 }, () => [1, 1, 0.5]) }),
    status: 413,
    error: /inputs\[0\]\.shape\[0\]: batch of 9 exceeds this model's limit of 8/,
  },
  {
    name: "V2 fixed-shape model with another batch",
    path: "/v2/models/fixed/infer",
    json: { inputs: [{ name: "x", shape: [2, 4], datatype: "FP32", data: [1, 2, 3, 4, 5, 6, 7, 8] }] },
    status: 400,
    error: /\("x"\)\.shape\[0\]: expected 1, got 2/,
  },
  // Addressing.
  {
    name: "unknown model (V1)",
    path: "/v1/models/ghost:predict",
    json: { instances: [[1]] },
    status: 404,
    error: /model "ghost" not found/,
  },
  {
    name: "unknown model (V2)",
    path: "/v2/models/ghost/infer",
    json: x({}),
    status: 404,
    error: /model "ghost" not found/,
  },
  {
    name: "unknown V1 verb",
    path: "/v1/models/linear:explain",
    json: { instances: [ok] },
    status: 404,
    error: /unknown V1 verb "explain"/,
  },
  {
    name: "version not a number",
    path: "/v2/models/linear/versions/abc/infer",
    json: x({}),
    status: 400,
    error: /version: "abc" is not a positive integer/,
  },
  {
    name: "version that does not exist",
    path: "/v2/models/linear/versions/7/infer",
    json: x({}),
    status: 404,
    error: /no version 7/,
  },
  {
    name: "model that failed to load",
    path: "/v2/models/broken-onnx/infer",
    json: x({}),
    status: 400,
    error: /"broken-onnx" is not ready: .*protobuf/i,
  },
  {
    name: "model with a broken manifest",
    path: "/v1/models/broken-manifest:predict",
    json: { instances: [[1, 2]] },
    status: 400,
    error: /not ready: model\.json is invalid/,
  },
];

test(`at least 40 malformed requests are tabled (${cases.length})`, () => {
  assert.ok(cases.length >= 40);
});

for (const c of cases) {
  test(`${c.status} ${c.name}`, async () => {
    const headers: Record<string, string> = {};
    if (c.contentType !== null) headers["content-type"] = c.contentType ?? "application/json";
    // Bytes, not a string: fetch would add text/plain to a string body.
    const body = Buffer.from(c.raw !== undefined ? c.raw : JSON.stringify(c.json));
    const res = await fetch(server.url + c.path, { method: c.method ?? "POST", headers, body });
    const text = await res.text();
    assert.equal(res.status, c.status, `status for ${c.name}: ${text}`);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    const parsed = JSON.parse(text) as { error: string };
    assert.equal(typeof parsed.error, "string");
    assert.match(parsed.error, c.error);
  });
}

test("the server still serves after every malformed request", async () => {
  const r = await request(`${server.url}/v1/models/linear:predict`, { json: { instances: [ok] } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.predictions, [7]);
  assert.equal((await request(`${server.url}/health/live`)).status, 200);
});

test("randomly mutated bodies never get a 5xx (seeded, 400 requests)", async () => {
  // Small deterministic PRNG so a failure reproduces.
  let seed = 20261123;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const scalars = [0, -1, 1.5, 1e308, -1e-308, "", "x", true, false, null, 2 ** 53, [], {}];
  const value = (depth: number): unknown => {
    const r = rand();
    if (depth > 3 || r < 0.5) return pick(scalars);
    if (r < 0.75) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
    return Object.fromEntries(
      Array.from({ length: Math.floor(rand() * 4) }, () => [
        pick(["a", "b", "c", "x", "name", "shape", "data", "datatype", "instances", "inputs"]),
        value(depth + 1),
      ]),
    );
  };
  const v1 = () => ({
    instances:
      rand() < 0.8
        ? Array.from({ length: 1 + Math.floor(rand() * 3) }, () =>
            rand() < 0.5 ? { a: value(2), b: value(2), c: value(2) } : [value(2), value(2), value(2)],
          )
        : value(1),
  });
  const v2 = () => ({
    inputs: [
      {
        name: pick(["x", "y", value(3)]),
        shape: pick([[1, 3], [3], [-1, 3], value(3)]),
        datatype: pick(["FP32", "INT64", "BOOL", value(3)]),
        data: value(1),
      },
    ],
    ...(rand() < 0.3 ? { outputs: [{ name: value(3) }] } : {}),
  });
  const targets = [
    "/v1/models/linear:predict",
    "/v2/models/linear/infer",
    "/v2/models/int64/infer",
    "/v2/models/bool/infer",
    "/v1/models/multi:predict",
  ];
  for (let i = 0; i < 400; i++) {
    const path = pick(targets);
    const body = path.startsWith("/v1") ? v1() : v2();
    const res = await fetch(server.url + path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    assert.ok(res.status < 500, `#${i} ${path} ${JSON.stringify(body)} -> ${res.status} ${text}`);
    if (res.status >= 400) assert.equal(typeof (JSON.parse(text) as { error: unknown }).error, "string");
  }
});
