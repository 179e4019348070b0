/**
 * The direction of imports between folders, read from the source with the TypeScript compiler's
 * own import scanner (`ts.preProcessFile`). Production modules import only from their own layer or
 * the layers below it (the README's layout table says the same); no production module imports a
 * test module; production modules have no import cycles. Tests sit above every layer: they may
 * import whatever they check.
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import ts from "typescript";

const root = resolve(import.meta.dirname, "../..");

interface Layer {
  name: string;
  /** Repository-relative path prefixes (a folder ends with `/`). */
  paths: string[];
  /** May modules of this layer import each other? */
  peers: boolean;
}

/** Lowest first: a module may import its own layer (when `peers`) and any layer listed before it. */
export const layers: Layer[] = [
  { name: "app", paths: ["app/"], peers: true },
  { name: "models", paths: ["models/"], peers: true },
  { name: "monitoring", paths: ["monitoring/"], peers: true },
  {
    name: "infra base (config, presets, sizes, prices, images)",
    paths: [
      "infra/schema.ts",
      "infra/presets.ts",
      "infra/config.ts",
      "infra/fargate.ts",
      "infra/images.ts",
      "infra/project-path.ts",
      "infra/cost.ts",
      "infra/pricing/",
    ],
    peers: true,
  },
  { name: "infra components", paths: ["infra/components/"], peers: true },
  { name: "infra platform outputs", paths: ["infra/platforms/outputs.ts"], peers: false },
  { name: "infra platforms (docker, aws: neither imports the other)", paths: ["infra/platforms/"], peers: false },
  { name: "infra program", paths: ["infra/program.ts", "infra/index.ts"], peers: true },
  { name: "offline engine", paths: ["infra/offline/"], peers: true },
  { name: "policy", paths: ["policy/"], peers: true },
  { name: "scripts and tools", paths: ["scripts/", "tools/"], peers: true },
];

/** Folders whose modules are tests or test support. */
export function isTest(path: string): boolean {
  return /(^|\/)test\//.test(path) || path.endsWith(".test.ts");
}

/** The layer of a repository-relative path: the longest matching prefix wins. */
export function layerOf(path: string): number {
  let best = -1;
  let bestLength = -1;
  layers.forEach((layer, i) => {
    for (const p of layer.paths) {
      const match = p.endsWith("/") ? path.startsWith(p) : path === p;
      if (match && p.length > bestLength) [best, bestLength] = [i, p.length];
    }
  });
  return best;
}

/** Repository-relative module → the repository modules it imports (relative specifiers only). */
export function importGraph(files: Map<string, string>): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const [file, text] of files) {
    const info = ts.preProcessFile(text, true, true);
    const targets = info.importedFiles
      .map((f) => f.fileName)
      .filter((spec) => spec.startsWith("./") || spec.startsWith("../"))
      .map((spec) => relative(root, resolve(root, dirname(file), spec)));
    graph.set(file, targets);
  }
  return graph;
}

/** Every import that breaks a rule, as "from → to: why". */
export function violations(graph: Map<string, string[]>): string[] {
  const out: string[] = [];
  for (const [from, targets] of graph) {
    if (isTest(from)) continue;
    const fromLayer = layerOf(from);
    if (fromLayer < 0) {
      out.push(`${from}: in no layer (add its folder to the table)`);
      continue;
    }
    for (const to of targets) {
      if (isTest(to)) {
        out.push(`${from} → ${to}: production code imports a test module`);
        continue;
      }
      const toLayer = layerOf(to);
      if (toLayer < 0) out.push(`${from} → ${to}: target in no layer`);
      else if (toLayer > fromLayer)
        out.push(`${from} → ${to}: ${layers[fromLayer]!.name} imports the higher layer ${layers[toLayer]!.name}`);
      else if (toLayer === fromLayer && !layers[fromLayer]!.peers)
        out.push(`${from} → ${to}: modules of ${layers[fromLayer]!.name} must not import each other`);
    }
  }
  return [...out, ...cycles(graph)];
}

/** Import cycles among production modules (Tarjan's strongly connected components). */
export function cycles(graph: Map<string, string[]>): string[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (isTest(w) || !graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      for (let w = stack.pop()!; ; w = stack.pop()!) {
        onStack.delete(w);
        component.push(w);
        if (w === v) break;
      }
      if (component.length > 1) found.push(`import cycle: ${component.sort().join(" ↔ ")}`);
    }
  };
  for (const v of graph.keys()) if (!isTest(v) && !index.has(v)) visit(v);
  return found;
}

function sources(): Map<string, string> {
  const files = new Map<string, string>();
  for (const top of ["app", "infra", "models", "monitoring", "policy", "scripts", "tools"]) {
    for (const entry of readdirSync(join(root, top), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !/\.(ts|mts|mjs|js)$/.test(entry.name)) continue;
      const path = relative(root, join(entry.parentPath, entry.name));
      if (path.split("/").includes("node_modules")) continue;
      files.set(path, readFileSync(join(root, path), "utf8"));
    }
  }
  return files;
}

test("imports between folders go one way, with no cycle", () => {
  const graph = importGraph(sources());
  assert.ok(graph.size > 100, `read ${graph.size} modules`);
  assert.deepEqual(violations(graph), []);
});

test("the check catches an import against the direction, a test import, a peer platform and a cycle", () => {
  const graph = importGraph(
    new Map([
      ["monitoring/index.ts", 'import { presets } from "../infra/presets.ts";'],
      ["infra/presets.ts", 'import type { Preset } from "./config.ts";'],
      ["infra/config.ts", 'import { presets } from "./presets.ts";'],
      ["infra/platforms/aws.ts", 'import type { TierOutputs } from "./docker.ts";'],
      ["infra/platforms/docker.ts", ""],
      ["scripts/lib/plan.ts", 'import { runUnderMocks } from "../../infra/test/run.ts";'],
    ]),
  );
  assert.deepEqual(violations(graph), [
    "monitoring/index.ts → infra/presets.ts: monitoring imports the higher layer infra base (config, presets, sizes, prices, images)",
    "infra/platforms/aws.ts → infra/platforms/docker.ts: modules of infra platforms (docker, aws: neither imports the other) must not import each other",
    "scripts/lib/plan.ts → infra/test/run.ts: production code imports a test module",
    "import cycle: infra/config.ts ↔ infra/presets.ts",
  ]);
});
