/**
 * Writes every tier's monitoring files under monitoring/generated/<tier>/, from the TypeScript
 * source and the tier's preset. `npm run monitoring:render` after any change; a test fails if the
 * committed files drift.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { presets, type TierName, tierNames } from "../infra/presets.ts";
import { type MonitoringBundle, monitoringBundle } from "../monitoring/index.ts";

export const generatedDir = join(dirname(fileURLToPath(import.meta.url)), "../monitoring/generated");

/** The bundle of a tier with its preset values, as committed under monitoring/generated/<tier>/. */
export function presetBundle(tier: TierName): MonitoringBundle {
  const p = presets[tier];
  return monitoringBundle({ tier, platform: p.platform, domain: p.domain, app: p.app, monitoring: p.monitoring });
}

/** Relative path under generated/ → content, for every tier. */
export function generatedFiles(): Map<string, string> {
  const out = new Map<string, string>();
  for (const tier of tierNames) {
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

if (import.meta.main) {
  const written = writeGenerated();
  console.log(`wrote ${written.length} files under ${generatedDir}`);
}
