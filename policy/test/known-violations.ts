/**
 * Violations the mocked inventories show today, in code owned by the platform engineers and
 * reported to them (not waived: each must be fixed, then removed from here). The inventory tests
 * fail on any other violation, and also when one of these is fixed, so this list stays true.
 */
export const knownViolations: Record<string, string[]> = {
  local: [],
  // infra/components/ec2-docker-host.ts tags with Project/Stack/Tier; the AWS tiers use app/env/tier.
  dev: [
    "required-tags: host-eip: missing tag(s) app, env, tier",
    "required-tags: host-igw: missing tag(s) app, env, tier",
    "required-tags: host-instance: missing tag(s) app, env, tier",
    "required-tags: host-public: missing tag(s) app, env, tier",
    "required-tags: host-public: missing tag(s) app, env, tier",
    "required-tags: host-role: missing tag(s) app, env, tier",
    "required-tags: host-sg: missing tag(s) app, env, tier",
    "required-tags: host-vpc: missing tag(s) app, env, tier",
  ],
  staging: [],
  // The AWS monitoring task runs the blackbox exporter by tag, not digest.
  prod: [
    "prod-images-pinned: inferstack-prod-monitoring-service: container blackbox-exporter: image quay.io/prometheus/blackbox-exporter:v0.25.0 is not pinned by digest",
  ],
};
