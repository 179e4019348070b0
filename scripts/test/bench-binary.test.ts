/**
 * The binary-vs-JSON bench sends what the real clients send: its binary request is checked byte
 * for byte against Python's own json.dumps and numpy's little-endian float32 bytes (what
 * tritonclient.http builds), its JSON request against Python's json parsing of the same values;
 * and running it alone rewrites only its own section of docs/benchmarks.md.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { testServer } from "../../app/test/helpers.ts";
import { binaryRequest, IMAGE_SHAPE, imageTensor, jsonRequest, SECTION_TITLE, spliceSection } from "../bench/binary.ts";
import { ROOT } from "../bench/lib.ts";
import { renderReport } from "../bench/report.ts";

const python = (code: string, ...args: string[]) => {
  const r = spawnSync("/usr/bin/python3", ["-c", code, ...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
};

test("the binary request is tritonclient's: json.dumps header, Inference-Header-Content-Length, little-endian float32", async () => {
  const values = imageTensor();
  assert.equal(
    values.length,
    IMAGE_SHAPE.reduce((a, b) => a * b, 1),
  );
  const { body, headerLength } = binaryRequest(values);
  const dir = await mkdtemp(join(tmpdir(), "bench-binary-"));
  try {
    await writeFile(join(dir, "values.f32"), Buffer.from(values.buffer, values.byteOffset, values.byteLength));
    await writeFile(join(dir, "request.bin"), body);
    // What tritonclient/http/_utils.py _get_inference_request does for one binary input and no outputs.
    const out = python(
      `
import json, sys, numpy as np
values = np.fromfile(sys.argv[1] + "/values.f32", dtype=np.float32).reshape(${JSON.stringify(IMAGE_SHAPE)})
header = json.dumps({"inputs": [{"name": "image", "shape": list(values.shape), "datatype": "FP32",
                                 "parameters": {"binary_data_size": values.nbytes}}],
                     "parameters": {"binary_data_output": True}})
expected = header.encode() + values.astype("<f4").tobytes()
actual = open(sys.argv[1] + "/request.bin", "rb").read()
print(len(header), actual == expected)
`,
      dir,
    );
    assert.equal(out.trim(), `${headerLength} True`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the JSON request carries the same float32 values", async () => {
  const values = imageTensor();
  const dir = await mkdtemp(join(tmpdir(), "bench-binary-"));
  try {
    await writeFile(join(dir, "request.json"), jsonRequest(values));
    await writeFile(join(dir, "values.f32"), Buffer.from(values.buffer, values.byteOffset, values.byteLength));
    const out = python(
      `
import json, sys, numpy as np
req = json.load(open(sys.argv[1] + "/request.json"))
t = req["inputs"][0]
data = np.asarray(t["data"], dtype=np.float32)
print(t["shape"], t["datatype"], bool((data == np.fromfile(sys.argv[1] + "/values.f32", dtype=np.float32)).all()))
`,
      dir,
    );
    assert.equal(out.trim(), "[1, 3, 224, 224] FP32 True");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the bench model answers both requests alike on the real server", async () => {
  const server = await testServer(join(ROOT, "scripts/bench/fixtures/models"), {
    BODY_LIMIT_BYTES: String(16 * 1024 * 1024),
  });
  try {
    const values = imageTensor();
    const url = `${server.url}/v2/models/image-features/infer`;
    const viaJson = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: jsonRequest(values),
    });
    assert.equal(viaJson.status, 200);
    const features = ((await viaJson.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] })
      .outputs[0]!;
    assert.deepEqual([features.name, features.shape], ["features", [1, 4]]);
    const { body, headerLength } = binaryRequest(values);
    const viaBinary = await fetch(url, {
      method: "POST",
      headers: { "inference-header-content-length": String(headerLength) },
      body,
    });
    assert.equal(viaBinary.status, 200, await viaBinary.clone().text());
    const bytes = Buffer.from(await viaBinary.arrayBuffer());
    const jsonLength = Number(viaBinary.headers.get("inference-header-content-length"));
    const head = JSON.parse(bytes.subarray(0, jsonLength).toString()) as {
      outputs: { parameters: { binary_data_size: number } }[];
    };
    assert.equal(head.outputs[0]!.parameters.binary_data_size, 16);
    assert.equal(bytes.byteLength, jsonLength + 16);
    const binaryFeatures = [0, 1, 2, 3].map((i) => bytes.readFloatLE(jsonLength + 4 * i));
    assert.deepEqual(
      binaryFeatures,
      features.data.map((v) => Math.fround(v)),
    );
  } finally {
    await server.close();
  }
});

test("npm run bench writes the section where running it alone does", () => {
  const report = {
    date: "2026-01-01T00:00:00.000Z",
    durationSeconds: 1,
    secondsPerPoint: 1,
    machine: { cpu: "cpu", cores: 2, memoryGb: 1, loadBefore: [0, 0, 0], loadAfter: [0, 0, 0] },
    versions: {},
    session: {
      runRowsPerSec: {},
      runMicros: {},
      blockMicros: 0,
      workerRoundTripMicros: 0,
      workerRps: 0,
      inProcessRps: 0,
    },
    http: { rows: [], readyMs: {} },
    dataplane: undefined,
    binary: { markdown: "the figures" },
  };
  const doc = renderReport(report);
  assert.ok(doc.endsWith(`\n${SECTION_TITLE}\n\nthe figures\n`), doc.slice(-200));
  assert.equal(spliceSection(doc, "the figures"), doc);
});

test("running the scenario alone replaces only its section", () => {
  const doc = "# Benchmarks\n\n## A\n\nfigures\n";
  const once = spliceSection(doc, "first");
  assert.equal(once, `# Benchmarks\n\n## A\n\nfigures\n\n${SECTION_TITLE}\n\nfirst\n`);
  assert.equal(spliceSection(once, "second"), `# Benchmarks\n\n## A\n\nfigures\n\n${SECTION_TITLE}\n\nsecond\n`);
  const middle = `# B\n\n${SECTION_TITLE}\n\nold\n\n## Later\n\nkept\n`;
  assert.equal(spliceSection(middle, "new"), `# B\n\n${SECTION_TITLE}\n\nnew\n\n## Later\n\nkept\n`);
});
