/**
 * DockerHostReady: a resource that exists once a remote Docker engine answers over SSH.
 *
 * Creates: nothing in the cloud. Its create (and update, when the host changes) runs
 * `ssh <sshOpts> <user>@<host> docker info` until it succeeds or `timeoutSeconds` pass, so the
 * Docker provider of the free tier is only used after cloud-init has installed and started
 * Docker. It is a Pulumi dynamic resource: its code runs in Pulumi's nodejs dynamic provider,
 * with only `ssh` from the operator's PATH.
 *
 * Inputs:
 * - `host`: the address or SSM target (instance id) ssh connects to.
 * - `user`: the SSH user (in the `docker` group on the host).
 * - `sshOpts`: the same ssh options the Docker provider uses (ProxyCommand for SSM, known-hosts).
 * - `timeoutSeconds`: give up after this long (default 900: a fresh instance's cloud-init with
 *   package installs takes 2-5 minutes).
 * - `instanceId`: the host's instance id, so a replaced instance waits again.
 * - `retryIntervalSeconds`: pause between attempts (default 10).
 *
 * Cost: none.
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
}

export interface ReadyInputs {
  host: string;
  user: string;
  sshOpts: string[];
  instanceId: string;
  timeoutSeconds?: number;
  retryIntervalSeconds?: number;
}

// Everything below is serialized into the dynamic provider: it may only use its own imports.
export const readyProvider = {
  async create(inputs: ReadyInputs) {
    const { execFile } = await import("node:child_process");
    const deadline = Date.now() + (inputs.timeoutSeconds ?? 900) * 1000;
    let lastError = "";
    for (;;) {
      const result = await new Promise<{ ok: boolean; out: string }>((resolve) =>
        execFile(
          "ssh",
          [...inputs.sshOpts, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", `${inputs.user}@${inputs.host}`, "docker", "info", "--format", "{{.ServerVersion}}"],
          { timeout: 30_000 },
          (error, stdout, stderr) => resolve({ ok: error === null, out: error === null ? String(stdout).trim() : String(stderr || error.message).trim() }),
        ),
      );
      if (result.ok) return { id: `${inputs.instanceId}-docker-ready`, outs: { ...inputs, dockerVersion: result.out } };
      lastError = result.out;
      if (Date.now() > deadline) throw new Error(`Docker on ${inputs.user}@${inputs.host} did not answer within ${inputs.timeoutSeconds ?? 900}s: ${lastError}`);
      await new Promise((r) => setTimeout(r, (inputs.retryIntervalSeconds ?? 10) * 1000));
    }
  },
  async diff(_id: string, olds: ReadyInputs, news: ReadyInputs) {
    const replaces = (["host", "instanceId", "user"] as const).filter((k) => olds[k] !== news[k]);
    return { changes: replaces.length > 0 || JSON.stringify(olds.sshOpts) !== JSON.stringify(news.sshOpts), replaces, deleteBeforeReplace: false };
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
