import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createRequire } from "node:module";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { resourcePolicies, stackPolicies } from "../policies.ts";

// The pack as the Pulumi engine runs it: `node index.ts` in policy/ serves the analyzer gRPC API
// and prints its port; we call it with the engine's own protocol (the generated clients inside
// @pulumi/pulumi), so a pack that loads but misbehaves over the wire is caught here.
const require = createRequire(import.meta.resolve("@pulumi/pulumi"));
const grpc = require("@grpc/grpc-js");
const analyzerRpc = require("@pulumi/pulumi/proto/analyzer_grpc_pb.js");
const analyzerPb = require("@pulumi/pulumi/proto/analyzer_pb.js");
const emptyPb = require("google-protobuf/google/protobuf/empty_pb.js");
const structPb = require("google-protobuf/google/protobuf/struct_pb.js");

const policyDir = fileURLToPath(new URL("..", import.meta.url));
let pack: ChildProcess;
// The generated gRPC client and messages are untyped JavaScript: the parts used here.
type Unary = (req: unknown, done: (err: Error | null, res: unknown) => void) => void;
let client: { close(): void } & Record<string, Unary>;
interface AnalyzerInfo {
  getName(): string;
  getPoliciesList(): { getName(): string }[];
}
interface AnalyzeResponse {
  getDiagnosticsList(): { getPolicyname(): string; getMessage(): string }[];
}

before(async () => {
  pack = spawn(process.execPath, ["index.ts"], { cwd: policyDir, stdio: ["ignore", "pipe", "inherit"] });
  const [chunk] = (await once(pack.stdout!, "data")) as [Buffer];
  const port = Number(chunk.toString().trim());
  assert.ok(port > 0, `the pack prints its port (got ${chunk})`);
  client = new analyzerRpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});
after(() => {
  client?.close();
  pack?.kill();
});

const call = <T>(method: string, req: unknown) =>
  new Promise<T>((resolve, reject) => client[method]!(req, (err, res) => (err ? reject(err) : resolve(res as T))));

function analyzeRequest(type: string, name: string, props: Record<string, unknown>) {
  const req = new analyzerPb.AnalyzeRequest();
  req.setType(type);
  req.setName(name);
  req.setUrn(`urn:pulumi:prod::inferstack::${type}::${name}`);
  req.setProperties(structPb.Struct.fromJavaScript(props));
  req.setOptions(new analyzerPb.AnalyzerResourceOptions());
  return req;
}

test("the served pack lists every policy, mandatory", async () => {
  const info = await call<AnalyzerInfo>("getAnalyzerInfo", new emptyPb.Empty());
  assert.equal(info.getName(), "inferstack-guardrails");
  const policies = info
    .getPoliciesList()
    .map((p) => p.getName())
    .sort();
  assert.deepEqual(policies, [...resourcePolicies, ...stackPolicies].map((p) => p.name).sort());
  assert.ok(policies.includes("no-world-open-ingress") && policies.includes("encryption-at-rest"));
});

test("the served pack reports a violating resource and passes a compliant one", async () => {
  const bad = await call<AnalyzeResponse>(
    "analyze",
    analyzeRequest("aws:rds/instance:Instance", "pg", {
      instanceClass: "db.t4g.small",
      publiclyAccessible: true,
      storageEncrypted: false,
      dbSubnetGroupName: "private",
    }),
  );
  const diagnostics = bad.getDiagnosticsList().map((d) => `${d.getPolicyname()}: ${d.getMessage()}`);
  assert.ok(
    diagnostics.some(
      (d: string) => d.startsWith("no-public-datastores:") && d.includes("publiclyAccessible must be false"),
    ),
    diagnostics.join("\n"),
  );
  assert.ok(
    diagnostics.some((d: string) => d.startsWith("encryption-at-rest:") && d.includes("storageEncrypted must be true")),
    diagnostics.join("\n"),
  );
  const good = await call<AnalyzeResponse>(
    "analyze",
    analyzeRequest("aws:rds/instance:Instance", "pg", {
      instanceClass: "db.t4g.small",
      publiclyAccessible: false,
      storageEncrypted: true,
      dbSubnetGroupName: "private",
      tags: { app: "inferstack", env: "staging", tier: "small" },
    }),
  );
  assert.deepEqual(
    good.getDiagnosticsList().map((d) => d.getMessage()),
    [],
  );
});
