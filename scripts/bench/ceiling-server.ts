/**
 * The ceiling baseline: a bare node:http server that parses the same V1 JSON and calls the same
 * ONNX session directly per request (no framework, no validation, no batching, no metrics).
 * Run: node scripts/bench/ceiling-server.ts PORT
 */
import { createServer } from "node:http";
import * as ort from "onnxruntime-node";
import { DIABETES_FEATURES, DIABETES_MODEL } from "./lib.ts";

const session = await ort.InferenceSession.create(DIABETES_MODEL, { intraOpNumThreads: 1, interOpNumThreads: 1 });
const inputName = session.inputNames[0]!;
const outputName = session.outputNames[0]!;
const cols = DIABETES_FEATURES.length;

createServer((req, res) => {
  if (req.method === "GET") {
    res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", async () => {
    try {
      const { instances } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        instances: Record<string, number>[];
      };
      const data = new Float32Array(instances.length * cols);
      for (const [r, inst] of instances.entries()) {
        for (const [c, f] of DIABETES_FEATURES.entries()) data[r * cols + c] = inst[f]!;
      }
      const out = await session.run({ [inputName]: new ort.Tensor("float32", data, [instances.length, cols]) });
      const y = out[outputName]!.data as Float32Array;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ predictions: Array.from(y) }));
    } catch (err) {
      res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: String(err) }));
    }
  });
}).listen(Number(process.argv[2]), "127.0.0.1");

// A clean exit on SIGTERM, so that a profile asked for with --cpu-prof gets written.
process.on("SIGTERM", () => process.exit(0));
