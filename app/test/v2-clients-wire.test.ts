/**
 * The exact bytes the Triton and KServe Python clients put on the wire for infer(), rebuilt from
 * their source, sent over a raw socket, and our responses decoded the way those clients decode them.
 *
 * tritonclient.http (triton-inference-server/client, src/python/library/tritonclient/http):
 * - _utils._get_inference_request: {"id"?, "inputs", "outputs"? , "parameters"?} in that order;
 *   no requested outputs => parameters.binary_data_output = true; serialized with rapidjson.dumps
 *   (compact, ASCII); the binary data of each input follows in input order; the header length is
 *   len() of the JSON text.
 * - _infer_input.InferInput._get_tensor: {"name", "shape", "datatype", "parameters"?, "data"?};
 *   set_data_from_numpy(binary_data=True) (the default) puts parameters.binary_data_size and no data;
 *   BYTES elements are a 4-byte little-endian length and the bytes (utils.serialize_byte_tensor).
 * - _client.infer: headers Inference-Header-Content-Length (only when binary data follows) and
 *   Content-Encoding for request_compression_algorithm; no Content-Type at all. geventhttpclient
 *   adds user-agent, host and content-length (order as captured from geventhttpclient 2.0.8).
 * - _infer_result.InferResult: reads Inference-Header-Content-Length from the response, parses that
 *   many bytes as JSON, then hands each output with parameters.binary_data_size the next bytes of
 *   the rest, in output order; as_numpy() is np.frombuffer (little-endian) or deserialize_bytes_tensor.
 *
 * kserve (kserve/kserve, python/kserve/kserve):
 * - protocol/infer_type.InferRequest.to_rest: {"id" (a uuid4 when none), "model_name", "inputs",
 *   "outputs"?, "parameters"?}; each input {"name", "shape", "datatype", "parameters"?, "data"?};
 *   serialized with orjson.dumps (compact, UTF-8); raw inputs appended in order, json_length =
 *   len(the JSON bytes).
 * - inference_client.InferenceRESTClient.infer: binary => inference-header-content-length and
 *   content-type application/octet-stream; JSON => content-type application/json. httpx adds
 *   Host, Accept, Accept-Encoding, Connection, User-Agent and Content-Length.
 * - InferResponse.from_bytes: json_length = the response's inference-header-content-length or the
 *   whole body; reads "model_name" (required), then slices outputs by binary_data_size.
 *
 * Each reconstruction is pinned to the bytes the real clients sent (captured from tritonclient at
 * triton-inference-server/client 58a44ca and kserve at aaac4e2, against a socket that recorded them).
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { deflateSync, gzipSync } from "node:zlib";
import type { RunningServer } from "../src/server.ts";
import { FIXTURES, testServer } from "./helpers.ts";

let server: RunningServer;
let host: string;

before(async () => {
  server = await testServer(FIXTURES);
  host = new URL(server.url).host;
});
after(async () => {
  await server.close();
});

// ------------------------------------------------------------------ what the clients send

type Dtype = "FP32" | "FP16" | "FP64" | "INT64" | "UINT64" | "BYTES" | "BOOL" | "INT32";

interface ClientInput {
  name: string;
  shape: number[];
  datatype: Dtype;
  /** The numpy array's bytes (tobytes()/serialize_byte_tensor) when sent as binary... */
  raw?: Buffer;
  /** ...or the JSON text of the flattened values when sent with binary_data=False. */
  dataJson?: string;
}

/** utils.serialize_byte_tensor: a 4-byte little-endian length before each element. */
function serializeByteTensor(elements: Buffer[]): Buffer {
  return Buffer.concat(elements.flatMap((e) => [u32(e.length), e]));
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const bytesOf = (a: { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** InferInput._get_tensor, as rapidjson.dumps writes it (compact; keys in insertion order). */
function tritonTensor(i: ClientInput): string {
  let s = `{"name":${JSON.stringify(i.name)},"shape":[${i.shape.join(",")}],"datatype":"${i.datatype}"`;
  if (i.raw) s += `,"parameters":{"binary_data_size":${i.raw.length}}`;
  else s += `,"data":${i.dataJson}`;
  return `${s}}`;
}

interface TritonCall {
  model: string;
  inputs: ClientInput[];
  requestId?: string;
  /** InferRequestedOutput(name, binary_data) list; absent => binary_data_output: true. */
  outputs?: { name: string; binary: boolean }[];
  compression?: "gzip" | "deflate";
}

/** _get_inference_request + _client.infer + geventhttpclient: the request's bytes. */
function tritonRequest(call: TritonCall): { bytes: Buffer; jsonSize: number | null } {
  let json = "{";
  const members: string[] = [];
  if (call.requestId) members.push(`"id":${JSON.stringify(call.requestId)}`);
  members.push(`"inputs":[${call.inputs.map(tritonTensor).join(",")}]`);
  // InferRequestedOutput._get_tensor: {"name", "parameters": {"binary_data": bool}}
  if (call.outputs?.length)
    members.push(
      `"outputs":[${call.outputs.map((o) => `{"name":${JSON.stringify(o.name)},"parameters":{"binary_data":${o.binary}}}`).join(",")}]`,
    );
  else members.push(`"parameters":{"binary_data_output":true}`);
  json += `${members.join(",")}}`;
  const raws = call.inputs.filter((i) => i.raw).map((i) => i.raw!);
  let body = Buffer.concat([Buffer.from(json), ...raws]);
  const jsonSize = raws.length ? json.length : null;
  const headers: [string, string][] = [["user-agent", "python/gevent-http-client-2.0.8"]];
  if (call.compression) {
    headers.push(["content-encoding", call.compression]);
    body = call.compression === "gzip" ? gzipSync(body) : deflateSync(body); // gzip.compress / zlib.compress
  }
  if (jsonSize !== null) headers.push(["inference-header-content-length", String(jsonSize)]);
  headers.push(["host", host], ["content-length", String(body.length)]);
  return { bytes: httpRequest(`/v2/models/${call.model}/infer`, headers, body), jsonSize };
}

interface KServeCall {
  model: string;
  id: string;
  inputs: ClientInput[];
  parameters?: string;
  outputs?: { name: string; binary: boolean }[];
}

/** InferRequest.to_rest + InferenceRESTClient.infer + httpx 0.23: the request's bytes. */
function kserveRequest(call: KServeCall): Buffer {
  const tensors = call.inputs.map((i) => {
    let s = `{"name":${JSON.stringify(i.name)},"shape":[${i.shape.join(",")}],"datatype":"${i.datatype}"`;
    if (i.raw) s += `,"parameters":{"binary_data_size":${i.raw.length}}`;
    else s += `,"data":${i.dataJson}`;
    return `${s}}`;
  });
  let json = `{"id":${JSON.stringify(call.id)},"model_name":${JSON.stringify(call.model)},"inputs":[${tensors.join(",")}]`;
  if (call.outputs?.length)
    json += `,"outputs":[${call.outputs.map((o) => `{"name":${JSON.stringify(o.name)},"parameters":{"binary_data":${o.binary}}}`).join(",")}]`;
  if (call.parameters) json += `,"parameters":${call.parameters}`;
  json += "}";
  const jsonBytes = Buffer.from(json, "utf8");
  const raws = call.inputs.filter((i) => i.raw).map((i) => i.raw!);
  const body = Buffer.concat([jsonBytes, ...raws]);
  const headers: [string, string][] = [
    ["Host", host],
    ["Accept", "*/*"],
    ["Accept-Encoding", "gzip, deflate, br"],
    ["Connection", "keep-alive"],
    ["User-Agent", "python-httpx/0.23.3"],
  ];
  if (raws.length)
    headers.push(
      ["inference-header-content-length", String(jsonBytes.length)],
      ["content-type", "application/octet-stream"],
    );
  else headers.push(["content-type", "application/json"]);
  headers.push(["Content-Length", String(body.length)]);
  return httpRequest(`/v2/models/${call.model}/infer`, headers, body);
}

function httpRequest(path: string, headers: [string, string][], body: Buffer): Buffer {
  const head = `POST ${path} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), body]);
}

// ------------------------------------------------------------------ the wire

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Sends exactly `bytes` and reads one HTTP/1.1 response (Content-Length or chunked). */
function exchange(bytes: Buffer): Promise<RawResponse> {
  const { port, hostname } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(bytes));
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("no complete response within 10 s"));
    }, 10_000);
    socket.on("error", reject);
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const parsed = parseResponse(buf);
      if (parsed) {
        clearTimeout(timer);
        socket.destroy();
        resolve(parsed);
      }
    });
  });
}

function parseResponse(buf: Buffer): RawResponse | null {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(lines[0]!.split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  const rest = buf.subarray(end + 4);
  if (headers["content-length"] !== undefined) {
    const n = Number(headers["content-length"]);
    return rest.length >= n ? { status, headers, body: rest.subarray(0, n) } : null;
  }
  if (headers["transfer-encoding"] === "chunked") {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = rest.indexOf("\r\n", at);
      if (eol < 0) return null;
      const size = parseInt(rest.subarray(at, eol).toString("latin1"), 16);
      if (size === 0) return { status, headers, body: Buffer.concat(parts) };
      if (rest.length < eol + 2 + size + 2) return null;
      parts.push(rest.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
  }
  return null;
}

// ------------------------------------------------------------------ how the clients read the answer

interface DecodedOutput {
  name: string;
  datatype: string;
  shape: number[];
  json: Record<string, unknown>;
  /** The bytes the client hands to np.frombuffer / deserialize_bytes_tensor, when binary. */
  raw?: Buffer;
  data?: unknown[];
}

/** tritonclient.http.InferResult.__init__ (no Content-Encoding in these responses). */
function tritonResult(res: RawResponse): { result: Record<string, unknown>; outputs: DecodedOutput[] } {
  assert.equal(res.status, 200, res.body.toString());
  const headerLength = res.headers["inference-header-content-length"];
  if (headerLength === undefined) {
    const result = JSON.parse(res.body.toString("utf8")) as { outputs: DecodedOutput[] };
    return { result, outputs: result.outputs.map((o) => ({ ...o, json: o as unknown as Record<string, unknown> })) };
  }
  const length = Number(headerLength);
  const result = JSON.parse(res.body.subarray(0, length).toString("utf8")) as {
    outputs: Array<Record<string, unknown>>;
  };
  const buffer = res.body.subarray(length);
  let index = 0;
  const outputs = result.outputs.map((o) => {
    const size = (o.parameters as { binary_data_size?: number } | undefined)?.binary_data_size;
    const out: DecodedOutput = {
      name: o.name as string,
      datatype: o.datatype as string,
      shape: o.shape as number[],
      json: o,
    };
    if (size !== undefined) {
      out.raw = buffer.subarray(index, index + size);
      index += size;
    } else out.data = o.data as unknown[];
    return out;
  });
  return { result, outputs };
}

/** kserve InferResponse.from_bytes. */
function kserveResult(res: RawResponse): { modelName: string; id: unknown; outputs: DecodedOutput[] } {
  assert.equal(res.status, 200, res.body.toString());
  const jsonLength = Number(res.headers["inference-header-content-length"] ?? res.body.length);
  const dict = JSON.parse(res.body.subarray(0, jsonLength).toString("utf8")) as Record<string, unknown>;
  const modelName = dict.model_name as string; // infer_res_dict["model_name"]: a KeyError without it
  assert.equal(typeof modelName, "string");
  let start = jsonLength;
  const outputs = (dict.outputs as Array<Record<string, unknown>>).map((o) => {
    const out: DecodedOutput = {
      name: o.name as string,
      datatype: o.datatype as string,
      shape: o.shape as number[],
      json: o,
    };
    const size = (o.parameters as { binary_data_size?: number } | undefined)?.binary_data_size;
    if (size !== undefined) {
      out.raw = res.body.subarray(start, start + size);
      start += size;
    } else {
      assert.ok(o.data !== undefined, `'data' field is missing for output '${out.name}'`);
      out.data = o.data as unknown[];
    }
    return out;
  });
  return { modelName, id: dict.id, outputs };
}

/** deserialize_bytes_tensor. */
function deserializeBytes(raw: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < raw.length) {
    const n = raw.readUInt32LE(at);
    out.push(raw.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return out;
}

/** np.frombuffer(raw, dtype) for the little-endian types used here. */
function frombuffer(raw: Buffer, datatype: string): unknown[] {
  const copy = Buffer.from(raw); // aligned
  const ab = copy.buffer.slice(copy.byteOffset, copy.byteOffset + copy.byteLength);
  switch (datatype) {
    case "FP32":
      return [...new Float32Array(ab)];
    case "FP64":
      return [...new Float64Array(ab)];
    case "INT64":
      return [...new BigInt64Array(ab)];
    case "UINT64":
      return [...new BigUint64Array(ab)];
    case "INT32":
      return [...new Int32Array(ab)];
    case "BOOL":
      return [...new Uint8Array(ab)].map((b) => b === 1);
    case "FP16":
      return [...new Uint16Array(ab)];
    default:
      throw new Error(datatype);
  }
}

// ------------------------------------------------------------------ tests

const f32 = (...v: number[]) => bytesOf(new Float32Array(v));

describe("tritonclient.http, default settings", () => {
  test("FP32 in binary, every output back in binary: the exact bytes the client sends", async () => {
    const { bytes, jsonSize } = tritonRequest({
      model: "linear",
      inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", raw: f32(1, 2, 0.5) }],
    });
    // As captured from tritonclient + geventhttpclient 2.0.8 (the host line aside).
    const captured = Buffer.concat([
      Buffer.from(
        "POST /v2/models/linear/infer HTTP/1.1\r\nuser-agent: python/gevent-http-client-2.0.8\r\ninference-header-content-length: 135\r\n" +
          `host: ${host}\r\ncontent-length: 147\r\n\r\n` +
          '{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}],"parameters":{"binary_data_output":true}}',
      ),
      Buffer.from("0000803f000000400000003f", "hex"),
    ]);
    assert.deepEqual(bytes, captured);
    assert.equal(jsonSize, 135);
    assert.ok(!/content-type/i.test(bytes.toString("latin1")), "tritonclient sends no Content-Type");

    const res = await exchange(bytes);
    assert.equal(res.headers["content-type"], "application/octet-stream");
    const { result, outputs } = tritonResult(res);
    assert.equal(result.model_name, "linear");
    assert.equal(result.model_version, "1");
    assert.deepEqual(
      outputs.map((o) => o.json),
      [{ name: "y", datatype: "FP32", shape: [1, 1], parameters: { binary_data_size: 4 } }],
    );
    assert.deepEqual(frombuffer(outputs[0]!.raw!, "FP32"), [7]);
    // The body is the header plus the binary outputs, nothing else.
    assert.equal(res.body.length, Number(res.headers["inference-header-content-length"]) + 4);
  });

  test("BYTES in binary with a request id and a requested binary output", async () => {
    const raw = serializeByteTensor([Buffer.from("hello"), Buffer.from("wörld")]);
    const { bytes } = tritonRequest({
      model: "string",
      requestId: "r1",
      inputs: [{ name: "x", shape: [2], datatype: "BYTES", raw }],
      outputs: [{ name: "y", binary: true }],
    });
    const captured = Buffer.concat([
      Buffer.from(
        "POST /v2/models/string/infer HTTP/1.1\r\nuser-agent: python/gevent-http-client-2.0.8\r\ninference-header-content-length: 162\r\n" +
          `host: ${host}\r\ncontent-length: 181\r\n\r\n` +
          '{"id":"r1","inputs":[{"name":"x","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":19}}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}',
      ),
      Buffer.from("0500000068656c6c6f0600000077c3b6726c64", "hex"),
    ]);
    assert.deepEqual(bytes, captured);
    const { result, outputs } = tritonResult(await exchange(bytes));
    assert.equal(result.id, "r1");
    assert.deepEqual(
      deserializeBytes(outputs[0]!.raw!).map((b) => b.toString("utf8")),
      ["hello", "wörld"],
    );
  });

  test("several inputs in binary, outputs split between binary and JSON", async () => {
    const { bytes } = tritonRequest({
      model: "multi",
      inputs: [
        { name: "a", shape: [2, 2], datatype: "FP32", raw: f32(1, 2, 3, 4) },
        { name: "b", shape: [2, 2], datatype: "FP32", raw: f32(10, 20, 30, 40) },
      ],
      outputs: [
        { name: "diff", binary: true },
        { name: "sum", binary: false },
      ],
    });
    const { outputs } = tritonResult(await exchange(bytes));
    assert.deepEqual(frombuffer(outputs[0]!.raw!, "FP32"), [-9, -18, -27, -36]);
    assert.deepEqual(outputs[1]!.data, [11, 22, 33, 44]);
    assert.equal(outputs[1]!.raw, undefined);
  });

  test("INT64 and UINT64 over their full range, in binary and as JSON data", async () => {
    const int64 = new BigInt64Array([2n ** 62n + 1n, -(2n ** 63n), 2n ** 63n - 2n]);
    for (const binary of [true, false]) {
      const input: ClientInput = binary
        ? { name: "x", shape: [3], datatype: "INT64", raw: bytesOf(int64) }
        : { name: "x", shape: [3], datatype: "INT64", dataJson: `[${[...int64].join(",")}]` }; // rapidjson writes int64 exactly
      const { outputs } = tritonResult(await exchange(tritonRequest({ model: "int64", inputs: [input] }).bytes));
      assert.deepEqual(
        frombuffer(outputs[0]!.raw!, "INT64"),
        [...int64].map((v) => v + 1n),
        `binary=${binary}`,
      );
    }
    const uint64 = new BigUint64Array([2n ** 64n - 1n, 0n, 2n ** 63n]);
    const json = tritonRequest({
      model: "uint64",
      inputs: [{ name: "x", shape: [3], datatype: "UINT64", dataJson: `[${[...uint64].join(",")}]` }],
      outputs: [{ name: "y", binary: false }],
    });
    const res = await exchange(json.bytes);
    // JSON output: the exact digits, as a client's int64-aware parser (rapidjson) reads them.
    assert.match(res.body.toString(), /"data":\[18446744073709551615,0,9223372036854775808\]/);
  });

  test("FP16, BOOL and FP64 in binary", async () => {
    const half = new Uint16Array([0x3e00, 0xc080]); // 1.5, -2.25
    const fp16 = tritonResult(
      await exchange(
        tritonRequest({ model: "fp16", inputs: [{ name: "x", shape: [1, 2], datatype: "FP16", raw: bytesOf(half) }] })
          .bytes,
      ),
    );
    assert.deepEqual(frombuffer(fp16.outputs[0]!.raw!, "FP16"), [0x4200, 0xc480]); // 3, -4.5
    const bool = tritonResult(
      await exchange(
        tritonRequest({
          model: "bool",
          inputs: [{ name: "x", shape: [1, 2], datatype: "BOOL", raw: Buffer.from([1, 0]) }],
        }).bytes,
      ),
    );
    assert.deepEqual(frombuffer(bool.outputs[0]!.raw!, "BOOL"), [false, true]);
    const fp64 = tritonResult(
      await exchange(
        tritonRequest({
          model: "fp64",
          inputs: [{ name: "x", shape: [1, 2], datatype: "FP64", raw: bytesOf(new Float64Array([1.25, -3])) }],
        }).bytes,
      ),
    );
    assert.deepEqual(frombuffer(fp64.outputs[0]!.raw!, "FP64"), [2.5, -6]);
  });

  test("request_compression_algorithm deflate: the bytes the client sent (Python's zlib, level 6)", async () => {
    const body = Buffer.from(
      "789cab56cacc2b282d2956b28aae56ca4bcc4d55b252aa50d2512ace482c00b2a30d758c63759452124b124b2a41024a6e01c64640f982c422a0e292d422a0ce6aa5a4ccbcc4a2ca7890b2f8e2cc2aa03a43a3dada587ccaf24b4b80f62a59951495a6d6d6323034d83330303800b13d001564301c",
      "hex",
    );
    const head =
      "POST /v2/models/linear/infer HTTP/1.1\r\nuser-agent: python/gevent-http-client-2.0.8\r\ncontent-encoding: deflate\r\n" +
      `inference-header-content-length: 135\r\nhost: ${host}\r\ncontent-length: ${body.length}\r\n\r\n`;
    const { outputs } = tritonResult(await exchange(Buffer.concat([Buffer.from(head), body])));
    assert.deepEqual(frombuffer(outputs[0]!.raw!, "FP32"), [7]);
  });

  test("request_compression_algorithm gzip and deflate", async () => {
    for (const compression of ["gzip", "deflate"] as const) {
      const { bytes } = tritonRequest({
        model: "linear",
        inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", raw: f32(1, 2, 0.5) }],
        compression,
      });
      const { outputs } = tritonResult(await exchange(bytes));
      assert.deepEqual(frombuffer(outputs[0]!.raw!, "FP32"), [7], compression);
    }
  });

  test("an error reaches the client as its InferenceServerException message", async () => {
    const { bytes } = tritonRequest({
      model: "linear",
      inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", raw: f32(1, 2) }],
    });
    // The client itself would refuse this; a hand-rolled caller can send it.
    const res = await exchange(bytes);
    assert.equal(res.status, 400);
    const error = (JSON.parse(res.body.toString()) as { error: string }).error; // _get_error reads ["error"]
    assert.equal(
      error,
      'inputs[0] ("x").parameters.binary_data_size: 8 bytes do not match the shape: 3 elements of FP32 take 12 bytes',
    );
  });
});

describe("kserve InferenceRESTClient (protocol v2), default settings", () => {
  test("FP32 in binary (set_data_from_numpy default): the exact bytes the client sends; JSON answer", async () => {
    const bytes = kserveRequest({
      model: "linear",
      id: "k-1",
      inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", raw: f32(1, 2, 0.5) }],
    });
    const captured = Buffer.concat([
      Buffer.from(
        `POST /v2/models/linear/infer HTTP/1.1\r\nHost: ${host}\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n` +
          "User-Agent: python-httpx/0.23.3\r\ninference-header-content-length: 127\r\ncontent-type: application/octet-stream\r\nContent-Length: 139\r\n\r\n" +
          '{"id":"k-1","model_name":"linear","inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}]}',
      ),
      Buffer.from("0000803f000000400000003f", "hex"),
    ]);
    assert.deepEqual(bytes, captured);
    const res = await exchange(bytes);
    // No binary output was asked for: a JSON response, which from_bytes reads whole.
    assert.match(res.headers["content-type"] ?? "", /^application\/json/);
    assert.equal(res.headers["inference-header-content-length"], undefined);
    const decoded = kserveResult(res);
    assert.equal(decoded.modelName, "linear");
    assert.equal(decoded.id, "k-1");
    assert.deepEqual(decoded.outputs[0]!.data, [7]);
  });

  test("JSON data with model_name, id and parameters.binary_data_output: the exact bytes; binary answer", async () => {
    const bytes = kserveRequest({
      model: "linear",
      id: "k-2",
      inputs: [{ name: "x", shape: [1, 3], datatype: "FP32", dataJson: "[1.0,2.0,0.5]" }],
      parameters: '{"binary_data_output":true}',
    });
    const captured = Buffer.from(
      `POST /v2/models/linear/infer HTTP/1.1\r\nHost: ${host}\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n` +
        "User-Agent: python-httpx/0.23.3\r\ncontent-type: application/json\r\nContent-Length: 152\r\n\r\n" +
        '{"id":"k-2","model_name":"linear","inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1.0,2.0,0.5]}],"parameters":{"binary_data_output":true}}',
    );
    assert.deepEqual(bytes, captured);
    const res = await exchange(bytes);
    assert.equal(res.headers["content-type"], "application/octet-stream");
    const decoded = kserveResult(res);
    assert.equal(decoded.id, "k-2");
    assert.deepEqual(frombuffer(decoded.outputs[0]!.raw!, "FP32"), [7]);
  });

  test("BYTES and FP16 in binary, per-output binary_data", async () => {
    const strings = kserveResult(
      await exchange(
        kserveRequest({
          model: "string",
          id: "k-3",
          inputs: [
            {
              name: "x",
              shape: [2],
              datatype: "BYTES",
              raw: serializeByteTensor([Buffer.from("a"), Buffer.from("ö")]),
            },
          ],
          outputs: [{ name: "y", binary: true }],
        }),
      ),
    );
    assert.deepEqual(
      deserializeBytes(strings.outputs[0]!.raw!).map((b) => b.toString()),
      ["a", "ö"],
    );
    const half = kserveResult(
      await exchange(
        kserveRequest({
          model: "fp16",
          id: "k-4",
          inputs: [{ name: "x", shape: [1, 2], datatype: "FP16", raw: bytesOf(new Uint16Array([0x3800, 0x4200])) }],
          parameters: '{"binary_data_output":true}',
        }),
      ),
    );
    assert.deepEqual(frombuffer(half.outputs[0]!.raw!, "FP16"), [0x3c00, 0x4600]); // 0.5, 3 -> 1, 6
  });

  test("BYTES as JSON strings and UINT64 beyond 2^53 as JSON numbers", async () => {
    const strings = kserveResult(
      await exchange(
        kserveRequest({
          model: "string",
          id: "k-5",
          inputs: [{ name: "x", shape: [1], datatype: "BYTES", dataJson: '["plain"]' }],
        }),
      ),
    );
    assert.deepEqual(strings.outputs[0]!.data, ["plain"]);
    const res = await exchange(
      kserveRequest({
        model: "uint64",
        id: "k-6",
        inputs: [{ name: "x", shape: [1], datatype: "UINT64", dataJson: "[18446744073709551615]" }],
      }),
    );
    assert.match(res.body.toString(), /"data":\[18446744073709551615\]/);
  });
});
