/**
 * The interactive API page at /docs: Swagger UI from the swagger-ui-dist package in the lock file,
 * served by the API itself, so the page works offline and loads nothing from another origin (its
 * Content-Security-Policy forbids it). Assets are read once, on first request, and cached by the
 * browser under a versioned URL.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./context.ts";
import { errorBody } from "./errors.ts";

const distDir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
const distVersion = (createRequire(import.meta.url)("swagger-ui-dist/package.json") as { version: string }).version;

/** URL prefix of the assets: changes with the package version, so they may be cached for a year. */
export const DOCS_ASSETS = `/docs/assets/${distVersion}`;

const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
  "favicon-16x16.png": "image/png",
};

// No inline script, so the CSP needs no 'unsafe-inline' for scripts; Swagger UI sets inline styles.
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const page = (title: string, specUrl: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="stylesheet" href="${DOCS_ASSETS}/swagger-ui.css">
<link rel="icon" type="image/png" href="${DOCS_ASSETS}/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="${DOCS_ASSETS}/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<noscript>This page needs JavaScript; the API description itself is <a href="${specUrl}">${specUrl}</a>.</noscript>
<script src="${DOCS_ASSETS}/swagger-ui-bundle.js"></script>
<script src="${DOCS_ASSETS}/init.js"></script>
</body>
</html>
`;

// validatorUrl: null, or Swagger UI sends the document to validator.swagger.io for a badge.
const init = (specUrl: string) => `window.ui = SwaggerUIBundle({
  url: ${JSON.stringify(specUrl)},
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  displayRequestDuration: true,
});
`;

export function registerDocsPage(app: OpenAPIHono<AppEnv>, options: { specUrl: string; title: string }): void {
  const html = page(options.title, options.specUrl);
  const files = new Map<string, Promise<Buffer>>();
  files.set("init.js", Promise.resolve(Buffer.from(init(options.specUrl))));
  const types: Record<string, string> = { ...ASSETS, "init.js": "text/javascript; charset=utf-8" };

  app.get("/docs", (c) =>
    c.body(html, 200, {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": DOCS_CSP,
      "cache-control": "no-cache",
    }),
  );
  app.get(`${DOCS_ASSETS}/:file`, async (c) => {
    const file = c.req.param("file");
    const type = types[file];
    if (!type) return c.json(errorBody(`no docs asset ${file}`), 404);
    let body = files.get(file);
    if (!body) {
      body = readFile(join(distDir, file));
      body.catch(() => files.delete(file)); // a failed read is retried by the next request
      files.set(file, body);
    }
    return c.body(new Uint8Array(await body), 200, {
      "content-type": type,
      "cache-control": "public, max-age=31536000, immutable",
    });
  });
}
