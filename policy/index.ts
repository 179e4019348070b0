/**
 * The InferStack policy pack: run it with every preview and update,
 *   pulumi preview --stack prod --policy-pack policy --policy-pack-config policy/config.prod.json
 * The policies are in `policies.ts` (unit-tested in `policy/test/`).
 */
import { PolicyPack } from "@pulumi/policy";
import { resourcePolicies, stackPolicies } from "./policies.ts";

new PolicyPack("inferstack-guardrails", {
  description:
    "InferStack security guardrails: private datastores, encryption, TLS 1.2+, no world-open ingress, IMDSv2, prod database protection, log retention, tags, digest-pinned prod images.",
  enforcementLevel: "mandatory",
  policies: [...resourcePolicies, ...stackPolicies],
});
