// The free tier's readiness wait, run as Pulumi's dynamic provider would run it, against a stand-in
// `ssh` on PATH (the one external binary it calls): no network, no cloud.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readyProvider, type ReadyInputs } from "../components/docker-host-ready.ts";

let bin: string;
const originalPath = process.env.PATH;

/** An `ssh` that fails `failures` times ("Connection refused"), then answers like `docker info`. */
function fakeSsh(failures: number): string {
  const log = join(bin, `calls-${failures}-${Math.random().toString(36).slice(2)}.log`);
  writeFileSync(
    join(bin, "ssh"),
    `#!/bin/sh
echo "$*" >> "${log}"
n=$(wc -l < "${log}")
if [ "$n" -le ${failures} ]; then echo "ssh: connect to host 203.0.113.10 port 22: Connection refused" >&2; exit 255; fi
echo "27.5.1"
`,
  );
  chmodSync(join(bin, "ssh"), 0o755);
  return log;
}

const inputs = (extra: Partial<ReadyInputs> = {}): ReadyInputs => ({
  host: "i-0abc",
  user: "ec2-user",
  sshOpts: ["-o", "HostKeyAlias=i-0abc", "-o", "ProxyCommand=aws ssm start-session --target %h"],
  instanceId: "i-0abc",
  timeoutSeconds: 30,
  retryIntervalSeconds: 0.05,
  ...extra,
});

before(() => {
  bin = mkdtempSync(join(tmpdir(), "inferstack-ssh-"));
  process.env.PATH = `${bin}:${originalPath}`;
});
after(() => {
  process.env.PATH = originalPath;
  rmSync(bin, { recursive: true, force: true });
});

test("retries until Docker answers over SSH, then records the engine version", async () => {
  const log = fakeSsh(3);
  const result = await readyProvider.create(inputs());
  assert.equal(result.id, "i-0abc-docker-ready");
  assert.equal(result.outs.dockerVersion, "27.5.1");
  const calls = readFileSync(log, "utf8").trim().split("\n");
  assert.equal(calls.length, 4);
  // The same options the Docker provider uses, non-interactive, then `docker info`.
  assert.equal(calls[0], "-o HostKeyAlias=i-0abc -o ProxyCommand=aws ssm start-session --target %h -o BatchMode=yes -o ConnectTimeout=10 ec2-user@i-0abc docker info --format {{.ServerVersion}}");
});

test("gives up after the timeout with the last SSH error in the message", async () => {
  fakeSsh(1_000_000);
  await assert.rejects(readyProvider.create(inputs({ timeoutSeconds: 0.3 })), /Docker on ec2-user@i-0abc did not answer within 0.3s: ssh: connect to host .* Connection refused/);
});

test("a new instance or address replaces the wait; other changes only update it", async () => {
  const old = inputs();
  assert.deepEqual((await readyProvider.diff("id", old, inputs({ instanceId: "i-0def" }))).replaces, ["instanceId"]);
  assert.deepEqual((await readyProvider.diff("id", old, inputs({ host: "203.0.113.11" }))).replaces, ["host"]);
  const same = await readyProvider.diff("id", old, inputs());
  assert.equal(same.changes, false);
  const opts = await readyProvider.diff("id", old, inputs({ sshOpts: ["-o", "HostKeyAlias=i-0abc"] }));
  assert.deepEqual([opts.changes, opts.replaces], [true, []]);
});
