/**
 * `npm run models:check [-- DIR]`: checks a model repository offline, with the server's own rules,
 * before it is deployed: layout, manifests, that every version loads in ONNX Runtime and agrees
 * with its manifest, and reference parity wherever a `reference.json` exists. Exit code 1 on any
 * error, so it can gate a CI job of a model repository.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { type Manifest, parseManifest } from "../app/src/inference/manifest.ts";
import { selectVersions } from "../app/src/inference/repository.ts";
import { buildSignature, unsupportedInputs } from "../app/src/inference/signature.ts";
import { assertMatchesReference, loadReference, type Reference, rows, runOnnx } from "./reference.ts";

// The server's rules (app/src/inference/repository.ts).
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const VERSION_DIR = /^[1-9][0-9]{0,8}$/;

export interface ModelReport {
  name: string;
  errors: string[];
  warnings: string[];
  notes: string[];
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).split("\n")[0]!;

async function checkParity(dir: string, name: string, available: number[], report: ModelReport): Promise<void> {
  let ref: Reference;
  try {
    ref = loadReference(name, dir);
  } catch (err) {
    report.errors.push(`reference.json: ${message(err)}`);
    return;
  }
  if (!available.includes(ref.version)) {
    report.errors.push(`reference.json is for version ${ref.version}, which has no model.onnx`);
    return;
  }
  const session = await ort.InferenceSession.create(path.join(dir, name, String(ref.version), "model.onnx"));
  try {
    const worst = assertMatchesReference(ref, await runOnnx(session, ref, rows(ref)), "reference");
    let checked = ref.cases.length;
    if (ref.kind === "classification" && ref.edgeCases) {
      const edge = { ...ref, cases: ref.edgeCases.cases };
      assertMatchesReference(edge, await runOnnx(session, ref, rows(ref, edge.cases)), "reference edge cases");
      checked += edge.cases.length;
    }
    report.notes.push(
      `reference parity: ${checked} rows within tolerance (worst relative error ${worst.relative.toExponential(1)})`,
    );
  } catch (err) {
    report.errors.push(`reference parity: ${message(err)}`);
  } finally {
    await session.release();
  }
}

export async function checkModel(dir: string, name: string): Promise<ModelReport> {
  const report: ModelReport = { name, errors: [], warnings: [], notes: [] };
  const root = path.join(dir, name);
  const entries = readdirSync(root, { withFileTypes: true });
  const available: number[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    if (!VERSION_DIR.test(e.name)) {
      if (/^\d+$/.test(e.name) || /^v\d+$/i.test(e.name)) {
        report.warnings.push(`${e.name}/ is ignored: version directories are positive integers without leading zeros`);
      }
      continue;
    }
    if (existsSync(path.join(root, e.name, "model.onnx"))) available.push(Number(e.name));
    else report.warnings.push(`${e.name}/ has no model.onnx`);
  }
  available.sort((a, b) => a - b);

  let manifest: Manifest | undefined;
  const manifestPath = path.join(root, "model.json");
  if (existsSync(manifestPath)) {
    const parsed = parseManifest(readFileSync(manifestPath, "utf8"));
    if (parsed.ok) manifest = parsed.manifest;
    else report.errors.push(parsed.error);
  } else {
    report.notes.push("no model.json: served from what the ONNX file declares");
  }
  if (available.length === 0) {
    report.errors.push("no version directory with a model.onnx");
    return report;
  }

  for (const version of available) {
    const file = path.join(root, String(version), "model.onnx");
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(file);
    } catch (err) {
      report.errors.push(`version ${version}: ONNX Runtime cannot load model.onnx: ${message(err)}`);
      continue;
    }
    try {
      const sig = buildSignature(session.inputMetadata, session.outputMetadata, manifest);
      for (const t of unsupportedInputs(sig)) {
        report.warnings.push(`version ${version}: input "${t.name}" is ${t.datatype}, which the server cannot feed`);
      }
      if (!sig.batchable) {
        report.warnings.push(
          `version ${version}: no variable first dimension on every input and output, so requests are not batched`,
        );
      }
      const shapes = (ts: typeof sig.inputs) =>
        ts.map((t) => `${t.name} ${t.datatype} [${t.shape.join(", ")}]`).join(", ");
      report.notes.push(`version ${version}: ${shapes(sig.inputs)} -> ${shapes(sig.outputs)}`);
    } catch (err) {
      report.errors.push(`version ${version}: ${message(err)}`);
    } finally {
      await session.release();
    }
  }

  const policy = manifest?.versionPolicy;
  const served = selectVersions(policy, available);
  if (policy && "specific" in policy) {
    const missing = policy.specific.versions.filter((v) => !available.includes(v));
    if (missing.length) report.warnings.push(`versionPolicy names missing version(s) ${missing.join(", ")}`);
  }
  if (served.length === 0) report.errors.push("the version policy selects no available version");
  else report.notes.push(`serves version(s) ${served.join(", ")} of ${available.join(", ")}`);

  if (existsSync(path.join(root, "reference.json"))) await checkParity(dir, name, available, report);
  return report;
}

export async function checkRepository(dir: string): Promise<{ reports: ModelReport[]; skipped: string[] }> {
  const reports: ModelReport[] = [];
  const skipped: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!e.isDirectory()) continue;
    const root = path.join(dir, e.name);
    const looksLikeModel =
      existsSync(path.join(root, "model.json")) ||
      readdirSync(root, { withFileTypes: true }).some((v) => v.isDirectory() && /^\d+$/.test(v.name));
    // Tooling folders beside the models (build scripts, tests) are not models.
    if (!looksLikeModel) {
      skipped.push(e.name);
      continue;
    }
    if (!MODEL_NAME.test(e.name)) {
      reports.push({
        name: e.name,
        errors: ["the server ignores this name: use letters, digits, '.', '_', '-', starting alphanumeric"],
        warnings: [],
        notes: [],
      });
      continue;
    }
    reports.push(await checkModel(dir, e.name));
  }
  return { reports, skipped };
}

async function main(): Promise<void> {
  const dir = path.resolve(process.argv[2] ?? process.env.MODELS_DIR ?? "models");
  const { reports, skipped } = await checkRepository(dir);
  for (const r of reports) {
    console.log(`${r.errors.length ? "✖" : "✔"} ${r.name}`);
    for (const e of r.errors) console.log(`    error: ${e}`);
    for (const w of r.warnings) console.log(`    warning: ${w}`);
    for (const n of r.notes) console.log(`    ${n}`);
  }
  if (skipped.length) console.log(`(not models, skipped: ${skipped.join(", ")})`);
  const failed = reports.filter((r) => r.errors.length).length;
  console.log(`${reports.length - failed} models ok, ${failed} with errors in ${dir}`);
  if (reports.length === 0) console.log("no models found");
  process.exitCode = failed || reports.length === 0 ? 1 : 0;
}

if (import.meta.main) await main();
