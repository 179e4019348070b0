/** Environment configuration: defaults, coercion, and errors that name the variable. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ConfigError, ENVIRONMENT_VARIABLES, loadConfig } from "../src/config.ts";

test("defaults without any variable", () => {
  const c = loadConfig({});
  assert.equal(c.PORT, 8080);
  assert.equal(c.MODELS_DIR, "models");
  assert.equal(c.BODY_LIMIT_BYTES, 1024 * 1024);
  assert.deepEqual(c.CORS_ORIGINS, []);
  assert.equal(c.MODEL_CONTROL, false);
});

test("values are coerced; empty strings count as unset", () => {
  const c = loadConfig({
    PORT: "9000",
    MODEL_WATCH: "0",
    CORS_ORIGINS: "https://a.example.com, https://b.example.com",
    LOG_LEVEL: "",
  });
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
    assert.throws(
      () => loadConfig(env),
      (err: unknown) => err instanceof ConfigError && message.test(err.message),
    );
  });
}

test("one schema: data-plane variables are checked with the others, in one error of one class", async () => {
  const dataPlane = await import("../src/data/config.ts");
  assert.equal(dataPlane.ConfigError, ConfigError);
  for (const load of [loadConfig, dataPlane.loadConfig]) {
    assert.throws(
      () => load({ PORT: "eighty", REDIS_URL: "localhost:6379", PREDICTION_LOG_BATCH_SIZE: "9000" }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /PORT="eighty"/.test(err.message) &&
        /REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/.test(err.message) &&
        /PREDICTION_LOG_BATCH_SIZE="9000"/.test(err.message),
    );
  }
  const c = loadConfig({
    DATABASE_URL: "postgres://app@db:5432/app",
    RATE_LIMIT_PLANS: '{"team": 5000}',
    RATE_LIMIT_ANON_PLAN: "team",
  });
  assert.equal(c.AUTH_MODE, "required");
  assert.deepEqual(c.RATE_LIMIT_PLANS.team, { limit: 5000, windowSeconds: 3600 });
  assert.equal(dataPlane.dataPlaneConfig(c).anonPlan, "team");
});

test("one boolean syntax: every boolean variable takes true/false, 1/0, yes/no, on/off in any case", () => {
  const booleans = Object.entries(loadConfig({}))
    .filter(([, v]) => typeof v === "boolean")
    .map(([k]) => k);
  assert.deepEqual(booleans.sort(), [
    "MIGRATE_ON_START",
    "MODEL_CONTROL",
    "MODEL_WATCH",
    "PREDICTION_LOG",
    "RATE_LIMIT",
    "RESPONSE_CACHE",
    "TRUST_PROXY",
  ]);
  const words: Array<[string, boolean]> = [
    ["true", true],
    ["false", false],
    ["1", true],
    ["0", false],
    ["yes", true],
    ["no", false],
    ["on", true],
    ["off", false],
    ["ON", true],
    ["No", false],
  ];
  for (const key of booleans) {
    for (const [word, value] of words)
      assert.equal(loadConfig({ [key]: word })[key as keyof ReturnType<typeof loadConfig>], value, `${key}=${word}`);
    assert.throws(
      () => loadConfig({ [key]: "maybe" }),
      new RegExp(`${key}="maybe": expected true/false, 1/0, yes/no or on/off`),
    );
  }
});

test("values that may carry credentials are never echoed in the error", () => {
  for (const [key, value] of [
    ["DATABASE_URL", "mysql://app:s3cret@db/app"],
    ["REDIS_URL", "http://:s3cret@cache:6379"],
  ] as const) {
    assert.throws(
      () => loadConfig({ [key]: value }),
      (err: unknown) => err instanceof ConfigError && err.message.includes(key) && !err.message.includes("s3cret"),
    );
  }
});

test("combinations are checked too, naming the variable", () => {
  assert.throws(() => loadConfig({ AUTH_MODE: "required" }), /AUTH_MODE: 'required' needs DATABASE_URL/);
  assert.throws(
    () => loadConfig({ REDIS_URL: "redis://cache:6379", RATE_LIMIT_ANON_PLAN: "gold" }),
    /RATE_LIMIT_ANON_PLAN: unknown plan 'gold'/,
  );
  assert.throws(() => loadConfig({ RATE_LIMIT_PLANS: '{"Free": 5}' }), /RATE_LIMIT_PLANS="\{\\"Free\\": 5\}": Free: /);
});

test("the process count defaults to one per usable CPU; WEB_CONCURRENCY overrides", async () => {
  const { processCount, usableCpus } = await import("../src/cpu.ts");
  assert.equal(loadConfig({}).WEB_CONCURRENCY, 0);
  assert.equal(processCount(loadConfig({}).WEB_CONCURRENCY), usableCpus());
  assert.equal(processCount(loadConfig({ WEB_CONCURRENCY: "3" }).WEB_CONCURRENCY), 3);
});

test("every variable the schema reads has a row in the docs' configuration tables", () => {
  const docs = ["../../docs/api.md", "../../docs/data-plane.md"]
    .map((d) => readFileSync(new URL(d, import.meta.url), "utf8"))
    .join("\n");
  // The first cell of each table row: `A` or `A` / `B`.
  const documented = new Set(
    docs
      .split("\n")
      .filter((l) => l.startsWith("| `"))
      .flatMap((l) => [...l.split("|")[1]!.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1])),
  );
  assert.deepEqual(
    ENVIRONMENT_VARIABLES.filter((v) => !documented.has(v)),
    [],
  );
});
