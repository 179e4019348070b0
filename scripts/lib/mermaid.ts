/**
 * A Mermaid flowchart of a plan, for docs/tiers.md: one subgraph per component, a node per
 * resource that carries traffic or data (containers, services, load balancers, databases, caches,
 * hosts, gateways, file systems), and arrows where one references another (by id, ARN, endpoint
 * or container host name, directly or through one supporting resource such as a task
 * definition or target group). Everything is derived from the plan, so the diagram follows the code.
 */
import type { Plan, PlanResource } from "./plan.ts";
import { flatten } from "./properties.ts";
import { shortType } from "./plan-format.ts";

const diagramTypes: Record<string, (r: PlanResource) => string> = {
  "docker:index/container:Container": (r) => `container ${String(r.inputs.image ?? "").split("@")[0]?.split("/").pop() ?? ""}`,
  "aws:ecs/service:Service": (r) => `ECS service ×${r.inputs.desiredCount ?? 1}`,
  "aws:lb/loadBalancer:LoadBalancer": (r) => (r.inputs.internal ? "internal LB" : "ALB (internet-facing)"),
  "aws:rds/instance:Instance": (r) => `RDS ${r.inputs.instanceClass}${r.inputs.multiAz ? " Multi-AZ" : ""}`,
  "aws:elasticache/replicationGroup:ReplicationGroup": (r) => `ElastiCache ${r.inputs.numCacheClusters ?? 1}× ${r.inputs.nodeType}`,
  "aws:ec2/instance:Instance": (r) => `EC2 ${r.inputs.instanceType}`,
  "aws:ec2/natGateway:NatGateway": () => "NAT gateway",
  "aws:efs/fileSystem:FileSystem": () => "EFS",
  "aws:ecr/repository:Repository": () => "ECR repository",
  "aws:s3/bucketV2:BucketV2": () => "S3 bucket",
  "aws:s3/bucket:Bucket": () => "S3 bucket",
  "aws:route53/record:Record": (r) => `DNS ${r.inputs.name ?? ""}`,
};

/** Certificate validation records are plumbing, not part of the picture. */
const isDiagramNode = (r: PlanResource) => !r.component && r.type in diagramTypes && !String(r.inputs.name ?? "").startsWith("_");

const slug = (name: string) => name.replace(/[^a-zA-Z0-9-]/g, "-").slice(0, 48);
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const label = (s: string) => s.replace(/"/g, "'");

/** Patterns by which other resources' inputs refer to `r` under the mocked cloud. */
function referencePattern(r: PlanResource): RegExp {
  const s = escapeRe(slug(r.name));
  const host = typeof r.inputs.name === "string" && r.type.startsWith("docker:") ? `|(^|[/@])${escapeRe(r.inputs.name)}(:\\d+|/|$)` : "";
  return new RegExp(`(^${s}-id$)|(:${s}$)|((^|[/@.])${s}[.-][a-z0-9.-]*amazonaws\\.com)${host}`);
}

function strings(r: PlanResource): string[] {
  return Object.values(flatten(r.inputs)).filter((v): v is string => typeof v === "string");
}

export function diagramEdges(plan: Plan): [string, string][] {
  const key = plan.resources.filter(isDiagramNode);
  const support = plan.resources.filter((r) => !r.component && !(r.type in diagramTypes));
  const patterns = new Map(plan.resources.map((r) => [r.id, referencePattern(r)]));
  const refs = (from: PlanResource, to: PlanResource) => from.id !== to.id && strings(from).some((s) => patterns.get(to.id)!.test(s));
  const edges = new Set<string>();
  for (const a of key) {
    for (const b of key) if (refs(a, b)) edges.add(`${a.id}\u0000${b.id}`);
    // One hop through a supporting resource: service → task definition → database endpoint.
    for (const x of support) {
      if (!refs(a, x)) continue;
      for (const b of key) {
        if (b.id === a.id || !refs(x, b)) continue;
        edges.add(`${a.id}\u0000${b.id}`);
      }
    }
  }
  // A service registered with a load balancer's target group receives its traffic: LB → service.
  const byIdMap = new Map(plan.resources.map((r) => [r.id, r]));
  const isLb = (id: string) => byIdMap.get(id)?.type === "aws:lb/loadBalancer:LoadBalancer";
  return [...edges]
    .map((e) => e.split("\u0000") as [string, string])
    .map(([a, b]) => (isLb(b) && byIdMap.get(a)?.type === "aws:ecs/service:Service" ? ([b, a] as [string, string]) : ([a, b] as [string, string])))
    .sort((x, y) => (x.join() < y.join() ? -1 : 1));
}

function isPublicEntry(r: PlanResource): boolean {
  if (r.type === "aws:lb/loadBalancer:LoadBalancer") return r.inputs.internal !== true;
  if (r.type === "docker:index/container:Container") {
    const ports = (r.inputs.ports ?? []) as { external?: number; ip?: string }[];
    return ports.some((p) => p.external === 80 || p.external === 443 || p.external === 8443 || p.external === 8080);
  }
  if (r.type === "aws:ec2/instance:Instance") return r.inputs.associatePublicIpAddress === true;
  return false;
}

export function formatMermaid(plan: Plan): string {
  const ids = new Map<string, string>();
  const nodeId = (id: string) => {
    if (!ids.has(id)) ids.set(id, `n${ids.size}`);
    return ids.get(id)!;
  };
  const lines = ["flowchart LR", '  internet(("Internet"))'];
  const key = plan.resources.filter(isDiagramNode);
  const byParent = new Map<string, PlanResource[]>();
  for (const r of key) byParent.set(r.parent ?? "", [...(byParent.get(r.parent ?? "") ?? []), r]);
  const components = new Map(plan.resources.filter((r) => r.component).map((r) => [r.id, r]));
  for (const [parent, members] of [...byParent.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const comp = components.get(parent);
    const indent = comp ? "    " : "  ";
    if (comp) lines.push(`  subgraph ${nodeId(comp.id)}["${label(`${comp.name} (${shortType(comp.type)})`)}"]`);
    for (const r of members) lines.push(`${indent}${nodeId(r.id)}["${label(`${r.name}<br/>${diagramTypes[r.type]!(r)}`)}"]`);
    if (comp) lines.push("  end");
  }
  for (const r of key) if (isPublicEntry(r)) lines.push(`  internet --> ${nodeId(r.id)}`);
  for (const [a, b] of diagramEdges(plan)) lines.push(`  ${nodeId(a)} --> ${nodeId(b)}`);
  return lines.join("\n");
}
