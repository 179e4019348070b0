/**
 * Every mermaid block in docs/ and README.md parses and renders with the real mermaid (the version
 * in the lock file, its browser bundle in headless Chromium), and every bar chart's y-axis starts at
 * zero and holds its bars.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { type Chromium, launchChromium } from "../lib/chromium.ts";
import { checkMermaid, loadMermaid, mermaidBlocks, mermaidBlocksOf } from "../lib/mermaid-check.ts";

const root = join(import.meta.dirname, "../..");
const markdownFiles = [
  join(root, "README.md"),
  ...readdirSync(join(root, "docs"), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".md"))
    .map((f) => join(root, "docs", f)),
];

let browser: Chromium;
let page: Page;
before(async () => {
  browser = await launchChromium();
  page = await browser.context.newPage();
  const version = await loadMermaid(page);
  assert.match(version, /^\d+\.\d+\.\d+$/, "mermaid's bundle loaded");
});
after(() => browser?.close());

test("every mermaid block in docs/ and README.md parses and renders", async () => {
  const blocks = mermaidBlocksOf(markdownFiles);
  assert.ok(blocks.length >= 8, `found only ${blocks.length} mermaid blocks`);
  const results = await checkMermaid(page, blocks);
  const failures = results.filter((r) => r.error).map((r) => `${relative(root, r.file)}:${r.line}: ${r.error}`);
  assert.deepEqual(failures, [], failures.join("\n\n"));
  for (const r of results)
    assert.ok(r.svgBytes! > 500, `${relative(root, r.file)}:${r.line} rendered an empty diagram`);
});

test("a diagram mermaid rejects is reported with its file, line and mermaid's message", async () => {
  // Parentheses inside an unquoted [label], a mistake that breaks a diagram on GitHub.
  const md = "intro\n\n```mermaid\nflowchart LR\n  app --> nat[NAT gateway(s)]\n```\n";
  const [result] = await checkMermaid(page, mermaidBlocks("bad.md", md));
  assert.equal(result!.line, 3);
  assert.match(result!.error ?? "", /Parse error on line 2:[\s\S]*got 'PS'/);
  const [quoted] = await checkMermaid(
    page,
    mermaidBlocks("good.md", md.replace("nat[NAT gateway(s)]", 'nat["NAT gateway(s)"]')),
  );
  assert.equal(quoted!.error, undefined);
});

test("bar charts start at zero and their axis holds every bar", () => {
  const charts = mermaidBlocksOf(markdownFiles).filter((b) => /^\s*xychart/m.test(b.text));
  assert.ok(charts.length > 0, "no xychart found");
  for (const c of charts) {
    const where = `${relative(root, c.file)}:${c.line}`;
    const axis = /^\s*y-axis\b.*?(-?[\d.]+)\s*-->\s*(-?[\d.]+)\s*$/m.exec(c.text);
    assert.ok(axis, `${where}: the y-axis has no range (mermaid would start it near the smallest bar)`);
    assert.equal(Number(axis[1]), 0, `${where}: the y-axis starts at ${axis[1]}`);
    for (const bar of c.text.matchAll(/^\s*bar\s*\[([^\]]*)\]/gm)) {
      for (const v of bar[1]!.split(",").map(Number))
        assert.ok(v <= Number(axis[2]), `${where}: bar ${v} is above the axis maximum ${axis[2]}`);
    }
  }
});

test("fences: only mermaid blocks, closed by a matching fence", () => {
  const md = ["```mermaid", "a", "```", "```ts", "b", "```", "~~~~mermaid", "c", "```", "d", "~~~~"].join("\n");
  assert.deepEqual(
    mermaidBlocks("x.md", md).map((b) => [b.line, b.text]),
    [
      [1, "a"],
      [7, "c\n```\nd"],
    ],
  );
});
