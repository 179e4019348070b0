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
 * - `contentHash`: a hash of the build inputs (`contentTag()`). The pushed tag is
 *   `<contentHash>-<random>`, the random part renewed whenever the hash changes: ECR tags are
 *   immutable and ECR refuses even an identical re-push, so a tag is never reused — reverting
 *   the source to an earlier state builds under a fresh tag instead of failing the push.
 * - `pinnedImage` (optional): an existing `<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:…`
 *   to deploy instead of building (exact rollback to, or promotion of, an image already pushed).
 *   It is copied (pulled by digest, tagged `p-<digest 12>-<random>`, pushed, kept remotely when
 *   superseded) into this stack's repository and run from there, so it outlives the source
 *   repository's lifecycle rules and its stack; the task's execution role pulls from this
 *   repository only. The source must be in the stack's region and pullable by its credentials.
 * - `buildArgs` (optional): Docker build args.
 * - `keepImages`: how many tagged images the lifecycle policy keeps (default 30).
 * - `untaggedExpiryDays`: days before untagged images are deleted (default 7).
 *
 * Cost: ECR storage $0.10/GB-month (a few hundred MB per image); scans on push are free (basic).
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import * as aws from "@pulumi/aws";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

export interface AwsImageArgs {
  repositoryName: string;
  context: string;
  dockerfile: string;
  platform: "linux/amd64" | "linux/arm64";
  contentHash: string;
  pinnedImage?: string | null;
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

/** The parts of an ECR image reference pinned by digest, or null when `ref` is not one. */
export function parseEcrImageRef(
  ref: string,
): { account: string; region: string; repository: string; digest: string } | null {
  const m =
    /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([a-z0-9][a-z0-9._/-]*)@(sha256:[0-9a-f]{64})$/.exec(
      ref,
    );
  return m ? { account: m[1]!, region: m[2]!, repository: m[3]!, digest: m[4]! } : null;
}

export class AwsImage extends pulumi.ComponentResource {
  readonly repositoryUrl: pulumi.Output<string>;
  readonly repositoryArn: pulumi.Output<string>;
  /** `<repository>@sha256:<digest>`: what task definitions reference. */
  readonly imageRef: pulumi.Output<string>;
  /** ECR repositories `imageRef` may come from (for the execution role's pull permission). */
  readonly pullRepositoryArns: pulumi.Output<string>[];

  constructor(name: string, args: AwsImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:aws:Image", name, {}, opts);
    const parent = { parent: this };

    const repository = new aws.ecr.Repository(
      name,
      {
        name: args.repositoryName,
        imageTagMutability: "IMMUTABLE",
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfigurations: [{ encryptionType: "AES256" }],
        // Images are rebuilt from the repository; without this a `pulumi destroy` stops at a non-empty repo.
        forceDelete: true,
      },
      parent,
    );

    new aws.ecr.LifecyclePolicy(
      name,
      {
        repository: repository.name,
        policy: JSON.stringify({
          rules: [
            {
              rulePriority: 1,
              description: "Expire untagged images (failed or superseded pushes)",
              selection: {
                tagStatus: "untagged",
                countType: "sinceImagePushed",
                countUnit: "days",
                countNumber: args.untaggedExpiryDays ?? 7,
              },
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
      },
      parent,
    );

    this.repositoryUrl = repository.repositoryUrl;
    this.repositoryArn = repository.arn;
    if (args.pinnedImage) {
      const pinned = parseEcrImageRef(args.pinnedImage);
      if (!pinned)
        throw new Error(
          `pinned image "${args.pinnedImage}" must be <account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:<64 hex>`,
        );
      // Promotion copies the image into this stack's own repository: the source repository's
      // lifecycle rules or a `pulumi destroy` of the stack that built it cannot take away what
      // this stack runs and rolls back to. The copy goes through the Docker engine of `pulumi up`
      // (pull by digest, tag, push), authenticated to both registries with ECR tokens.
      const region = aws.getRegionOutput({}, parent);
      const sourceToken = aws.ecr.getAuthorizationTokenOutput({ registryId: pinned.account }, parent);
      const ownToken = aws.ecr.getAuthorizationTokenOutput({ registryId: repository.registryId }, parent);
      const sourceRegistry = pulumi.all([region.region]).apply(([current]) => {
        if (current !== pinned.region)
          throw new Error(
            `inferstack:app.image: ${args.pinnedImage} is in ${pinned.region}; promotion copies within the stack's region ${current} (replicate it with ECR replication first)`,
          );
        return args.pinnedImage!.split("/")[0]!;
      });
      const registries = new docker.Provider(
        `${name}-promotion`,
        {
          registryAuth: [
            { address: sourceRegistry, username: sourceToken.userName, password: pulumi.secret(sourceToken.password) },
            {
              address: repository.repositoryUrl.apply((url) => url.split("/")[0]!),
              username: ownToken.userName,
              password: pulumi.secret(ownToken.password),
            },
          ],
        },
        parent,
      );
      const withRegistries = { parent: this, provider: registries };
      const source = new docker.RemoteImage(
        `${name}-promoted-source`,
        { name: args.pinnedImage, platform: args.platform, keepLocally: true },
        withRegistries,
      );
      // A fresh tag per promotion (ECR tags are immutable, and promoting A, then B, then A again must not re-push A's tag).
      const promotionTag = new random.RandomId(
        `${name}-promoted-tag`,
        { byteLength: 4, keepers: { digest: pinned.digest } },
        parent,
      );
      const tagged = new docker.Tag(
        `${name}-promoted`,
        {
          sourceImage: source.imageId,
          targetImage: pulumi.interpolate`${repository.repositoryUrl}:p-${pinned.digest.slice("sha256:".length, "sha256:".length + 12)}-${promotionTag.hex}`,
        },
        withRegistries,
      );
      // keepRemotely: promoting the next image must leave this one in the repository for rollbacks.
      const pushed = new docker.RegistryImage(
        `${name}-promoted`,
        { name: tagged.targetImage, keepRemotely: true },
        withRegistries,
      );
      this.imageRef = pulumi.interpolate`${repository.repositoryUrl}@${pushed.sha256Digest}`;
      this.pullRepositoryArns = [repository.arn];
      this.registerOutputs({ repositoryUrl: this.repositoryUrl, imageRef: this.imageRef });
      return;
    }

    const suffix = new random.RandomId(
      `${name}-tag`,
      { byteLength: 4, keepers: { contentHash: args.contentHash } },
      parent,
    );
    const token = aws.ecr.getAuthorizationTokenOutput({ registryId: repository.registryId }, parent);
    const image = new docker.Image(
      name,
      {
        imageName: pulumi.interpolate`${repository.repositoryUrl}:${args.contentHash}-${suffix.hex}`,
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
      },
      parent,
    );

    this.imageRef = image.repoDigest;
    this.pullRepositoryArns = [repository.arn];
    this.registerOutputs({ repositoryUrl: this.repositoryUrl, imageRef: this.imageRef });
  }
}
