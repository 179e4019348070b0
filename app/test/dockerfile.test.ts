/**
 * Fast static checks of app/Dockerfile, run with every `npm test`. The image itself is built and
 * run on a real Docker engine by `npm run image:test` (scripts/image-test.ts, docs/image.md): that
 * is where the build, the served predictions, the non-root process, the HEALTHCHECK and the
 * SIGTERM stop are checked. These catch, without an engine, what would break that run or a build
 * on a machine that cannot reach Docker Hub.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const ROOT = new URL("../../", import.meta.url).pathname;
const dockerfile = readFileSync(join(ROOT, "app/Dockerfile"), "utf8");
const ignore = readFileSync(join(ROOT, "app/Dockerfile.dockerignore"), "utf8");
const instructions = dockerfile
  .replace(/\\\n/g, " ")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#"));

test("multi-stage, Node 24 base pinned by digest through a build arg", () => {
  const arg = instructions.find((l) => l.startsWith("ARG NODE_IMAGE="));
  assert.match(arg ?? "", /^ARG NODE_IMAGE=node:24[\w.-]*@sha256:[0-9a-f]{64}$/);
  const froms = instructions.filter((l) => l.startsWith("FROM "));
  assert.ok(froms.length >= 2, "at least two stages");
  for (const f of froms) assert.match(f, /^FROM \$\{NODE_IMAGE\} AS \w+$/);
});

test("no '# syntax=' directive: BuildKit would pull a frontend image from a registry before building", () => {
  // Parser directives are only recognised before any other line; BuildKit's built-in frontend has
  // every feature this file uses (RUN --mount, COPY --chown).
  assert.doesNotMatch(dockerfile, /^#\s*syntax\s*=/im);
  assert.ok(!instructions.some((l) => /^FROM .*docker\/dockerfile/.test(l)));
});

test("a proxy CA reaches npm ci only as an optional build secret, never as a layer", () => {
  const npmCi = instructions.find((l) => /npm ci /.test(l)) ?? "";
  assert.match(npmCi, /--mount=type=secret,id=npm-ca(\s|$)/);
  assert.doesNotMatch(npmCi, /id=npm-ca,[^ ]*required=true/, "builds without the secret must still work");
  assert.ok(
    !instructions.some((l) => /^(COPY|ADD|ENV|ARG) .*(NODE_EXTRA_CA_CERTS|\.pem|\.crt)/.test(l)),
    "no CA copied or set in an image layer",
  );
});

test("production dependencies only, from the lock file", () => {
  assert.ok(instructions.some((l) => /npm ci --omit=dev/.test(l)));
  assert.ok(!instructions.some((l) => /npm (install|i)\b/.test(l)), "npm ci, never npm install");
});

test("runs as a non-root user with a HEALTHCHECK and the API entry point", () => {
  const lastFrom = instructions.findLastIndex((l) => l.startsWith("FROM "));
  const runtime = instructions.slice(lastFrom).join("\n");
  assert.match(runtime, /^USER node$/m);
  assert.match(runtime, /^HEALTHCHECK .*\/health\/live/m);
  assert.match(runtime, /^CMD \["node", .*"app\/src\/main\.ts"\]$/m);
  assert.match(runtime, /^EXPOSE 8080$/m);
});

test("every copied path exists and is not excluded by the ignore file", () => {
  const copies = instructions.filter((l) => l.startsWith("COPY ") && !l.includes("--from="));
  assert.ok(copies.length > 0);
  const rules = ignore
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  assert.equal(rules[0], "*", "deny by default");
  for (const copy of copies) {
    const parts = copy.split(/\s+/).filter((p) => !p.startsWith("--"));
    for (const src of parts.slice(1, -1)) {
      assert.ok(existsSync(join(ROOT, src)), `${src} exists`);
      assert.ok(
        rules.some((r) => r === `!${src}` || r === `!${src}/**`),
        `${src} is re-included by the ignore file`,
      );
    }
  }
});

test("the image never needs the Pulumi SDKs: the API does not import them", async () => {
  const { readdir } = await import("node:fs/promises");
  const files = (await readdir(join(ROOT, "app/src"), { recursive: true })).filter((f) => f.endsWith(".ts"));
  for (const f of files) assert.doesNotMatch(readFileSync(join(ROOT, "app/src", f), "utf8"), /from "@pulumi\//, f);
});
