import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type RunningServer, startServer } from "../../app/src/server.ts";

// The smoke test against the real API (bundled models, ONNX Runtime): a healthy one passes, one
// missing the smoke model fails, an unreachable one fails; exit codes are what the deploy
// workflow acts on.
const root = fileURLToPath(new URL("../..", import.meta.url));
const exec = promisify(execFile);
const smoke = (...args: string[]) => exec(process.execPath, [join(root, "scripts/smoke.ts"), ...args], { cwd: root });
const env = { AUTH_MODE: "off", DATABASE_URL: "", REDIS_URL: "", LOG_LEVEL: "fatal", MODEL_WATCH: "false" };
let healthy: RunningServer;
let withoutModel: RunningServer;
let modelsDir: string;

before(async () => {
  healthy = await startServer({ port: 0, host: "127.0.0.1", modelsDir: join(root, "models"), env });
  modelsDir = mkdtempSync(join(tmpdir(), "smoke-models-"));
  cpSync(join(root, "models/iris-classifier"), join(modelsDir, "iris-classifier"), { recursive: true });
  withoutModel = await startServer({ port: 0, host: "127.0.0.1", modelsDir, env });
});
after(async () => {
  await healthy?.close();
  await withoutModel?.close();
  rmSync(modelsDir, { recursive: true, force: true });
});

test("passes against a healthy API: probes, metrics, model metadata and one prediction", async () => {
  const { stdout } = await smoke(healthy.url, "--timeout", "30");
  assert.match(stdout, /ok {3}POST \/v1\/models\/diabetes-regressor:predict: prediction \d+\.\d/);
  assert.match(stdout, /ok {3}GET \/health\/ready/);
  assert.match(stdout, /smoke test passed: 6 checks/);
});

test("fails (exit 1) when the smoke model is not served", async () => {
  await assert.rejects(smoke(withoutModel.url, "--timeout", "0"), (e: { code: number; stdout: string }) => {
    assert.equal(e.code, 1);
    assert.match(e.stdout, /FAIL POST \/v1\/models\/diabetes-regressor:predict: HTTP 404/);
    assert.match(e.stdout, /smoke test FAILED/);
    return true;
  });
});

test("fails (exit 1) when nothing answers, and rejects bad arguments (exit 2)", async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
  await assert.rejects(
    smoke(`http://127.0.0.1:${port}`, "--timeout", "0"),
    (e: { code: number; stdout: string }) => e.code === 1 && /FAIL GET \/health\/live/.test(e.stdout),
  );
  await assert.rejects(
    smoke("not-a-url"),
    (e: { code: number; stderr: string }) => e.code === 2 && /not an http\(s\) URL/.test(e.stderr),
  );
  await assert.rejects(
    smoke(healthy.url, "--timeout", "soon"),
    (e: { code: number; stderr: string }) => e.code === 2 && /--timeout must be a number/.test(e.stderr),
  );
});
