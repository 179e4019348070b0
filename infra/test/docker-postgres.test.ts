// The settings DockerPostgres passes as `postgres -c ...`, checked by a real PostgreSQL server
// binary (`postgres -C` parses and validates every setting, then prints one and exits).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chownSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { postgresTuning } from "../components/docker-postgres.ts";
import { presets } from "../presets.ts";

const binDir = join("/usr/lib/postgresql", readdirSync("/usr/lib/postgresql").sort().at(-1)!, "bin");
let dataDir: string;
let work: string;

/** Runs a PostgreSQL binary as the postgres OS user (the server refuses to run as root). */
function asPostgres(binary: string, args: string[]): string {
  const argv =
    process.getuid?.() === 0
      ? ["runuser", "-u", "postgres", "--", join(binDir, binary), ...args]
      : [join(binDir, binary), ...args];
  return execFileSync(argv[0]!, argv.slice(1), { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function showSetting(tuning: Record<string, string>, name: string): string {
  const flags = Object.entries(tuning).flatMap(([k, v]) => ["-c", `${k}=${v}`]);
  return asPostgres("postgres", ["-D", dataDir, ...flags, "-C", name]).trim();
}

before(() => {
  work = mkdtempSync(join(tmpdir(), "inferstack-pgtune-"));
  dataDir = join(work, "data");
  if (process.getuid?.() === 0)
    chownSync(work, Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" })), 0);
  asPostgres("initdb", ["-D", dataDir, "-A", "trust", "-U", "postgres", "--no-sync", "--no-instructions"]);
});
after(() => rmSync(work, { recursive: true, force: true }));

test("every preset's Postgres settings are accepted by a real server", () => {
  for (const tier of ["local", "free"] as const) {
    const tuning = postgresTuning(presets[tier].postgres.memoryMiB);
    for (const name of Object.keys(tuning)) assert.notEqual(showSetting(tuning, name), "", `${tier}: ${name}`);
    assert.equal(showSetting(tuning, "max_connections"), tuning.max_connections);
  }
});

test("memory settings stay inside the container limit across sizes", () => {
  for (const memoryMiB of [64, 128, 192, 256, 512, 1024, 2048, 8192]) {
    const t = postgresTuning(memoryMiB);
    const mb = (v: string) => Number(v.replace(/MB$/, ""));
    const worstCase = mb(t.shared_buffers!) + Number(t.max_connections) * mb(t.work_mem!);
    assert.ok(worstCase <= memoryMiB, `${memoryMiB} MiB: shared_buffers + connections × work_mem = ${worstCase}`);
    assert.ok(
      mb(t.shared_buffers!) <= memoryMiB / 4 || mb(t.shared_buffers!) === 16,
      `${memoryMiB} MiB: shared_buffers ${t.shared_buffers}`,
    );
    // `postgres -C` answers in base units: kB for work_mem, 8 kB pages for shared_buffers.
    assert.equal(Number(showSetting(t, "work_mem")), mb(t.work_mem!) * 1024);
    assert.equal((Number(showSetting(t, "shared_buffers")) * 8) / 1024, mb(t.shared_buffers!));
  }
});
