/**
 * Runs a stack's program under mocks (with its Pulumi.<stack>.yaml) and the whole policy pack over
 * the resulting inventory. Property dependencies are rebuilt from the mocked ids (`<name>-id`),
 * which is how one resource's input names another under the mocks.
 */
import { fileURLToPath } from "node:url";
import { runUnderMocks } from "../../infra/offline/run-under-mocks.ts";
import { main } from "../../infra/program.ts";
import { flatten } from "../../scripts/lib/properties.ts";
import { applyStandIns, readStackFile } from "../../scripts/lib/stack-config.ts";
import { resourcePolicies, stackPolicies } from "../policies.ts";
import { type FakeResource, stackViolationsOf, violationsOf } from "./fake-args.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const slug = (name: string) => name.replace(/[^a-zA-Z0-9-]/g, "-").slice(0, 48);

export async function packViolations(stack: string): Promise<{ violations: string[]; resourceCount: number }> {
  const { config } = applyStandIns((await readStackFile(root, stack)).config);
  const mocked = await runUnderMocks(stack, config, main);
  const custom = mocked.resources.filter((r) => r.custom);
  const providers = new Map(custom.filter((r) => r.type.startsWith("pulumi:providers:")).map((r) => [r.name, r]));
  const byMockId = new Map(custom.map((r) => [`${slug(r.name)}-id`, r]));
  const fakes = new Map<(typeof custom)[number], FakeResource>();
  for (const r of custom) {
    const providerName = r.provider?.split("::")[3];
    const provider = providerName ? providers.get(providerName) : undefined;
    fakes.set(r, {
      type: r.type,
      name: r.name,
      props: r.inputs,
      ...(provider
        ? {
            provider: { type: provider.type, name: provider.name, urn: `urn:${provider.name}`, props: provider.inputs },
          }
        : {}),
    });
  }
  for (const [r, fake] of fakes) {
    const deps: Record<string, FakeResource[]> = {};
    for (const [key, value] of Object.entries(r.inputs)) {
      const ids = Object.values(flatten({ v: value })).filter((v): v is string => typeof v === "string");
      const targets = ids.map((id) => byMockId.get(id)).filter((t): t is (typeof custom)[number] => !!t && t !== r);
      if (targets.length) deps[key] = targets.map((t) => fakes.get(t)!);
    }
    fake.propertyDependencies = deps;
  }
  const resources = [...fakes.values()];
  const violations: string[] = [];
  for (const policy of resourcePolicies) {
    for (const r of resources) for (const v of await violationsOf(policy, r)) violations.push(`${policy.name}: ${v}`);
  }
  for (const policy of stackPolicies)
    for (const v of await stackViolationsOf(policy, resources)) violations.push(`${policy.name}: ${v}`);
  return { violations: violations.sort(), resourceCount: resources.length };
}
