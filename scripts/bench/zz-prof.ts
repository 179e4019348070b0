// temporary profiling harness (not committed)
import { spawn, execSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { createKey } from "../../app/src/data/keys.ts";
import { migrate } from "../../app/src/data/migrations.ts";
const mode = process.argv[2] ?? "on";
const db = `dsprof_${randomBytes(3).toString("hex")}`;
const admin = new pg.Client("postgres://postgres@127.0.0.1:5432/test"); await admin.connect(); await admin.query(`create database ${db}`);
const url = `postgres://postgres@127.0.0.1:5432/${db}`;
await migrate(url);
const pool = new pg.Pool({ connectionString: url }); pool.on("error", () => {});
const { key } = await createKey(pool, "p", "bench");
const env = mode === "off" ? { DATABASE_URL: "", REDIS_URL: "", AUTH_MODE: "" } : { DATABASE_URL: url, REDIS_URL: "redis://127.0.0.1:6379", REDIS_KEY_PREFIX: "dsprof:", RATE_LIMIT_PLANS: '{"bench":1000000000}', RESPONSE_CACHE: "off", PREDICTION_LOG: process.env.PL ?? "on", AUTH_MODE: process.env.AM ?? "required", RATE_LIMIT: process.env.RL ?? "on" };
const proc = spawn(process.execPath, [...(process.env.PROF ? ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"] : []), "app/src/main.ts"], { env: { ...process.env, PORT: "18123", HOST: "127.0.0.1", LOG_LEVEL: "warn", WEB_CONCURRENCY: "1", MODEL_WATCH: "false", PREDICTION_LOG_SPILL_PATH: "/tmp/dsprof.jsonl", ...env }, stdio: ["ignore", (await import("node:fs")).openSync("/tmp/zzprof.log", "w"), "inherit"] });
for (;;) { if ((await fetch("http://127.0.0.1:18123/health/ready").then(r => r.status, () => 0)) === 200) break; await new Promise(r => setTimeout(r, 100)); }
const lua = `/tmp/dsprof.lua`;
const { writeFileSync } = await import("node:fs");
writeFileSync(lua, `wrk.method="POST"\nwrk.body=${JSON.stringify(JSON.stringify({ instances: [{ age: 50, sex: 1, bmi: 25.3, bp: 90, s1: 190, s2: 115, s3: 50, s4: 4, s5: 4.6, s6: 90 }] }))}\nwrk.headers["Content-Type"]="application/json"\nwrk.headers["Authorization"]="Bearer ${key}"\n`);
execSync(`wrk -t1 -c16 -d2s -s ${lua} http://127.0.0.1:18123/v1/models/diabetes-regressor:predict > /dev/null`);
const sampler = spawn("sh", ["-c", "sleep 2; top -b -n1 | head -20"], { stdio: "inherit" });
for (let i = 0; i < Number(process.env.ROUNDS ?? 1); i++) console.log(execSync(`wrk -t1 -c16 -d5s --latency -s ${lua} http://127.0.0.1:18123/v1/models/diabetes-regressor:predict | grep -E "Requests/sec|99%|Non-2xx"`).toString());
const m = await (await fetch("http://127.0.0.1:18123/metrics")).text();
console.log(m.split("\n").filter(l => /^inferstack_(prediction_log|rate_limit|auth)/.test(l)).join("\n"));
const t0 = Date.now(); proc.kill("SIGTERM"); await new Promise(r => proc.once("exit", r)); console.log("shutdown ms", Date.now() - t0);
console.log((await pool.query("select count(*) from predictions")).rows);
await pool.end(); await admin.query(`drop database ${db} with (force)`); await admin.end();
