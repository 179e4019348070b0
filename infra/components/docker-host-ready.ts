/**
 * DockerHostReady: a resource that exists once a remote Docker engine answers over SSH.
 *
 * Creates: nothing in the cloud. Its create (and update, when the host changes) runs
 * `ssh <sshOpts> <user>@<host> docker info` until it succeeds or `timeoutSeconds` pass, so the
 * Docker provider of the free tier is only used after cloud-init has installed and started
 * Docker. When it gives up, its error carries the tail of cloud-init's output, the record of what
 * the host did on boot: read over the same SSH connection (`/var/log/cloud-init-output.log`), or,
 * when SSH itself never got in (a key that never arrived, no route), from the instance's serial
 * console through `aws ec2 get-console-output`, where cloud-init writes the same lines.
 * It is a Pulumi dynamic resource: its code runs in Pulumi's nodejs dynamic provider, with only
 * `ssh` (and, for the console, `aws`) from the operator's PATH.
 *
 * Inputs:
 * - `host`: the address or SSM target (instance id) ssh connects to.
 * - `user`: the SSH user (in the `docker` group on the host).
 * - `sshOpts`: the same ssh options the Docker provider uses (ProxyCommand for SSM, known-hosts).
 * - `timeoutSeconds`: give up after this long (default 900: a fresh instance's cloud-init with
 *   package installs takes 2-5 minutes).
 * - `instanceId`: the host's instance id, so a replaced instance waits again.
 * - `retryIntervalSeconds`: pause between attempts (default 10).
 * - `region`: the instance's region, for reading its console when SSH fails.
 *
 * Cost: none.
 *
 * Why not `@pulumi/command`'s `remote.Command` (e.g. `cloud-init status --wait` over SSH): its
 * connection is its own Go SSH client, configured by host, port, user, key or agent, an optional
 * pinned `hostKey` and an SSH bastion as `proxy` (ConnectionArgs in @pulumi/command 1.2.1). It has
 * no ProxyCommand, so it cannot take the free tier's default route, SSH inside an SSM session
 * (`ProxyCommand=aws ssm start-session ...`), and it does not read the known-hosts file that pins
 * the host key per instance id. The Docker provider connects with the operator's `ssh` and these
 * same `sshOpts`, so waiting with that `ssh` proves the exact path the provider will use. And when
 * SSH never gets in, `remote.Command` fails on the dial with nothing to show, where this reads the
 * serial console instead. `local.Command` could run the same `ssh` loop, but as a shell script in a
 * string, with a provider plugin to install, for no gain over this tested code.
 */
import * as pulumi from "@pulumi/pulumi";

export interface DockerHostReadyArgs {
  host: pulumi.Input<string>;
  user: pulumi.Input<string>;
  sshOpts: pulumi.Input<pulumi.Input<string>[]>;
  instanceId: pulumi.Input<string>;
  timeoutSeconds?: pulumi.Input<number>;
  /** Pause between attempts (default 10 s). */
  retryIntervalSeconds?: pulumi.Input<number>;
  region?: pulumi.Input<string>;
}

export interface ReadyInputs {
  host: string;
  user: string;
  sshOpts: string[];
  instanceId: string;
  timeoutSeconds?: number;
  retryIntervalSeconds?: number;
  region?: string;
}

/** How many lines of cloud-init's output a failed wait shows. */
export const CLOUD_INIT_TAIL_LINES = 40;

// Everything below is serialized into the dynamic provider: it may only use its own imports.
export const readyProvider = {
  async create(inputs: ReadyInputs) {
    const { execFile } = await import("node:child_process");
    const run = (file: string, args: string[]) =>
      new Promise<{ ok: boolean; out: string }>((resolve) =>
        execFile(file, args, { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
          resolve({
            ok: error === null,
            out: error === null ? String(stdout).trim() : String(stderr || error.message).trim(),
          }),
        ),
      );
    const ssh = (...command: string[]) =>
      run("ssh", [
        ...inputs.sshOpts,
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        `${inputs.user}@${inputs.host}`,
        ...command,
      ]);
    const tailOf = (text: string) => text.split("\n").slice(-CLOUD_INIT_TAIL_LINES).join("\n");
    const deadline = Date.now() + (inputs.timeoutSeconds ?? 900) * 1000;
    let lastError = "";
    for (;;) {
      const result = await ssh("docker", "info", "--format", "{{.ServerVersion}}");
      if (result.ok) return { id: `${inputs.instanceId}-docker-ready`, outs: { ...inputs, dockerVersion: result.out } };
      lastError = result.out;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, (inputs.retryIntervalSeconds ?? 10) * 1000));
    }
    let diagnosis: string;
    const log = await ssh(`sudo -n tail -n ${CLOUD_INIT_TAIL_LINES} /var/log/cloud-init-output.log`);
    if (log.ok) diagnosis = `last ${CLOUD_INIT_TAIL_LINES} lines of /var/log/cloud-init-output.log:\n${log.out}`;
    else {
      const consoleArgs = [
        "ec2",
        "get-console-output",
        "--instance-id",
        inputs.instanceId,
        "--latest",
        "--query",
        "Output",
        "--output",
        "text",
        ...(inputs.region ? ["--region", inputs.region] : []),
      ];
      const output = await run("aws", consoleArgs);
      diagnosis =
        output.ok && output.out !== "" && output.out !== "None"
          ? `SSH could not read the cloud-init log (${log.out}); last ${CLOUD_INIT_TAIL_LINES} lines of the serial console (aws ${consoleArgs.join(" ")}):\n${tailOf(output.out)}`
          : `no cloud-init log: SSH failed (${log.out}) and so did aws ec2 get-console-output (${output.out || "empty"})`;
    }
    throw new Error(
      `Docker on ${inputs.user}@${inputs.host} did not answer within ${inputs.timeoutSeconds ?? 900}s: ${lastError}\n${diagnosis}`,
    );
  },
  async diff(_id: string, olds: ReadyInputs, news: ReadyInputs) {
    const replaces = (["host", "instanceId", "user"] as const).filter((k) => olds[k] !== news[k]);
    return {
      changes: replaces.length > 0 || JSON.stringify(olds.sshOpts) !== JSON.stringify(news.sshOpts),
      replaces,
      deleteBeforeReplace: false,
    };
  },
  async update(_id: string, _olds: ReadyInputs, news: ReadyInputs) {
    return { outs: news };
  },
} satisfies pulumi.dynamic.ResourceProvider;

export class DockerHostReady extends pulumi.dynamic.Resource {
  declare readonly dockerVersion: pulumi.Output<string>;

  constructor(name: string, args: DockerHostReadyArgs, opts?: pulumi.CustomResourceOptions) {
    super(readyProvider, name, { dockerVersion: undefined, ...args }, opts, "inferstack", "DockerHostReady");
  }
}
