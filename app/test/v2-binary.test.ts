/**
 * V2 infer bodies beyond plain JSON: the binary tensor data extension in both directions, every
 * tensor type (BYTES, FP16, INT64/UINT64 over their full range), Content-Type and Content-Encoding,
 * and a table of malformed binary requests, each a 400 that names what was wrong.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import type { RunningServer } from "../src/server.ts";
import { deleteRedisPrefix, REDIS_URL } from "./data/support.ts";
import { FIXTURES, fixtureRepo, testServer } from "./helpers.ts";

const LIMIT = 65536;
let server: RunningServer;

before(async () => {
  server = await testServer(FIXTURES, { BODY_LIMIT_BYTES: String(LIMIT) });
});
after(async () => {
  await server.close();
});

interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
  json: { error?: string; outputs?: Array<Record<string, unknown>>; [k: string]: unknown };
}

async function post(path: string, body: Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(server.url + path, { method: "POST", body, headers });
  const bytes = Buffer.from(await res.arrayBuffer());
  const length = res.headers.get("inference-header-content-length");
  const text = bytes.subarray(0, length === null ? bytes.length : Number(length)).toString("utf8");
  return { status: res.status, headers: res.headers, body: bytes, json: JSON.parse(text) };
}

/** A binary request: the JSON header, then the tensors' bytes, Inference-Header-Content-Length set. */
function binary(header: unknown, ...tensors: Buffer[]): { body: Buffer; headers: Record<string, string> } {
  const json = Buffer.from(JSON.stringify(header));
  return {
    body: Buffer.concat([json, ...tensors]),
    headers: { "Inference-Header-Content-Length": String(json.length) },
  };
}

const bytesOf = (a: { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const f32 = (...v: number[]) => bytesOf(new Float32Array(v));
const strings = (...v: string[]) =>
  Buffer.concat(
    v.flatMap((s) => {
      const b = Buffer.from(s);
      const n = Buffer.alloc(4);
      n.writeUInt32LE(b.length);
      return [n, b];
    }),
  );
const X = (params: Record<string, unknown>, shape = [1, 3]) => ({
  inputs: [{ name: "x", shape, datatype: "FP32", parameters: params }],
});
const LINEAR = "/v2/models/linear/infer";

/** The binary outputs of a response, sliced in order by binary_data_size. */
function binaryOutputs(r: Reply): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  let at = Number(r.headers.get("inference-header-content-length"));
  for (const o of r.json.outputs!) {
    const size = (o.parameters as { binary_data_size?: number } | undefined)?.binary_data_size;
    if (size === undefined) continue;
    out[o.name as string] = r.body.subarray(at, at + size);
    at += size;
  }
  assert.equal(at, r.body.length, "binary outputs fill the body exactly");
  return out;
}

describe("content type, unknown members, id", () => {
  test("no Content-Type reads JSON (tritonclient sends none)", async () => {
    const r = await post(
      LINEAR,
      Buffer.from(JSON.stringify({ inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", data: [1, 2, 0.5] }] })),
    );
    assert.equal(r.status, 200, r.body.toString());
    assert.deepEqual(r.json.outputs![0]!.data, [7]);
  });
  test("other types get 415 naming the accepted ones", async () => {
    const r = await post(LINEAR, Buffer.from("{}"), { "content-type": "text/csv" });
    assert.equal(r.status, 415);
    assert.equal(
      r.json.error,
      "content-type: expected application/json, or application/octet-stream with Inference-Header-Content-Length, got text/csv",
    );
  });
  test("model_name, model_version and other unknown top-level members are ignored; id is echoed", async () => {
    const body = {
      id: "req-7",
      model_name: "linear",
      model_version: "1",
      whatever: { a: 1 },
      inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", data: [1, 2, 0.5] }],
    };
    const r = await post(LINEAR, Buffer.from(JSON.stringify(body)), { "content-type": "application/json" });
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.json.id, "req-7");
  });
  test("an unknown member inside a tensor is still refused, worded for tensors", async () => {
    const r = await post(
      LINEAR,
      Buffer.from(
        JSON.stringify({ inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", data: [1, 2, 0.5], colour: 1 }] }),
      ),
    );
    assert.equal(r.status, 400);
    assert.equal(r.json.error, 'inputs[0].colour: unknown member "colour"');
  });
  test("application/octet-stream without the header is a JSON body (as Triton reads it)", async () => {
    const r = await post(
      LINEAR,
      Buffer.from(JSON.stringify({ inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", data: [1, 2, 0.5] }] })),
      { "content-type": "application/octet-stream" },
    );
    assert.equal(r.status, 200);
  });
});

describe("binary tensor data, both directions", () => {
  test("binary in, binary_data_output: octet-stream with its own header length", async () => {
    const { body, headers } = binary(
      { ...X({ binary_data_size: 24 }, [2, 3]), parameters: { binary_data_output: true } },
      f32(1, 2, 0.5, 0, 0, 0),
    );
    const r = await post(LINEAR, body, headers);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.headers.get("content-type"), "application/octet-stream");
    assert.deepEqual(r.json.outputs, [
      { name: "y", datatype: "FP32", shape: [2, 1], parameters: { binary_data_size: 8 } },
    ]);
    assert.deepEqual([...new Float32Array(Uint8Array.from(binaryOutputs(r).y!).buffer)], [7, 0.5]);
  });
  test("binary in, JSON out when no output asks for binary", async () => {
    const { body, headers } = binary(X({ binary_data_size: 12 }), f32(1, 2, 0.5));
    const r = await post(LINEAR, body, headers);
    assert.match(r.headers.get("content-type")!, /application\/json/);
    assert.equal(r.headers.get("inference-header-content-length"), null);
    assert.deepEqual(r.json.outputs![0]!.data, [7]);
  });
  test("JSON and binary inputs mixed; per-output binary_data overrides binary_data_output", async () => {
    const header = {
      inputs: [
        { name: "a", shape: [1, 2], datatype: "FP32", data: [1, 2] },
        { name: "b", shape: [1, 2], datatype: "FP32", parameters: { binary_data_size: 8 } },
      ],
      parameters: { binary_data_output: true },
      outputs: [{ name: "sum" }, { name: "diff", parameters: { binary_data: false } }],
    };
    const { body, headers } = binary(header, f32(10, 20));
    const r = await post("/v2/models/multi/infer", body, headers);
    assert.equal(r.status, 200, r.body.toString());
    assert.deepEqual([...new Float32Array(Uint8Array.from(binaryOutputs(r).sum!).buffer)], [11, 22]);
    assert.deepEqual(r.json.outputs![1], { name: "diff", datatype: "FP32", shape: [1, 2], data: [-9, -18] });
  });
  test("BYTES: JSON strings and length-prefixed binary, non-ASCII and empty elements", async () => {
    const json = await post(
      "/v2/models/string/infer",
      Buffer.from(
        JSON.stringify({ inputs: [{ name: "x", shape: [3], datatype: "BYTES", data: ["héllo", "", "🙂"] }] }),
      ),
    );
    assert.deepEqual(json.json.outputs![0]!.data, ["héllo", "", "🙂"]);
    const { body, headers } = binary(
      {
        inputs: [{ name: "x", shape: [3], datatype: "BYTES", parameters: { binary_data_size: 20 } }],
        parameters: { binary_data_output: true },
      },
      strings("héllo", "", "ab"),
    );
    const r = await post("/v2/models/string/infer", body, headers);
    assert.equal(r.status, 200, r.body.toString());
    assert.deepEqual(binaryOutputs(r).y, strings("héllo", "", "ab"));
  });
  test("INT64 and UINT64: every value exact, in JSON and in binary", async () => {
    const text =
      '{"inputs":[{"name":"x","shape":[3],"datatype":"INT64","data":[9223372036854775806,-9223372036854775808,9007199254740993]}]}';
    const r = await post("/v2/models/int64/infer", Buffer.from(text));
    assert.equal(r.status, 200, r.body.toString());
    assert.match(r.body.toString(), /"data":\[9223372036854775807,-9223372036854775807,9007199254740994\]/);
    const u = new BigUint64Array([2n ** 64n - 1n, 2n ** 53n + 1n]);
    const { body, headers } = binary(
      {
        inputs: [{ name: "x", shape: [2], datatype: "UINT64", parameters: { binary_data_size: 16 } }],
        parameters: { binary_data_output: true },
      },
      bytesOf(u),
    );
    const b = await post("/v2/models/uint64/infer", body, headers);
    assert.deepEqual([...new BigUint64Array(Uint8Array.from(binaryOutputs(b).y!).buffer)], [...u]);
    const ju = await post(
      "/v2/models/uint64/infer",
      Buffer.from('{"inputs":[{"name":"x","shape":[1],"datatype":"UINT64","data":[18446744073709551615]}]}'),
    );
    assert.match(ju.body.toString(), /"data":\[18446744073709551615\]/);
  });
  test("64-bit range checks: beyond INT64, negative UINT64, a double literal too large to be exact", async () => {
    const cases: Array<[string, string, RegExp]> = [
      [
        "int64",
        "9223372036854775808",
        /\("x"\)\.data\[0\]: out of range for int64 \[-9223372036854775808, 9223372036854775807\]/,
      ],
      ["uint64", "-1", /\("x"\)\.data\[0\]: out of range for uint64/],
      ["uint64", "18446744073709551616", /\("x"\)\.data\[0\]: out of range for uint64/],
      [
        "int64",
        "1e19",
        /\("x"\)\.data\[0\]: integer outside the exactly representable range ±2\^53 \(write it as an integer literal/,
      ],
    ];
    for (const [model, literal, error] of cases) {
      const dt = model.toUpperCase();
      const r = await post(
        `/v2/models/${model}/infer`,
        Buffer.from(`{"inputs":[{"name":"x","shape":[1],"datatype":"${dt}","data":[${literal}]}]}`),
      );
      assert.equal(r.status, 400, literal);
      assert.match(r.json.error!, error);
    }
  });
  test("FP16 in binary and in JSON; out as JSON numbers or binary halves", async () => {
    const { body, headers } = binary(
      { inputs: [{ name: "x", shape: [1, 2], datatype: "FP16", parameters: { binary_data_size: 4 } }] },
      bytesOf(new Uint16Array([0x3e00, 0xc080])),
    );
    const r = await post("/v2/models/fp16/infer", body, headers);
    assert.equal(r.status, 200, r.body.toString());
    assert.deepEqual(r.json.outputs![0]!.data, [3, -4.5]);
    const j = await post(
      "/v2/models/fp16/infer",
      Buffer.from(
        '{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP16","data":[0.5,-1]}],"parameters":{"binary_data_output":true}}',
      ),
    );
    assert.deepEqual([...new Uint16Array(Uint8Array.from(binaryOutputs(j).y!).buffer)], [0x3c00, 0xc000]);
    const over = await post(
      "/v2/models/fp16/infer",
      Buffer.from('{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP16","data":[70000,1]}]}'),
    );
    assert.equal(over.status, 400);
    assert.match(over.json.error!, /\("x"\)\.data\[0\]: out of range for FP16/);
  });
  test("a raw binary request (Inference-Header-Content-Length: 0): one input, shape from the bytes, outputs in binary", async () => {
    const r = await post("/v2/models/symbolic/infer", f32(1, 2, 3, 4), { "Inference-Header-Content-Length": "0" });
    assert.equal(r.status, 200, r.body.toString());
    assert.deepEqual(r.json.outputs, [
      { name: "total", datatype: "FP32", shape: [1, 1], parameters: { binary_data_size: 4 } },
    ]);
    assert.deepEqual([...new Float32Array(Uint8Array.from(binaryOutputs(r).total!).buffer)], [10]);
    const text = await post("/v2/models/string/infer", strings("one element"), {
      "Inference-Header-Content-Length": "0",
    });
    assert.deepEqual(text.json.outputs, [
      { name: "y", datatype: "BYTES", shape: [1], parameters: { binary_data_size: 15 } },
    ]);
    assert.deepEqual(binaryOutputs(text).y, strings("one element"));
    const multi = await post("/v2/models/multi/infer", f32(1, 2), { "Inference-Header-Content-Length": "0" });
    assert.equal(multi.status, 400);
    assert.match(multi.json.error!, /raw binary request.*exactly one input/);
  });
});

describe("with the Redis response cache", () => {
  let cached: RunningServer;
  let repo: Awaited<ReturnType<typeof fixtureRepo>>;
  const prefix = `test-v2-binary-${process.pid}-${Date.now()}:`;
  before(async () => {
    repo = await fixtureRepo(["linear", "int64"]);
    cached = await testServer(repo.dir, { REDIS_URL: REDIS_URL, REDIS_KEY_PREFIX: prefix, CACHE_TTL_SECONDS: "60" });
  });
  after(async () => {
    await cached?.close();
    await repo?.cleanup();
    await deleteRedisPrefix(prefix);
  });
  const send = async (path: string, body: Buffer, headers: Record<string, string> = {}) => {
    const res = await fetch(cached.url + path, { method: "POST", body, headers });
    const bytes = Buffer.from(await res.arrayBuffer());
    const length = res.headers.get("inference-header-content-length");
    return {
      status: res.status,
      headers: res.headers,
      body: bytes,
      json: JSON.parse(bytes.subarray(0, length === null ? bytes.length : Number(length)).toString()),
    } as Reply;
  };
  test("one cache entry answers binary and JSON requests alike", async () => {
    const { body, headers } = binary(
      { ...X({ binary_data_size: 12 }), parameters: { binary_data_output: true } },
      f32(3, 1, 1),
    );
    const first = await send(LINEAR, body, headers);
    assert.equal(first.headers.get("x-cache"), "miss");
    assert.deepEqual([...new Float32Array(Uint8Array.from(binaryOutputs(first).y!).buffer)], [8.5]);
    const second = await send(
      LINEAR,
      Buffer.from(JSON.stringify({ inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", data: [3, 1, 1] }] })),
    );
    assert.equal(second.headers.get("x-cache"), "hit");
    assert.deepEqual(second.json.outputs![0]!.data, [8.5]);
  });
  test("INT64 beyond 2^53 stays exact through a cache hit, in JSON and in binary", async () => {
    const text = '{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[9007199254740994]}]}';
    const miss = await send("/v2/models/int64/infer", Buffer.from(text));
    const hit = await send("/v2/models/int64/infer", Buffer.from(text));
    assert.deepEqual([miss.headers.get("x-cache"), hit.headers.get("x-cache")], ["miss", "hit"]);
    for (const r of [miss, hit]) assert.match(r.body.toString(), /"data":\[9007199254740995\]/);
    const asBinary = await send(
      "/v2/models/int64/infer",
      Buffer.from(`${text.slice(0, -1)},"parameters":{"binary_data_output":true}}`),
    );
    assert.equal(asBinary.headers.get("x-cache"), "hit");
    assert.deepEqual([...new BigInt64Array(Uint8Array.from(binaryOutputs(asBinary).y!).buffer)], [9007199254740995n]);
  });
});

describe("Content-Encoding", () => {
  const json = Buffer.from(
    JSON.stringify({ inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", data: [1, 2, 0.5] }] }),
  );
  test("gzip, deflate (zlib) and raw deflate bodies, V2 and V1", async () => {
    for (const [coding, bytes] of [
      ["gzip", gzipSync(json)],
      ["deflate", deflateSync(json)],
      ["deflate", deflateRawSync(json)],
    ] as const) {
      const r = await post(LINEAR, bytes, { "content-encoding": coding });
      assert.equal(r.status, 200, `${coding}: ${r.body.toString()}`);
    }
    const v1 = await post("/v1/models/linear:predict", gzipSync(Buffer.from('{"instances":[[1,2,0.5]]}')), {
      "content-encoding": "gzip",
      "content-type": "application/json",
    });
    assert.deepEqual(v1.json.predictions, [7]);
  });
  test("binary tensor data inside gzip: the header length counts decoded bytes", async () => {
    const { body, headers } = binary(X({ binary_data_size: 12 }), f32(1, 2, 0.5));
    const r = await post(LINEAR, gzipSync(body), { ...headers, "content-encoding": "gzip" });
    assert.deepEqual(r.json.outputs![0]!.data, [7]);
  });
  test("a small bomb stops at the body limit: 413", async () => {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20)); // ~50 KB expanding to 50 MB
    assert.ok(bomb.length < LIMIT);
    const r = await post(LINEAR, bomb, { "content-encoding": "gzip" });
    assert.equal(r.status, 413);
    assert.equal(r.json.error, `body: decompresses to more than ${LIMIT} bytes (the limit)`);
  });
  test("other codings 415; corrupt data 400", async () => {
    const br = await post(LINEAR, json, { "content-encoding": "br" });
    assert.equal(br.status, 415);
    assert.equal(br.json.error, "content-encoding: expected gzip, deflate or identity, got br");
    const bad = await post(LINEAR, Buffer.from("not gzip at all"), { "content-encoding": "gzip" });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error!, /^body: gzip content could not be decompressed/);
  });
});

/** Each malformed binary request: 400 (413 for size) with the field named. */
interface Malformed {
  name: string;
  path?: string;
  body: Buffer;
  headers: Record<string, string>;
  status?: number;
  error: string | RegExp;
}

const header = (h: unknown) => Buffer.from(JSON.stringify(h));
const withLength = (json: Buffer, tail: Buffer, length: string) => ({
  body: Buffer.concat([json, tail]),
  headers: { "Inference-Header-Content-Length": length },
});
const okJson = header(X({ binary_data_size: 12 }));
const S = (params: Record<string, unknown>, shape = [2]) => ({
  inputs: [{ name: "x", shape, datatype: "BYTES", parameters: params }],
});
const MULTI = (a: number, b: number) => ({
  inputs: [
    { name: "a", shape: [1, 2], datatype: "FP32", parameters: { binary_data_size: a } },
    { name: "b", shape: [1, 2], datatype: "FP32", parameters: { binary_data_size: b } },
  ],
});

const malformed: Malformed[] = [
  {
    name: "header length one too long",
    ...withLength(okJson, f32(1, 2, 0.5), String(okJson.length + 1)),
    error:
      /^body: malformed JSON: .*\(the first \d+ bytes, per Inference-Header-Content-Length, must be the whole JSON object\)/,
  },
  {
    name: "header length one too short",
    ...withLength(okJson, f32(1, 2, 0.5), String(okJson.length - 1)),
    error: /^body: malformed JSON: .*Inference-Header-Content-Length/,
  },
  {
    name: "header length beyond the body",
    ...withLength(okJson, f32(1, 2, 0.5), "100000"),
    error: `Inference-Header-Content-Length: 100000 exceeds the body's ${okJson.length + 12} bytes`,
  },
  {
    name: "header length negative",
    ...withLength(okJson, f32(1, 2, 0.5), "-5"),
    error: 'Inference-Header-Content-Length: "-5" is not a non-negative integer',
  },
  {
    name: "header length not a number",
    ...withLength(okJson, f32(1, 2, 0.5), "12abc"),
    error: 'Inference-Header-Content-Length: "12abc" is not a non-negative integer',
  },
  {
    name: "header length huge",
    ...withLength(okJson, f32(1, 2, 0.5), "99999999999999999999"),
    error: 'Inference-Header-Content-Length: "99999999999999999999" is not a non-negative integer',
  },
  {
    name: "binary data sent without the header",
    body: Buffer.concat([okJson, f32(1, 2, 0.5)]),
    headers: {},
    error: `inputs[0] ("x").parameters.binary_data_size: binary tensor data needs the Inference-Header-Content-Length header (here ${okJson.length}, the JSON's length in bytes)`,
  },
  {
    name: "binary_data_size without any binary part",
    body: okJson,
    headers: {},
    error:
      'inputs[0] ("x").parameters.binary_data_size: binary tensor data needs the Inference-Header-Content-Length header (the JSON\'s length in bytes)',
  },
  {
    name: "binary_data_size one too large (truncated body)",
    ...binary(X({ binary_data_size: 13 }), f32(1, 2, 0.5)),
    error: 'inputs[0] ("x").parameters.binary_data_size: 13 bytes, but only 12 remain after the JSON header',
  },
  {
    name: "binary_data_size one too small",
    ...binary(X({ binary_data_size: 11 }), f32(1, 2, 0.5)),
    error:
      'inputs[0] ("x").parameters.binary_data_size: 11 bytes do not match the shape: 3 elements of FP32 take 12 bytes',
  },
  {
    name: "binary_data_size negative",
    ...binary(X({ binary_data_size: -12 }), f32(1, 2, 0.5)),
    error: 'inputs[0] ("x").parameters.binary_data_size: expected a non-negative integer byte count, got -12',
  },
  {
    name: "binary_data_size fractional",
    ...binary(X({ binary_data_size: 11.5 }), f32(1, 2, 0.5)),
    error: 'inputs[0] ("x").parameters.binary_data_size: expected a non-negative integer byte count, got 11.5',
  },
  {
    name: "binary_data_size a string",
    ...binary(X({ binary_data_size: "12" }), f32(1, 2, 0.5)),
    error: 'inputs[0] ("x").parameters.binary_data_size: expected a non-negative integer byte count, got "12"',
  },
  {
    name: "binary_data_size huge (no allocation)",
    ...binary(X({ binary_data_size: 1e18 }), f32(1, 2, 0.5)),
    error:
      'inputs[0] ("x").parameters.binary_data_size: 1000000000000000000 bytes, but only 12 remain after the JSON header',
  },
  {
    name: "size does not match shape × type",
    ...binary(X({ binary_data_size: 12 }, [2, 3]), f32(1, 2, 0.5)),
    error:
      'inputs[0] ("x").parameters.binary_data_size: 12 bytes do not match the shape: 6 elements of FP32 take 24 bytes',
  },
  {
    name: "bytes left after the last binary input",
    ...binary(X({ binary_data_size: 12 }), f32(1, 2, 0.5, 9)),
    error:
      'inputs[0] ("x").parameters.binary_data_size: the binary inputs\' sizes add up to 12 bytes, but 16 follow the JSON header (4 too many)',
  },
  {
    name: "bytes after a JSON-only request",
    ...binary({ inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", data: [1, 2, 0.5] }] }, f32(1)),
    error:
      "Inference-Header-Content-Length: 4 bytes follow the JSON header, but no input declares parameters.binary_data_size",
  },
  {
    name: "data and binary_data_size both",
    ...binary(
      {
        inputs: [
          { name: "x", shape: [1, 3], datatype: "FP32", data: [1, 2, 0.5], parameters: { binary_data_size: 12 } },
        ],
      },
      f32(1, 2, 0.5),
    ),
    error: 'inputs[0] ("x"): has both data and parameters.binary_data_size; send one',
  },
  {
    name: "second input runs past the end",
    path: "/v2/models/multi/infer",
    ...binary(MULTI(8, 8), f32(1, 2, 3)),
    error:
      'inputs[1] ("b").parameters.binary_data_size: 8 bytes, but only 4 remain after the JSON header and the binary inputs before it',
  },
  {
    name: "sizes swapped between inputs",
    path: "/v2/models/multi/infer",
    ...binary(MULTI(4, 12), f32(1, 2, 3, 4)),
    error:
      'inputs[0] ("a").parameters.binary_data_size: 4 bytes do not match the shape: 2 elements of FP32 take 8 bytes',
  },
  {
    name: "wrong datatype for the binary tensor",
    ...binary(
      { inputs: [{ name: "x", shape: [1, 3], datatype: "FP64", parameters: { binary_data_size: 24 } }] },
      Buffer.alloc(24),
    ),
    error: 'inputs[0] ("x").datatype: expected FP32, got FP64',
  },
  {
    name: "BYTES element length past the end",
    path: "/v2/models/string/infer",
    ...binary(S({ binary_data_size: 9 }), Buffer.concat([strings("a"), Buffer.from([100, 0, 0, 0])])),
    error: 'inputs[0] ("x").parameters.binary_data_size: element 1 declares 100 bytes but only 0 remain',
  },
  {
    name: "BYTES shape far larger than the bytes",
    path: "/v2/models/string/infer",
    ...binary(S({ binary_data_size: 5 }, [2 ** 33]), strings("a")),
    error:
      'inputs[0] ("x").parameters.binary_data_size: 5 bytes cannot hold the 8589934592 elements of the shape (each BYTES element is a 4-byte length and its bytes)',
  },
  {
    name: "BYTES fewer elements than the shape",
    path: "/v2/models/string/infer",
    ...binary(S({ binary_data_size: 8 }), strings("abcd")),
    error:
      'inputs[0] ("x").parameters.binary_data_size: binary data ends at element 1 of 2 (each BYTES element is a 4-byte length and its bytes)',
  },
  {
    name: "BYTES more elements than the shape",
    path: "/v2/models/string/infer",
    ...binary(S({ binary_data_size: 15 }), strings("a", "b", "c")),
    error: 'inputs[0] ("x").parameters.binary_data_size: 5 bytes left after the 2 elements the shape holds',
  },
  {
    name: "BYTES length prefix cut short",
    path: "/v2/models/string/infer",
    ...binary(S({ binary_data_size: 9 }), Buffer.concat([strings("abc"), Buffer.from([1, 0])])),
    error:
      'inputs[0] ("x").parameters.binary_data_size: binary data ends at element 1 of 2 (each BYTES element is a 4-byte length and its bytes)',
  },
  {
    name: "BYTES not UTF-8",
    path: "/v2/models/string/infer",
    ...binary(S({ binary_data_size: 10 }), Buffer.concat([strings("a"), Buffer.from([1, 0, 0, 0, 0xff])])),
    error:
      'inputs[0] ("x").parameters.binary_data_size: element 1 is not valid UTF-8 (ONNX Runtime string tensors hold text)',
  },
  {
    name: "BOOL byte other than 0 or 1",
    path: "/v2/models/bool/infer",
    ...binary(
      { inputs: [{ name: "x", shape: [1, 2], datatype: "BOOL", parameters: { binary_data_size: 2 } }] },
      Buffer.from([1, 2]),
    ),
    error: 'inputs[0] ("x").parameters.binary_data_size: element 1 is byte 2; BOOL takes 0 or 1',
  },
  {
    name: "binary_data_output not a boolean",
    ...binary({ ...X({ binary_data_size: 12 }), parameters: { binary_data_output: "yes" } }, f32(1, 2, 0.5)),
    error: 'parameters.binary_data_output: expected a boolean, got "yes"',
  },
  {
    name: "binary_data not a boolean",
    ...binary(
      { ...X({ binary_data_size: 12 }), outputs: [{ name: "y", parameters: { binary_data: 1 } }] },
      f32(1, 2, 0.5),
    ),
    error: 'outputs[0] ("y").parameters.binary_data: expected a boolean, got 1',
  },
  {
    name: "shared memory",
    ...binary(X({ shared_memory_region: "r0", shared_memory_byte_size: 12 }), Buffer.alloc(0)),
    error:
      'inputs[0] ("x").parameters.shared_memory_region: shared memory is not supported by this server; send data or binary data',
  },
  {
    name: "raw binary of a size the shape cannot take",
    path: "/v2/models/fixed/infer",
    body: f32(1, 2, 3),
    headers: { "Inference-Header-Content-Length": "0" },
    error:
      "body (raw binary request, Inference-Header-Content-Length: 0): 12 bytes do not make a whole FP32 tensor of shape [1,4]",
  },
  {
    name: "whole body over the limit",
    ...binary(X({ binary_data_size: LIMIT }, [LIMIT / 12, 3]), Buffer.alloc(LIMIT)),
    status: 413,
    error: /^body: /,
  },
];

describe("malformed binary requests: 4xx naming the tensor, never 5xx", () => {
  for (const c of malformed) {
    test(c.name, async () => {
      const r = await post(c.path ?? LINEAR, c.body, c.headers);
      assert.equal(r.status, c.status ?? 400, r.body.toString());
      if (typeof c.error === "string") assert.equal(r.json.error, c.error);
      else assert.match(r.json.error!, c.error);
    });
  }
  test("300 random corruptions of valid binary requests: never a 5xx, always a JSON error or a result", async () => {
    let seed = 20261202;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const valid = [
      {
        path: LINEAR,
        ...binary({ ...X({ binary_data_size: 12 }), parameters: { binary_data_output: true } }, f32(1, 2, 0.5)),
      },
      { path: "/v2/models/multi/infer", ...binary(MULTI(8, 8), f32(1, 2, 3, 4)) },
      { path: "/v2/models/string/infer", ...binary(S({ binary_data_size: 10 }), strings("a", "b")) },
    ];
    for (let i = 0; i < 300; i++) {
      const base = valid[rand(valid.length)]!;
      const body = Buffer.from(base.body);
      let length = Number(base.headers["Inference-Header-Content-Length"]);
      const cut = rand(body.length + 1);
      let sent: Buffer = body;
      switch (rand(4)) {
        case 0: // flip a byte (JSON or tensor data)
          body[rand(body.length)] = rand(256);
          break;
        case 1: // truncate the body
          sent = body.subarray(0, cut);
          break;
        case 2: // shift the header length
          length += rand(9) - 4;
          break;
        default: // drop a slice out of the middle
          sent = Buffer.concat([body.subarray(0, cut), body.subarray(Math.min(body.length, cut + 1 + rand(8)))]);
      }
      const r = await fetch(server.url + base.path, {
        method: "POST",
        body: sent,
        headers: { "Inference-Header-Content-Length": String(length) },
      });
      const text = Buffer.from(await r.arrayBuffer());
      assert.ok(r.status < 500, `#${i} ${r.status} ${text.toString()}`);
      if (r.status >= 400)
        assert.equal(typeof (JSON.parse(text.toString()) as { error: unknown }).error, "string", `#${i}`);
    }
  });
  test("the server still answers after all of them", async () => {
    const { body, headers } = binary(X({ binary_data_size: 12 }), f32(1, 2, 0.5));
    assert.equal((await post(LINEAR, body, headers)).status, 200);
  });
});
