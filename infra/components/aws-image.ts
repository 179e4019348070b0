/**
 * AwsImage: an ECR repository and one image built into it, referenced by digest.
 *
 * Creates: an ECR repository (tags immutable, scan on push, AES-256 encryption at rest) with a
 * lifecycle policy (untagged images expire after `untaggedExpiryDays`; only the newest
 * `keepImages` tagged images are kept, which bounds how far back a stack rollback can go), and a
 * `docker.Image` built from `context`/`dockerfile` for `platform` and pushed with a token from
 * `ecr.getAuthorizationToken`. `imageRef` is `repository@sha256:...`: task definitions pin the
 * exact bytes, so a redeploy of an old stack state restores the exact image.
 *
 * Inputs:
 * - `repositoryName`: ECR repository name (lowercase, ≤ 256 chars).
 * - `context`, `dockerfile`: build context directory and Dockerfile path (relative to the cwd
 *   of `pulumi up`, the project root).
 * - `platform`: `linux/amd64` or `linux/arm64`, matching the ECS task's CPU architecture.
 * - `tag`: the image tag. Tags are immutable, so it must change whenever the content does; the
 *   AWS platform derives it from a hash of the build inputs.
 * - `buildArgs` (optional): Docker build args.
 * - `keepImages`: how many tagged images the lifecycle policy keeps (default 30).
 * - `untaggedExpiryDays`: days before untagged images are deleted (default 7).
 *
 * Cost: ECR storage $0.10/GB-month (a few hundred MB per image); scans on push are free (basic).
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as docker from "@pulumi/docker";

export interface AwsImageArgs {
  repositoryName: string;
  context: string;
  dockerfile: string;
  platform: "linux/amd64" | "linux/arm64";
  tag: string;
  /** Docker build args (e.g. the pinned base image). */
  buildArgs?: Record<string, string>;
  keepImages?: number;
  untaggedExpiryDays?: number;
}

/**
 * A tag that changes exactly when the build inputs do: sha256 over the relative path and bytes of
 * every file under `paths` (node_modules and .git skipped) plus `extra` (e.g. build args), cut
 * to 20 hex chars. ECR tags are immutable, so a tag must never be reused for other content.
 */
export function contentTag(root: string, paths: string[], extra = ""): string {
  const hash = createHash("sha256").update(extra);
  const visit = (path: string) => {
    if (!existsSync(path)) return;
    if (statSync(path).isDirectory()) {
      for (const entry of readdirSync(path).sort()) {
        if (entry !== "node_modules" && entry !== ".git") visit(join(path, entry));
      }
    } else {
      hash.update(relative(root, path)).update("\0").update(readFileSync(path)).update("\0");
    }
  };
  for (const p of [...paths].sort()) visit(join(root, p));
  return `c-${hash.digest("hex").slice(0, 20)}`;
}

export class AwsImage extends pulumi.ComponentResource {
  readonly repositoryUrl: pulumi.Output<string>;
  readonly repositoryArn: pulumi.Output<string>;
  /** `<repositoryUrl>@sha256:<digest>`: what task definitions reference. */
  readonly imageRef: pulumi.Output<string>;

  constructor(name: string, args: AwsImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:aws:Image", name, {}, opts);
    const parent = { parent: this };

    const repository = new aws.ecr.Repository(name, {
      name: args.repositoryName,
      imageTagMutability: "IMMUTABLE",
      imageScanningConfiguration: { scanOnPush: true },
      encryptionConfigurations: [{ encryptionType: "AES256" }],
      // Images are rebuilt from the repository; without this a `pulumi destroy` stops at a non-empty repo.
      forceDelete: true,
    }, parent);

    new aws.ecr.LifecyclePolicy(name, {
      repository: repository.name,
      policy: JSON.stringify({
        rules: [
          {
            rulePriority: 1,
            description: "Expire untagged images (failed or superseded pushes)",
            selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: args.untaggedExpiryDays ?? 7 },
            action: { type: "expire" },
          },
          {
            rulePriority: 2,
            description: "Keep the newest images: the window a stack rollback can reach",
            selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: args.keepImages ?? 30 },
            action: { type: "expire" },
          },
        ],
      }),
    }, parent);

    const token = aws.ecr.getAuthorizationTokenOutput({ registryId: repository.registryId }, parent);
    const image = new docker.Image(name, {
      imageName: pulumi.interpolate`${repository.repositoryUrl}:${args.tag}`,
      build: {
        context: args.context,
        dockerfile: args.dockerfile,
        platform: args.platform,
        builderVersion: "BuilderBuildKit",
        ...(args.buildArgs ? { args: args.buildArgs } : {}),
      },
      registry: {
        server: repository.repositoryUrl,
        username: token.userName,
        password: pulumi.secret(token.password),
      },
    }, parent);

    this.repositoryUrl = repository.repositoryUrl;
    this.repositoryArn = repository.arn;
    this.imageRef = image.repoDigest;
    this.registerOutputs({ repositoryUrl: this.repositoryUrl, imageRef: this.imageRef });
  }
}
