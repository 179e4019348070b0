/**
 * Finds the mermaid blocks of Markdown files and runs each through the real mermaid (its browser
 * bundle from node_modules, in headless Chromium): `mermaid.parse` and then `mermaid.render`, as
 * GitHub's renderer does. Each block comes back with its file, line and mermaid's own error.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Page } from "playwright-core";

export interface MermaidBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  text: string;
}

export interface MermaidResult extends MermaidBlock {
  /** Diagram type mermaid detected (flowchart-v2, xychart, ...). */
  type?: string;
  /** Length of the rendered SVG. */
  svgBytes?: number;
  error?: string;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*mermaid\s*$/;

/** Fenced ```mermaid blocks, per CommonMark: closed by a fence of the same character, at least as long. */
export function mermaidBlocks(file: string, markdown: string): MermaidBlock[] {
  const lines = markdown.split("\n");
  const blocks: MermaidBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const close = new RegExp(`^ {0,3}${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`);
    const start = i;
    const body: string[] = [];
    while (++i < lines.length && !close.test(lines[i]!)) body.push(lines[i]!);
    blocks.push({ file, line: start + 1, text: body.join("\n") });
  }
  return blocks;
}

export function mermaidBlocksOf(files: string[]): MermaidBlock[] {
  return files.flatMap((f) => mermaidBlocks(f, readFileSync(f, "utf8")));
}

const BUNDLE = createRequire(import.meta.url).resolve("mermaid/dist/mermaid.min.js");

/** Loads mermaid's browser bundle into `page` (emptied first); returns mermaid's version. */
export async function loadMermaid(page: Page): Promise<string> {
  await page.setContent("<!doctype html><html><head><meta charset=utf-8></head><body></body></html>");
  await page.addScriptTag({ path: BUNDLE });
  const loaded = await page.evaluate(() => {
    const m = (globalThis as unknown as { mermaid?: { initialize(c: object): void; parse?: unknown } }).mermaid;
    if (!m || typeof m.parse !== "function") return false;
    m.initialize({ startOnLoad: false, securityLevel: "strict" });
    return true;
  });
  if (!loaded) throw new Error(`${BUNDLE} did not define mermaid.parse`);
  return (JSON.parse(readFileSync(join(dirname(BUNDLE), "../package.json"), "utf8")) as { version: string }).version;
}

/** Parses and renders each block in the page (loadMermaid first). */
export async function checkMermaid(page: Page, blocks: MermaidBlock[]): Promise<MermaidResult[]> {
  const results: MermaidResult[] = [];
  for (const [i, block] of blocks.entries()) {
    const outcome = await page.evaluate(
      async ({ text, id }) => {
        const m = (
          globalThis as unknown as {
            mermaid: {
              parse(t: string): Promise<{ diagramType: string }>;
              render(id: string, t: string): Promise<{ svg: string }>;
            };
          }
        ).mermaid;
        try {
          const parsed = await m.parse(text);
          const { svg } = await m.render(id, text);
          return { type: parsed.diagramType, svgBytes: svg.length };
        } catch (err) {
          return { error: String((err as Error)?.message ?? err) };
        }
      },
      { text: block.text, id: `mermaid-check-${i}` },
    );
    results.push({ ...block, ...outcome });
  }
  return results;
}
