/**
 * A local stand-in for the official node:<24>-bookworm-slim image, for machines that cannot pull
 * from a registry: debootstrap a minimal Debian from the machine's own apt mirror, add the Node
 * binary of the npm `node` package (the version package.json pins) and the npm that this Node
 * release bundles, create the `node` user (uid/gid 1000, home /home/node) as the official image
 * does, then `docker import`. The root filesystem tarball is cached per suite, Node and npm version.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { cp, mkdir, mkdtemp, rename, rm, symlink } from "node:fs/promises";
import path from "node:path";
import { run } from "./docker-engine.ts";

export interface BaseImageSpec {
  suite: string;
  mirror: string;
  nodeVersion: string;
  npmVersion: string;
  /** The Node executable to install as /usr/local/bin/node. */
  nodeBinary: string;
}

/** The apt mirror this machine uses for Debian itself (deb822 .sources first, then sources.list). */
export function debianMirror(root = "/etc/apt"): string {
  const files = [
    ...(existsSync(path.join(root, "sources.list.d"))
      ? readdirSync(path.join(root, "sources.list.d"))
          .filter((f) => f.endsWith(".sources") || f.endsWith(".list"))
          .map((f) => path.join(root, "sources.list.d", f))
      : []),
    path.join(root, "sources.list"),
  ].filter((f) => existsSync(f));
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    if (file.endsWith(".sources")) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string) => stanza.match(new RegExp(`^${name}:\\s*(.+)$`, "mi"))?.[1]?.trim();
        const enabled = (field("Enabled") ?? "yes").toLowerCase() !== "no";
        const uri = field("URIs")?.split(/\s+/)[0];
        if (enabled && uri && /\/debian\/?$/.test(uri) && (field("Types") ?? "").split(/\s+/).includes("deb"))
          return uri;
      }
    } else {
      for (const line of text.split("\n")) {
        const m = line.match(/^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian\/?)\s/);
        if (m) return m[1]!;
      }
    }
  }
  return "http://deb.debian.org/debian";
}

/**
 * The npm each pinned Node release bundles (its CHANGELOG: the latest "deps: upgrade npm to").
 * The npm package `node` keeps no copy of npm or of that changelog once installed.
 */
const BUNDLED_NPM: Record<string, string> = { "24.21.0": "11.19.0" };

/** The Node binary of the npm package `node` at the version package.json pins, and its npm. */
export function nodeFromNpmPackage(repoRoot: string): { binary: string; version: string; npmVersion: string } {
  const pinned = (
    JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as {
      devDependencies?: Record<string, string>;
    }
  ).devDependencies?.node;
  if (!pinned || !/^\d+\.\d+\.\d+$/.test(pinned))
    throw new Error(`package.json devDependencies.node must pin an exact Node version, got ${pinned}`);
  const pkgDir = path.join(repoRoot, "node_modules/node");
  const binary = path.join(pkgDir, "bin/node");
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run npm ci`);
  const installed = (JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8")) as { version: string })
    .version;
  if (installed !== pinned)
    throw new Error(`node_modules/node is ${installed}, package.json pins ${pinned}: run npm ci`);
  const npmVersion = BUNDLED_NPM[pinned];
  if (!npmVersion)
    throw new Error(
      `scripts/lib/base-image.ts: add to BUNDLED_NPM the npm that Node ${pinned} bundles (its CHANGELOG, "upgrade npm to")`,
    );
  return { binary, version: pinned, npmVersion };
}

export function baseImageTag(spec: BaseImageSpec): string {
  return `inferstack-base:${spec.suite}-node${spec.nodeVersion}-npm${spec.npmVersion}`;
}

const DEBIAN_ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64" };

function debianArch(): string {
  const arch = DEBIAN_ARCH[process.arch];
  if (!arch) throw new Error(`no Debian architecture for ${process.arch}`);
  return arch;
}

export function baseTarballPath(spec: BaseImageSpec, cacheDir: string): string {
  return path.join(cacheDir, "base", `${spec.suite}-${debianArch()}-node${spec.nodeVersion}-npm${spec.npmVersion}.tar`);
}

/** The rootfs tarball, made unless cached. Returns its path. */
async function rootfsTarball(spec: BaseImageSpec, cacheDir: string, log: (line: string) => void): Promise<string> {
  const arch = debianArch();
  const tarball = baseTarballPath(spec, cacheDir);
  if (existsSync(tarball)) {
    log(`base rootfs cached: ${tarball}`);
    return tarball;
  }
  await mkdir(path.dirname(tarball), { recursive: true });
  const work = await mkdtemp(path.join(path.dirname(tarball), "work-"));
  const rootfs = path.join(work, "rootfs");
  try {
    log(`debootstrap --variant=minbase ${spec.suite} from ${spec.mirror}`);
    await run("debootstrap", ["--variant=minbase", `--arch=${arch}`, spec.suite, rootfs, spec.mirror], {
      timeoutMs: 15 * 60_000,
    });

    // The official image's layout: /usr/local/bin/node, npm under /usr/local/lib/node_modules.
    await cp(spec.nodeBinary, path.join(rootfs, "usr/local/bin/node"));
    log(`npm pack npm@${spec.npmVersion}`);
    await run("npm", ["pack", `npm@${spec.npmVersion}`, "--pack-destination", work, "--silent"], { cwd: work });
    const npmDir = path.join(rootfs, "usr/local/lib/node_modules/npm");
    await mkdir(npmDir, { recursive: true });
    await run("tar", [
      "-xzf",
      path.join(work, `npm-${spec.npmVersion}.tgz`),
      "-C",
      npmDir,
      "--strip-components=1",
      "--no-same-owner",
    ]);
    await symlink("../lib/node_modules/npm/bin/npm-cli.js", path.join(rootfs, "usr/local/bin/npm"));
    await symlink("../lib/node_modules/npm/bin/npx-cli.js", path.join(rootfs, "usr/local/bin/npx"));

    // Same commands as the official node Dockerfile: images built on it rely on USER node.
    await run("chroot", [rootfs, "groupadd", "--gid", "1000", "node"]);
    await run("chroot", [
      rootfs,
      "useradd",
      "--uid",
      "1000",
      "--gid",
      "node",
      "--shell",
      "/bin/bash",
      "--create-home",
      "node",
    ]);
    const check = await run("chroot", [rootfs, "/usr/local/bin/node", "-e", "process.stdout.write(process.version)"]);
    if (check.stdout !== `v${spec.nodeVersion}`)
      throw new Error(`node in the rootfs reports ${check.stdout}, expected v${spec.nodeVersion}`);

    for (const leftover of ["var/lib/apt/lists", "var/cache/apt", "var/log", "tmp"]) {
      await rm(path.join(rootfs, leftover), { recursive: true, force: true });
      await mkdir(path.join(rootfs, leftover), { recursive: true });
    }
    await run("chmod", ["1777", path.join(rootfs, "tmp")]);
    // /dev, /proc and /sys are the runtime's to provide.
    await run("tar", [
      "--numeric-owner",
      "-C",
      rootfs,
      "--exclude=./dev/*",
      "--exclude=./proc/*",
      "--exclude=./sys/*",
      "-cf",
      `${tarball}.part`,
      ".",
    ]);
    await rename(`${tarball}.part`, tarball);
    return tarball;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The base image in the engine, made (or imported from the cached tarball) unless there. Returns its tag. */
export async function ensureBaseImage(
  docker: (args: string[]) => Promise<{ code: number; stdout: string }>,
  spec: BaseImageSpec,
  cacheDir: string,
  log: (line: string) => void,
): Promise<{ tag: string; made: "engine cache" | "tarball cache" | "debootstrap" }> {
  const tag = baseImageTag(spec);
  if ((await docker(["image", "inspect", "--format", "{{.Id}}", tag])).code === 0) return { tag, made: "engine cache" };
  const cachedTarball = existsSync(baseTarballPath(spec, cacheDir));
  const tarball = await rootfsTarball(spec, cacheDir, log);
  const changes = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    `ENV NODE_VERSION=${spec.nodeVersion}`,
    'CMD ["node"]',
  ];
  const res = await docker([
    "import",
    ...changes.flatMap((c) => ["--change", c]),
    "--message",
    `debootstrap ${spec.suite} + node ${spec.nodeVersion} + npm ${spec.npmVersion}`,
    tarball,
    tag,
  ]);
  if (res.code !== 0) throw new Error(`docker import ${tarball} failed`);
  return { tag, made: cachedTarball ? "tarball cache" : "debootstrap" };
}
