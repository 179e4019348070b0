/**
 * The offline engine: runs the Pulumi program for one stack under `pulumi.runtime.setMocks`, with
 * no CLI, no cloud and no credentials. `npm run plan`, `plan:diff` and `docs:tiers` are built on
 * it, and the infra tests inspect the resources it records. The program runs inside a real root
 * Stack resource (`runInPulumiStack`), as under `pulumi up`, so stack transformations and outputs
 * behave as they do for real.
 *
 * Each call sets process-global Pulumi state: run one stack per process (one per test file).
 */
import * as pulumi from "@pulumi/pulumi";
import { mockCall, mockState } from "./cloud-mocks.ts";

export interface MockedResource {
  type: string;
  name: string;
  /** Inputs as the provider would receive them: Outputs resolved, secrets still in Pulumi's
   *  `{ <sig>: <secret sig>, value }` envelope (read through it with `unwrapSecrets`). */
  // biome-ignore lint/suspicious/noExplicitAny: each provider's schema-less property bag; tests walk into it and their assertions check the shape they read
  inputs: Record<string, any>;
  custom: boolean;
  provider?: string;
  /** The parent component as `type::name` (absent for children of the root stack). */
  parent?: string;
}

export interface SecretLeak {
  resource: string;
  path: string;
}

export interface MockedStack {
  resources: MockedResource[];
  outputs: Record<string, unknown>;
  /** Resource inputs holding one of `secretValues` as a plain (non-secret) value. */
  plainSecrets(secretValues: string[]): Promise<SecretLeak[]>;
}

export interface RunOptions {
  project?: string;
  preview?: boolean;
}

/** Replaces every secret envelope in mocked inputs by the value it holds. */
export function unwrapSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value !== null && typeof value === "object") {
    const envelope = value as Record<string, unknown>;
    if (envelope[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig)
      return unwrapSecrets(envelope.value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
  }
  return value;
}

const settle = () => new Promise((r) => setTimeout(r, 0));

/** Walks raw resource args and yields [path, value, isSecret] for every leaf. */
async function* leaves(value: unknown, path: string, secret: boolean): AsyncGenerator<[string, unknown, boolean]> {
  if (pulumi.Output.isInstance(value)) {
    const isSecret = secret || (await pulumi.isSecret(value as pulumi.Output<unknown>));
    const inner = await new Promise<unknown>((resolve) => (value as pulumi.Output<unknown>).apply((v) => resolve(v)));
    yield* leaves(inner, path, isSecret);
  } else if (value instanceof Promise) {
    yield* leaves(await value, path, secret);
  } else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) yield* leaves(v, `${path}[${i}]`, secret);
  } else if (value !== null && typeof value === "object" && !(value instanceof pulumi.Resource)) {
    for (const [k, v] of Object.entries(value)) yield* leaves(v, path ? `${path}.${k}` : k, secret);
  } else {
    yield [path, value, secret];
  }
}

/**
 * `config` maps full keys (`inferstack:tier`, `aws:region`) to string values, as in
 * `Pulumi.<stack>.yaml` (structured values JSON-encoded).
 */
export async function runUnderMocks(
  stack: string,
  config: Record<string, string>,
  program: () => Promise<Record<string, unknown>>,
  options: RunOptions = {},
): Promise<MockedStack> {
  const resources: MockedResource[] = [];
  const rawArgs: { name: string; props: unknown }[] = [];
  // Parents are only visible to transformations; newResource gets the child's type and name.
  const idOf = new WeakMap<pulumi.Resource, string>();
  const parentOf = new Map<string, string>();

  pulumi.runtime.setAllConfig(
    config,
    Object.keys(config).filter((k) => k.endsWith(":secret")),
  );
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const parent = parentOf.get(`${args.type}::${args.name}`);
        resources.push({
          type: args.type,
          name: args.name,
          inputs: args.inputs,
          custom: args.custom ?? true,
          provider: args.provider,
          ...(parent ? { parent } : {}),
        });
        return mockState(args);
      },
      call(args) {
        return mockCall(args);
      },
    },
    options.project ?? "inferstack",
    stack,
    options.preview ?? false,
  );

  let outputs: Record<string, unknown> = {};
  await pulumi.runtime.runInPulumiStack(async () => {
    pulumi.runtime.registerStackTransformation((args) => {
      rawArgs.push({ name: `${args.type}::${args.name}`, props: args.props });
      idOf.set(args.resource, `${args.type}::${args.name}`);
      const parent = args.opts.parent && idOf.get(args.opts.parent);
      if (parent) parentOf.set(`${args.type}::${args.name}`, parent);
      return undefined;
    });
    const exported = await program();
    outputs = await new Promise<Record<string, unknown>>((resolve) =>
      pulumi.output(exported).apply((v) => resolve(v as Record<string, unknown>)),
    );
    return exported;
  });
  // Resources registered in callbacks settle after the program returns; wait until the count is stable.
  for (let stable = 0, last = -1; stable < 5; ) {
    await settle();
    stable = resources.length === last ? stable + 1 : 0;
    last = resources.length;
  }

  return {
    resources,
    outputs,
    async plainSecrets(secretValues) {
      const leaks: SecretLeak[] = [];
      for (const { name, props } of rawArgs) {
        for await (const [path, value, isSecret] of leaves(props, "", false)) {
          if (!isSecret && typeof value === "string" && secretValues.some((s) => s.length > 0 && value.includes(s))) {
            leaks.push({ resource: name, path });
          }
        }
      }
      return leaks;
    },
  };
}
