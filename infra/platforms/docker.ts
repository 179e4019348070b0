/**
 * The Docker tiers, which run DockerStack on one engine. With `host: null` (`local`) that is the
 * operator's engine (the one `DOCKER_HOST` or `docker:host` points at, else the local socket).
 * With a `host` (`free`) it is one EC2 instance (Ec2DockerHost) whose engine Pulumi drives over
 * SSH, directly from `host.adminCidr` or tunnelled through SSM Session Manager when no SSH
 * ingress is open.
 */

import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { AlertReceivers } from "../../monitoring/index.ts";
import { DockerHostReady } from "../components/docker-host-ready.ts";
import { DockerStack } from "../components/docker-stack.ts";
import { Ec2DockerHost, instanceMemoryMiB } from "../components/ec2-docker-host.ts";
import { ConfigError, type DockerStackConfig, readSecretSettings } from "../config.ts";
import type { TierOutputs } from "./outputs.ts";

type Ec2HostConfig = NonNullable<DockerStackConfig["host"]>;

/** Memory limits of every container the stack runs, by role (MiB). */
export function containerMemoryBudget(cfg: DockerStackConfig): Record<string, number> {
  const m = cfg.monitoring;
  return {
    app: cfg.app.replicas * cfg.app.memoryMiB,
    postgres: cfg.postgres.memoryMiB,
    redis: cfg.redis.memoryMiB,
    edge: cfg.edge.memoryMiB,
    prometheus: m.prometheusMemoryMiB,
    alertmanager: m.alertmanagerMemoryMiB,
    grafana: m.grafanaMemoryMiB,
    // postgres and redis exporters, node-exporter if on; cAdvisor counts double.
    exporters: m.exporterMemoryMiB * (2 + (m.nodeExporter ? 1 : 0) + (m.cadvisor ? 2 : 0)),
    backups: cfg.backups.memoryMiB,
  };
}

function validateDockerTier(cfg: DockerStackConfig): void {
  const issues: { key: string; message: string }[] = [];
  const { host } = cfg;
  if (host !== null) {
    if (host.sshPublicKey === null) {
      issues.push({
        key: "inferstack:host.sshPublicKey",
        message:
          'is required to deploy to an EC2 host: pulumi config set --path inferstack:host.sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"',
      });
    }
    if (cfg.dns.zoneName === null)
      issues.push({
        key: "inferstack:dns.zoneName",
        message: "is required with an EC2 host (the host's A record goes in this Route 53 zone)",
      });
    if (cfg.edge.tls !== "letsencrypt")
      issues.push({
        key: "inferstack:edge.tls",
        message: "must be letsencrypt with an EC2 host (a public host needs a trusted certificate)",
      });
    const hostMiB = instanceMemoryMiB(host.instanceType);
    const total = Object.values(containerMemoryBudget(cfg)).reduce((a, b) => a + b, 0);
    if (hostMiB !== undefined && total > hostMiB) {
      issues.push({
        key: "inferstack:app.memoryMiB",
        message: `container memory limits sum to ${total} MiB, more than the ${hostMiB} MiB of ${host.instanceType}: lower app.replicas/app.memoryMiB or another *.memoryMiB, or pick a bigger host.instanceType`,
      });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
}

function secretSettings(): {
  alertReceivers?: pulumi.Output<AlertReceivers>;
  grafanaAdminPassword?: pulumi.Output<string>;
} {
  return readSecretSettings(new pulumi.Config("inferstack"));
}

function deployOnLocalEngine(cfg: DockerStackConfig, stack: string): TierOutputs {
  // An explicit provider does not read the `docker:` namespace itself: pass `docker:host` on;
  // without it the provider uses DOCKER_HOST, else the local socket.
  const dockerHost = new pulumi.Config("docker").get("host");
  const provider = new docker.Provider("local-engine", dockerHost ? { host: dockerHost } : {});
  const publicUrl = `https://${cfg.domain}${cfg.edge.httpsPort === 443 ? "" : `:${cfg.edge.httpsPort}`}`;
  const system = new DockerStack(
    "inferstack",
    // Published on loopback only: the local stack is not exposed to the LAN.
    { cfg, stackName: stack, publishAddress: "127.0.0.1", publicUrl, ...secretSettings() },
    { provider },
  );
  return {
    url: system.url,
    grafanaUrl: system.grafanaUrl,
    grafanaAdminPassword: system.grafanaAdminPassword,
    trustCaCommand: `docker cp inferstack-${stack}-edge:/data/caddy/pki/authorities/local/root.crt ./inferstack-local-ca.crt`,
    containers: `docker ps --filter label=inferstack.stack=${stack}`,
  };
}

function deployOnEc2Host(cfg: DockerStackConfig, hostCfg: Ec2HostConfig, stack: string): TierOutputs {
  const host = new Ec2DockerHost("host", {
    instanceType: hostCfg.instanceType,
    volumeGiB: hostCfg.volumeGiB,
    swapMiB: hostCfg.swapMiB,
    sshUser: hostCfg.sshUser,
    sshPublicKey: hostCfg.sshPublicKey ?? "",
    adminCidr: hostCfg.adminCidr,
    vpcCidr: hostCfg.vpcCidr,
    domain: cfg.domain,
    zoneName: cfg.dns.zoneName ?? "",
    // The policy pack's required tags (app, env, tier), as on the AWS tiers.
    tags: { app: "inferstack", env: stack, tier: cfg.tier },
    // The dumps must outlive the host: ship them to S3 every hour.
    backupSync: { volumeName: `inferstack-${stack}-backups`, retentionDays: cfg.backups.retentionDays },
  });
  const region = new pulumi.Config("aws").get("region") ?? "us-east-1";
  // Host keys are pinned per instance id: a replaced instance is a new alias, the same one is verified.
  const sshOpts = (viaSsm: boolean) =>
    host.instanceId.apply((id) => [
      "-o",
      "StrictHostKeyChecking=accept-new",
      "-o",
      "UserKnownHostsFile=~/.ssh/inferstack_known_hosts",
      "-o",
      `HostKeyAlias=${id}`,
      "-o",
      "ServerAliveInterval=30",
      ...(viaSsm
        ? [
            "-o",
            `ProxyCommand=aws ssm start-session --region ${region} --target %h --document-name AWS-StartSSHSession --parameters portNumber=%p`,
          ]
        : []),
    ]);
  const viaSsm = hostCfg.adminCidr === null;
  const target = viaSsm ? host.instanceId : host.publicIp;
  const opts = sshOpts(viaSsm);
  const ready = new DockerHostReady(
    "host-docker-ready",
    { host: target, user: hostCfg.sshUser, sshOpts: opts, instanceId: host.instanceId, region },
    { dependsOn: [host] },
  );
  // The provider's host waits on `ready`: no Docker call happens before the engine answers.
  const provider = new docker.Provider("host-engine", {
    host: pulumi.all([ready.id, target]).apply(([, t]) => `ssh://${hostCfg.sshUser}@${t}`),
    sshOpts: opts,
  });
  const system = new DockerStack(
    "inferstack",
    { cfg, stackName: stack, publishAddress: "0.0.0.0", publicUrl: `https://${cfg.domain}`, ...secretSettings() },
    { provider, dependsOn: [ready, host.record] },
  );
  return {
    url: system.url,
    grafanaUrl: system.grafanaUrl,
    grafanaAdminPassword: system.grafanaAdminPassword,
    publicIp: host.publicIp,
    instanceId: host.instanceId,
    sshCommand: viaSsm
      ? pulumi.interpolate`aws ssm start-session --region ${region} --target ${host.instanceId}`
      : pulumi.interpolate`ssh ${hostCfg.sshUser}@${host.publicIp}`,
    dockerHost: pulumi.interpolate`ssh://${hostCfg.sshUser}@${target}`,
    backupBucket: host.backupBucket,
  };
}

export function deployDockerTier(cfg: DockerStackConfig): TierOutputs {
  validateDockerTier(cfg);
  const stack = pulumi.getStack();
  return cfg.host === null ? deployOnLocalEngine(cfg, stack) : deployOnEc2Host(cfg, cfg.host, stack);
}
