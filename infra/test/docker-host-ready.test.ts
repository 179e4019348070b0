// The free tier's readiness wait, run as Pulumi's dynamic provider would run it, against stand-in
// `ssh` and `aws` binaries on PATH (the external binaries it calls): no network, no cloud.

import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { CLOUD_INIT_TAIL_LINES, type ReadyInputs, readyProvider } from "../components/docker-host-ready.ts";

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

/**
 * An `ssh` whose `docker info` always fails; `cloudInitLog` (when set) is what the host's
 * `tail` of /var/log/cloud-init-output.log prints, else that read fails too.
 */
function sshWithoutDocker(cloudInitLog: string | undefined): string {
  const log = join(bin, `calls-${Math.random().toString(36).slice(2)}.log`);
  writeFileSync(join(bin, "cloud-init-tail.txt"), cloudInitLog ?? "");
  writeFileSync(
    join(bin, "ssh"),
    `#!/bin/sh
echo "$*" >> "${log}"
case "$*" in
  *cloud-init-output.log*) ${cloudInitLog === undefined ? 'echo "ssh: connect to host 203.0.113.10 port 22: Connection timed out" >&2; exit 255' : `cat "${join(bin, "cloud-init-tail.txt")}"`} ;;
  *) echo "ssh: connect to host 203.0.113.10 port 22: Connection refused" >&2; exit 255 ;;
esac
`,
  );
  chmodSync(join(bin, "ssh"), 0o755);
  return log;
}

/** An `aws` CLI that prints `consoleLines` numbered console lines, or fails when undefined. */
function fakeAws(consoleLines: number | undefined): string {
  const log = join(bin, `aws-${Math.random().toString(36).slice(2)}.log`);
  writeFileSync(
    join(bin, "aws"),
    consoleLines === undefined
      ? `#!/bin/sh\necho "$*" >> "${log}"\necho "Unable to locate credentials" >&2\nexit 253\n`
      : `#!/bin/sh\necho "$*" >> "${log}"\nseq 1 ${consoleLines} | sed 's/^/cloud-init[1234]: console line /'\n`,
  );
  chmodSync(join(bin, "aws"), 0o755);
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
  assert.equal(
    calls[0],
    "-o HostKeyAlias=i-0abc -o ProxyCommand=aws ssm start-session --target %h -o BatchMode=yes -o ConnectTimeout=10 ec2-user@i-0abc docker info --format {{.ServerVersion}}",
  );
});

test("gives up after the timeout with the last SSH error and the tail of cloud-init's log", async () => {
  const remoteTail = Array.from({ length: CLOUD_INIT_TAIL_LINES }, (_, i) => `line ${i + 1}`)
    .join("\n")
    .replace(`line ${CLOUD_INIT_TAIL_LINES}`, "No package docker available.");
  const calls = sshWithoutDocker(remoteTail);
  fakeAws(undefined);
  const err: Error = await readyProvider.create(inputs({ timeoutSeconds: 0.3 })).then(
    () => assert.fail("resolved"),
    (e: Error) => e,
  );
  assert.match(
    err.message,
    /^Docker on ec2-user@i-0abc did not answer within 0.3s: ssh: connect to host .* Connection refused\n/,
  );
  assert.match(
    err.message,
    /last 40 lines of \/var\/log\/cloud-init-output\.log:\nline 1\n[\s\S]*\nNo package docker available\.$/,
  );
  const last = readFileSync(calls, "utf8").trim().split("\n").at(-1)!;
  // The same connection as the wait itself, root's log read through passwordless sudo.
  assert.equal(
    last,
    "-o HostKeyAlias=i-0abc -o ProxyCommand=aws ssm start-session --target %h -o BatchMode=yes -o ConnectTimeout=10 ec2-user@i-0abc sudo -n tail -n 40 /var/log/cloud-init-output.log",
  );
});

test("when SSH never gets in, the error shows the serial console's last lines instead", async () => {
  sshWithoutDocker(undefined);
  const awsCalls = fakeAws(100);
  const err: Error = await readyProvider.create(inputs({ timeoutSeconds: 0.2, region: "eu-west-1" })).then(
    () => assert.fail("resolved"),
    (e: Error) => e,
  );
  assert.match(
    err.message,
    /SSH could not read the cloud-init log \(ssh: .*Connection timed out\); last 40 lines of the serial console/,
  );
  assert.match(err.message, /console line 61\n/);
  assert.doesNotMatch(err.message, /console line 60\n/);
  assert.match(err.message, /console line 100$/);
  assert.equal(
    readFileSync(awsCalls, "utf8").trim(),
    "ec2 get-console-output --instance-id i-0abc --latest --query Output --output text --region eu-west-1",
  );
});

test("with neither SSH nor the console, the error says both were tried", async () => {
  sshWithoutDocker(undefined);
  fakeAws(undefined);
  await assert.rejects(
    readyProvider.create(inputs({ timeoutSeconds: 0.2 })),
    /no cloud-init log: SSH failed \(ssh: .*timed out\) and so did aws ec2 get-console-output \(Unable to locate credentials\)/,
  );
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
