/** Environment configuration: defaults, coercion, and errors that name the variable. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, loadConfig } from "../src/config.ts";

test("defaults without any variable", () => {
  const c = loadConfig({});
  assert.equal(c.PORT, 8080);
  assert.equal(c.MODELS_DIR, "models");
  assert.equal(c.BODY_LIMIT_BYTES, 1024 * 1024);
  assert.deepEqual(c.CORS_ORIGINS, []);
  assert.equal(c.MODEL_CONTROL, false);
});

test("values are coerced; empty strings count as unset", () => {
  const c = loadConfig({ PORT: "9000", MODEL_WATCH: "0", CORS_ORIGINS: "https://a.example.com, https://b.example.com", LOG_LEVEL: "" });
  assert.equal(c.PORT, 9000);
  assert.equal(c.MODEL_WATCH, false);
  assert.deepEqual(c.CORS_ORIGINS, ["https://a.example.com", "https://b.example.com"]);
  assert.equal(c.LOG_LEVEL, "info");
  assert.deepEqual(loadConfig({ CORS_ORIGINS: "*" }).CORS_ORIGINS, ["*"]);
});

const bad: Array<[Record<string, string>, RegExp]> = [
  [{ PORT: "eighty" }, /PORT="eighty"/],
  [{ PORT: "70000" }, /PORT="70000"/],
  [{ LOG_LEVEL: "loud" }, /LOG_LEVEL="loud"/],
  [{ REQUEST_TIMEOUT_MS: "5" }, /REQUEST_TIMEOUT_MS="5"/],
  [{ BODY_LIMIT_BYTES: "1.5" }, /BODY_LIMIT_BYTES/],
  [{ CORS_ORIGINS: "not a url" }, /CORS_ORIGINS/],
  [{ MODEL_WATCH: "maybe" }, /MODEL_WATCH="maybe"/],
  [{ WEB_CONCURRENCY: "-1" }, /WEB_CONCURRENCY/],
];
for (const [env, message] of bad) {
  test(`rejects ${JSON.stringify(env)}`, () => {
    assert.throws(() => loadConfig(env), (err: unknown) => err instanceof ConfigError && message.test(err.message));
  });
}
