/**
 * /docs in a real browser (Debian's headless Chromium): the page renders from assets the API
 * serves itself, no request leaves 127.0.0.1, the V1 and V2 operations are listed, and one
 * prediction runs through Swagger UI's own "Try it out" → "Execute".
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Page, Request } from "playwright-core";
import { type Chromium, launchChromium } from "../../scripts/lib/chromium.ts";
import { DOCS_ASSETS, DOCS_CSP } from "../src/http/docs-page.ts";
import type { RunningServer } from "../src/server.ts";
import { request, testServer } from "./helpers.ts";

/** What the page scripts below use of the browser (the project's tsconfig has no DOM library). */
interface BrowserGlobals {
  document: {
    addEventListener(
      type: "securitypolicyviolation",
      listener: (e: { violatedDirective: string; blockedURI: string }) => void,
    ): void;
  };
  __csp?: string[];
}

const MODELS = new URL("../../models/", import.meta.url).pathname;

let server: RunningServer;
let browser: Chromium;
let page: Page;
const requests: string[] = [];
const problems: string[] = [];

before(async () => {
  server = await testServer(MODELS);
  browser = await launchChromium();
  // Every request of the browser context, whichever page or worker makes it.
  browser.context.on("request", (r: Request) => void requests.push(`${r.method()} ${r.url()}`));
  page = await browser.context.newPage();
  await page.addInitScript(() => {
    const g = globalThis as unknown as BrowserGlobals;
    g.document.addEventListener("securitypolicyviolation", (e) => {
      g.__csp ??= [];
      g.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  await page.goto(`${server.url}/docs`);
  await page.waitForSelector(".opblock", { timeout: 60_000 });
});
after(async () => {
  await browser?.close();
  await server?.close();
});

const local = (url: string) => url.startsWith(`${server.url}/`) || url.startsWith("data:") || url === "about:blank";

test("/docs renders offline: every request goes to the API itself", async () => {
  assert.ok(requests.length >= 5, requests.join("\n"));
  assert.deepEqual(
    requests.filter((r) => !local(r.split(" ")[1]!)),
    [],
    "requests that left 127.0.0.1",
  );
  for (const asset of ["swagger-ui-bundle.js", "swagger-ui.css", "init.js"]) {
    assert.ok(requests.includes(`GET ${server.url}${DOCS_ASSETS}/${asset}`), `${asset} in\n${requests.join("\n")}`);
  }
  assert.ok(requests.includes(`GET ${server.url}/openapi.json`));
  assert.deepEqual(problems, []);
  assert.deepEqual(
    await page.evaluate(() => (globalThis as unknown as BrowserGlobals).__csp ?? []),
    [],
    "CSP violations",
  );
});

test("the page lists the V1 and V2 operations and the per-model predict paths", async () => {
  const paths = await page.$$eval(".opblock-summary-path", (els) => els.map((e) => e.getAttribute("data-path")));
  for (const p of [
    "/v1/models",
    "/v1/models/{name}:predict",
    "/v2",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
    "/v1/models/iris-classifier:predict",
  ]) {
    assert.ok(paths.includes(p), `${p} in ${paths.join(", ")}`);
  }
  const tags = await page.$$eval(".opblock-tag", (els) => els.map((e) => e.textContent?.trim()));
  assert.ok(tags.includes("KServe V1") && tags.some((t) => t?.startsWith("Open Inference Protocol")), tags.join(", "));
});

test("Try it out → Execute runs a prediction and the page shows its answer", async () => {
  const op = page.locator('.opblock:has(.opblock-summary-path[data-path="/v1/models/iris-classifier:predict"])');
  await op.locator(".opblock-summary").click();
  await op.locator("button.try-out__btn").click();
  const body = op.locator("textarea.body-param__text");
  const example = JSON.parse(await body.inputValue());
  assert.ok(Array.isArray(example.instances), `Swagger UI's example body: ${JSON.stringify(example)}`);
  // A real iris flower (the README's example) instead of Swagger UI's zeros.
  await body.fill(
    JSON.stringify({ instances: [{ sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 }] }),
  );
  await op.locator("button.execute").click();
  const status = op.locator(".live-responses-table .response .response-col_status");
  await status.first().waitFor({ timeout: 30_000 });
  assert.equal((await status.first().textContent())?.trim(), "200");
  const shown = await op
    .locator(".live-responses-table .response-col_description pre.microlight")
    .first()
    .textContent();
  const answer = JSON.parse(shown ?? "");
  assert.equal(answer.predictions[0].label, "setosa");
  assert.ok(answer.predictions[0].probabilities.setosa > 0.9, shown ?? "");
  assert.ok(requests.includes(`POST ${server.url}/v1/models/iris-classifier:predict`), requests.join("\n"));
  assert.deepEqual(
    requests.filter((r) => !local(r.split(" ")[1]!)),
    [],
  );
});

test("the page's Content-Security-Policy blocks other origins in the browser", async () => {
  const before = requests.length;
  const outcome = await page.evaluate(() =>
    fetch("https://cdn.jsdelivr.net/npm/swagger-ui-dist/swagger-ui.css").then(
      () => "loaded",
      () => "blocked",
    ),
  );
  assert.equal(outcome, "blocked");
  const violations = await page.evaluate(() => (globalThis as unknown as BrowserGlobals).__csp ?? []);
  assert.deepEqual(violations, ["connect-src https://cdn.jsdelivr.net/npm/swagger-ui-dist/swagger-ui.css"]);
  assert.deepEqual(requests.slice(before), [], "the blocked request never reached the network");
});

test("headers: CSP on the page, long-lived cache and right types on the versioned assets", async () => {
  const html = await request(`${server.url}/docs`);
  assert.equal(html.status, 200);
  assert.equal(html.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(html.headers.get("content-security-policy"), DOCS_CSP);
  assert.match(DOCS_CSP, /default-src 'none'/);
  assert.doesNotMatch(DOCS_CSP, /https?:|\*|'unsafe-eval'|script-src[^;]*'unsafe-inline'/);
  assert.doesNotMatch(html.text, /https?:\/\//, "the page names no other origin");
  for (const [file, type] of [
    ["swagger-ui-bundle.js", "text/javascript; charset=utf-8"],
    ["swagger-ui.css", "text/css; charset=utf-8"],
    ["favicon-32x32.png", "image/png"],
    ["init.js", "text/javascript; charset=utf-8"],
  ] as const) {
    const r = await fetch(`${server.url}${DOCS_ASSETS}/${file}`);
    assert.equal(r.status, 200, file);
    assert.equal(r.headers.get("content-type"), type, file);
    assert.equal(r.headers.get("cache-control"), "public, max-age=31536000, immutable", file);
    assert.ok((await r.arrayBuffer()).byteLength > 100, file);
  }
  const missing = await request(`${server.url}${DOCS_ASSETS}/package.json`);
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error, "no docs asset package.json");
  const traversal = await request(`${server.url}${DOCS_ASSETS}/..%2F..%2Fpackage.json`);
  assert.equal(traversal.status, 404);
});
