import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { images, pinned } from "../images.ts";
import { mockPasswordFor } from "../offline/cloud-mocks.ts";
import { type MockedResource, type MockedStack, runUnderMocks, unwrapSecrets } from "../offline/run-under-mocks.ts";
import { main } from "../program.ts";

let stack: MockedStack;
/** Resource options as registered (the mocks only see inputs). */
const options = new Map<string, pulumi.CustomResourceOptions>();
let work: string;
const containers = () => stack.resources.filter((r) => r.type === "docker:index/container:Container");
/** postgres, app-1, prometheus, ...: the component's resource name without the stack prefix. */
const roleOf = (c: MockedResource) => c.name.replace(/^inferstack-(monitoring-)?/, "");
const container = (role: string): MockedResource => {
  const found = containers().find((c) => roleOf(c) === role);
  assert.ok(found, `no container ${role}`);
  return found;
};
const env = (c: MockedResource): Record<string, string> =>
  Object.fromEntries(
    (unwrapSecrets(c.inputs.envs) as string[]).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
  );
const uploads = (c: MockedResource): Record<string, string> =>
  Object.fromEntries(
    (unwrapSecrets(c.inputs.uploads ?? []) as { file: string; content: string }[]).map((u) => [u.file, u.content]),
  );

before(async () => {
  stack = await runUnderMocks("local", { "inferstack:tier": "local" }, () => {
    pulumi.runtime.registerStackTransformation((args) => {
      options.set(args.name, args.opts as pulumi.CustomResourceOptions);
      return undefined;
    });
    return main();
  });
  work = mkdtempSync(join(tmpdir(), "inferstack-docker-local-"));
});
after(() => rmSync(work, { recursive: true, force: true }));

test("the local stack runs the whole system on the local engine", () => {
  const roles = containers().map(roleOf).sort();
  // node-exporter and cAdvisor need host bind mounts that Docker Desktop refuses: off on local.
  assert.deepEqual(roles, [
    "alertmanager",
    "app-1",
    "app-2",
    "backups",
    "edge",
    "grafana",
    "postgres",
    "postgres-exporter",
    "prometheus",
    "redis",
    "redis-exporter",
  ]);
  const providers = stack.resources.filter((r) => r.type === "pulumi:providers:docker");
  assert.equal(providers.length, 1);
  assert.equal(providers[0]!.inputs.host, undefined, "local uses DOCKER_HOST / the local socket");
  for (const r of stack.resources.filter((r) => r.custom && r.type.startsWith("docker:"))) {
    assert.match(r.provider ?? "", /local-engine/, `${r.name} must use the local engine provider`);
  }
  assert.equal(stack.resources.filter((r) => r.type.startsWith("aws:")).length, 0);
});

test("outputs give the URL, Grafana's URL and the tier", () => {
  assert.equal(stack.outputs.tier, "local");
  assert.equal(stack.outputs.url, "https://localhost:8443");
  assert.equal(stack.outputs.grafanaUrl, "https://localhost:8443/grafana/");
  assert.equal(stack.outputs.estimatedMonthlyCost, 0);
});

test("every third-party image is pulled by digest and every container runs a pinned or built image", () => {
  const pulls = stack.resources.filter((r) => r.type === "docker:index/remoteImage:RemoteImage");
  const allowed = new Set(Object.keys(images).map((k) => pinned(k as keyof typeof images)));
  for (const p of pulls) {
    assert.match(p.inputs.name, /^[a-z0-9./_-]+:[\w.-]+@sha256:[0-9a-f]{64}$/, p.name);
    assert.ok(allowed.has(p.inputs.name), `${p.inputs.name} is not from infra/images.ts`);
  }
  for (const c of containers()) {
    const image = String(c.inputs.image);
    assert.match(image, /(@|^)sha256:[0-9a-f]{64}$/, `${c.name} runs ${image}`);
  }
  // The replicas run the build's own digest, not the mutable tag.
  assert.match(String(container("app-1").inputs.image), /^inferstack-local-app@sha256:/);
  const build = stack.resources.find((r) => r.type === "docker:index/image:Image");
  assert.deepEqual(build?.inputs.build, { context: ".", dockerfile: "app/Dockerfile" });
  assert.equal(build?.inputs.skipPush, true);
});

test("the pinned image table names exact versions, digests and where each digest was checked", () => {
  for (const [name, image] of Object.entries(images)) {
    assert.match(image.digest, /^sha256:[0-9a-f]{64}$/, name);
    assert.match(image.tag, /:v?\d+(\.\d+)*(-[a-z0-9.]+)?$/, `${name}: a version tag, never latest`);
    assert.ok(image.source.length > 10, `${name}: say where the digest came from`);
  }
  assert.equal(new Set(Object.values(images).map((i) => i.digest)).size, Object.keys(images).length);
});

test("every container has a restart policy, a memory limit and rotated logs", () => {
  for (const c of containers()) {
    assert.equal(c.inputs.restart, "unless-stopped", c.name);
    assert.ok(Number(c.inputs.memory) >= 16, `${c.name} memory ${c.inputs.memory}`);
    assert.equal(c.inputs.logDriver, "json-file");
    assert.deepEqual(c.inputs.logOpts, { "max-size": "10m", "max-file": "3", compress: "true" });
    assert.ok((c.inputs.securityOpts as string[]).includes("no-new-privileges:true"));
  }
  assert.equal(container("app-1").inputs.memory, 384);
  assert.equal(container("postgres").inputs.memory, 256);
  assert.equal(container("redis").inputs.memory, 128);
});

test("services have healthchecks and pulumi waits for them", () => {
  for (const role of [
    "postgres",
    "redis",
    "app-1",
    "app-2",
    "edge",
    "prometheus",
    "alertmanager",
    "grafana",
    "backups",
    "postgres-exporter",
  ]) {
    const c = container(role);
    const tests = c.inputs.healthcheck?.tests as string[] | undefined;
    assert.ok(tests && tests.length >= 2 && /^CMD/.test(tests[0]!), `${role} healthcheck`);
    assert.equal(c.inputs.wait, true, `${role} waits healthy`);
  }
  assert.match(container("postgres").inputs.healthcheck.tests[1], /pg_isready/);
  assert.match(container("redis").inputs.healthcheck.tests[1], /valkey-cli .*ping/);
  assert.match(container("app-1").inputs.healthcheck.tests[1], /\/health\/live/);
});

test("data lives in named volumes", () => {
  const mounts = (role: string) =>
    Object.fromEntries(
      (container(role).inputs.volumes as { containerPath: string; volumeName?: string }[]).map((v) => [
        v.containerPath,
        v.volumeName,
      ]),
    );
  assert.equal(mounts("postgres")["/var/lib/postgresql/data"], "inferstack-local-pgdata");
  assert.equal(mounts("backups")["/backups"], "inferstack-local-backups");
  assert.equal(mounts("app-1")["/var/lib/inferstack/spill"], "inferstack-local-app-1-spill");
  assert.equal(mounts("app-2")["/var/lib/inferstack/spill"], "inferstack-local-app-2-spill");
  assert.equal(mounts("edge")["/data"], "inferstack-local-caddy-data");
  assert.equal(mounts("prometheus")["/prometheus"], "inferstack-local-prometheus-data");
  assert.equal(mounts("grafana")["/var/lib/grafana"], "inferstack-local-grafana-data");
  const volumes = stack.resources.filter((r) => r.type === "docker:index/volume:Volume").map((r) => r.inputs.name);
  assert.equal(new Set(volumes).size, volumes.length);
});

test("only the edge proxy publishes ports, on loopback, and the data network is internal", () => {
  for (const c of containers()) {
    if (roleOf(c) === "edge") continue;
    assert.equal(c.inputs.ports, undefined, `${c.name} must not publish ports`);
  }
  const ports = container("edge").inputs.ports as {
    internal: number;
    external: number;
    ip: string;
    protocol: string;
  }[];
  assert.deepEqual(ports.map((p) => `${p.ip}:${p.external}/${p.protocol}`).sort(), [
    "127.0.0.1:8080/tcp",
    "127.0.0.1:8443/tcp",
    "127.0.0.1:8443/udp",
  ]);
  const networks = stack.resources.filter((r) => r.type === "docker:index/network:Network");
  assert.deepEqual(networks.map((n) => [n.inputs.name, Boolean(n.inputs.internal)]).sort(), [
    ["inferstack-local-data", true],
    ["inferstack-local-edge", false],
  ]);
  const nets = (role: string) =>
    (container(role).inputs.networksAdvanced as { name: string }[]).map((n) => n.name).sort();
  assert.deepEqual(nets("postgres"), ["inferstack-local-data"]);
  assert.deepEqual(nets("redis"), ["inferstack-local-data"]);
  assert.deepEqual(nets("edge"), ["inferstack-local-edge"]);
  assert.deepEqual(nets("app-1"), ["inferstack-local-data", "inferstack-local-edge"]);
});

test("the edge proxy terminates TLS with its internal CA and balances the replicas with health checks", () => {
  const caddyfile = uploads(container("edge"))["/etc/caddy/Caddyfile"]!;
  assert.match(caddyfile, /^localhost:8443 \{$/m);
  assert.match(caddyfile, /^\ttls internal$/m);
  assert.match(caddyfile, /http_port 8080/);
  assert.match(caddyfile, /https_port 8443/);
  assert.match(caddyfile, /reverse_proxy app-1:8080 app-2:8080 \{/);
  assert.match(caddyfile, /health_uri \/health\/ready/);
  assert.match(caddyfile, /lb_try_duration/);
  assert.match(caddyfile, /handle \/grafana\/\* \{\n\t\treverse_proxy grafana:3000/);
  assert.match(caddyfile, /@metrics path \/metrics/);
});

test("the app replicas get their wiring from the stack, secrets included", () => {
  const e = env(container("app-1"));
  assert.equal(
    e.DATABASE_URL,
    `postgres://inferstack:${mockPasswordFor("inferstack-postgres-password")}@postgres:5432/inferstack`,
  );
  assert.equal(e.REDIS_URL, `redis://:${mockPasswordFor("inferstack-redis-password")}@redis:6379`);
  assert.equal(e.MODELS_DIR, "/app/models");
  assert.equal(e.PORT, "8080");
  assert.equal(e.AUTH_MODE, "off");
  assert.equal(e.TRUST_PROXY, "true");
  // Docker stops the replica only after the app's own shutdown bound has passed.
  assert.ok(Number(container("app-1").inputs.stopTimeout) * 1000 > Number(e.SHUTDOWN_TIMEOUT_MS));
  assert.equal(e.PREDICTION_LOG_SPILL_PATH, "/var/lib/inferstack/spill/predictions.jsonl");
  assert.ok(Number(e.PG_POOL_MAX) * 2 < 80, "replica pools fit Postgres max_connections");
  assert.equal(container("app-1").inputs.readOnly, true);
  assert.ok(
    (container("app-1").inputs.networksAdvanced as { aliases: string[] }[]).some((n) => n.aliases.includes("app")),
  );
});

test("no secret appears in a plain resource input", async () => {
  const secrets = ["postgres", "redis", "grafana"].map((n) => mockPasswordFor(`inferstack-${n}-password`));
  assert.deepEqual(await stack.plainSecrets(secrets), []);
  // Redis gets its password from the environment, never from argv.
  assert.ok(!JSON.stringify(container("redis").inputs.command).includes(secrets[1]!));
  assert.ok(!JSON.stringify(container("postgres").inputs.command ?? []).includes(secrets[0]!));
});

test("Prometheus and Alertmanager get the monitoring files, and promtool/amtool accept them", () => {
  const prom = uploads(container("prometheus"));
  const am = uploads(container("alertmanager"));
  for (const [file, content] of Object.entries({ ...prom, ...am })) {
    const path = join(work, file);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
  assert.ok(prom["/etc/prometheus/prometheus.yml"], "prometheus.yml uploaded");
  assert.match(prom["/etc/prometheus/prometheus.yml"]!, /postgres-exporter:9187/);
  assert.match(prom["/etc/prometheus/prometheus.yml"]!, /redis-exporter:9121/);
  // Only what runs is scraped.
  assert.doesNotMatch(prom["/etc/prometheus/prometheus.yml"]!, /cadvisor|node-exporter|blackbox/);
  // Without --syntax-only promtool also loads and checks every rule file the config names.
  const checked = execFileSync("promtool", ["check", "config", join(work, "etc/prometheus/prometheus.yml")], {
    encoding: "utf8",
    stdio: "pipe",
  });
  assert.match(checked, /SUCCESS: [1-9]\d* rules found/, "the uploaded rule files are found next to the config");
  execFileSync("amtool", ["check-config", join(work, "etc/alertmanager/alertmanager.yml")], { stdio: "pipe" });
  assert.ok((container("prometheus").inputs.command as string[]).includes("--storage.tsdb.retention.time=7d"));
});

test("Grafana is provisioned and reads its admin password from a file only it can read", () => {
  const g = container("grafana");
  const files = unwrapSecrets(g.inputs.uploads) as {
    file: string;
    content: string;
    owner?: string;
    permissions?: string;
  }[];
  const password = files.find((f) => f.file === env(g).GF_SECURITY_ADMIN_PASSWORD__FILE);
  assert.equal(password?.content, mockPasswordFor("inferstack-grafana-password"));
  assert.equal(password?.permissions, "0400");
  assert.ok(files.some((f) => f.file.startsWith("/etc/grafana/provisioning/datasources/")));
  assert.ok(files.some((f) => f.file.startsWith("/var/lib/grafana/dashboards/") && f.file.endsWith(".json")));
  assert.equal(env(g).GF_SERVER_ROOT_URL, "https://localhost:8443/grafana/");
  assert.equal(env(g).GF_SERVER_SERVE_FROM_SUB_PATH, "true");
  assert.equal(env(g).GF_SECURITY_ADMIN_PASSWORD, undefined);
});

test("backups run nightly pg_dump with retention into the backups volume", () => {
  const b = container("backups");
  assert.equal(b.inputs.image, container("postgres").inputs.image, "pg_dump matches the server's version");
  const files = uploads(b);
  const entry = files["/usr/local/bin/inferstack-backup-entrypoint"]!;
  const job = files["/usr/local/bin/inferstack-backup"]!;
  assert.match(entry, /echo '0 3 \* \* \* \/usr\/local\/bin\/inferstack-backup/);
  assert.match(entry, /exec crond -f/);
  assert.match(job, /pg_dump -h postgres -U inferstack -d inferstack --format=custom/);
  assert.match(job, /-mtime \+6 -delete/);
  for (const script of [entry, job]) execFileSync("sh", ["-n", "-c", script]);
  assert.ok(!entry.includes(mockPasswordFor("inferstack-postgres-password")));
});

test("stateful and port-holding containers are replaced in place; app replicas roll create-first", () => {
  for (const c of containers()) {
    const role = roleOf(c);
    if (role.startsWith("app-")) {
      assert.equal(c.inputs.name, undefined, "replicas are auto-named so old and new can run side by side");
      assert.equal(c.inputs.hostname, role);
      assert.notEqual(options.get(c.name)?.deleteBeforeReplace, true, `${role} must start its replacement first`);
    } else {
      assert.equal(c.inputs.name, `inferstack-local-${role}`);
      assert.equal(options.get(c.name)?.deleteBeforeReplace, true, `${role} holds a name, a volume or a port`);
    }
  }
});

test("Valkey's arguments are accepted by a real Redis-protocol server and enforce auth and eviction", async () => {
  const probe = createNetServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const args = unwrapSecrets(container("redis").inputs.command) as string[];
  // The same flags the container passes (the password arrives from the environment there).
  const server = spawn(
    "redis-server",
    [...args, "--requirepass", "pw-under-test", "--port", String(port), "--bind", "127.0.0.1", "--dir", work],
    { stdio: "ignore" },
  );
  const cli = (...a: string[]) =>
    spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...a], { encoding: "utf8" });
  try {
    for (let i = 0; cli("ping").stdout.trim() === "" && i < 100; i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(cli("ping").stdout, /NOAUTH/, "unauthenticated clients are refused");
    const get = (key: string) =>
      cli("-a", "pw-under-test", "--no-auth-warning", "config", "get", key).stdout.replace(/\n$/, "").split("\n");
    assert.deepEqual(get("maxmemory"), ["maxmemory", String(96 * 1024 * 1024)]);
    assert.deepEqual(get("maxmemory-policy"), ["maxmemory-policy", "allkeys-lru"]);
    assert.deepEqual(get("save"), ["save", ""]);
    assert.deepEqual(get("appendonly"), ["appendonly", "no"]);
  } finally {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
  }
});
