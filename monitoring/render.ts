/**
 * Writes every tier's monitoring files under monitoring/generated/<tier>/ from the TypeScript
 * source. `npm run monitoring:render` after any change; a test fails if the committed files drift.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { tierNames, type TierName } from "../infra/config.ts";
import { presetBundle } from "./index.ts";

export const generatedDir = join(dirname(fileURLToPath(import.meta.url)), "generated");

/** Relative path under generated/ → content, for every tier. */
export function generatedFiles(): Map<string, string> {
  const out = new Map<string, string>();
  for (const tier of tierNames as readonly TierName[]) {
    const b = presetBundle(tier);
    const put = (prefix: string, files: Record<string, string>) => {
      for (const [rel, text] of Object.entries(files)) out.set(join(tier, prefix, rel), text);
    };
    put("prometheus", b.prometheus.files);
    put("alertmanager", b.alertmanager.files);
    put("grafana/provisioning", b.grafana.provisioningFiles);
    put("grafana/dashboards", b.grafana.dashboardFiles);
  }
  return out;
}

export function writeGenerated(dir = generatedDir): string[] {
  rmSync(dir, { recursive: true, force: true });
  const written: string[] = [];
  for (const [rel, text] of generatedFiles()) {
    const path = join(dir, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    written.push(rel);
  }
  return written;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const written = writeGenerated();
  console.log(`wrote ${written.length} files under ${generatedDir}`);
}
